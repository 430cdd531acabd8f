"""
Lab tier: several services (issue 23) on the SERVICES topology - the
service `web` (http on both VIPs: the host app.example.com to the pool
`app`, the rest to the nginx pages; TLS with two certificates of the lab's
CA chosen by SNI) and the tcp service `raw` (pool `raw`), the pools `app`
and `raw` served by the lab's own application on two `app` nodes (a
systemd unit installed by the test's state test/lab/states/labapp, which
answers with its node's name and the pillar's app:version), nginx2 in the
pool `pages` by its address.  Every route answered by its pool, the right
certificate for each name, a killed HAProxy costing each service a short
outage, the app's rolling deploy by the operator's state, a server given by
address drained and readied, a pool with no server UP, and HAProxy's
exporter in Prometheus.
"""

import copy
import json
import pathlib
import re
import statistics
import sys
import time

import pytest

import test.lab.prometheus
from test.lab.ca import CA
from test.lab.cluster import REPO, SERVICES, Topology, all_up, wait_until
from test.lab.secrets import pillar_secrets, shown_secrets, where_salt_shows

pytestmark = pytest.mark.lab

PRIMARY, BACKUP = SERVICES.preferred_balancer, SERVICES.standby_balancers[0]
BALANCERS = SERVICES.with_role("balancer")
APPS = SERVICES.with_role("app")
PAGES = SERVICES.with_role("backend")
VIPS = sorted(SERVICES.pillar["havip"]["vips"])
APP_HOST, PAGES_HOST = "app.example.com", "www.example.com"
TLS_PORT = 443
RAW_PORT = SERVICES.pillar["havip"]["services"]["raw"]["port"]
# The lab's app, as the pillar's app:version says: "<node> <version>".
APP_ANSWER = re.compile(r"(?P<node>app[0-9]+) (?P<version>[0-9]+)")
# Today's bound on a failover's outage (README): each at most, and the median.
OUTAGE_MAX_S, OUTAGE_MEDIAN_S = 0.25, 0.05
KILLS = 3
# Run on the client: the subjectAltName of the certificate a TLS server
# shows for a server name (SNI), verified against the CA.
PEER_NAMES = """
import json, socket, ssl, sys
address, port, name, cafile = sys.argv[1:]
context = ssl.create_default_context(cafile=cafile)
context.check_hostname = False
with socket.create_connection((address, int(port)), timeout=2) as raw:
    with context.wrap_socket(raw, server_hostname=name) as tls:
        print(json.dumps(sorted(value for _, value in tls.getpeercert()["subjectAltName"])))
"""


def address(vip):
    return SERVICES.vip_address(vip)


def url(host, port=None, scheme="http", path="/"):
    return f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"


@pytest.fixture(scope="module")
def ca(salt_factories):
    """The lab's CA, where the hosts see it (salt-factories' root is
    bind-mounted into them)."""
    return CA(pathlib.Path(salt_factories.root_dir) / "ca-services")


@pytest.fixture(scope="module")
def cluster_topology(ca):
    """SERVICES with TLS on `web`: the pages' certificate first (the
    default; also for the VIPs' addresses), then the app's."""
    pillar = copy.deepcopy(SERVICES.pillar)
    vips = [address(vip) for vip in VIPS]
    certificates = [ca.issue("pages", vips, serial=0x2001, hosts=[PAGES_HOST]),
                    ca.issue("app", [], serial=0x2002, hosts=[APP_HOST])]
    pillar["havip"]["services"]["web"]["tls"] = {"port": TLS_PORT, "certificates": certificates}
    return Topology(SERVICES.name, SERVICES.hosts, SERVICES.client, pillar)


@pytest.fixture(scope="module")
def cluster_file_roots():
    return [REPO / "test" / "lab" / "states"]


@pytest.fixture(scope="module")
def cluster_deployed():
    return False  # the app first (below): a pool without a server UP ranks a balancer down


def holders_settled(cluster, timeout=30):
    """Every VIP on the preferred balancer (or the holders at the timeout)."""
    return {vip: cluster.wait_for_holders([PRIMARY], timeout=timeout, vip=vip) for vip in VIPS}


@pytest.fixture(scope="module")
def cluster(cluster):
    """The lab's cluster with the app installed on the app nodes by the
    test's own state, then havip applied everywhere (every server UP in
    every balancer's HAProxy); the client resolves the services' host names
    to VI_1."""
    installed = cluster.salt("app*", "state.apply", "labapp")
    assert installed.returncode == 0, installed.stdout
    applied = cluster.apply()
    assert applied.returncode == 0, applied.stdout
    assert holders_settled(cluster) == {vip: [PRIMARY] for vip in VIPS}
    # (nginx started by the same apply: HAProxy's checks may see it UP after)
    seen = cluster.wait_for_servers_up()
    assert all_up(seen), seen
    cluster.host(SERVICES.client).run(["sh", "-c", 'echo "$1 $2 $3" >> /etc/hosts', "sh", address("VI_1"),
                                       APP_HOST, PAGES_HOST])
    return cluster


def settled(cluster, timeout=30):
    """`salt-run havip.status` once it exits 0, or its last answer after
    ``timeout`` s."""
    return wait_until(lambda: cluster.run("havip.status"), lambda view: view.returncode == 0, timeout, 1)


def ready_everywhere(cluster, references):
    """``havip.ready`` of these servers (pool/server) on every balancer,
    after a test that may have left them drained; the answers."""
    return {(balancer, reference): cluster.salt(balancer, "havip.ready", reference).returncode
            for balancer in BALANCERS for reference in references}


def serving(cluster, timeout=15):
    """Both services answer on VI_1 (web's app route too) within
    ``timeout`` s: the status of each."""
    targets = (url(address("VI_1")), url(APP_HOST), url(address("VI_1"), RAW_PORT))
    return wait_until(lambda: [cluster.client_get(target)[0] for target in targets],
                      lambda codes: codes == [200] * len(targets), timeout)


@pytest.fixture
def serving_cluster(cluster):
    """For the tests that change nothing: every VIP on the preferred
    balancer, both services serving."""
    assert holders_settled(cluster) == {vip: [PRIMARY] for vip in VIPS}
    assert serving(cluster) == [200] * 3
    return cluster


@pytest.fixture
def healthy(cluster):
    """Before: every VIP on the preferred balancer, both services serving.
    After: the topology's pillar (app version 1) applied everywhere, the
    app too, no balancer on standby, and so again."""
    assert holders_settled(cluster) == {vip: [PRIMARY] for vip in VIPS}
    assert serving(cluster) == [200] * 3
    yield cluster
    cluster.set_pillar(cluster.topology.pillar)
    for balancer in BALANCERS:
        cluster.salt(balancer, "havip.resume")
    assert cluster.salt("app*", "state.apply", "labapp").returncode == 0
    assert cluster.apply().returncode == 0
    assert holders_settled(cluster) == {vip: [PRIMARY] for vip in VIPS}
    assert serving(cluster) == [200] * 3


def answers(cluster, target, count=6, **get):
    """The bodies of ``count`` requests from the client (each must be a 200)."""
    got = [cluster.client_get(target, **get) for _ in range(count)]
    assert {status for status, _ in got} == {200}, (target, got)
    return [body for _, body in got]


def app_nodes(bodies):
    """The app nodes that gave these answers (each must be the app's)."""
    matched = [APP_ANSWER.fullmatch(body) for body in bodies]
    assert all(matched), bodies
    return sorted({match["node"] for match in matched})


def peer_names(cluster, vip, name, cafile):
    out = cluster.host(SERVICES.client).run([sys.executable, "-c", PEER_NAMES, address(vip), str(TLS_PORT),
                                             name, str(cafile)]).stdout
    return json.loads(out)


# ---- routes and certificates ---------------------------------------------------


@pytest.mark.parametrize("vip", VIPS)
def test_every_route_is_answered_by_its_pool_on_every_vip(serving_cluster, ca, vip):
    cluster, at = serving_cluster, address(vip)
    # web: the host app.example.com goes to the app, any other to the pages.
    assert app_nodes(answers(cluster, url(APP_HOST), resolve=at)) == APPS
    assert sorted(set(answers(cluster, url(at)))) == PAGES
    assert sorted(set(answers(cluster, url(PAGES_HOST), resolve=at))) == PAGES
    # The same over TLS (the name verified against its certificate).
    assert app_nodes(answers(cluster, url(APP_HOST, scheme="https"), resolve=at, cafile=ca.pem)) == APPS
    assert sorted(set(answers(cluster, url(PAGES_HOST, scheme="https"), resolve=at, cafile=ca.pem))) == PAGES
    # raw (tcp): the app, whatever is asked.
    assert app_nodes(answers(cluster, url(at, RAW_PORT))) == APPS


@pytest.mark.parametrize("vip", VIPS)
def test_sni_picks_the_certificate_of_each_name_and_the_first_for_any_other(serving_cluster, ca, vip):
    pages = sorted([address(v) for v in VIPS] + [PAGES_HOST])
    assert peer_names(serving_cluster, vip, APP_HOST, ca.pem) == [APP_HOST]
    assert peer_names(serving_cluster, vip, PAGES_HOST, ca.pem) == pages
    assert peer_names(serving_cluster, vip, "other.example.org", ca.pem) == pages


# ---- a killed HAProxy --------------------------------------------------------------


def test_haproxy_killed_on_the_holder_costs_each_service_one_short_outage(healthy):
    """kill -9 of the holder's HAProxy master, both services probed at once
    (web on VI_1, raw on VI_2; both VIPs move): each service's longest
    outage within today's bound, at most OUTAGE_MAX_S each time and
    OUTAGE_MEDIAN_S in the median of KILLS kills; systemd restarts HAProxy
    and the preferred balancer takes the VIPs back each time."""
    targets = {"web": url(address("VI_1")), "raw": url(address("VI_2"), RAW_PORT)}
    longest = {service: [] for service in targets}
    for _ in range(KILLS):
        with (healthy.probe(seconds=6, url=targets["web"]) as web,
              healthy.probe(seconds=6, url=targets["raw"]) as raw):
            time.sleep(1.5)
            healthy.kill_haproxy(PRIMARY)
            assert {vip: healthy.wait_for_holders([BACKUP], timeout=5, vip=vip) for vip in VIPS} == {
                vip: [BACKUP] for vip in VIPS}
        for service, report in (("web", web), ("raw", raw)):
            assert report["recovered"], (service, report)
            longest[service].append(report["longest_outage_s"])
        assert holders_settled(healthy) == {vip: [PRIMARY] for vip in VIPS}
    print(f"\nlongest outage per kill (s): {longest}")
    for service, outages in longest.items():
        assert max(outages) <= OUTAGE_MAX_S, (service, outages)
        assert statistics.median(outages) <= OUTAGE_MEDIAN_S, (service, outages)


# ---- the app's rolling deploy ------------------------------------------------------


def test_the_apps_rolling_deploy_by_the_operators_state_loses_no_request_and_leaves_version_2(healthy):
    """`salt-run havip.deploy state=labapp pools=[app]` with app:version 2
    in the pillar, while both services are probed at 100 requests/s (web by
    its host route to the app, raw): no request fails, and every answer
    after it is version 2's."""
    view = settled(healthy)
    assert view.returncode == 0, view.stdout
    pillar = copy.deepcopy(healthy.topology.pillar)
    pillar["app"]["version"] = 2
    healthy.set_pillar(pillar)
    deployed = None
    try:
        with (healthy.probe(seconds=300, url=url(APP_HOST), until_block_ends=True) as web,
              healthy.probe(seconds=300, url=url(address("VI_2"), RAW_PORT), until_block_ends=True) as raw):
            started = time.monotonic()
            # The measurement is the test's two probes at 100 requests/s. The
            # deploy's own four (each pool's targets on both VIPs) run on the
            # same client host, whose 2 CPUs the whole lab shares: at 100/s
            # each they lost 2 of 6457 requests in one run while the test's
            # probes lost none of 4263 through the same VIPs (client-side
            # timeouts suspected, not proven): they probe at 25/s here.
            deployed = healthy.run("havip.deploy", "state=labapp", "pools=[app]", f"client={SERVICES.client}",
                                   "rate=25", _timeout=600)
            took = time.monotonic() - started
    finally:
        if deployed is None or deployed.returncode != 0:  # a failed rollout leaves its server drained
            ready_everywhere(healthy, [f"{pool}/{node}" for pool in ("app", "raw") for node in APPS])
    print(f"\nrolling deploy of the app: {took:.1f} s; web {web['failed']}/{web['total']} failed, "
          f"raw {raw['failed']}/{raw['total']} failed")
    assert deployed.returncode == 0, deployed.stdout
    for report in (web, raw):
        assert report["failed"] == 0, report
        assert report["total"] > 100 * took * 0.8, report
    for target in (url(APP_HOST), url(address("VI_1"), RAW_PORT), url(address("VI_2"), RAW_PORT)):
        bodies = answers(healthy, target, count=8)
        assert app_nodes(bodies) == APPS
        assert {APP_ANSWER.fullmatch(body)["version"] for body in bodies} == {"2"}, (target, bodies)


# ---- a server given by its address ----------------------------------------------------


def pool_status(cluster, balancer, pool):
    """{server: HAProxy's status} of a pool on a balancer (havip.status)."""
    status = cluster.salt(balancer, "havip.status").data
    return {server: entry["status"] for server, entry in status["haproxy"]["pools"][pool].items()}


def test_a_server_given_by_its_address_is_drained_and_readied_through_the_module_losing_no_request(healthy):
    """pages/nginx2 (no node of the pool: its address) drained on every
    balancer, then readied, while web's pages are probed: no request fails,
    it gets none while drained and is back in rotation after."""
    reference = "pages/nginx2"
    try:
        with healthy.probe(seconds=300, url=url(address("VI_1")), until_block_ends=True) as report:
            time.sleep(1)
            for balancer in BALANCERS:
                drained = healthy.salt(balancer, "havip.drain", reference)
                assert drained.returncode == 0, drained.stdout
                assert drained.data["pool"] == "pages", drained.data
            for balancer in BALANCERS:
                assert pool_status(healthy, balancer, "pages")["nginx2"] == "DRAIN"
            assert set(answers(healthy, url(address("VI_1")), count=6)) == {"nginx1"}
            for balancer in BALANCERS:
                readied = healthy.salt(balancer, "havip.ready", reference)
                assert readied.returncode == 0, readied.stdout
            for balancer in BALANCERS:
                up = wait_until(lambda on=balancer: pool_status(healthy, on, "pages")["nginx2"], "UP".__eq__, 10)
                assert up == "UP", (balancer, up)
            time.sleep(1)
    except BaseException:
        ready_everywhere(healthy, [reference])
        raise
    assert report["failed"] == 0, report
    assert sorted(set(answers(healthy, url(address("VI_1"))))) == PAGES


# ---- a pool with no server UP --------------------------------------------------------


DEAD_POOLS = ("app", "raw")


def names_pools_down(view):
    """The cluster's status failed and names every pool of DEAD_POOLS."""
    return view.returncode != 0 and all(re.search(rf"\bpool\W+{pool}\b", view.stdout) for pool in DEAD_POOLS)


def test_a_pool_with_every_server_down_fails_the_cluster_status_naming_it_and_the_other_service_answers(healthy):
    """The app stopped on both app nodes: the pools app and raw have no
    server UP (web's app route answers 503 at once).  web's pages keep
    answering throughout; `salt-run havip.status` fails naming both pools.
    The app started again, the cluster is healthy again."""
    with healthy.probe(seconds=300, url=url(address("VI_1")), until_block_ends=True) as pages:
        time.sleep(1)
        for node in APPS:
            healthy.systemctl(node, "stop", "labapp")
        app_route = wait_until(lambda: healthy.client_get(url(APP_HOST))[0], lambda code: code == 503, 10)
        # Each pool's checks find their servers DOWN on their own clock:
        # the status is read until it names both (or 15 s have passed).
        view = wait_until(lambda: healthy.run("havip.status"), names_pools_down, 15, 1)
        time.sleep(2)
    assert pages["failed"] == 0, pages
    assert app_route == 503
    assert view.returncode != 0, view.stdout
    for pool in DEAD_POOLS:
        assert re.search(rf"\bpool\W+{pool}\b", view.stdout), (pool, view.stdout)
    for node in APPS:
        healthy.systemctl(node, "start", "labapp")
    assert serving(healthy) == [200] * 3
    view = settled(healthy)
    assert view.returncode == 0, view.stdout


# ---- metrics ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(cluster):
    """Debian's Prometheus on the client host with havip's alerting rules,
    scraping HAProxy's exporter on both balancers every second; returns a
    function asking it."""
    return test.lab.prometheus.start(cluster.host(SERVICES.client), [f"{name}:9101" for name in BALANCERS])


def test_haproxys_exporter_covers_every_frontend_and_backend_in_prometheus(serving_cluster, prometheus):
    expected = {"frontend": {"web", "raw"}, "backend": {"pages", "app", "raw"}}

    def seen():
        return {kind: {instance.split(":")[0]: {sample["metric"]["proxy"]
                                                for sample in prometheus(f"haproxy_{kind}_current_sessions")
                                                if sample["metric"]["instance"] == instance}
                       for instance in ("svr1:9101", "svr2:9101")}
                for kind in expected}

    def complete(view):
        return all(names >= expected[kind] for kind, by_balancer in view.items() for names in by_balancer.values())

    view = wait_until(seen, complete, 60, 1)
    assert complete(view), view


def test_a_services_certificate_change_shows_no_private_key_or_password_anywhere(healthy, ca, event_listener):
    cluster = healthy
    pillar = copy.deepcopy(cluster.topology.pillar)
    pillar["havip"]["services"]["web"]["tls"]["certificates"][1] = ca.issue("app", [], serial=0x2003, hosts=[APP_HOST])
    secrets = pillar_secrets(cluster.topology.pillar) + pillar_secrets(pillar)
    started = time.time()
    cluster.set_pillar(pillar)
    planned = cluster.salt("*", "state.apply", "havip", "test=True")
    applied = cluster.apply()
    outputs = {
        "state.apply test=True": planned.stdout,
        "state.apply": applied.stdout,
        "state.show_sls": cluster.salt(PRIMARY, "state.show_sls", "havip").stdout,
        "havip.config": cluster.salt("*", "havip.config").stdout,
        "havip.status": cluster.run("havip.status").stdout,
    }
    # The apply did write the app's new certificate (the second: web-2) and its key on each balancer.
    for balancer in BALANCERS:
        written = [key for key, state in applied.data[balancer].items()
                   if "havip-haproxy-certificate-file-web-2_|-" in key and state["changes"]]
        assert written, (balancer, sorted(applied.data[balancer]))
    assert len(secrets) > 10
    assert not shown_secrets(where_salt_shows(cluster, event_listener, outputs, started), secrets)

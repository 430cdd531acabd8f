"""
Lab tier: the formula applied by a real salt-master to real salt-minions in
namespace hosts, with Debian's nginx, HAProxy and keepalived really running.
Two topologies: the seed's (2 backends, 2 balancers, tcp) and one with three
backends in http mode where one host is both backend and balancer and two
backends come from the Salt mine (the first apply is a fresh cluster's one
command); in http mode a POST is never replayed and requests are in the
journal.

The tests of one topology run in file order on one cluster: the first apply
installs everything, later tests break and restore it.
"""

import copy
import sys
import time
import uuid

import pytest

from test.lab.cluster import REPO, SEED, TRIO_HTTP, wait_until

pytestmark = pytest.mark.lab

PACKAGES = {"backend": ["nginx"], "balancer": ["haproxy", "keepalived"]}


# The seed's cluster, first apply to reboot, also on Debian 13 hosts (`make test-trixie`).
@pytest.fixture(scope="module", params=[pytest.param(SEED, marks=pytest.mark.trixie), TRIO_HTTP],
                ids=lambda t: t.name)
def cluster_topology(request):
    return request.param


@pytest.fixture(scope="module")
def cluster_deployed():
    """The first apply is a test of its own."""
    return False


def installed(host, package):
    return host.run(["dpkg-query", "-W", "-f=${Status}", package], check=False).stdout \
        == "install ok installed"


@pytest.fixture(scope="module")
def first_apply(cluster):
    """Packages absent everywhere, then `salt '*' state.apply havip`."""
    absent_before = {
        (name, package): not installed(cluster.host(name), package)
        for name, node in cluster.topology.nodes.items()
        for role in node["roles"] for package in PACKAGES[role]
    }
    return absent_before, cluster.apply()


def state_results(result):
    """{minion: [state result dicts]} of a `salt '*' state.apply`."""
    assert isinstance(result.data, dict), result.stdout + result.stderr
    return {minion: list(states.values()) if isinstance(states, dict) else states
            for minion, states in result.data.items()}


def test_first_apply_installs_every_role_and_every_state_succeeds(cluster, first_apply):
    absent_before, result = first_apply
    assert all(absent_before.values()), absent_before
    results = state_results(result)
    assert sorted(results) == sorted(cluster.topology.hosts)
    for minion, states in results.items():
        failed = [s for s in states if not isinstance(s, dict) or s["result"] is not True]
        assert not failed, (minion, failed)
    assert result.returncode == 0
    for name, package in absent_before:
        assert installed(cluster.host(name), package), (name, package)
        # really running: the daemon's own process, in that host, as its
        # distribution's systemd unit, enabled
        assert cluster.host(name).run(["pidof", package], check=False).stdout.split(), (name, package)
        unit = [cluster.systemctl(name, verb, package, check=False).stdout.strip()
                for verb in ("is-active", "is-enabled")]
        assert unit == ["active", "enabled"], (name, package, unit)
    client_states = results[cluster.topology.client]
    assert [s["changes"] for s in client_states] == [{}]


def test_second_apply_changes_nothing(cluster, first_apply):
    result = cluster.apply()
    assert result.returncode == 0
    changed = {minion: [s["__id__"] for s in states if s["changes"]]
               for minion, states in state_results(result).items()}
    assert changed == {minion: [] for minion in cluster.topology.hosts}


def test_the_highest_priority_balancer_alone_holds_the_vip(cluster, first_apply):
    preferred = cluster.topology.preferred_balancer
    assert cluster.wait_for_holders([preferred]) == [preferred]


def test_havip_status_agrees_with_ip_addr(cluster, first_apply):
    holders = cluster.vip_holders()
    for name in cluster.topology.with_role("balancer"):
        status = cluster.salt(name, "havip.status").data
        assert status["vips"]["VI_1"]["address"] == cluster.topology.vip
        assert status["vips"]["VI_1"]["held"] is (name in holders)


def test_requests_to_the_vip_round_robin_over_every_backend(cluster, first_apply):
    backends = cluster.topology.with_role("backend")
    answers = [cluster.client_get(cluster.topology.frontend_url) for _ in range(3 * len(backends))]
    assert {status for status, _ in answers} == {200}
    bodies = [body for _, body in answers]
    assert sorted(set(bodies)) == backends
    assert all(bodies.count(b) == 3 for b in backends), bodies


def test_stats_page_on_a_balancers_own_address_wants_its_password(cluster, first_apply):
    topology = cluster.topology
    havip = topology.pillar["havip"]
    # On each balancer's own address (stats:bind's default), not on the VIP.
    assert cluster.client_get(topology.stats_url(topology.vip))[0] == 0
    url = topology.stats_url(topology.hosts[topology.preferred_balancer])
    assert cluster.client_get(url)[0] == 401
    assert cluster.client_get(url, user="admin:wrong")[0] == 401
    status, body = cluster.client_get(url, user=f"admin:{havip['stats']['password']}")
    assert status == 200
    assert "Statistics Report" in body


def test_killing_haproxy_on_the_holder_moves_the_vip_and_clients_carry_on(cluster, first_apply):
    topology = cluster.topology
    holder = topology.preferred_balancer
    assert cluster.wait_for_holders([holder]) == [holder]
    (standby,) = topology.standby_balancers
    with cluster.probe(seconds=10) as report:
        time.sleep(2)
        killed_at = time.monotonic()
        cluster.kill_haproxy(holder)
        holders = cluster.wait_for_holders([standby], timeout=10)
        moved_after = time.monotonic() - killed_at
    print(f"\n{topology.name}: VIP moved {holder} -> {standby} in <= {moved_after:.2f} s; "
          f"client saw {report['failed']}/{report['total']} failed requests, "
          f"longest outage {report['longest_outage_s']:.3f} s")
    assert holders == [standby]
    assert report["total"] > 300
    # Traffic resumed: the last seconds of the probe were all served.
    assert report["last_failure_s"] is None or report["last_failure_s"] < report["duration_s"] - 3
    assert report["longest_outage_s"] < 5
    assert sorted(report["backends"]) == topology.with_role("backend")


def test_systemd_restarts_the_killed_haproxy_and_the_preferred_holder_takes_the_vip_back(cluster, first_apply):
    """Debian's haproxy.service (Restart=always) starts the HAProxy killed
    above again by itself; once keepalived's check rises the preferred
    balancer takes the VIP back, and a re-apply has nothing left to restart."""
    preferred = cluster.topology.preferred_balancer
    assert cluster.restarts(preferred) == 1
    assert cluster.wait_for_holders([preferred], timeout=30) == [preferred]
    result = cluster.apply()
    assert result.returncode == 0
    service = [s for s in state_results(result)[preferred] if s["__id__"] == "havip-haproxy-service-running"]
    assert service[0]["result"] is True and service[0]["changes"] == {}, service
    assert cluster.vip_holders() == [preferred]
    assert cluster.client_get(cluster.topology.frontend_url)[0] == 200


def test_bad_pillar_changes_no_running_config_and_traffic_keeps_flowing(cluster, first_apply):
    topology = cluster.topology
    preferred = topology.preferred_balancer
    before = cluster.config_digests()
    assert len(before) >= len(topology.nodes)
    broken = copy.deepcopy(topology.pillar)
    broken["havip"]["nodes"][preferred]["priority"] = 999
    cluster.set_pillar(broken)
    try:
        with cluster.probe(seconds=6) as report:
            result = cluster.apply()
    finally:
        cluster.set_pillar(topology.pillar)
    assert result.returncode != 0
    assert f"havip:nodes:{preferred}:priority" in result.stdout
    assert cluster.config_digests() == before
    assert report["failed"] == 0 and report["total"] > 100
    assert cluster.vip_holders() == [preferred]


def test_a_rebooted_balancer_comes_back_with_its_units_its_minion_and_the_vip(cluster, first_apply):
    """The preferred balancer powers off cleanly (keepalived gives the VIP up)
    and boots again: haproxy and keepalived start as enabled units, its
    salt-minion answers again, and it takes the VIP back."""
    preferred = cluster.topology.preferred_balancer
    (standby,) = cluster.topology.standby_balancers
    cluster.power_off(preferred)
    assert cluster.wait_for_holders([standby], timeout=5) == [standby]
    cluster.boot(preferred)
    for unit in ("haproxy", "keepalived"):
        assert cluster.systemctl(preferred, "is-active", unit).stdout.strip() == "active"
    assert cluster.wait_for_holders([preferred], timeout=15) == [preferred]
    assert cluster.salt(preferred, "havip.check").data["healthy"] is True
    assert cluster.client_get(cluster.topology.frontend_url)[0] == 200


@pytest.fixture
def http_cluster(cluster, first_apply):
    if cluster.topology.pillar["havip"]["frontend"]["mode"] != "http":
        pytest.skip("an http-mode topology's test")
    return cluster


def wait_for_server_up(cluster, server, timeout=20):
    """Until every balancer's HAProxy has ``server`` UP."""
    def states():
        return {name: servers.get(server) for name, servers in cluster.servers_seen().items()}
    seen = wait_until(states, lambda found: set(found.values()) == {"UP"}, timeout, 1)
    assert set(seen.values()) == {"UP"}, seen


def backend_logs(cluster, recorder_log):
    """Every request the backends saw, one path per line: from nginx's access
    logs ('... "GET /path HTTP/1.1" ...') and the recorder's log
    (test/lab/recorder.py: 'GET /path')."""
    lines = recorder_log.read_text().splitlines() if recorder_log.exists() else []
    for name in cluster.topology.with_role("backend"):
        log = cluster.host(name).run(["cat", "/var/log/nginx/access.log"], check=False).stdout
        lines += [line.split('"')[1] for line in log.splitlines() if line.count('"') >= 2]
    return [words[1] for words in map(str.split, lines) if len(words) > 1]


def test_a_post_whose_server_dies_mid_request_is_never_replayed_a_get_is(http_cluster, tmp_path_factory):
    """HAProxy replays a request whose server died or timed out on another
    server (retry-on), but only a safe method: a POST is delivered at most
    once.  web1's nginx is replaced by a server that dies in the middle of
    every request but its health check."""
    cluster = http_cluster
    web1 = cluster.host("web1")
    port = cluster.topology.pillar["havip"]["backend"]["port"]
    recorder_log = cluster.lab.shared_dir / "recorder.log"
    cluster.systemctl("web1", "stop", "nginx")
    # A transient unit: `systemctl stop` ends the recorder itself (ending an
    # nsenter would leave its child holding the port).
    web1.run(["systemd-run", "--unit=havip-test-recorder", "--collect", f"--working-directory={REPO}",
              sys.executable, "-m", "test.lab.recorder", str(port), str(recorder_log)])
    try:
        wait_for_server_up(cluster, "web1")  # HAProxy's checks rise on the recorder
        url = cluster.topology.frontend_url
        client = cluster.host(cluster.topology.client)
        codes = {}
        for method in ("POST", "GET"):  # round robin: about half of each to web1
            for index in range(10):
                # A GET of the page nginx serves (a query string makes it unique).
                path = f"/{'?' if method == 'GET' else ''}{method.lower()}-{index}-{uuid.uuid4().hex[:6]}"
                codes[path] = client.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
                                          "-X", method, "-d", "x" if method == "POST" else "", url + path[1:]],
                                         check=False).stdout
        seen = backend_logs(cluster, recorder_log)
        delivered = {path: seen.count(path) for path in codes}
        for path, code in codes.items():
            if path.startswith("/post-"):
                assert delivered[path] == 1, (path, code, seen)  # delivered once, replayed never
            else:
                assert code == "200" and delivered[path] in (1, 2), (path, code, seen)
        # Some went to the dying server: POSTs answered 502, GETs replayed.
        assert "502" in [codes[p] for p in codes if p.startswith("/post-")], codes
        assert 2 in [delivered[p] for p in codes if p.startswith("/?get-")], seen
    finally:
        cluster.systemctl("web1", "stop", "havip-test-recorder")
        cluster.systemctl("web1", "start", "nginx")


def test_haproxys_requests_are_in_the_journal(http_cluster):
    """No rsyslog: HAProxy logs to /dev/log, which journald reads."""
    cluster = http_cluster
    path = f"journal-{uuid.uuid4().hex[:8]}"
    assert cluster.client_get(cluster.topology.frontend_url + path)[0] == 404
    deadline = time.monotonic() + 10
    while f"GET /{path} " not in cluster.host(cluster.topology.preferred_balancer).run(
            ["journalctl", "-u", "haproxy", "-o", "cat", "--since", "-5min"]).stdout:
        assert time.monotonic() < deadline, "the request is not in `journalctl -u haproxy`"
        time.sleep(0.5)

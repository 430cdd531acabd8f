"""
Lab tier: the rolling deploy `salt-run state.orchestrate havip.deploy` on
the seed's topology, with the runner's own probe (the client host, 100
requests/s on the VIP): a pillar change reaches every node without a failed
request; a backend whose apply fails stops the rollout at that step, the
backend drained and every other node untouched, and a rerun once the cause
is gone completes it (the backend a failed run left drained first).  One cluster for the file; every test leaves it
healthy, on the seed's pillar.
"""

import copy
import time

import pytest
import yaml

from test.lab.cluster import HAPROXY_PIDFILE, LOOKUP, REPO, SEED

pytestmark = pytest.mark.lab

PRIMARY, BACKUP = SEED.preferred_balancer, SEED.standby_balancers[0]
BACKENDS = SEED.with_role("backend")
BALANCERS = SEED.with_role("balancer")
HAPROXY_CONFIG = LOOKUP["haproxy"]["config"]
WEBROOT = LOOKUP["nginx"]["webroot"]
# HAProxy's `defaults` lines of the formula's defaults (a pillar list replaces them).
DEFAULT_LINES = yaml.safe_load((REPO / "havip" / "parameters" / "defaults.yaml").read_text())[
    "havip"]["haproxy"]["defaults"]


def settled(cluster, timeout=30):
    """`salt-run havip.status` once it exits 0 (every node healthy, the VIP
    on its preferred holder), or its last answer after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while (view := cluster.run("havip.status")).returncode != 0 and time.monotonic() < deadline:
        time.sleep(1)
    return view


@pytest.fixture
def healthy(cluster):
    """Stricter than the lab's shared `healthy`: a cluster `salt-run
    havip.status` calls healthy before the test; afterwards the seed's pillar
    applied everywhere, no balancer on standby, every backend in rotation."""
    view = settled(cluster)
    assert view.returncode == 0, view.stdout
    yield cluster
    cluster.set_pillar(SEED.pillar)
    for balancer in BALANCERS:
        assert cluster.salt(balancer, "havip.resume").returncode == 0
    assert cluster.apply().returncode == 0
    for balancer in BALANCERS:
        for backend in BACKENDS:
            readied = cluster.salt(balancer, "havip.ready", backend)
            assert readied.returncode == 0, readied.stdout
    assert cluster.wait_for_holders([PRIMARY], timeout=30) == [PRIMARY]
    view = settled(cluster)
    assert view.returncode == 0, view.stdout


def deploy(cluster, **pillar):
    """`salt-run state.orchestrate havip.deploy` with the deploy pillar given."""
    return cluster.orchestrate("deploy", timeout=900, **pillar)


def changed_pillar(timeout_client, version, password=None):
    """The seed's pillar with HAProxy's `timeout client` (balancers reload)
    and every backend's page (backends rewrite their index.html) changed,
    and a new stats password if given."""
    pillar = copy.deepcopy(SEED.pillar)
    if password:
        pillar["havip"]["stats"]["password"] = password
    defaults = [f"timeout client {timeout_client}" if line.startswith("timeout client") else line
                for line in DEFAULT_LINES]
    assert defaults != DEFAULT_LINES
    pillar["havip"]["haproxy"] = {"defaults": defaults}
    for name in BACKENDS:
        pillar["havip"]["nodes"][name]["page"] = f"{name} {version}"
    return pillar


def page(cluster, name):
    return cluster.host(name).run(["cat", f"{WEBROOT}/index.html"]).stdout.strip()


def haproxy_pids(cluster):
    """HAProxy's master (the pid file's; a reload keeps it) and its workers
    (a reload starts a new one) on each balancer."""
    return {name: cluster.host(name).run(["cat", HAPROXY_PIDFILE]).stdout.split()
            + sorted(cluster.haproxy_workers(name)) for name in BALANCERS}


def labels(report):
    """The steps' names, without their durations."""
    return [step.rsplit(": ", 1)[0] for step in report["steps"]]


def requests(report):
    """(failed, total) of the probe's requests."""
    return report["failed_requests"], report["requests"]


def backend_steps(name):
    on = ", ".join(BALANCERS)
    return [f"drain {name} on {on}", f"apply {name}", f"check {name}", f"ready {name} on {on}"]


def test_a_rolling_deploy_brings_a_pillar_change_to_every_node_without_a_failed_request(healthy):
    """The stats password changes too: each balancer judges its peer by
    stats:backends_uri, which asks for none, so the old and the new one
    live side by side during the rollout."""
    pids = haproxy_pids(healthy)
    password = "rotated stats password"
    healthy.set_pillar(changed_pillar("51s", "v2", password))
    result, steps = deploy(healthy, client=SEED.client)
    report = steps["havip-deploy-run"]
    print(f"\ndeploy: {report}")
    assert result.returncode == 0, result.stdout
    assert report["result"] is True, report["comment"]
    failed, total = requests(report)
    assert failed == 0 and total > 500, report["failed_requests"]
    assert labels(report) == (
        [step for name in BACKENDS for step in backend_steps(name)]
        + [f"apply {BACKUP}", f"check {BACKUP}"]
        + [f"standby {PRIMARY}", f"apply {PRIMARY}", f"check {PRIMARY}", f"resume {PRIMARY}"])
    for name in BALANCERS:
        assert "timeout client 51s" in healthy.host(name).run(["cat", HAPROXY_CONFIG]).stdout
    after = haproxy_pids(healthy)
    assert all(after[name] != pids[name] for name in BALANCERS), (pids, after)  # HAProxy reloaded
    for name in BACKENDS:
        assert page(healthy, name) == f"{name} v2"
    answers = {healthy.client_get(SEED.frontend_url)[1] for _ in range(2 * len(BACKENDS))}
    assert answers == {f"{name} v2" for name in BACKENDS}
    assert healthy.vip_holders() == [PRIMARY]
    assert healthy.client_get(SEED.stats_url(SEED.hosts[PRIMARY]), user=f"admin:{password}")[0] == 200


def test_a_failing_apply_stops_the_deploy_there_and_a_rerun_after_the_fix_completes_it(healthy):
    broken, untouched = BACKENDS
    healthy.set_pillar(changed_pillar("52s", "v3"))
    digests, pids = healthy.config_digests(), haproxy_pids(healthy)
    pages = {name: page(healthy, name) for name in BACKENDS}
    host = healthy.host(broken)
    # The apply cannot write the new page, and no apply can fix that: the web
    # root is read-only (a bind mount in that host's mount namespace only).
    # nginx keeps serving the old page, so the pre-check passes.
    host.run(["mount", "--bind", WEBROOT, WEBROOT])
    try:
        host.run(["mount", "-o", "remount,bind,ro", WEBROOT])
        result, steps = deploy(healthy, client=SEED.client)
        servers = {name: healthy.salt(name, "havip.status").data["haproxy"]["backends"] for name in BALANCERS}
    finally:
        host.run(["umount", WEBROOT])
    report = steps["havip-deploy-run"]
    print(f"\ndeploy with {broken}'s web root read-only: {report}")
    assert report is not None, f"the deploy step did not run: {steps}"
    assert result.returncode != 0
    assert report["result"] is False
    comment = report["comment"]
    assert f"step 'apply {broken}' failed: {broken}: havip-nginx-page-file failed" in comment
    assert f"{broken} stays drained on {', '.join(BALANCERS)}" in comment
    assert f"untouched: {untouched}, {BACKUP}, {PRIMARY}" in comment
    assert labels(report) == backend_steps(broken)[:2]
    failed, total = requests(report)
    assert failed == 0 and total > 100, report["failed_requests"]
    # Nothing after the failed step was touched: no balancer config, no page, no HAProxy reload.
    assert healthy.config_digests() == digests
    assert {n: page(healthy, n) for n in BACKENDS} == pages
    assert haproxy_pids(healthy) == pids
    for name in BALANCERS:
        assert servers[name] == {broken: "DRAIN", untouched: "UP"}, servers
    assert healthy.vip_holders() == [PRIMARY]

    # The cause gone, the same deploy runs again (the backend still drained
    # passes the pre-check: the other one serves) and completes.
    result, steps = deploy(healthy, client=SEED.client)
    report = steps["havip-deploy-run"]
    assert result.returncode == 0, result.stdout
    assert requests(report)[0] == 0, report["failed_requests"]
    assert {n: page(healthy, n) for n in BACKENDS} == {n: f"{n} v3" for n in BACKENDS}
    for name in BALANCERS:
        assert healthy.salt(name, "havip.status").data["haproxy"]["backends"] == {broken: "UP", untouched: "UP"}


def test_a_rerun_of_a_deploy_that_failed_at_its_second_backend_completes_that_backend_first(healthy):
    """Chaos seed 4445, round 1: a deploy stopped at its second backend's
    apply leaves that backend drained; run again once the cause was gone,
    it began with the first backend, and havip.drain refused to drain it
    (no other backend UP).  Now the rerun completes the drained one first
    (drained again, applied, checked, readied), then the others."""
    done, broken = BACKENDS
    healthy.set_pillar(changed_pillar("53s", "v4"))
    host = healthy.host(broken)
    host.run(["mount", "--bind", WEBROOT, WEBROOT])
    try:
        host.run(["mount", "-o", "remount,bind,ro", WEBROOT])
        result, steps = deploy(healthy, client=SEED.client)
    finally:
        host.run(["umount", WEBROOT])
    report = steps["havip-deploy-run"]
    assert report is not None, f"the deploy step did not run: {steps}"
    assert result.returncode != 0 and report["result"] is False
    assert f"{broken} stays drained on {', '.join(BALANCERS)}" in report["comment"]
    assert labels(report) == backend_steps(done) + backend_steps(broken)[:2]

    result, steps = deploy(healthy, client=SEED.client)
    report = steps["havip-deploy-run"]
    print(f"\nthe rerun: {report}")
    assert result.returncode == 0, result.stdout
    assert report["completed_first"] == [broken]
    assert labels(report)[:8] == backend_steps(broken) + backend_steps(done)
    assert requests(report)[0] == 0, report["failed_requests"]
    assert {n: page(healthy, n) for n in BACKENDS} == {n: f"{n} v4" for n in BACKENDS}
    for name in BALANCERS:
        assert healthy.salt(name, "havip.status").data["haproxy"]["backends"] == {done: "UP", broken: "UP"}

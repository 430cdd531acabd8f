"""
`make bench`: failover figures in the lab, with the formula's default pillar
and, in the same run, the seed tutorial's configuration as the baseline; then
how apply, status, the failover test and the failover itself scale with the
number of backends; the outage of each service of a two-service
cluster (test/lab's SERVICES topology) in the failover test; and the
unplanned failover and its return on each Debian release the lab has hosts
of (test/lab/lab.py's RELEASE_ROOTS: 12 "bookworm", 13 "trixie"), the
seed's cluster built on each in turn.

The lab's hosts boot systemd and run Debian's units: a killed HAProxy is
started again by systemd (Restart=always, 100 ms) and the VIP returns to the
preferred balancer by itself.  Every fault is made by hand on the lab hosts
(signals, `systemctl`, `ip link`, power, a pillar change applied by the real
salt-master) while the client host probes the frontend on the VIP at 100
requests/s on a fixed schedule, each request with a 0.2 s timeout.

- Outage: from the first failed request of a run to the next answered one
  (10 ms resolution); the longest of a trial's failover.
- VIP move: the backup's MASTER transition (keepalived's notify script)
  minus the moment of the fault.  VIP back: the preferred balancer's MASTER
  transition minus the kill (or the restore: `state.apply`, link up, boot).
- A trial's requests are split at the restore, or halfway between the move
  and the return: failed requests of the failover, and of the return.
- VIP moves: MASTER transitions of either balancer during the probe (their
  keepalived journals).

Knobs (environment variables):

    HAVIP_BENCH_TRIALS=7     trials per scenario (3 at most for the slow ones:
                             hung HAProxy, link down, reboot, the scale kills)
    HAVIP_BENCH_SOAK=300     seconds of idle soak
    HAVIP_BENCH_STRESS=120   seconds of saturated CPUs
    HAVIP_BENCH_MOVES=40     planned VIP moves per way of moving (havip defaults)
    HAVIP_BENCH_DEPLOYS=8    rolling deploys
    HAVIP_BENCH_SCALE=2,8,16 backends of the scale scenario's clusters
    HAVIP_BENCH_ONLY=        "seed", "scale", "services" or "release": that
                             part alone (default all four)

Writes bench-results/results.{md,json} (after every part), timeline.png
(the seed part) and timeline-releases.png (the release part).
"""

import contextlib
import copy
import dataclasses
import datetime
import json
import os
import platform
import statistics
import time

import havip_probe
import pytest

from test.lab.cluster import REPO, SEED, SERVICES, running_cluster, with_backends
from test.lab.lab import RELEASE_ROOTS

pytestmark = pytest.mark.bench

KNOBS = {name: os.environ.get(name, default) for name, default in (
    ("HAVIP_BENCH_TRIALS", "7"), ("HAVIP_BENCH_SOAK", "300"), ("HAVIP_BENCH_STRESS", "120"),
    ("HAVIP_BENCH_MOVES", "40"), ("HAVIP_BENCH_DEPLOYS", "8"), ("HAVIP_BENCH_SCALE", "2,8,16"),
    ("HAVIP_BENCH_ONLY", ""))}
TRIALS = int(KNOBS["HAVIP_BENCH_TRIALS"])
FEW = min(TRIALS, 3)  # trials of the slow scenarios
SOAK = float(KNOBS["HAVIP_BENCH_SOAK"])
STRESS = float(KNOBS["HAVIP_BENCH_STRESS"])
MOVES = int(KNOBS["HAVIP_BENCH_MOVES"])
DEPLOYS = int(KNOBS["HAVIP_BENCH_DEPLOYS"])
SCALE = [int(count) for count in KNOBS["HAVIP_BENCH_SCALE"].split(",") if count.strip()]
ONLY = KNOBS["HAVIP_BENCH_ONLY"]
if ONLY not in ("", "seed", "scale", "services", "release"):
    raise ValueError(f'HAVIP_BENCH_ONLY must be "seed", "scale", "services" or "release", got {ONLY!r}')
OUT = REPO / "bench-results"
PRIMARY, BACKUP = SEED.preferred_balancer, SEED.standby_balancers[0]
BACKENDS = SEED.with_role("backend")

# The seed tutorial: VRRPv2, adverts every 1 s, a `pidof haproxy` check every
# 1 s with fall 1 / rise 2 and nothing else tracked; HAProxy with CentOS 7's
# defaults and `check`'s defaults (inter 2s fall 3 rise 2); changes applied
# by restarting the daemon.
SEED_BASELINE = {
    "keepalived": {"vrrp_version": 2, "advert_int": 1, "track_backends": False,
                   "check": {"watch": False, "answer_timeout": 0}},
    "backend": {"check": {"inter": "2s", "fall": 3, "rise": 2}},
    "haproxy": {"defaults": ["log global", "option dontlognull", "option redispatch", "retries 3",
                             "timeout connect 10s", "timeout client 1m", "timeout server 1m",
                             "timeout check 10s"]},
}
CONFIGS = {"havip defaults": {}, "seed baseline": SEED_BASELINE}


# ---- the cluster between trials ----------------------------------------------------

def pillar_of(overrides):
    pillar = copy.deepcopy(SEED.pillar)
    pillar["havip"].update(copy.deepcopy(overrides))
    return pillar


def deploy(cluster, overrides):
    cluster.set_pillar(pillar_of(overrides))
    assert cluster.apply().returncode == 0
    back_to_primary(cluster)


def back_to_primary(cluster):
    assert cluster.wait_for_holders([PRIMARY], timeout=30) == [PRIMARY]
    time.sleep(1.5)


def timed_call(call, *args):
    """``call(*args)``; the time it was made."""
    made = time.time()
    call(*args)
    return made


def wait_for_master(cluster, name, after, timeout):
    """The time of ``name``'s MASTER transition later than ``after``, or None
    if there is none within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        state, since = cluster.vrrp_state(name)
        if state == "MASTER" and since and since > after:
            return since
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def vip_moves(cluster, since, until):
    """MASTER transitions of either balancer from ``since`` to ``until``."""
    return sum(state == "MASTER" for name in (PRIMARY, BACKUP)
               for _, _, state in cluster.vrrp_transitions(name, since, until))


@contextlib.contextmanager
def probed(cluster, seconds, timeline=False):
    """cluster.probe, and "moves": the VIP's moves while it ran."""
    with cluster.probe(seconds=seconds, timeline=timeline) as report:
        yield report
    report["moves"] = vip_moves(cluster, report["started_s"], report["started_s"] + report["duration_s"])


def part(report, start, end):
    """What the client saw of the requests it sent from ``start`` to ``end``
    (epoch seconds): the probe's own summary of those."""
    begin, stop = start - report["started_s"], end - report["started_s"]
    requests = [[sent, "" if answered else None] for sent, answered in report["timeline"] if begin <= sent < stop]
    return havip_probe.summarize(report["url"], report["started_s"], min(stop, report["duration_s"]), requests)


# ---- the scenarios: one trial each ------------------------------------------------

def trial(cluster, seconds, fault, restore=None, move_within=5.0):
    """One probe of ``seconds``: at 1 s ``fault()`` (it returns its time),
    the backup's MASTER transition awaited ``move_within`` s, then
    ``restore(fault time)`` if given (it returns its time), and the VIP's
    return to the preferred balancer while the probe runs."""
    with probed(cluster, seconds, timeline=True) as report:
        probe_ends = time.time() + seconds
        time.sleep(1)
        at = {"fault": fault()}
        at["move"] = wait_for_master(cluster, BACKUP, at["fault"], move_within)
        at["restore"] = restore(at["fault"]) if restore else None
        returning = at["move"] or at["restore"]
        at["back"] = returning and wait_for_master(cluster, PRIMARY, at["fault"], probe_ends - time.time() - 0.5)
    split = at["restore"] or (at["move"] and at["back"] and (at["move"] + at["back"]) / 2)
    end = report["started_s"] + report["duration_s"]
    back_to_primary(cluster)
    return {"at": at, "moves": report["moves"], "report": report,
            "fault": part(report, report["started_s"], split or end),
            "return": split and part(report, split, end)}


def kill_haproxy(cluster, process):
    """kill -9 of HAProxy's master or worker on the holder; systemd starts
    it again and the VIP comes back."""
    return trial(cluster, 12, lambda: cluster.kill_haproxy(PRIMARY, process))


def killed(process):
    """The table's name of kill_haproxy's scenario."""
    return f"kill -9 of HAProxy's {process} on the holder, systemd restarts it"


def stop_service(cluster, service):
    """`systemctl stop` on the holder, then `state.apply` there starts it again."""
    def reapply(_):
        time.sleep(0.5)
        started = time.time()
        applied = cluster.apply(PRIMARY)
        assert applied.returncode == 0, applied.stdout
        return started
    return trial(cluster, 18, lambda: timed_call(cluster.systemctl, PRIMARY, "stop", service), reapply)


def lose_link(cluster):
    """The holder's link down long enough for its HAProxy to mark every
    backend DOWN (3.5 s), then up again."""
    primary = cluster.host(PRIMARY)

    def link_up(down):
        time.sleep(max(0.0, down + 3.5 - time.time()))
        return timed_call(primary.run, ["ip", "link", "set", "eth0", "up"])
    return trial(cluster, 12, lambda: timed_call(primary.run, ["ip", "link", "set", "eth0", "down"]), link_up)


def lossy_link(cluster):
    """30 % of what the holder sends and receives dropped for 5 s (nft
    numgen: this kernel has no netem), then none."""
    def sound(lossy):
        time.sleep(max(0.0, lossy + 5 - time.time()))
        return timed_call(cluster.make_sound, PRIMARY)
    return trial(cluster, 14, lambda: timed_call(cluster.make_lossy, PRIMARY), sound)


def reboot(cluster):
    """The holder powered off (its units stop), and 1 s later booted again."""
    def boot(_):
        time.sleep(1)
        return timed_call(cluster.boot, PRIMARY)
    return trial(cluster, 35, lambda: timed_call(cluster.power_off, PRIMARY), boot)


def kill_backend(cluster):
    report = trial(cluster, 6, lambda: timed_call(cluster.kill_nginx, BACKENDS[0]), move_within=3)
    cluster.start_nginx(BACKENDS[0])
    time.sleep(5)  # HAProxy's checks see it UP again
    return report


def hang_haproxy(cluster):
    """SIGSTOP of HAProxy's workers on the holder (the master only
    supervises them): the VIP's move awaited 10 s, then SIGCONT."""
    workers = cluster.haproxy_workers(PRIMARY)
    stopped = cluster.signal_pids(PRIMARY, "STOP", workers)
    try:
        moved = wait_for_master(cluster, BACKUP, stopped, 10)
    finally:
        cluster.signal_pids(PRIMARY, "CONT", workers)
    back_to_primary(cluster)
    return {"at": {"fault": stopped, "move": moved}}


def drop_second_backend(havip):
    havip["nodes"].pop(BACKENDS[1])


def slower_garp(havip):
    havip.setdefault("keepalived", {})["garp_master_refresh"] = 20


def applied_change(cluster, overrides, edit, service):
    """A pillar change (``edit`` of the havip pillar) applied to both
    balancers by state.apply, then undone the same way, under one probe;
    the seed baseline restarts ``service`` after each apply."""
    changed = pillar_of(overrides)
    edit(changed["havip"])
    with probed(cluster, 40) as report:
        for pillar in (changed, pillar_of(overrides)):
            cluster.set_pillar(pillar)
            for balancer in (PRIMARY, BACKUP):
                assert cluster.apply(balancer).returncode == 0
                if overrides is SEED_BASELINE:
                    cluster.systemctl(balancer, "restart", service)
            time.sleep(2)
    back_to_primary(cluster)
    return {"fault": report, "moves": report["moves"]}


def switch_over(cluster, how):
    """A planned move away from the holder and back, under one probe:
    ``how`` "handover" (salt-run havip.standby/resume), "minion" (salt svr1
    havip.standby/resume) or "seed" (stop keepalived on the holder, start
    it again)."""
    with probed(cluster, 9 if how == "handover" else 6) as report:
        time.sleep(1)
        for away in (True, False):
            if how == "seed":
                cluster.systemctl(PRIMARY, "stop" if away else "start", "keepalived")
                cluster.wait_for_holders([BACKUP] if away else [PRIMARY], timeout=6)
                if away:
                    cluster.keepalived_gone(PRIMARY)
            else:
                fun = "havip.standby" if away else "havip.resume"
                moved = cluster.run(fun, PRIMARY) if how == "handover" else cluster.salt(PRIMARY, fun)
                assert moved.returncode == 0, moved.stdout
    back_to_primary(cluster)
    return {"fault": report, "moves": report["moves"]}


def rolling_deploys(cluster, count):
    """`salt-run state.orchestrate havip.deploy` ``count`` times, each
    rolling out a new page on every backend; the deploy's own probe (the
    client, 100 requests/s) counts the failed requests."""
    trials = []
    for version in range(count):
        pillar = pillar_of({})
        for name in BACKENDS:
            pillar["havip"]["nodes"][name]["page"] = f"{name} bench-{version}"
        cluster.set_pillar(pillar)
        _, steps = cluster.orchestrate("deploy", timeout=900, client=SEED.client)
        failed, total = (steps["havip-deploy-run"][key] for key in ("failed_requests", "requests"))
        trials.append({"fault": {"failed": failed, "total": total, "longest_outage_s": None}})
    deploy(cluster, {})
    return trials


# ---- stability ----------------------------------------------------------------------

def vrrp_changes(cluster, since):
    return {name: len(cluster.vrrp_transitions(name, since)) for name in (PRIMARY, BACKUP)}


def quiet(cluster, seconds, load=0):
    """keepalived state changes on either balancer while ``seconds`` pass
    (with ``load`` processes busy-looping on the client host)."""
    since = time.time()
    burners = [cluster.host(SEED.client).popen(["timeout", str(seconds), "sh", "-c", "while :; do :; done"])
               for _ in range(load)]
    time.sleep(seconds)
    for burner in burners:
        burner.wait(timeout=30)
    return {"VRRP state changes": vrrp_changes(cluster, since)}


def flap_haproxy(cluster, seconds=20):
    """HAProxy's master killed on the holder every 0.5 s: systemd starts it
    again each time, until its start limit (5 starts in 10 s) leaves the
    unit failed.  The VIP's moves are counted; then the unit is reset and
    the cluster re-applied."""
    since, restarts = time.time(), cluster.restarts(PRIMARY)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cluster.systemctl(PRIMARY, "is-active", "haproxy", check=False).stdout.strip() == "active":
            cluster.kill_haproxy(PRIMARY)
        time.sleep(0.5)
    result = {"MASTER transitions": {name: sum(state == "MASTER" for _, _, state in
                                               cluster.vrrp_transitions(name, since))
                                     for name in (PRIMARY, BACKUP)},
              "systemd restarts": cluster.restarts(PRIMARY) - restarts,
              "haproxy.service at the end": cluster.systemctl(PRIMARY, "is-active", "haproxy",
                                                              check=False).stdout.strip()}
    cluster.systemctl(PRIMARY, "reset-failed", "haproxy")
    deploy(cluster, {})
    return result


# ---- the seed's cluster -----------------------------------------------------------

def scenarios(cluster, config, overrides):
    """Every scenario with one config: the table's rows, and the first
    master kill (for the timeline)."""
    rows = []
    apply_how = "restart" if overrides is SEED_BASELINE else "reload"
    kills = {process: [kill_haproxy(cluster, process) for _ in range(TRIALS)] for process in ("master", "worker")}
    for process, trials in kills.items():
        rows.append(row(killed(process), config, trials))
    for service in ("haproxy", "keepalived"):
        rows.append(row(f"`systemctl stop {service}` on the holder, then `state.apply` there", config,
                        [stop_service(cluster, service) for _ in range(TRIALS)]))
    rows.append(row("HAProxy's workers hung (SIGSTOP): VIP move within 10 s", config,
                    [hang_haproxy(cluster) for _ in range(FEW)]))
    rows.append(row("nginx backend killed", config, [kill_backend(cluster) for _ in range(TRIALS)]))
    rows.append(row("holder's link down 3.5 s, then up", config, [lose_link(cluster) for _ in range(FEW)]))
    rows.append(row("30 % of the holder's packets lost for 5 s", config,
                    [lossy_link(cluster) for _ in range(TRIALS)]))
    rows.append(row(f"pool change applied (out and back), {apply_how}", config,
                    [applied_change(cluster, overrides, drop_second_backend, "haproxy")]))
    rows.append(row(f"keepalived change applied (out and back), {apply_how}", config,
                    [applied_change(cluster, overrides, slower_garp, "keepalived")]))
    rows.append(row("holder rebooted (power off, boot 1 s later)", config, [reboot(cluster) for _ in range(FEW)]))
    if overrides is SEED_BASELINE:
        rows.append(row("planned switchover away and back, stop/start keepalived", config,
                        [switch_over(cluster, "seed") for _ in range(FEW)]))
    else:
        for how, what in (("handover", "`salt-run havip.standby/resume`"),
                          ("minion", "`salt svr1 havip.standby/resume`")):
            rows.append(row(f"planned switchover away and back, {what}", config,
                            [switch_over(cluster, how) for _ in range(MOVES // 2)]))
        rows.append(row("rolling deploy, `salt-run state.orchestrate havip.deploy`", config,
                        rolling_deploys(cluster, DEPLOYS)))
    return rows, kills["master"][0]


def measure_seed(salt_factories, tmp_path_factory, results):
    timelines = {}
    with running_cluster(salt_factories, SEED, tmp_path_factory.mktemp("pillar")) as cluster:
        assert cluster.apply().returncode == 0
        for config, overrides in CONFIGS.items():
            deploy(cluster, overrides)
            rows, timelines[config] = scenarios(cluster, config, overrides)
            results["rows"] += rows
            save(results)
            print(f"\n{config}: done", flush=True)
        deploy(cluster, {})
        stability = results["stability"]
        stability[f"idle soak {SOAK:.0f} s"] = quiet(cluster, SOAK)
        stability[f"2 CPUs saturated {STRESS:.0f} s (4 busy loops)"] = quiet(cluster, STRESS, load=4)
        stability["HAProxy's master killed every 0.5 s for 20 s"] = flap_haproxy(cluster)
        save(results)
    plot(timelines, OUT / "timeline.png")


# ---- scale --------------------------------------------------------------------------

def timed(call, *args):
    """Seconds ``call(*args)`` took; it must succeed (exit status 0)."""
    started = time.monotonic()
    result = call(*args)
    took = time.monotonic() - started
    assert result.returncode == 0, (call, args, result.stdout)
    return took


def ping_and_status(cluster):
    """`salt '*' test.ping` and `salt-run havip.status` on the same
    minions, FEW times each and in turn (a passing load on the machine
    lands on both): the median seconds of each."""
    pings, statuses = [], []
    for _ in range(FEW):
        pings.append(timed(cluster.salt, "*", "test.ping"))
        statuses.append(timed(cluster.run, "havip.status"))
    return statistics.median(pings), statistics.median(statuses)


def failover_test(cluster, client):
    """`salt-run state.orchestrate havip.failover_test`, probing from
    ``client``: (seconds it took, the outage it measured per service)."""
    started = time.monotonic()
    result, steps = cluster.orchestrate("failover_test", client=client)
    took = time.monotonic() - started
    assert result.returncode == 0, result.stdout
    return took, service_outages(steps["havip-failover-test-run"])


def service_outages(report):
    """{service: its longest outage, failed and total requests} of a
    failover test's report (``services``: every target of a service, each
    probed by the test's client)."""
    return {name: {"longest_outage_s": service.get("client_visible_outage_s"),
                   "failed": service.get("failed_requests"), "total": service.get("requests")}
            for name, service in report.get("services", {}).items()}


def scale_point(salt_factories, tmp_path_factory, backends):
    """Two balancers and ``backends`` backends, each a host: the applies,
    `salt '*' test.ping` and the cluster view (the runner's havip.status)
    on the same minions, the failover test and the unplanned failover."""
    topology = with_backends(SEED, backends)
    with running_cluster(salt_factories, topology, tmp_path_factory.mktemp("pillar")) as cluster:
        point = {"backends": backends, "first apply": timed(cluster.apply)}
        back_to_primary(cluster)
        point["second apply"] = timed(cluster.apply)
        point["one balancer's apply"] = timed(cluster.apply, PRIMARY)
        point["test.ping"], point["havip.status"] = ping_and_status(cluster)
        point["failover test"], point["failover test outage"] = failover_test(cluster, topology.client)
        back_to_primary(cluster)
        kills = [kill_haproxy(cluster, "master") for _ in range(FEW)]
        point["outage"] = stats([kill["fault"]["longest_outage_s"] for kill in kills])["median"]
    print(f"\nscale, {backends} backends: {point}", flush=True)
    return point


# ---- several services -----------------------------------------------------------------

def measure_services(salt_factories, tmp_path_factory):
    """SERVICES (two services on two VIPs, the lab's app on two app nodes,
    installed by the tests' own state): the failover test (kill -9 of
    HAProxy's master on the holder, its client probing every service's
    pools on each VIP at once), FEW times: each service's longest outage,
    failed and total requests per trial."""
    trials = []
    with running_cluster(salt_factories, SERVICES, tmp_path_factory.mktemp("pillar"),
                         file_roots=[REPO / "test" / "lab" / "states"]) as cluster:
        assert cluster.salt("app*", "state.apply", "labapp").returncode == 0
        assert cluster.apply().returncode == 0
        for _ in range(FEW):
            back_to_primary(cluster)
            trials.append(failover_test(cluster, SERVICES.client)[1])
    print(f"\nservices: {trials}", flush=True)
    return trials


def services_lines(trials):
    """Each service's outage over the failover tests of the two-service cluster."""
    lines = ["", f"Two services (SERVICES: `web` http with a host route, `raw` tcp, on two VIPs), the failover test "
                 f"{len(trials)} times (kill -9 of HAProxy's master on the holder; its client probes every pool of "
                 "each service on each VIP at once): the longest outage per service.", "",
             "| service | median | max | failed/total |", "|---|---|---|---|"]
    for name in sorted({name for trial in trials for name in trial}):
        figures = [trial[name] for trial in trials if name in trial]
        outage = stats([figure["longest_outage_s"] for figure in figures])
        failed = sum(figure["failed"] or 0 for figure in figures)
        total = sum(figure["total"] or 0 for figure in figures)
        lines.append(f"| {name} | {seconds(outage['median'])} | {seconds(outage['max'])} | {failed}/{total} |")
    return lines


# ---- Debian releases -----------------------------------------------------------------

# What the release part names beside each release: the Debian packages of
# the daemons the failover goes through.
RELEASE_PACKAGES = ("haproxy", "keepalived", "systemd")


def host_platform(cluster, name):
    """A host's OS (/etc/os-release's PRETTY_NAME) and the versions of
    RELEASE_PACKAGES installed there."""
    host = cluster.host(name)
    os_name = host.run(["sh", "-c", '. /etc/os-release && printf %s "$PRETTY_NAME"']).stdout
    versions = host.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *RELEASE_PACKAGES]).stdout
    return os_name, ", ".join(versions.splitlines())


def measure_release(salt_factories, tmp_path_factory, release):
    """The seed's cluster (havip defaults) on hosts of ``release``, built
    as every other cluster is, and kill -9 of HAProxy's master on the
    holder TRIALS times: (the holder's OS, its RELEASE_PACKAGES' versions,
    the trials)."""
    topology = dataclasses.replace(SEED, name=f"{SEED.name}-{release}", releases=dict.fromkeys(SEED.hosts, release))
    with running_cluster(salt_factories, topology, tmp_path_factory.mktemp("pillar")) as cluster:
        applied = cluster.apply()
        assert applied.returncode == 0, applied.stdout
        back_to_primary(cluster)
        os_name, versions = host_platform(cluster, PRIMARY)
        kills = [kill_haproxy(cluster, "master") for _ in range(TRIALS)]
    print(f"\nrelease {release} ({os_name}): done", flush=True)
    return os_name, versions, kills


def measure_releases(salt_factories, tmp_path_factory, results):
    """measure_release on every release the lab has hosts of, one after
    the other: a row each, the packages' versions, and the first kill of
    each on one timeline."""
    timelines = {}
    for release in RELEASE_ROOTS:
        os_name, versions, kills = measure_release(salt_factories, tmp_path_factory, release)
        results["releases"].append(row(killed("master"), os_name, kills))
        results["release packages"][os_name] = versions
        timelines[os_name] = kills[0]
        save(results)
    plot(timelines, OUT / "timeline-releases.png")


def releases_lines(results):
    """The release part: its rows, then each release's packages, medians and ranges."""
    lines = ["", "Debian releases: the seed's cluster (havip defaults) built on hosts of each release in turn, in the "
                 f"same run on the same machine; kill -9 of HAProxy's master on the holder, {TRIALS} trials each "
                 "(systemd restarts it, the VIP returns by itself).", ""]
    lines += seed_table(results["releases"], "release")
    lines += [""] + [f"- {r['config']} ({results['release packages'][r['config']]}): outage {spread(r['outage'])}, "
                     f"VIP back {spread(r['back'])} after the kill, failed on return {ratio(r['return'])}"
                     for r in results["releases"]]
    return lines


# ---- results ------------------------------------------------------------------------

def stats(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return {"min": None, "median": None, "p95": None, "max": None}
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {"min": values[0], "median": statistics.median(values), "p95": p95, "max": values[-1]}


def row(scenario, config, trials):
    """A table row from a scenario's trials: ``fault`` (the probe's summary
    of the failover, or of the whole run), ``return`` (of the return),
    ``at`` (times of the fault, move, restore, back), ``moves``."""
    def summed(part_name):
        parts = [t[part_name] for t in trials if t.get(part_name)]
        return {"failed": sum(p["failed"] for p in parts), "total": sum(p["total"] for p in parts)} if parts else None

    ats = [t["at"] for t in trials if "at" in t]
    moves = [at["move"] and at["move"] - at["fault"] for at in ats]
    backs = [at.get("back") and at["back"] - (at.get("restore") or at["fault"]) for at in ats]
    return {"scenario": scenario, "config": config, "trials": len(trials),
            "outage": stats([t["fault"]["longest_outage_s"] for t in trials if "fault" in t]),
            "fault": summed("fault"), "return": summed("return"),
            "move": stats(moves), "moved": sum(m is not None for m in moves), "timed moves": len(moves),
            "back": stats(backs), "VIP moves": sum(t["moves"] for t in trials) if "moves" in trials[0] else None,
            "failed per trial": [t["fault"]["failed"] for t in trials if "fault" in t]}


def seconds(value):
    return "-" if value is None else f"{value:.3f} s"


def spread(figures):
    """The median and the range of stats()."""
    return f"median {seconds(figures['median'])} (range {seconds(figures['min'])} to {seconds(figures['max'])})"


def moved(r):
    """The VIP move column: "-" (not timed), "none", or the figure and, if
    not every trial moved, how many did."""
    if not r["timed moves"]:
        return "-"
    if not r["moved"]:
        return "none"
    timed = "" if r["moved"] == r["timed moves"] else f" ({r['moved']}/{r['timed moves']})"
    return seconds(r["move"]["median"]) + timed


def ratio(counts):
    return "-" if counts is None else f"{counts['failed']}/{counts['total']}"


def seed_table(rows, config="config"):
    lines = [f"| scenario | {config} | trials | outage median | p95 | max | failed/total | VIP move median | max "
             "| VIP back median | max | failed/total on return | VIP moves |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        outage = [seconds(r["outage"][key]) for key in ("median", "p95", "max")]
        lines.append(f"| {r['scenario']} | {r['config']} | {r['trials']} | {' | '.join(outage)} | {ratio(r['fault'])} "
                     f"| {moved(r)} | {seconds(r['move']['max'])} | {seconds(r['back']['median'])} "
                     f"| {seconds(r['back']['max'])} | {ratio(r['return'])} "
                     f"| {'-' if r['VIP moves'] is None else r['VIP moves']} |")
    return lines


SCALE_COLUMNS = ("first apply", "second apply", "one balancer's apply", "test.ping", "havip.status", "failover test",
                 "outage")
# The runner's havip.status asks every minion once: it takes at most this
# many times `salt '*' test.ping` on the same minions, at every size.
STATUS_PINGS = 2


def status_too_slow(points):
    """The scale points whose havip.status took over STATUS_PINGS test.pings."""
    return [f"{p['backends']} backends: havip.status {p['havip.status']:.1f} s, test.ping {p['test.ping']:.1f} s"
            for p in points if p["havip.status"] > STATUS_PINGS * p["test.ping"]]


def scale_table(points):
    lines = ["| backends | " + " | ".join(SCALE_COLUMNS) + " |", "|---" * (len(SCALE_COLUMNS) + 1) + "|"]
    lines += [f"| {p['backends']} | " + " | ".join(seconds(p[c]) for c in SCALE_COLUMNS) + " |" for p in points]
    if len(points) > 1:
        first, last = points[0], points[-1]
        lines += ["", f"From {first['backends']} to {last['backends']} backends "
                      f"(x{last['backends'] / first['backends']:g}): "
                      + ", ".join(f"{c} x{last[c] / first[c]:.2f}" if first[c] else f"{c} -" for c in SCALE_COLUMNS)
                      + "."]
    return lines


def markdown(results):
    machine = results["machine"]
    knobs = " ".join(f"{name}={value}" for name, value in results["knobs"].items())
    lines = [f"Measured {machine['date']} on {machine['machine']} by `make bench` with {knobs} "
             f"(wall time {results['wall time'] / 60:.0f} min {results['wall time'] % 60:.0f} s); "
             "client probing at 100 requests/s, 0.2 s timeout.", ""]
    if results["rows"]:
        lines += seed_table(results["rows"])
        lines += ["", "VIP back: from the kill, or from the restore (`state.apply`, link up, boot). "
                      "VIP moves: MASTER transitions of either balancer during the probes."]
    if results["stability"]:
        lines += ["", "| stability (havip defaults) | result |", "|---|---|"]
        lines += [f"| {name} | {json.dumps(result)} |" for name, result in results["stability"].items()]
    if results["scale"]:
        lines += ["", "Scale: two balancers and N backends, each a host (havip defaults); seconds of each "
                      "salt call (test.ping: `salt '*' test.ping` on the same minions as `salt-run havip.status`, "
                      f"which must take at most {STATUS_PINGS}x as long; both the median of {FEW} calls taken in "
                      "turn); outage: median of the unplanned "
                      f"failovers (kill -9 of HAProxy's master on the holder, {FEW} trials).", ""]
        lines += scale_table(results["scale"])
        lines += ["", "The failover test's own outage per service (its client probing each service's pools on each"
                      " VIP at once):", ""]
        lines += [f"- {p['backends']} backends: " + ", ".join(
            f"{name} {seconds(figures['longest_outage_s'])} ({ratio(figures)})"
            for name, figures in p["failover test outage"].items()) for p in results["scale"]]
    if results["services"]:
        lines += services_lines(results["services"])
    if results["releases"]:
        lines += releases_lines(results)
    return "\n".join(lines) + "\n"


def save(results):
    results["wall time"] = time.monotonic() - results["began"]
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({k: v for k, v in results.items() if k != "began"},
                                                 indent=1, default=str))
    (OUT / "results.md").write_text(markdown(results))


def plot(timelines, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(timelines), 1, figsize=(10, 2.6 * len(timelines)), sharex=True, squeeze=False)
    for ax, (config, kill) in zip(axes[:, 0], timelines.items(), strict=True):
        report = kill["report"]
        ok = [t for t, answered in report["timeline"] if answered]
        failed = [t for t, answered in report["timeline"] if not answered]
        ax.vlines(ok, 0, 1, color="tab:green", linewidth=0.6, label=f"answered ({len(ok)})")
        ax.vlines(failed, 0, 1, color="tab:red", linewidth=1.2, label=f"failed ({len(failed)})")
        marks = (("fault", "black", "HAProxy's master killed on svr1"), ("move", "tab:blue", "svr2 MASTER (VIP moved)"),
                 ("back", "tab:purple", "svr1 MASTER again (VIP back)"))
        for key, color, label in marks:
            if kill["at"][key]:
                ax.axvline(kill["at"][key] - report["started_s"], color=color, linestyle="--", label=label)
        ax.set_title(f"{config}: outage {kill['fault']['longest_outage_s']:.3f} s")
        ax.set_yticks([])
        ax.legend(loc="lower right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds since the probe started (one request every 10 ms)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def test_bench(salt_factories, tmp_path_factory):
    results = {"began": time.monotonic(), "knobs": KNOBS, "rows": [], "stability": {}, "scale": [], "services": [],
               "releases": [], "release packages": {},
               "machine": {"date": datetime.date.today().isoformat(),
                           "machine": f"{platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs, "
                                      f"{platform.processor() or platform.machine()}"}}
    if ONLY in ("", "seed"):
        measure_seed(salt_factories, tmp_path_factory, results)
    if ONLY in ("", "scale"):
        for backends in SCALE:
            results["scale"].append(scale_point(salt_factories, tmp_path_factory, backends))
            save(results)
    if ONLY in ("", "services"):
        results["services"] = measure_services(salt_factories, tmp_path_factory)
        save(results)
    if ONLY in ("", "release"):
        measure_releases(salt_factories, tmp_path_factory, results)
    print("\n" + markdown(results))
    assert not status_too_slow(results["scale"]), f"over {STATUS_PINGS}x test.ping: {status_too_slow(results['scale'])}"

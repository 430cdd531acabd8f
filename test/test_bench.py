"""
`make bench`: failover figures in the lab, with the formula's default pillar
and, in the same run, the seed tutorial's configuration as the baseline.

Every scenario is made by hand on the lab hosts (signals, init scripts, a
pillar change applied by the real salt-master) while the client host probes
the frontend on the VIP at 100 requests/s on a fixed schedule, each request
with a 0.2 s timeout.  Outage = from the first failed request of a run to
the next answered one (10 ms resolution).  VIP move = the new holder's
MASTER transition (keepalived's notify script) minus the moment of the
fault.  Writes bench-results/results.{md,json} and timeline.png.

    make bench            # HAVIP_BENCH_TRIALS=7 HAVIP_BENCH_SOAK=300 HAVIP_BENCH_STRESS=120
                          # HAVIP_BENCH_MOVES=40 HAVIP_BENCH_DEPLOYS=8
"""

import copy
import datetime
import json
import os
import platform
import statistics
import time

import pytest

from test.lab.cluster import REPO, SEED, running_cluster

pytestmark = pytest.mark.bench

TRIALS = int(os.environ.get("HAVIP_BENCH_TRIALS", "7"))
SOAK = float(os.environ.get("HAVIP_BENCH_SOAK", "300"))
STRESS = float(os.environ.get("HAVIP_BENCH_STRESS", "120"))
# Planned VIP moves (havip defaults, each way) and rolling deploys.
MOVES = int(os.environ.get("HAVIP_BENCH_MOVES", "40"))
DEPLOYS = int(os.environ.get("HAVIP_BENCH_DEPLOYS", "8"))
OUT = REPO / "bench-results"
PRIMARY, BACKUP = SEED.preferred_balancer, SEED.standby_balancers[0]
BACKENDS = SEED.with_role("backend")

# The seed tutorial: VRRPv2, adverts every 1 s, a `pidof haproxy` check every
# 1 s with fall 1 / rise 2 and nothing else tracked; HAProxy with CentOS 7's
# defaults and `check`'s defaults (inter 2s fall 3 rise 2); changes applied
# by restarting HAProxy.
SEED_BASELINE = {
    "keepalived": {"vrrp_version": 2, "advert_int": 1, "track_backends": False,
                   "check": {"watch": False, "answer_timeout": 0}},
    "backend": {"check": {"inter": "2s", "fall": 3, "rise": 2}},
    "haproxy": {"defaults": ["log global", "option dontlognull", "option redispatch", "retries 3",
                             "timeout connect 10s", "timeout client 1m", "timeout server 1m",
                             "timeout check 10s"]},
}
CONFIGS = {"havip defaults": {}, "seed baseline": SEED_BASELINE}


def pillar_of(overrides):
    pillar = copy.deepcopy(SEED.pillar)
    for key, value in overrides.items():
        pillar["havip"][key] = value
    return pillar


def deploy(cluster, overrides):
    cluster.set_pillar(pillar_of(overrides))
    assert cluster.apply().returncode == 0
    assert cluster.wait_for_holders([PRIMARY], timeout=30) == [PRIMARY]
    time.sleep(2)


def back_to_primary(cluster):
    assert cluster.wait_for_holders([PRIMARY], timeout=30) == [PRIMARY]
    time.sleep(1.5)


def moved_after(cluster, name, since_fault):
    state, since = cluster.vrrp_state(name)
    return since - since_fault if state == "MASTER" and since and since > since_fault else None


def kill_haproxy(cluster, timeline=False):
    with cluster.probe(seconds=5, timeline=timeline) as report:
        time.sleep(1.5)
        killed = cluster.kill_haproxy(PRIMARY)
        cluster.wait_for_holders([BACKUP], timeout=3.4)
    move = moved_after(cluster, BACKUP, killed)
    report.update(fault_at=killed - report["started"], move=move)
    cluster.systemctl(PRIMARY, "start", "haproxy")
    back_to_primary(cluster)
    return report


def hang_haproxy(cluster):
    workers = cluster.haproxy_workers(PRIMARY)  # the master only supervises them
    stopped = cluster.signal_pids(PRIMARY, "STOP", workers)
    try:
        cluster.wait_for_holders([BACKUP], timeout=10)
        move = moved_after(cluster, BACKUP, stopped)
    finally:
        cluster.signal_pids(PRIMARY, "CONT", workers)
    back_to_primary(cluster)
    return {"move": move}


def kill_backend(cluster):
    with cluster.probe(seconds=5) as report:
        time.sleep(1)
        cluster.kill_nginx(BACKENDS[0])
    cluster.start_nginx(BACKENDS[0])
    time.sleep(5)  # HAProxy's checks see it UP again
    return report


def lose_link(cluster):
    """The holder's link down long enough for its HAProxy to mark every
    backend DOWN, then up again: the failover and the return."""
    primary = cluster.host(PRIMARY)
    with cluster.probe(seconds=10) as report:
        time.sleep(1)
        down = time.time()
        primary.run(["ip", "link", "set", "eth0", "down"])
        try:
            time.sleep(3.5)
            move = moved_after(cluster, BACKUP, down)
        finally:
            primary.run(["ip", "link", "set", "eth0", "up"])
    report.update(move=move)
    back_to_primary(cluster)
    return report


def change_pool(cluster, overrides, restart):
    """A backend out of the pool and back, each by pillar + state.apply on
    the balancers (the seed restarts HAProxy instead of reloading)."""
    smaller = pillar_of(overrides)
    smaller["havip"]["nodes"].pop(BACKENDS[1])
    with cluster.probe(seconds=30) as report:
        for pillar in (smaller, pillar_of(overrides)):
            cluster.set_pillar(pillar)
            for balancer in (PRIMARY, BACKUP):
                assert cluster.apply(balancer).returncode == 0
                if restart:
                    cluster.systemctl(balancer, "restart", "haproxy")
            time.sleep(2)
    back_to_primary(cluster)
    return report


def switch_over(cluster, how):
    """A planned move away from the holder and back, under one probe:
    ``how`` "handover" (salt-run havip.standby/resume), "minion" (salt svr1
    havip.standby/resume) or "seed" (stop keepalived on the holder, start
    it again)."""
    with cluster.probe(seconds=9 if how == "handover" else 6) as report:
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
    return report


def rolling_deploys(cluster, count):
    """`salt-run state.orchestrate havip.deploy` ``count`` times, each
    rolling out a new page on every backend; the deploy's own probe (the
    client, 100 requests/s) counts the failed requests."""
    reports = []
    for version in range(count):
        pillar = pillar_of({})
        for name in BACKENDS:
            pillar["havip"]["nodes"][name]["page"] = f"{name} bench-{version}"
        cluster.set_pillar(pillar)
        _, steps = cluster.orchestrate("deploy", timeout=900, client=SEED.client)
        failed, total = (steps["havip-deploy-run"][key] for key in ("failed_requests", "requests"))
        reports.append({"failed": failed, "total": total, "longest_outage": None})
    cluster.set_pillar(pillar_of({}))
    assert cluster.apply().returncode == 0
    back_to_primary(cluster)
    return reports


def transitions_during(cluster, seconds, load=None):
    """keepalived state changes on either balancer while ``seconds`` pass
    (with ``load`` processes busy-looping on the client host)."""
    before = {name: cluster.vrrp_state(name) for name in (PRIMARY, BACKUP)}
    burners = [cluster.host(SEED.client).popen(["timeout", str(seconds), "sh", "-c", "while :; do :; done"])
               for _ in range(load or 0)]
    holders, changes = cluster.vip_holders(), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(1)
        now = cluster.vip_holders()
        changes += now != holders
        holders = now
    for burner in burners:
        burner.wait(timeout=30)
    after = {name: cluster.vrrp_state(name) for name in (PRIMARY, BACKUP)}
    return {"state changes": sum(before[n] != after[n] for n in before), "holder changes seen": changes}


def flap_haproxy(cluster, seconds=20):
    """HAProxy killed and started again every 0.5 s: VIP moves counted."""
    seen = {PRIMARY: set(), BACKUP: set()}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cluster.kill_haproxy(PRIMARY)
        cluster.systemctl(PRIMARY, "start", "haproxy")
        for name in seen:
            seen[name].add(cluster.vrrp_state(name))
        time.sleep(0.5)
    back_to_primary(cluster)
    return {name: len({since for state, since in states if state == "MASTER"}) for name, states in seen.items()}


def stats(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return {"median": None, "p95": None, "max": None}
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return {"median": statistics.median(values), "p95": p95, "max": values[-1]}


def row(scenario, config, reports, moves=()):
    outages = stats([r["longest_outage"] for r in reports])
    failed = sum(r["failed"] for r in reports)
    total = sum(r["total"] for r in reports)
    move = stats(list(moves))
    return {"scenario": scenario, "config": config, "trials": len(reports), **outages,
            "failed": failed, "total": total, "failed per trial": [r["failed"] for r in reports],
            "move median": move["median"], "move max": move["max"]}


def seconds(value):
    return "-" if value is None else f"{value:.3f} s"


def markdown(rows, stability, machine):
    lines = [
        f"Measured {machine['date']} on {machine['machine']} by `make bench` "
        f"({TRIALS} trials per scenario unless noted; client probing at 100 requests/s, "
        "0.2 s timeout).",
        "",
        "| scenario | config | trials | outage median | p95 | max | failed/total | VIP move median | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['config']} | {r['trials']} | {seconds(r['median'])} | "
                     f"{seconds(r['p95'])} | {seconds(r['max'])} | {r['failed']}/{r['total']} | "
                     f"{seconds(r['move median'])} | {seconds(r['move max'])} |")
    lines += ["", "| stability (havip defaults) | result |", "|---|---|"]
    lines += [f"| {name} | {result} |" for name, result in stability.items()]
    return "\n".join(lines) + "\n"


def plot(timelines, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(timelines), 1, figsize=(10, 2.6 * len(timelines)), sharex=True)
    for ax, (config, report) in zip(axes, timelines.items(), strict=True):
        ok = [t for t, answered in report["timeline"] if answered]
        failed = [t for t, answered in report["timeline"] if not answered]
        ax.vlines(ok, 0, 1, color="tab:green", linewidth=0.6, label=f"answered ({len(ok)})")
        ax.vlines(failed, 0, 1, color="tab:red", linewidth=1.2, label=f"failed ({len(failed)})")
        ax.axvline(report["fault_at"], color="black", linestyle="--", label="haproxy killed on svr1")
        if report["move"] is not None:
            ax.axvline(report["fault_at"] + report["move"], color="tab:blue",
                       label="svr2 MASTER (VIP moved)")
        ax.set_title(f"{config}: outage {report['longest_outage']:.3f} s")
        ax.set_yticks([])
        ax.legend(loc="lower right", fontsize=7)
    axes[-1].set_xlabel("seconds since the probe started (one request every 10 ms)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def test_bench(salt_factories, tmp_path_factory):
    rows, timelines, stability = [], {}, {}
    with running_cluster(salt_factories, SEED, tmp_path_factory.mktemp("pillar")) as cluster:
        assert cluster.apply().returncode == 0
        for config, overrides in CONFIGS.items():
            deploy(cluster, overrides)
            kills = [kill_haproxy(cluster, timeline=(trial == 0)) for trial in range(TRIALS)]
            timelines[config] = kills[0]
            rows.append(row("haproxy killed on the holder", config, kills, [k["move"] for k in kills]))
            hangs = [hang_haproxy(cluster) for _ in range(3)]
            rows.append({**row("haproxy hung (SIGSTOP): detection", config, []), "trials": 3,
                         "move median": stats([h["move"] for h in hangs])["median"],
                         "move max": None if None in [h["move"] for h in hangs]
                         else max(h["move"] for h in hangs)})
            rows.append(row("nginx backend killed", config, [kill_backend(cluster) for _ in range(TRIALS)]))
            links = [lose_link(cluster) for _ in range(3)]
            rows.append(row("holder's link down 3.5 s, then up (failover + return)", config, links,
                            [r["move"] for r in links]))
            rows.append(row("pool change applied (out and back)" + (" + restart" if overrides else ""),
                            config, [change_pool(cluster, overrides, restart=bool(overrides))]))
            if overrides:
                cycles = [switch_over(cluster, "seed") for _ in range(3)]
                rows.append(row("planned switchover away and back (stop/start keepalived)", config, cycles))
            else:
                for how, what in (("handover", "salt-run havip.standby/resume"),
                                  ("minion", "salt svr1 havip.standby/resume")):
                    cycles = [switch_over(cluster, how) for _ in range(MOVES // 2)]
                    rows.append(row(f"planned switchover away and back ({what})", config, cycles))
                rows.append(row("rolling deploy (salt-run state.orchestrate havip.deploy)", config,
                                rolling_deploys(cluster, DEPLOYS)))
            print(f"\n{config}: done", flush=True)
        deploy(cluster, {})
        stability[f"idle soak {SOAK:.0f} s"] = transitions_during(cluster, SOAK)
        stability[f"2 CPUs saturated {STRESS:.0f} s (4 busy loops)"] = transitions_during(cluster, STRESS, load=4)
        stability["haproxy killed + restarted every 0.5 s for 20 s: MASTER transitions"] = flap_haproxy(cluster)

    machine = {"date": datetime.date.today().isoformat(),
               "machine": f"{platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs, "
                          f"{platform.processor() or platform.machine()}"}
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps({"machine": machine, "rows": rows, "stability": stability},
                                                 indent=1, default=str))
    table = markdown(rows, stability, machine)
    (OUT / "results.md").write_text(table)
    plot(timelines, OUT / "timeline.png")
    print("\n" + table)

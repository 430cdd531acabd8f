"""
`make chaos`: a seeded fault campaign on the seed's cluster (issue 24), not
part of `make test`.

Each round draws a fault and its target from ``random.Random`` seeded with
the campaign's seed and the round's number (the same seed replays the same
campaign, and each of its rounds), makes the fault, heals it as an operator
or systemd would, and then audits the cluster.  The client host probes every
VIP at 100 requests/s (0.2 s timeout) for the whole round, from 1 s before
the fault to 1 s after the VIPs are back on their preferred balancers,
recording every request: when it was sent and the backend that answered
(none: it failed); and POSTs to every VIP 10 times a second, each with an id
of its own that the backends' access logs show.  The lab's Prometheus on the
client scrapes the balancers and evaluates havip's alerting rules.  A round
fails naming each audit that failed (after a failed round the cluster is
restored: the pillar applied everywhere, every balancer resumed); the test
fails at the end listing the failed rounds.

The faults and the audits are the tables FAULTS and AUDITS.  An audit that
settles (the VIPs' holders, `havip.status`, what the handover leaves) may
take until SETTLE_S after the heal; the others are checked once.

Knobs (environment variables):

    HAVIP_CHAOS_SEED=      the campaign's seed (default: drawn); printed first
    HAVIP_CHAOS_ROUNDS=45  rounds (about 20 minutes on a 2-CPU machine: 15-60 s each)

Writes chaos-results/results.{json,md} after every round, and each round's
requests to chaos-results/round-<N>.json.
"""

import contextlib
import copy
import dataclasses
import datetime
import fcntl
import json
import os
import pathlib
import random
import secrets
import sys
import time
from collections.abc import Callable

import havip_facts
import pytest

import test.lab.prometheus
from test.lab import chaos_audits
from test.lab.cluster import LOOKUP, RELAY_MINE_FUNCTIONS, REPO, SEED, Topology, wait_until

pytestmark = pytest.mark.chaos

CHAOS_SEED = int(os.environ.get("HAVIP_CHAOS_SEED") or secrets.randbelow(10**9))
ROUNDS = int(os.environ.get("HAVIP_CHAOS_ROUNDS") or 45)
OUT = REPO / "chaos-results"
# Seconds after the heal by which every VIP is back on its preferred
# balancer and every audit that settles has passed.
SETTLE_S = 25
# Seconds an operator takes to react to a fault before healing it (far
# shorter than a real one: the cluster must not need more).
OPERATOR_S = 2
# Seconds of probing before the fault and after the VIPs are back.
MARGIN_S = 1
# The longest a round's probe may run (a reboot's round takes about a minute).
PROBE_LIMIT_S = 300
# The budgets (longest outage, s; 0: no failed request at all).
UNPLANNED, HANG, BOTH_KILLED, NOTHING = 0.25, 1.5, 3.0, 0.0


# ---- the faults -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Fault:
    """A fault made on a target of the role ``on`` ("holder": the preferred
    balancer, holding every VIP when the round starts; "backup": another
    balancer; "backend"), and healed.  ``make(cluster, target, rng, made)``
    and ``heal(cluster, target, made)``: ``made`` is a dict where make leaves
    what heal needs and the results show (e.g. a drawn duration)."""
    name: str
    on: str
    budget: float
    make: Callable
    heal: Callable


def kill_haproxy(process, also_backups_after=None):
    """make: kill -9 of HAProxy's ``process`` ("master" or "worker") on the
    target, and ``also_backups_after`` s later on every other balancer."""
    def make(cluster, target, rng, made):
        victims = [target] + ([] if also_backups_after is None else
                              [b for b in cluster.topology.with_role("balancer") if b != target])
        made["restarts"] = {name: cluster.restarts(name) for name in victims}
        for index, name in enumerate(victims):
            if index:
                time.sleep(also_backups_after)
            cluster.kill_haproxy(name, process)
    return make


def restarted_by_systemd(cluster, target, made):
    """heal: systemd starts each killed HAProxy again (Debian's unit:
    Restart=always, after 100 ms)."""
    wait_restarted(cluster, made["restarts"], "haproxy")


def keepalived_restarted(cluster, target, made):
    """heal: systemd starts the killed keepalived again, no apply (havip's
    drop-in: Restart=on-failure, after a peer's master-down interval and
    1 s)."""
    wait_restarted(cluster, made["restarts"], "keepalived")


def wait_restarted(cluster, restarts, unit):
    """Waits until systemd has restarted ``unit`` on each host of
    ``restarts`` ({name: its NRestarts before}) and it is active."""
    for name, before in restarts.items():
        def restarted(name=name, before=before):
            return cluster.restarts(name, unit) > before and active(cluster, name, unit)
        assert wait_until(restarted, bool, 10, 0.1), f"systemd did not start {unit} on {name} again"


def active(cluster, name, unit):
    return cluster.systemctl(name, "is-active", unit, check=False).stdout.strip() == "active"


def reapplied(cluster, target, made):
    """heal: the operator's `state.apply havip` on the target."""
    time.sleep(OPERATOR_S)
    applied = cluster.apply(target)
    assert applied.returncode == 0, applied.stdout


def kill_keepalived(cluster, target, rng, made):
    made["restarts"] = {target: cluster.restarts(target, "keepalived")}
    cluster.kill_keepalived(target)


def stop_haproxy(cluster, target, rng, made):
    cluster.systemctl(target, "stop", "haproxy")


def kill_nginx(cluster, target, rng, made):
    cluster.kill_nginx(target)


def runner(function):
    """make or heal: `salt-run FUNCTION TARGET` (havip.standby, havip.resume)."""
    def call(cluster, target, *_):
        result = cluster.run(function, target)
        assert result.returncode == 0, result.stdout
    return call


def hang_haproxy(cluster, target, rng, made):
    """HAProxy's workers (the processes that serve) stopped for 3 s."""
    made["pids"] = cluster.haproxy_workers(target)
    cluster.signal_pids(target, "STOP", made["pids"])
    time.sleep(3)


def wake_haproxy(cluster, target, made):
    cluster.signal_pids(target, "CONT", made["pids"])


def link_down(cluster, target, rng, made):
    """The target's link down for 0.5-4 s (drawn): its cable pulled, its
    addresses kept.  (`ip link set eth0 down` in the host flushed its IPv6
    address for good; a pillar refresh reloaded the minion's grains and an
    apply published the loss in the mine; a reboot brought the address back,
    and `state.apply test=True` had a mine.send pending: seed 92686334,
    round 25.)"""
    made["down_s"] = round(rng.uniform(0.5, 4), 1)
    cluster.lab.set_cable(target, plugged=False)
    time.sleep(made["down_s"])


def link_up(cluster, target, made):
    cluster.lab.set_cable(target, plugged=True)


def power_off(cluster, target, rng, made):
    cluster.power_off(target)


def boot(cluster, target, made):
    if cluster.host(target).pid is None:
        cluster.boot(target)


def cut_vrrp(cluster, target, rng, made):
    """The target hears no VRRP advert for 5 s: it takes the VIP too (split brain)."""
    cluster.cut_vrrp(target)
    time.sleep(5)


def uncut_vrrp(cluster, target, made):
    cluster.uncut_vrrp(target)


def lossy_link(cluster, target, rng, made):
    """30 % of the target's packets dropped for 5 s."""
    cluster.make_lossy(target)
    time.sleep(5)


def clean_link(cluster, target, made):
    cluster.make_sound(target)


def master_down_and_kill(cluster, target, rng, made):
    """The salt-master stopped, then HAProxy's master killed on the target."""
    cluster.master.terminate()
    kill_haproxy("master")(cluster, target, rng, made)


def master_back(cluster, target, made):
    try:
        restarted_by_systemd(cluster, target, made)
    finally:
        cluster.master.start(start_timeout=60)


# Seconds an orchestration (a rolling deploy, a failover test) may take.
ORCHESTRATE_S = 600


def finished(made, step):
    """The end of the orchestration ``made["running"]`` started in the
    background (its step ``step`` the runner's): "passed: COMMENT" or
    "FAILED: COMMENT" (the first failed step's), kept in ``made[step]``.  It
    raises when it did not end within ORCHESTRATE_S, when its exit status
    and its steps' results disagree, or when a failure does not say why."""
    if "running" in made:
        result, steps = made.pop("running").result(ORCHESTRATE_S)
        reports = [report for report in steps.values() if isinstance(report, dict)]
        failed = [report for report in reports if report.get("result") is not True]
        assert (result.returncode == 0) == (not failed), f"exit status {result.returncode}: {steps}"
        assert failed or isinstance(steps.get(step), dict), f"{step} did not run: {steps}"
        if failed:
            assert str(failed[0].get("comment") or "").strip(), f"a failure that says nothing: {failed[0]}"
            made[step] = f"FAILED: {failed[0]['comment']}"
        else:
            made[step] = f"passed: {steps[step]['comment']}"
    return made.get(step, "")


DEPLOY = "havip-deploy-run"


def deploying(cluster, made):
    """`salt-run state.orchestrate havip.deploy` started in the background."""
    made["running"] = cluster.orchestrate_in_background("deploy", ORCHESTRATE_S, client=cluster.topology.client)


def deployed_again(cluster, target, made):
    """heal: after a deploy that failed, what an operator does: the pillar
    put right (the topology's), every balancer resumed (`salt-run
    havip.resume`), and the deploy run again, which first completes the
    backend the failed run left drained (no `havip.ready` by hand: before,
    the rerun refused to drain another while that one stayed drained,
    seed 4445 round 1); it must pass."""
    if not finished(made, DEPLOY).startswith("FAILED"):
        return
    time.sleep(OPERATOR_S)
    cluster.set_pillar(cluster.topology.pillar)
    for balancer in cluster.topology.with_role("balancer"):
        runner("havip.resume")(cluster, balancer)
    again = {}
    deploying(cluster, again)
    made["deployed_again"] = finished(again, DEPLOY)
    assert made["deployed_again"].startswith("passed"), made["deployed_again"]


def ready_backends(cluster):
    """`havip.ready` of every backend on every balancer (what a failed
    deploy left drained back in rotation)."""
    for balancer in cluster.topology.with_role("balancer"):
        for backend in cluster.topology.with_role("backend"):
            readied = cluster.salt(balancer, "havip.ready", backend)
            assert readied.returncode == 0, readied.stdout


def kill_during_deploy(cluster, target, rng, made):
    """A rolling deploy of the pillar as it is, and HAProxy's master killed
    on the target a drawn 3-20 s after it started (the deploy takes about
    20 s in the lab: from its backends to the target's own standby, apply
    and resume); the deploy passes or fails saying why."""
    made["kill_after_s"] = round(rng.uniform(3, 20), 1)
    made["restarts"] = {target: cluster.restarts(target)}
    deploying(cluster, made)
    time.sleep(made["kill_after_s"])
    made["deploy_running_at_kill"] = not made["running"].done()
    cluster.kill_haproxy(target, "master")
    finished(made, DEPLOY)


def deploy_healed(cluster, target, made):
    """heal: systemd starts HAProxy again; the deploy again if it failed."""
    try:
        restarted_by_systemd(cluster, target, made)
    finally:
        deployed_again(cluster, target, made)


# The pillar change a deploy brings (the balancers' HAProxy reloads: a
# stats page realm of its own), and what fails validation half-way.
CHANGED_REALM = "HAProxy Statistics (chaos)"
INVALID_KEY, INVALID_VALUE = "frontend:port", 70000


def with_havip(pillar, **havip):
    """``pillar`` with havip keys replaced."""
    return {**pillar, "havip": {**pillar["havip"], **havip}}


def rollout_order(topology):
    """The deploy's order on the campaign's cluster (havip_rollout's): the
    backends, the balancers holding no VIP, the holder."""
    return topology.with_role("backend") + topology.standby_balancers + [topology.preferred_balancer]


def server_status(cluster, balancer, server):
    """A server's status in a balancer's HAProxy (its stats page's CSV,
    asked on the balancer itself: faster than a salt call)."""
    topology = cluster.topology
    password = topology.pillar["havip"]["stats"]["password"]
    csv = cluster.host(balancer).run(["curl", "-s", "-m", "2", "-u", f"admin:{password}",
                                      topology.stats_url("127.0.0.1") + ";csv"], check=False).stdout
    rows = [line.split(",") for line in csv.splitlines()]
    header = rows[0] if rows else []
    return next((row[header.index("status")] for row in rows[1:] if len(row) == len(header) and row[1] == server),
                None) if "status" in header else None


def rolled_past(cluster, name, before):
    """A function that says when the deploy is done with node ``name``'s
    apply: a balancer's configuration changed; a backend drained on the
    holder, and then no longer (its ready step has begun)."""
    holder, seen = cluster.topology.preferred_balancer, []

    def past():
        if name in cluster.topology.with_role("balancer"):
            return any(digest != before[(host, path)] for (host, path), digest in cluster.config_digests().items()
                       if host == name)
        seen.append(server_status(cluster, holder, name))
        return "DRAIN" in seen and seen[-1] not in ("DRAIN", None)
    return past


def invalid_pillar_mid_deploy(cluster, target, rng, made):
    """A rolling deploy of a pillar change; once it is done with a drawn
    node, the master's pillar replaced by one that fails validation
    (frontend:port 70000).  The next node's apply must fail naming the key,
    the deploy stop there, and nothing on the nodes after it change."""
    topology = cluster.topology
    order = rollout_order(topology)
    made["broken_after"] = after = rng.choice(order[:-1])
    stats = topology.pillar["havip"]["stats"]
    changed = with_havip(topology.pillar, stats={**stats, "realm": CHANGED_REALM})
    cluster.set_pillar(changed)
    before = cluster.config_digests()
    deploying(cluster, made)
    assert wait_until(rolled_past(cluster, after, before), bool, ORCHESTRATE_S, 0.2), f"no deploy past {after}"
    section, key = INVALID_KEY.split(":")
    cluster.set_pillar(with_havip(changed, **{section: {**changed["havip"].get(section, {}), key: INVALID_VALUE}}),
                      refresh=False)
    comment = finished(made, DEPLOY)
    broken = order[order.index(after) + 1]
    assert comment.startswith("FAILED") and f"step 'apply {broken}' failed" in comment, comment
    assert f"havip:{INVALID_KEY}" in comment, f"the error does not name havip:{INVALID_KEY}: {comment}"
    untouched = order[order.index(after) + 1:]
    changes = [f"{host}:{path}" for (host, path), digest in cluster.config_digests().items()
               if host in untouched and digest != before.get((host, path))]
    assert not changes, f"changed on nodes the deploy did not reach: {changes}"


def kill_during_failover_test(victim):
    """make: `salt-run state.orchestrate havip.failover_test` (it kills
    HAProxy on the target, the VIP moves and comes back), and HAProxy's
    master killed on ``victim`` while it runs: "other", the balancer that
    took the VIP, once it holds it; "holder", the target again, once the
    VIP is back there.  The test passes or fails saying why."""
    def make(cluster, target, rng, made):
        topology = cluster.topology
        others = [b for b in topology.with_role("balancer") if b != target]
        made["running"] = cluster.orchestrate_in_background("failover_test", ORCHESTRATE_S, client=topology.client)
        moved = wait_until(cluster.vip_holders, lambda held: set(held) & set(others), 120, 0.05)
        assert set(moved) & set(others), f"the failover test never moved the VIP: {finished(made, FAILOVER)}"
        name = moved[0] if victim == "other" else target
        if victim == "holder":
            assert cluster.wait_for_holders([target], timeout=30) == [target], "the VIP did not come back"
        made["victim"] = name
        made["restarts"] = {name: cluster.restarts(name)}
        time.sleep(round(rng.uniform(0, 0.5), 2))
        cluster.kill_haproxy(name, "master")
        finished(made, FAILOVER)
    return make


FAILOVER = "havip-failover-test-run"


def failover_test_healed(cluster, target, made):
    """heal: systemd starts the killed HAProxy again; the failover test has
    ended (its own restore ran)."""
    try:
        restarted_by_systemd(cluster, target, made)
    finally:
        finished(made, FAILOVER)


# 1 % of a CPU for every process of the starved host.
CPU_QUOTA_US, CPU_PERIOD_US = 1000, 100000


def starve_cpu(cluster, target, rng, made):
    """Every process of the target held to 1 % of a CPU for 5 s (a cgroup
    of the cpu controller, its CFS quota)."""
    made["cgroups"] = cluster.starve_cpu(target, CPU_QUOTA_US, CPU_PERIOD_US)
    time.sleep(5)


def feed_cpu(cluster, target, made):
    cluster.feed_cpu(target, made.pop("cgroups", {}))


def full_and_kill(cluster, target, rng, made):
    """The file systems under the notify script's state and HAProxy's logs
    full on the target (a filled 64 KiB tmpfs over each), then HAProxy's
    master killed there: the VIP must move all the same."""
    made["since"] = time.time()
    cluster.fill_up(target, "64k")
    kill_haproxy("master")(cluster, target, rng, made)


def emptied(cluster, target, made):
    """heal: systemd starts HAProxy again, the VIP (it moved away) back on
    the target; then the file systems unmounted."""
    try:
        restarted_by_systemd(cluster, target, made)
        others = [b for b in cluster.topology.with_role("balancer") if b != target]
        took = [name for name in others
                if any(state == "MASTER" for _, _, state in cluster.vrrp_transitions(name, made["since"]))]
        assert took, "the VIP did not move"
        assert cluster.wait_for_holders([target], timeout=SETTLE_S) == [target], "the VIP did not come back"
    finally:
        cluster.empty_up(target)


FAULTS = (
    Fault("kill -9 of HAProxy's master", "holder", UNPLANNED, kill_haproxy("master"), restarted_by_systemd),
    Fault("kill -9 of HAProxy's worker", "holder", UNPLANNED, kill_haproxy("worker"), restarted_by_systemd),
    Fault("`systemctl stop haproxy`, then `state.apply`", "holder", UNPLANNED, stop_haproxy, reapplied),
    Fault("kill -9 of keepalived (systemd restarts it)", "holder", UNPLANNED, kill_keepalived, keepalived_restarted),
    Fault("HAProxy hung 3 s (SIGSTOP, SIGCONT)", "holder", HANG, hang_haproxy, wake_haproxy),
    Fault("link down 0.5-4 s", "holder", UNPLANNED, link_down, link_up),
    Fault("reboot", "holder", UNPLANNED, power_off, boot),
    Fault("VRRP from the peer dropped 5 s (split brain)", "backup", NOTHING, cut_vrrp, uncut_vrrp),
    Fault("kill -9 of a backend's nginx, then `state.apply`", "backend", NOTHING, kill_nginx, reapplied),
    Fault("salt-master down while HAProxy's master is killed", "holder", UNPLANNED, master_down_and_kill,
          master_back),
    Fault("kill -9 of HAProxy's master on the backup", "backup", NOTHING, kill_haproxy("master"),
          restarted_by_systemd),
    Fault("kill -9 of HAProxy's master on both balancers 0.3 s apart", "holder", BOTH_KILLED,
          kill_haproxy("master", also_backups_after=0.3), restarted_by_systemd),
    Fault("30 % of the packets dropped 5 s", "holder", UNPLANNED, lossy_link, clean_link),
    Fault("planned `salt-run havip.standby`, then `havip.resume`", "holder", NOTHING, runner("havip.standby"),
          runner("havip.resume")),
    Fault("kill -9 of HAProxy's master during a rolling deploy", "holder", UNPLANNED, kill_during_deploy,
          deploy_healed),
    Fault("kill -9 of HAProxy's master on the new holder during a failover test", "holder", BOTH_KILLED,
          kill_during_failover_test("other"), failover_test_healed),
    Fault("kill -9 of HAProxy's master on the holder during a failover test", "holder", UNPLANNED,
          kill_during_failover_test("holder"), failover_test_healed),
    Fault("CPU starved 5 s (1 % of a CPU)", "holder", UNPLANNED, starve_cpu, feed_cpu),
    Fault("file systems under the notify state and logs full, HAProxy's master killed", "holder", UNPLANNED,
          full_and_kill, emptied),
    Fault("a deploy whose pillar fails validation half-way", "holder", NOTHING, invalid_pillar_mid_deploy,
          deployed_again),
)


def targets(topology, role):
    """The hosts a fault on ``role`` may hit (the holder: the preferred balancer)."""
    if role == "holder":
        return [topology.preferred_balancer]
    if role == "backup":
        return topology.standby_balancers
    return topology.with_role(role)


# ---- the audits -----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Audit:
    """A check of the cluster after a round: ``check(cluster, rnd)`` returns
    the problems it found (none: passed).  One that ``settles`` is asked
    again until it passes or SETTLE_S after the heal have passed."""
    name: str
    check: Callable
    settles: bool = False


def vips(topology):
    return topology.pillar["havip"]["vips"]


def preferred(topology, vip):
    """The balancer a VIP prefers: the highest priority (its own, or its node's)."""
    nodes, priorities = topology.nodes, vips(topology)[vip].get("priorities", {})
    return max(topology.with_role("balancer"), key=lambda b: priorities.get(b, nodes[b]["priority"]))


def holders(cluster, rnd):
    """Every VIP held by exactly one balancer, its preferred one."""
    return [f"{vip} held by {held or 'nobody'}, not {preferred(cluster.topology, vip)}"
            for vip in vips(cluster.topology)
            if (held := cluster.vip_holders(vip)) != [preferred(cluster.topology, vip)]]


def status(cluster, rnd):
    """`salt-run havip.status` result true."""
    view = cluster.run("havip.status")
    data = view.data if isinstance(view.data, dict) else {}
    return [] if data.get("result") is True else [str(data.get("comment") or view.stdout)[:500]]


def outage(cluster, rnd):
    """The longest outage within the fault's budget (0: no failed request)."""
    budget = rnd["fault"].budget
    longest, failed = rnd["longest_outage_s"], rnd["failed"]
    if failed and (budget == 0 or longest > budget):
        return [f"longest outage {longest:.3f} s ({failed}/{rnd['total']} failed), budget {budget} s"]
    return []


def real_backends(cluster, rnd):
    """Every answer came from a real backend (its page)."""
    topology = cluster.topology
    pages = {str(topology.nodes[name].get("page", name)).strip() for name in topology.with_role("backend")}
    strangers = sorted(set(rnd["answered_by"]) - pages)
    return [f"answers from no backend: {strangers[:5]}"] if strangers else []


def no_changes(cluster, rnd):
    """`state.apply havip test=True` changes nothing on any node."""
    applied = cluster.salt("*", "state.apply", "havip", "test=True", _timeout=600)
    problems = []
    for minion, states in sorted((applied.data or {}).items()):
        if not isinstance(states, dict):
            problems.append(f"{minion}: {str(states)[:200]}")
            continue
        problems += [f"{minion}: {state.get('__id__', key)}: {str(state.get('comment'))[:160]}"
                     for key, state in states.items()
                     if isinstance(state, dict) and (state.get("changes") or state.get("result") is not True)]
    return problems or ([] if applied.data else [f"no answer: {applied.stdout[:200]}"])


def left_behind(cluster, rnd):
    """Nothing the handover leaves behind: no copy of a VIP on lo of a
    balancer that does not hold it (once released), no relay table of a VIP
    the pillar does not have.  (A balancer's relay tables of the pillar's
    VIPs stay, by design: docs/design.md, the handover.)"""
    problems = []
    for balancer in cluster.topology.with_role("balancer"):
        host = cluster.host(balancer)
        tables = host.run(["nft", "list", "tables"]).stdout.split()
        problems += [f"{balancer} relays {table}, no VIP of the pillar" for table in tables
                     if table.startswith(havip_facts.RELAY_TABLE_PREFIX)
                     and table.removeprefix(havip_facts.RELAY_TABLE_PREFIX) not in vips(cluster.topology)]
        on_lo = host.run(["ip", "-o", "addr", "show", "dev", havip_facts.LINGER_DEVICE]).stdout
        problems += [f"{vip} lingers on {balancer}'s {havip_facts.LINGER_DEVICE}" for vip in vips(cluster.topology)
                     if f" {cluster.topology.vip_address(vip)}/" in on_lo and balancer not in cluster.vip_holders(vip)]
    return problems


def failed_units(cluster, rnd):
    """No unit failed on any host."""
    return [f"{name}: {line.split()[0]} failed" for name in cluster.topology.hosts
            for line in cluster.systemctl(name, "--failed", "--no-legend", "--plain", check=False).stdout.splitlines()
            if line.strip()]


def lock_free(cluster, rnd):
    """The runner's lock is free (no havip run holds it)."""
    path = pathlib.Path(cluster.master.config["cachedir"]) / havip_facts.RUNNER_LOCK
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return [f"held: {path.read_text().strip()}"]
    return []


def no_core_dumps(cluster, rnd):
    """No process dumped core during the round (systemd's and
    systemd-coredump's journal entries)."""
    since = f"@{int(rnd['started'])}"
    return [f"{name}: {line}" for name in cluster.topology.hosts
            for line in cluster.host(name).run(
                ["journalctl", "-q", "--no-pager", "-o", "cat", "--since", since,
                 "_PID=1", "+", "SYSLOG_IDENTIFIER=systemd-coredump"], check=False).stdout.splitlines()
            if "dumped" in line]


# The lab's Prometheus on the client (test/lab/prometheus.py) scrapes the
# balancers every second and evaluates havip's alerting rules every second.
# How long an audit waits for a scrape of every target and an evaluation
# after it.
FRESH_S = 5
METRICS_PORT = 9101
# The campaign's IPv6 VIP (the seed's VIP is IPv4): planned moves and every
# fault move it too, its handover relayed to the balancers' own IPv6 addresses.
IPV6_VIP = {"address": "fd00:100::10/64", "interface": "eth0", "virtual_router_id": 53}
# The alert each fault must make pending or firing while it lasts (a
# rule's `for:` may be longer than the fault: see docs/chaos.md).
FAULT_ALERTS = {
    "VRRP from the peer dropped 5 s (split brain)": {"HavipVipSplitBrain"},
}
# The alerts a fault may fire besides those: a reboot's balancer unscraped
# for more than their `for:`.  (keepalived killed leaves its VIP on the
# holder's interface while the backup takes it, two hold it, but systemd
# starts it again within a few seconds, shorter than HavipVipSplitBrain's `for:`.)
FAULT_MAY_FIRE = {
    "reboot": {"HavipHAProxyDown", "HavipMetricsStale"},
}
# More than 6 VRRP transitions in 5 minutes: the campaign itself moves the
# VIPs every few rounds, and this alert rightly fires then (docs/chaos.md).
CAMPAIGN_PACE = {"HavipVrrpFlapping"}


def prometheus_host(cluster):
    return cluster.host(cluster.topology.client)


def prometheus_caught_up(cluster):
    """Waits until Prometheus has scraped every balancer and evaluated its
    rules since now; whether it did within FRESH_S."""
    since = time.time()
    return wait_until(lambda: test.lab.prometheus.evaluated_since(prometheus_host(cluster), since), bool,
                      FRESH_S, 0.2)


def prometheus_masters(cluster, rnd):
    """The lab's Prometheus, after a fresh scrape, shows one
    havip_vrrp_master 1 per VIP, its preferred balancer's (and 0 from the
    others)."""
    if not prometheus_caught_up(cluster):
        return [f"Prometheus did not scrape every target within {FRESH_S} s"]
    topology = cluster.topology
    samples = test.lab.prometheus.query(prometheus_host(cluster), "havip_vrrp_master")
    return chaos_audits.master_problems(samples, {vip: preferred(topology, vip) for vip in vips(topology)},
                                        topology.with_role("balancer"))


def alerts_seen(cluster, rnd):
    """{(alert, state)} of havip's alerts pending or firing at some
    evaluation since the round started (kept in the round's record)."""
    window = int(time.time() - rnd["started"]) + 1
    found = chaos_audits.seen(test.lab.prometheus.query(
        prometheus_host(cluster), f'max_over_time(ALERTS{{alertname=~"Havip.*"}}[{window}s])'))
    rnd["alerts_seen"] = sorted(f"{name} ({state})" for name, state in found)
    return found


def fault_alerted(cluster, rnd):
    """The alerts the fault makes were pending or firing during the round."""
    return chaos_audits.missing_alerts(alerts_seen(cluster, rnd), FAULT_ALERTS.get(rnd["fault"].name, ()))


def no_false_alarm(cluster, rnd):
    """No havip alert fired during the round but those its fault explains."""
    explained = FAULT_ALERTS.get(rnd["fault"].name, set()) | FAULT_MAY_FIRE.get(rnd["fault"].name, set())
    return chaos_audits.unexplained_firing(alerts_seen(cluster, rnd), explained | CAMPAIGN_PACE)


def quiet_after_heal(cluster, rnd):
    """No havip alert firing after the heal, once Prometheus has scraped
    and evaluated again."""
    if not prometheus_caught_up(cluster):
        return [f"Prometheus did not scrape every target within {FRESH_S} s"]
    groups = test.lab.prometheus.ask(prometheus_host(cluster), "rules?type=alert").get("groups", [])
    return chaos_audits.firing_now(groups, ignored=CAMPAIGN_PACE)


ACCESS_LOG = "/var/log/nginx/access.log"


def posts_once(cluster, rnd):
    """No POST reached a backend twice (their access logs), each POST
    nginx answered reached one."""
    backends = cluster.topology.with_role("backend")
    problems = []
    for report in rnd["posts"]:
        if report.get("error"):
            problems.append(f"the POST client failed: {report['error']}")
            continue
        logged = {backend: chaos_audits.logged_posts(cluster.host(backend).run(
                      ["grep", "-F", f"={report['token']}.", ACCESS_LOG], check=False).stdout.splitlines(),
                      report["token"])
                  for backend in backends}
        problems += chaos_audits.post_problems(report["token"], report["posts"], logged)
    return problems


AUDITS = (
    Audit("every VIP on its preferred balancer alone", holders, settles=True),
    Audit("havip.status true", status, settles=True),
    Audit("outage within budget", outage),
    Audit("every answer from a real backend", real_backends),
    Audit("nothing left behind by the handover", left_behind, settles=True),
    Audit("Prometheus: one havip_vrrp_master per VIP", prometheus_masters, settles=True),
    Audit("no alert firing after the heal", quiet_after_heal, settles=True),
    Audit("the fault's alert pending or firing", fault_alerted),
    Audit("no alert fired that the fault does not explain", no_false_alarm),
    Audit("no POST answered twice", posts_once),
    Audit("no unit failed", failed_units),
    Audit("runner lock free", lock_free),
    Audit("no core dump", no_core_dumps),
    Audit("state.apply test=True changes nothing", no_changes),
)


def audited(cluster, rnd):
    """{audit name: its problems} (an audit that raised: the exception)."""
    verdicts = {}
    for audit in AUDITS:
        def check(audit=audit):
            try:
                return audit.check(cluster, rnd)
            except Exception as exc:
                return [f"{type(exc).__name__}: {exc}"[:500]]
        left = rnd["healed"] + SETTLE_S - time.time() if audit.settles else 0
        verdicts[audit.name] = wait_until(check, lambda problems: not problems, left, 1)
    return verdicts


# ---- a round ----------------------------------------------------------------------

def draw(topology, number):
    """Round ``number``'s random source, fault and target."""
    rng = random.Random(f"{CHAOS_SEED}/{number}")
    fault = rng.choice(FAULTS)
    return rng, fault, rng.choice(targets(topology, fault.on))


@contextlib.contextmanager
def probing(cluster):
    """Probes of every VIP from the client while the block runs: yields
    their reports (filled in when it ends)."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(cluster.probe(PROBE_LIMIT_S, url=cluster.topology.url_of(
                   cluster.topology.vip_address(vip)), timeline=True, answers=True, until_block_ends=True))
               for vip in vips(cluster.topology)]


@contextlib.contextmanager
def posting(cluster, rnd):
    """POSTs to every VIP from the client while the block runs
    (test/lab/posts.py, 10 a second, each with an id of its own that the
    backends' access logs show); rnd["posts"]: what the client saw, per
    VIP, when it ends."""
    topology = cluster.topology
    client = cluster.host(topology.client)
    procs = [client.popen([sys.executable, "-m", "test.lab.posts", topology.url_of(topology.vip_address(vip)),
                           "--token", secrets.token_hex(6)], cwd=str(REPO), stdin=-1, stdout=-1, stderr=-1, text=True)
             for vip in vips(topology)]
    for proc in procs:
        proc.stderr.readline()  # "posts started"
    try:
        yield
    finally:
        rnd["posts"] = [posts_report(proc) for proc in procs]


def posts_report(proc):
    """What a POST client saw (its error instead, if it failed)."""
    out, err = proc.communicate(timeout=30)
    try:
        return json.loads(out)
    except ValueError:
        return {"token": None, "posts": [], "error": err[-500:]}


def play(cluster, number):
    """Round ``number``: its fault made and healed under the probes, then
    the audits; the round's record."""
    rng, fault, target = draw(cluster.topology, number)
    rnd = {"fault": fault, "made": {}, "started": time.time()}
    trouble = []
    with probing(cluster) as reports, posting(cluster, rnd):
        time.sleep(MARGIN_S)
        try:
            fault.make(cluster, target, rng, rnd["made"])
        except Exception as exc:
            trouble.append(f"making it: {type(exc).__name__}: {exc}"[:500])
        finally:
            try:
                fault.heal(cluster, target, rnd["made"])
            except Exception as exc:
                trouble.append(f"healing it: {type(exc).__name__}: {exc}"[:500])
            rnd["healed"] = time.time()
        settled = not wait_until(lambda: holders(cluster, rnd), lambda problems: not problems,
                                 rnd["healed"] + SETTLE_S - time.time(), 0.2)
        rnd["settled_s"] = round(time.time() - rnd["healed"], 1) if settled else None
        time.sleep(MARGIN_S)
    rnd.update(longest_outage_s=max(r["longest_outage_s"] for r in reports), failed=sum(r["failed"] for r in reports),
               total=sum(r["total"] for r in reports),
               answered_by={body for r in reports for body in r["answers"] if body is not None})
    audits = {"fault made and healed": trouble, **audited(cluster, rnd)}
    save_requests(number, reports)
    return {"round": number, "fault": fault.name, "target": target, "made": rnd["made"], "budget_s": fault.budget,
            "longest_outage_s": rnd["longest_outage_s"], "failed": rnd["failed"], "total": rnd["total"],
            "settled_s": rnd["settled_s"], "seconds": round(time.time() - rnd["started"], 1), "audits": audits,
            "posts": posted(rnd["posts"]), "alerts_seen": rnd.get("alerts_seen", []),
            "passed": not any(audits.values())}


def posted(reports):
    """{"sent", "answered"}: the round's POSTs, and those nginx answered."""
    return {"sent": sum(len(r["posts"]) for r in reports),
            "answered": sum(by_nginx for r in reports for _, _, by_nginx in r["posts"])}


def recover(cluster):
    """After a failed round: the salt-master and every host up, failed
    units reset, the cluster restored, every backend readied."""
    if not cluster.master.is_running():
        cluster.master.start(start_timeout=60)
    for name in cluster.topology.hosts:
        if cluster.host(name).pid is None:
            cluster.boot(name)
        cluster.systemctl(name, "reset-failed", check=False)
    cluster.restore()
    ready_backends(cluster)


# ---- results ------------------------------------------------------------------------

def save_requests(number, reports):
    """Round ``number``'s requests per VIP: [seconds into its probe, the
    backend that answered or null]."""
    OUT.mkdir(exist_ok=True)
    requests = {r["url"]: {"started_s": r["started_s"],
                           "requests": [[sent, body] for (sent, _), body in zip(r["timeline"], r["answers"],
                                                                                 strict=True)]}
                for r in reports}
    (OUT / f"round-{number}.json").write_text(json.dumps(requests))


def markdown(campaign):
    replay = f"HAVIP_CHAOS_SEED={campaign['seed']} HAVIP_CHAOS_ROUNDS={campaign['rounds']} make chaos"
    played = campaign["results"]
    lines = [f"Chaos campaign of {campaign['date']}, seed {campaign['seed']}: {len(played)} of {campaign['rounds']} "
             f"rounds played, {sum(not r['passed'] for r in played)} failed (replay: `{replay}`).", "",
             "| round | fault | target | budget | longest outage | failed/total | VIPs back after heal "
             "| POSTs answered/sent | alerts seen | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in played:
        made = "".join(f", {key} {value}" for key, value in r["made"].items() if key.endswith("_s"))
        back = "-" if r["settled_s"] is None else f"{r['settled_s']} s"
        verdict = "pass" if r["passed"] else "FAIL: " + "; ".join(name for name, p in r["audits"].items() if p)
        lines.append(f"| {r['round']} | {r['fault']}{made} | {r['target']} | {r['budget_s']} s "
                     f"| {r['longest_outage_s']:.3f} s | {r['failed']}/{r['total']} "
                     f"| {back} | {r['posts']['answered']}/{r['posts']['sent']} "
                     f"| {', '.join(r['alerts_seen']) or '-'} | {verdict} |")
    failures = [(r, name, problems) for r in played for name, problems in r["audits"].items() if problems]
    if failures:
        lines += ["", "Failed audits:", ""]
        lines += [f"- round {r['round']} ({r['fault']} on {r['target']}), {name}: {'; '.join(problems)}"
                  for r, name, problems in failures]
    return "\n".join(lines) + "\n"


def save(campaign):
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(campaign, indent=1, default=str))
    (OUT / "results.md").write_text(markdown(campaign))


@pytest.fixture(scope="module")
def cluster_topology():
    """The seed's cluster with its metrics on (HAProxy's exporter, the VRRP
    state for the node exporter), for the lab's Prometheus, and an IPv6 VIP
    beside its own (VI_6, on the same preferred balancer), whose relay
    addresses the balancers publish in the mine from the start."""
    pillar = copy.deepcopy(SEED.pillar)
    pillar["havip"]["metrics"] = {"port": METRICS_PORT}
    pillar["havip"]["vips"]["VI_6"] = IPV6_VIP
    pillar["mine_functions"] = RELAY_MINE_FUNCTIONS
    return Topology(SEED.name, SEED.hosts, SEED.client, pillar)


@pytest.fixture(scope="module")
def prometheus(cluster):
    """Debian's Prometheus on the client with havip's alerting rules,
    scraping every balancer every second; once every rule is loaded and
    every target answers."""
    balancers = cluster.topology.with_role("balancer")
    exporter = LOOKUP["metrics"]["node_exporter_port"]
    test.lab.prometheus.start(prometheus_host(cluster), [f"{b}:{METRICS_PORT}" for b in balancers],
                              [f"{b}:{exporter}" for b in balancers])
    loaded = wait_until(lambda: test.lab.prometheus.alerting_rules(prometheus_host(cluster)),
                        lambda rules: rules and set(rules.values()) == {"ok"}, 60)
    assert loaded == dict.fromkeys(test.lab.prometheus.alert_names(), "ok"), loaded
    up = wait_until(lambda: test.lab.prometheus.query(prometheus_host(cluster), "up == 0 or absent(up)"),
                    lambda down: not down, 60)
    assert not up, up


@pytest.fixture(scope="module")
def campaign():
    """The campaign's record; its seed printed before the cluster starts."""
    print(f"\nHAVIP_CHAOS_SEED={CHAOS_SEED} HAVIP_CHAOS_ROUNDS={ROUNDS}", flush=True)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"seed": CHAOS_SEED, "rounds": ROUNDS, "date": now, "results": []}


def test_chaos(campaign, cluster, prometheus):
    for number in range(1, ROUNDS + 1):
        played = play(cluster, number)
        campaign["results"].append(played)
        save(campaign)
        print(f"round {number}: {played['fault']} on {played['target']}: "
              f"{'pass' if played['passed'] else 'FAIL'}", flush=True)
        if not played["passed"]:
            recover(cluster)
    failed = [f"round {r['round']} ({r['fault']} on {r['target']}): "
              + ", ".join(name for name, problems in r["audits"].items() if problems)
              for r in campaign["results"] if not r["passed"]]
    assert not failed, f"failed rounds (seed {CHAOS_SEED}):\n" + "\n".join(failed)

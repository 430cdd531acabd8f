"""
havip, cluster-wide: who holds each VIP, is every node healthy, and a live
failover test that measures and fails loudly.  Used by ``salt-run`` and by
the orchestrate files ``havip.failover_test``.

The cluster is discovered from what the formula deployed on the minions
(``havip.config``); the minions answer for themselves (``havip.status``,
``havip.check``), so nothing here needs the pillar.
"""

import threading
import time

import salt.client

__virtualname__ = "havip"

FAILURES = ("kill_haproxy", "stop_haproxy", "kill_keepalived", "link_down")
# One salt round trip to a minion: the polls below never wait longer.
CALL_TIMEOUT = 10


def __virtual__():
    return __virtualname__


def _local():
    return salt.client.get_local_client(__opts__["conf_file"])


def _call(minions, fun, arg=(), kwarg=None, timeout=CALL_TIMEOUT):
    """{minion: return} of the minions that answered with data (not an error)."""
    answers = _local().cmd(list(minions), fun, arg=list(arg), kwarg=kwarg or {},
                           tgt_type="list", timeout=timeout)
    return {name: ret for name, ret in answers.items() if isinstance(ret, dict)}


def _config(tgt):
    answers = _local().cmd(tgt, "havip.config", timeout=CALL_TIMEOUT)
    configs = [ret for _, ret in sorted(answers.items()) if isinstance(ret, dict) and ret.get("nodes")]
    if not configs:
        raise ValueError(f"no minion matching {tgt!r} has havip deployed (run state.apply havip)")
    balancers = [n["name"] for n in configs[0]["balancers"]]
    # The balancers' own view wins over a backend that was applied earlier.
    return next((c for c in configs if c["node"] and c["node"]["name"] in balancers), configs[0])


def _fail(report, reason):
    __context__["retcode"] = 1
    report.update(result=False, comment=reason)
    return report


def _holders(config, statuses):
    """{vip: [balancers that have its address configured]}."""
    return {
        vip: sorted(name for name, status in statuses.items()
                    if status.get("vips", {}).get(vip, {}).get("held"))
        for vip in sorted(config["vips"])
    }


def _preferred(config, usable):
    """{vip: the balancer that should hold it}: the most preferred (the VIP's
    ``order``, as keepalived ranks priorities) among ``usable``."""
    return {name: next((b for b in vip["order"] if b in usable), None)
            for name, vip in sorted(config["vips"].items())}


def _survey(config):
    """Status and health of every node, and the problems they add up to."""
    names = sorted(config["nodes"])
    balancers = [n["name"] for n in config["balancers"]]
    statuses = _call(names, "havip.status")
    checks = _call(names, "havip.check")
    problems = [f"{name} did not answer" for name in names if name not in checks]
    problems += [f"{name}: {reason}" for name, check in sorted(checks.items()) for reason in check["reasons"]]
    usable = [b for b in balancers if checks.get(b, {}).get("healthy") and not checks[b]["standby"]]
    preferred = _preferred(config, usable)
    holders = _holders(config, {b: statuses[b] for b in balancers if b in statuses})
    for vip, names_holding in holders.items():
        address = config["vips"][vip]["address"]
        if len(names_holding) > 1:
            problems.append(f"split brain: VIP {vip} ({address}) is held by {' and '.join(names_holding)}")
        elif not names_holding:
            problems.append(f"VIP {vip} ({address}) has no holder")
        elif config["keepalived"]["preempt"] and preferred[vip] and names_holding[0] != preferred[vip]:
            problems.append(f"VIP {vip} ({address}) is held by {names_holding[0]},"
                            f" not by the preferred {preferred[vip]}")
    for vip, names_holding in holders.items():
        if len(names_holding) == 1 and not set(usable) - set(names_holding):
            problems.append(f"no other healthy balancer could take over VIP {vip} from {names_holding[0]}")
    return {"holders": holders, "preferred": preferred, "usable": usable,
            "checks": checks, "statuses": statuses, "problems": problems}


def status(tgt="*"):
    """
    The cluster at a glance: the holders of every VIP, the preferred holder,
    every node's health verdict, and the problems.  Exits non-zero (and an
    orchestrate step using it fails) on any problem: a VIP with no holder or
    two ("split brain"), a VIP away from its preferred holder while
    preemption is on, an unhealthy or silent node, or no healthy balancer
    left to take over.

    CLI Example:

    .. code-block:: bash

        salt-run havip.status
    """
    try:
        config = _config(tgt)
    except ValueError as exc:
        return _fail({}, str(exc))
    survey = _survey(config)
    report = {
        "vips": {vip: {"address": config["vips"][vip]["address"], "holders": holders,
                       "preferred": survey["preferred"][vip]}
                 for vip, holders in survey["holders"].items()},
        "nodes": {name: "healthy" + (" (standby)" if check["standby"] else "") if check["healthy"]
                  else "unhealthy: " + "; ".join(check["reasons"])
                  for name, check in sorted(survey["checks"].items())},
        "problems": survey["problems"],
    }
    if survey["problems"]:
        return _fail(report, "; ".join(survey["problems"]))
    report.update(result=True, comment="every VIP has exactly one holder, the preferred one;"
                  " every node is healthy")
    return report


def _budgets(config, failure):
    """Seconds the VIP may take to move, and the cluster to be restored,
    from the configured timers: detection (health check interval x fall +
    timeout, for HAProxy failures), a backup's master-down interval (3
    adverts + skew < 4 adverts) and 1 s for the transition itself; restoring
    adds the check's rise and the preempt delay."""
    keepalived = config["keepalived"]
    check = keepalived["check"]
    advert = float(keepalived["advert_int"])
    detect = check["interval"] * check["fall"] + check["timeout"] if failure.endswith("haproxy") else 0
    move = detect + 4 * advert + 1.0
    restore = check["interval"] * check["rise"] + check["timeout"] + keepalived["preempt_delay"] + 4 * advert + 2.0
    return move, restore


class _Background(threading.Thread):
    """A salt call that runs while the test goes on; ``result`` after join()."""

    def __init__(self, minion, fun, arg=(), kwarg=None, timeout=CALL_TIMEOUT):
        super().__init__(daemon=True)
        self.call = (minion, fun, arg, kwarg, timeout)
        self.result = None

    def run(self):
        minion, fun, arg, kwarg, timeout = self.call
        self.result = _call([minion], fun, arg, kwarg, timeout).get(minion)


def _wait_for_holder(candidates, vip, timeout):
    """(name, since) of the first candidate that holds ``vip`` as MASTER."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, status in sorted(_call(candidates, "havip.status").items()):
            entry = status["vips"].get(vip, {})
            if entry.get("held") and entry.get("state") == "MASTER":
                return name, entry["since"]
        time.sleep(0.2)
    return None, None


def _restore(config, holder, expected, budget):
    """`state.apply havip` on the broken balancer, then wait for the cluster
    to look as it did before.  Returns (seconds, problem or None)."""
    start = time.monotonic()
    applied = _call([holder], "state.apply", ["havip"], timeout=300).get(holder)
    if not isinstance(applied, dict) or not all(s.get("result") for s in applied.values()):
        return time.monotonic() - start, f"state.apply havip on {holder} failed"
    deadline = time.monotonic() + budget
    while True:
        survey = _survey(config)
        if survey["holders"] == expected and not survey["problems"]:
            return time.monotonic() - start, None
        if time.monotonic() > deadline:
            return time.monotonic() - start, (
                f"cluster not restored within {budget:.1f} s of the apply: holders "
                f"{_show(survey['holders'])}" + "".join(f"; {p}" for p in survey["problems"]))
        time.sleep(0.5)


def _show(holders):
    return ", ".join(f"{vip}: {' + '.join(names) or 'none'}" for vip, names in holders.items())


def _pick_client(config, client):
    if client:
        return client
    others = [name for name, node in sorted(config["nodes"].items()) if "balancer" not in node["roles"]]
    if not others:
        raise ValueError("every node is a balancer: name the probing minion"
                         " (pillar failover_test:client)")
    return others[0]


def failover_test(failure="kill_haproxy", client=None, vip=None, rate=100, tgt="*"):
    """
    A live failover test.  Checks the cluster (as :py:func:`status`), probes
    the frontend on the VIP from ``client`` (default: the first node that is
    not a balancer) at ``rate`` requests/s, breaks the VIP's holder
    (``failure``: kill_haproxy, stop_haproxy, kill_keepalived, link_down),
    waits - bounded by budgets computed from the keepalived timers - for the
    VIP on another balancer and for traffic to resume, then restores the
    holder with ``state.apply havip`` and waits for the cluster to be as
    before.  Reports the figures; exits non-zero with the reason if any step
    fails.

    CLI Example:

    .. code-block:: bash

        salt-run havip.failover_test
        salt-run havip.failover_test failure=link_down client=client1
    """
    report = {"failure": failure}
    try:
        if failure not in FAILURES:
            raise ValueError(f"unknown failure {failure!r} (known: {', '.join(FAILURES)})")
        config = _config(tgt)
        client = _pick_client(config, client)
    except ValueError as exc:
        return _fail(report, str(exc))
    before = _survey(config)
    report["holders before"] = _show(before["holders"])
    if before["problems"]:
        return _fail(report, "pre-check failed: " + "; ".join(before["problems"]))
    vip = vip or sorted(config["vips"])[0]
    if vip not in config["vips"]:
        return _fail(report, f"unknown VIP {vip!r} (known: {', '.join(sorted(config['vips']))})")
    holder = before["holders"][vip][0]
    move_budget, restore_budget = _budgets(config, failure)
    address = config["vips"][vip]["address"]
    url = f"http://{f'[{address}]' if ':' in address else address}:{config['frontend']['port']}/"
    report.update(failure=f"{failure} on {holder}", probe=f"{url} from {client}, {rate} requests/s")

    seconds = 1.0 + move_budget + 3.0
    probe = _Background(client, "havip.probe", kwarg={"url": url, "seconds": seconds, "rate": rate},
                        timeout=seconds + 30)
    probe.start()
    time.sleep(1.0)  # good answers before the failure
    problems = []
    breaker = _Background(holder, "havip.inject", [failure],
                          # a link stays down until the probe is over: its
                          # return (the old holder preempting) is not the failover
                          {"duration": seconds + 1.0}, timeout=seconds + 30)
    injected_at = time.time()
    breaker.start()
    if failure != "link_down":
        breaker.join()
        if not breaker.result:
            probe.join()
            return _fail(report, f"havip.inject {failure} on {holder} failed")
        injected_at = breaker.result["at"]
    others = [b["name"] for b in config["balancers"] if b["name"] != holder]
    new_holder, since = _wait_for_holder(others, vip, move_budget + 2.0)
    if new_holder is None:
        problems.append(f"VIP {vip} not on another balancer within {move_budget:.1f} s")
    else:
        moved = since - injected_at
        report["VIP moved after"] = f"{moved:.2f} s ({holder} -> {new_holder}; budget {move_budget:.1f} s)"
        if moved > move_budget:
            problems.append(f"VIP {vip} moved after {moved:.2f} s, over the budget of {move_budget:.1f} s")
    probe.join()
    seen = probe.result
    if not seen:
        problems.append(f"the probe on {client} returned nothing")
    else:
        report["client-visible outage"] = f"{seen['longest_outage']:.2f} s"
        report["failed requests"] = f"{seen['failed']} of {seen['total']}"
        failing_for = (seen["last_failure"] or 0) + seen["started"] - injected_at
        if not seen["recovered"] or failing_for > move_budget + 1.0:
            problems.append(f"traffic through {url} did not resume within {move_budget + 1.0:.1f} s")
    breaker.join()
    expected = dict(before["holders"])
    if new_holder and not config["keepalived"]["preempt"]:
        expected[vip] = [new_holder]  # without preemption the VIP stays where it went
    took, problem = _restore(config, holder, expected, restore_budget)
    report["restored after"] = f"{took:.1f} s (apply + budget {restore_budget:.1f} s)"
    report["holders after"] = _show(_survey(config)["holders"])
    if problem:
        problems.append(problem)
    if problems:
        return _fail(report, "failover test FAILED: " + "; ".join(problems))
    report.update(result=True, comment=f"failover test passed: {failure} on {holder}")
    return report

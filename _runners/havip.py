"""
havip, cluster-wide: who holds each VIP, is every node healthy, a live
failover test that measures and fails loudly, and a rolling deploy that
loses no request.  Used by ``salt-run`` and by the orchestrate files
``havip.failover_test`` and ``havip.deploy``.

The cluster is discovered from what the formula deployed on the minions
(``havip.config``); the minions answer for themselves (``havip.status``,
``havip.check``), so nothing here needs the pillar.
"""

import collections
import re
import threading
import time
import uuid

import salt.client

__virtualname__ = "havip"

FAILURES = ("kill_haproxy", "stop_haproxy", "kill_keepalived", "link_down")
# One salt round trip to a minion: the polls below never wait longer.
CALL_TIMEOUT = 10
HAPROXY_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def __virtual__():
    return __virtualname__


def _local():
    return salt.client.get_local_client(__opts__["conf_file"])


def _answers(minions, fun, arg=(), kwarg=None, timeout=CALL_TIMEOUT):
    """{minion: return} of the minions that answered, errors included."""
    return _local().cmd(list(minions), fun, arg=list(arg), kwarg=kwarg or {},
                        tgt_type="list", timeout=timeout)


def _call(minions, fun, arg=(), kwarg=None, timeout=CALL_TIMEOUT):
    """{minion: return} of the minions that answered with data (not an error)."""
    answers = _answers(minions, fun, arg, kwarg, timeout)
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


def _servers_up(config, statuses):
    """{balancer: the backend servers its HAProxy has UP}."""
    return {b["name"]: sorted(server for server, state in (statuses[b["name"]]["haproxy"]["backends"] or {}).items()
                              if state.startswith("UP"))
            for b in config["balancers"] if b["name"] in statuses}


def _servers_not_back(before, now):
    """'nginx1 not UP on svr1' for every server UP before that is not now."""
    return [f"{server} not UP on {name} (it was before the test)"
            for name, servers in sorted(before.items())
            for server in servers if server not in now.get(name, [])]


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
    adds the check's rise, the preempt delay, and HAProxy's rise of the
    backend servers (a link that came back)."""
    keepalived = config["keepalived"]
    check = keepalived["check"]
    advert = float(keepalived["advert_int"])
    detect = check["interval"] * check["fall"] + check["timeout"] if failure.endswith("haproxy") else 0
    move = detect + 4 * advert + 1.0
    servers = config["backend"]["check"]
    restore = (check["interval"] * check["rise"] + check["timeout"] + keepalived["preempt_delay"] + 4 * advert + 2.0
               + _haproxy_seconds(servers["inter"]) * servers["rise"])
    return move, restore


def _haproxy_seconds(value):
    """Seconds of an HAProxy time (havip.validate checked it): 1s, 500ms, 2000 (ms)."""
    number, unit = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", str(value)).groups()
    return int(number) * HAPROXY_UNITS[unit or "ms"]


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


def _restore(config, holder, expected, servers_up, budget):
    """`state.apply havip` on the broken balancer, then wait for the cluster
    to look as it did before: the ``expected`` holders, and every backend
    server UP on each balancer that was (``servers_up``).  Returns (seconds,
    problem or None)."""
    start = time.monotonic()
    applied = _call([holder], "state.apply", ["havip"], timeout=300).get(holder)
    if not isinstance(applied, dict) or not all(s.get("result") for s in applied.values()):
        return time.monotonic() - start, f"state.apply havip on {holder} failed"
    deadline = time.monotonic() + budget
    while True:
        survey = _survey(config)
        problems = survey["problems"] + _servers_not_back(servers_up, _servers_up(config, survey["statuses"]))
        if survey["holders"] == expected and not problems:
            return time.monotonic() - start, None
        if time.monotonic() > deadline:
            return time.monotonic() - start, (
                f"cluster not restored within {budget:.1f} s of the apply: holders "
                f"{_show(survey['holders'])}" + "".join(f"; {p}" for p in problems))
        time.sleep(0.5)


def _show(holders):
    return ", ".join(f"{vip}: {' + '.join(names) or 'none'}" for vip, names in holders.items())


def _frontend_url(config, vip):
    address = config["vips"][vip]["address"]
    return f"http://{f'[{address}]' if ':' in address else address}:{config['frontend']['port']}/"


def _pick_client(config, client, pillar_key="failover_test:client"):
    if client:
        return client
    others = [name for name, node in sorted(config["nodes"].items()) if "balancer" not in node["roles"]]
    if not others:
        raise ValueError("every node is a balancer: name the probing minion"
                         f" (pillar {pillar_key})")
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
    url = _frontend_url(config, vip)
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
    took, problem = _restore(config, holder, expected, _servers_up(config, before["statuses"]), restore_budget)
    report["restored after"] = f"{took:.1f} s (apply + budget {restore_budget:.1f} s)"
    report["holders after"] = _show(_survey(config)["holders"])
    if problem:
        problems.append(problem)
    if problems:
        return _fail(report, "failover test FAILED: " + "; ".join(problems))
    report.update(result=True, comment=f"failover test passed: {failure} on {holder}")
    return report


# ---- planned switchover -------------------------------------------------------


def _planned(name, fun, tgt):
    """The report of ``fun`` (havip.standby or havip.resume) on balancer
    ``name`` as a handover."""
    verb = fun.split(".")[1]
    report = {"balancer": name}
    try:
        config = _config(tgt)
    except ValueError as exc:
        return _fail(report, str(exc))
    balancers = [node["name"] for node in config["balancers"]]
    if name not in balancers:
        return _fail(report, f"{name!r} is not a balancer (balancers: {', '.join(balancers)})")
    start = time.monotonic()
    problem, notes = _move(config, _Step(f"{verb} {name}", [name], fun, [], {}, _switch_timeout(config)))
    report.update(seconds=round(time.monotonic() - start, 1), handover=notes)
    if problem:
        return _fail(report, f"{verb} {name} FAILED: {problem}")
    report.update(result=True, comment=f"{verb} {name} done" + (": no connection lost in the move" if notes
                                                             else ": no VIP had to move"))
    return report


def standby(name, tgt="*"):
    """
    Planned maintenance on balancer ``name``, losing no connection:
    ``havip.standby`` there - its VIPs move to the other balancers and stay
    away, across re-applies and restarts, until :py:func:`resume` - as a
    handover.  ``name`` keeps serving the connections it has on its VIPs
    (``havip.linger``), the other balancers pass the packets of those
    connections back to it (``havip.relay``), and once they are done
    (``havip.release``, at most 30 s) the relays end (``havip.unrelay``).
    ``salt name havip.standby`` alone moves the VIPs too, but a connection
    in flight at that moment may be reset.

    Exits non-zero when a step fails; the comment says which and why.

    CLI Example:

    .. code-block:: bash

        salt-run havip.standby svr1
    """
    return _planned(name, "havip.standby", tgt)


def resume(name, tgt="*"):
    """
    End :py:func:`standby` of balancer ``name``: ``havip.resume`` there as
    a handover - with preemption on, the balancers holding the VIPs that
    ``name`` is preferred for keep serving the connections they have on
    them while ``name`` takes them back, and ``name`` passes those
    connections' packets to them until they are done.

    CLI Example:

    .. code-block:: bash

        salt-run havip.resume svr1
    """
    return _planned(name, "havip.resume", tgt)


# ---- rolling deploy -----------------------------------------------------------

# havip.probe's longest run: a deploy starts its probes for that long and
# ends them through a stop file when the rollout is over.
PROBE_LIMIT = 3600
# Seconds of probing before the first step (the probe's job must reach the client).
PROBE_LEAD = 2.0
# Seconds a drained server may keep sessions, and a readied one take to be UP.
SERVER_TIMEOUT = 30
APPLY_TIMEOUT = 300
# Seconds the cluster may take to look healthy after the last step.
SETTLE_TIMEOUT = 10

# Seconds a VIP's old holder may go on serving the connections it had when
# the VIP moved (havip.release's timeout).
LINGER_TIMEOUT = 30
# The steps that move VIPs: run as a handover (_move).
MOVES = ("havip.standby", "havip.resume")

# One step of a rollout: ``fun`` on every one of ``targets``.
_Step = collections.namedtuple("_Step", "label targets fun arg kwarg timeout")


def _error_line(text):
    """The line of a minion's error message that says what went wrong: the
    first, or a traceback's last (the exception)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if "Traceback (most recent call last)" in text else lines[0]


def _error_text(answer):
    """A minion's error answer (a message, or a list of them such as render
    errors) on one line."""
    texts = [str(text) for text in (answer if isinstance(answer, list) else [answer])]
    return "; ".join(_error_line(text) for text in texts if text.strip()) or repr(answer)


class _Probe(threading.Thread):
    """``havip.probe`` of ``url`` from ``client`` for as long as the rollout
    takes: started for PROBE_LIMIT s, ended by creating its stop file."""

    def __init__(self, client, url, rate, max_failed=0):
        super().__init__(daemon=True)
        self.client, self.url, self.rate, self.max_failed = client, url, rate, max_failed
        self.stop_file = f"/tmp/havip-deploy-{uuid.uuid4().hex}.stop"
        self.answer = None

    def run(self):
        kwarg = {"url": self.url, "seconds": PROBE_LIMIT, "rate": self.rate, "stop_file": self.stop_file}
        self.answer = _answers([self.client], "havip.probe", kwarg=kwarg,
                               timeout=PROBE_LIMIT + 30).get(self.client)

    def stop(self):
        """End the probe; returns its problem, None if every request it sent
        was answered."""
        ended_early = not self.is_alive()
        if not ended_early:
            _answers([self.client], "file.touch", [self.stop_file])
            self.join(CALL_TIMEOUT)
        return self._problem(ended_early)

    def _problem(self, ended_early):
        seen = self.answer
        where = f"the probe of {self.url} on {self.client}"
        if self.is_alive():
            return f"{where} did not stop"
        if not isinstance(seen, dict):
            return f"{where} failed: {'no answer' if seen is None else _error_text(seen)}"
        if ended_early:
            return f"{where} ended after {seen['seconds']:.0f} s, before the rollout did"
        if seen["failed"] > self.max_failed:
            return (f"{seen['failed']} of {seen['total']} requests to {self.url} failed"
                    f" (longest outage {seen['longest_outage']:.2f} s)")
        return None


def _rollout_order(config, holders):
    """The nodes in rollout order: those that are only backends, then the
    balancers holding no VIP, then those holding VIPs (by name within each
    group); and the set of those holding VIPs."""
    holding = {name for names in holders.values() for name in names}
    backends = [name for name, node in sorted(config["nodes"].items()) if "balancer" not in node["roles"]]
    balancers = [node["name"] for node in config["balancers"]]
    return (backends + [b for b in balancers if b not in holding]
            + [b for b in balancers if b in holding]), holding


def _switch_timeout(config):
    """Seconds a standby or resume call may take: its own budget (4 adverts
    + preempt_delay + 2 s) and a salt round trip."""
    keepalived = config["keepalived"]
    return 4 * float(keepalived["advert_int"]) + keepalived["preempt_delay"] + 2.0 + CALL_TIMEOUT


def _node_steps(config, name, holds):
    """One node's steps: its backend server drained on every balancer, its
    VIPs moved away, the apply and the check, then back in reverse order."""
    balancers = [node["name"] for node in config["balancers"]]
    on = ", ".join(balancers)
    server = {"timeout": SERVER_TIMEOUT}
    backend = "backend" in config["nodes"][name]["roles"]
    steps = []
    if backend:
        steps.append(_Step(f"drain {name} on {on}", balancers, "havip.drain", [name], server,
                           SERVER_TIMEOUT + CALL_TIMEOUT))
    if holds:
        steps.append(_Step(f"standby {name}", [name], "havip.standby", [], {}, _switch_timeout(config)))
    steps.append(_Step(f"apply {name}", [name], "state.apply", ["havip"], {}, APPLY_TIMEOUT))
    steps.append(_Step(f"check {name}", [name], "havip.check", [], {}, CALL_TIMEOUT))
    if holds:
        steps.append(_Step(f"resume {name}", [name], "havip.resume", [], {}, _switch_timeout(config)))
    if backend:
        steps.append(_Step(f"ready {name} on {on}", balancers, "havip.ready", [name], server,
                           SERVER_TIMEOUT + CALL_TIMEOUT))
    return steps


def _apply_problem(states):
    """The states that failed in a ``state.apply`` return, earliest first."""
    failed = sorted((state for state in states.values() if not state.get("result")),
                    key=lambda state: state.get("__run_num__", 0))
    return "; ".join(f"{state.get('__id__')} failed ({str(state.get('comment')).strip().splitlines()[0]})"
                     for state in failed) or None


def _step_problem(fun, answer):
    """Why a minion's answer to a rollout step is a failure, or None."""
    if answer is None:
        return "did not answer"
    if not isinstance(answer, dict):
        return _error_text(answer)
    if fun == "state.apply":
        return _apply_problem(answer)
    if fun == "havip.check" and not answer["healthy"]:
        return "unhealthy: " + "; ".join(answer["reasons"])
    return None


def _run_step(step):
    """(None or why the step failed, {target where it went through: its answer})."""
    answers = _answers(step.targets, step.fun, step.arg, step.kwarg, step.timeout)
    problems = {name: _step_problem(step.fun, answers.get(name)) for name in step.targets}
    failed = "; ".join(f"{name}: {problem}" for name, problem in problems.items() if problem)
    return failed or None, {name: answers[name] for name, problem in problems.items() if not problem}


def _call_step(targets, fun, arg=(), timeout=CALL_TIMEOUT):
    """A one-off step; its problem names the function."""
    problem, answers = _run_step(_Step(fun, targets, fun, list(arg), {}, timeout))
    return (f"{fun}: {problem}" if problem else None), answers


def _givers(config, name, fun):
    """{balancer: [VIPs]} that ``fun`` (havip.standby or havip.resume) on
    balancer ``name`` is about to move away from them: for standby the VIPs
    ``name`` holds, for resume (with preemption) those it is preferred for,
    from their holders now."""
    balancers = [node["name"] for node in config["balancers"]]
    holders = _holders(config, _call(balancers, "havip.status"))
    if fun == "havip.standby":
        moving = [vip for vip, names in holders.items() if name in names]
        return {name: moving} if moving else {}
    givers = {}
    if config["keepalived"]["preempt"]:
        for vip, names in holders.items():
            for holder in names:
                if config["vips"][vip]["order"][0] == name and holder != name:
                    givers.setdefault(holder, []).append(vip)
    return givers


def _handover(config, step, givers):
    """Run ``step`` (havip.standby or havip.resume of one balancer) so that
    no connection is lost: ``givers`` ({balancer: [VIPs it hands over]})
    keep those VIPs for the connections they have (havip.linger), every
    other balancer relays the packets of connections it does not know to
    them (havip.relay), the step moves the VIPs, then the givers release
    them once those connections are done (havip.release) and the relays end
    (havip.unrelay).  Returns (problem or None, {giver: its release})."""
    takers = [node["name"] for node in config["balancers"] if node["name"] not in givers]
    lingering, relay_to, relayed, problem = [], {}, False, None
    for giver, vips in sorted(givers.items()):
        problem, answers = _call_step([giver], "havip.linger", [vips])
        if problem:
            break
        lingering.append(giver)
        relay_to.update(answers[giver]["relay_to"])
    else:
        relayed = True  # undone on every taker, also where it failed
        problem, _ = _call_step(takers, "havip.relay", [relay_to])
        if not problem:
            problem, _ = _run_step(step)
    problems, released = [problem], {}
    if lingering:
        trouble, released = _call_step(lingering, "havip.release", [LINGER_TIMEOUT], LINGER_TIMEOUT + CALL_TIMEOUT)
        problems.append(trouble)
    if relayed:
        problems.append(_call_step(takers, "havip.unrelay")[0])
    return "; ".join(p for p in problems if p) or None, released


def _move(config, step):
    """``step`` (havip.standby or havip.resume of one balancer), as a
    handover when it moves VIPs; (problem or None, notes on the handover)."""
    (name,) = step.targets
    givers = _givers(config, name, step.fun)
    if not givers:
        return _run_step(step)[0], []
    problem, released = _handover(config, step, givers)
    notes = [f"{giver} served its connections on {', '.join(givers[giver])} {answer['seconds']:.1f} s more"
             + (f", then cut {answer['cut']}" if answer["cut"] else "")
             for giver, answer in sorted(released.items())]
    return problem, notes


def _left_behind(name, done, failed, went_through):
    """What a node is left with when its ``failed`` step stopped the rollout
    after its ``done`` steps (``went_through``: where the failed step did)."""
    ran = {step.fun for step in done} | {failed.fun}
    drain = next((step.targets for step in done if step.fun == "havip.drain"),
                 went_through if failed.fun == "havip.drain" else [])
    notes = []
    if drain and "havip.ready" not in ran:
        notes.append(f"{name} stays drained on {', '.join(drain)} (havip.ready {name} there puts it back)")
    if "havip.standby" in {step.fun for step in done} and "havip.resume" not in ran:
        notes.append(f"{name} stays on standby (havip.resume on {name} ends it)")
    return notes


def _roll_out(config, order, holding, steps):
    """Run every node's steps in ``order`` (a standby or resume as a
    handover), appending "label: seconds" to ``steps``.  Stops at the first
    failing step; returns why it failed, what that node is left with and
    which nodes were left untouched, or None when every step passed."""
    for index, name in enumerate(order):
        done = []
        for step in _node_steps(config, name, name in holding):
            start = time.monotonic()
            notes = []
            if step.fun in MOVES:
                problem, notes = _move(config, step)
                went_through = [] if problem else step.targets
            else:
                problem, answers = _run_step(step)
                went_through = list(answers)
            steps.append(f"{step.label}: {time.monotonic() - start:.1f} s" + (" FAILED" if problem else "")
                         + "".join(f" ({note})" for note in notes))
            if problem:
                untouched = order[index + 1:]
                return "; ".join([f"step '{step.label}' failed: {problem}", "stopped there",
                                  *_left_behind(name, done, step, went_through)]
                                 + ([f"untouched: {', '.join(untouched)}"] if untouched else []))
            done.append(step)
    return None


def _settled(tgt, report):
    """None once every node is healthy and each VIP on its preferred holder
    (polled for up to SETTLE_TIMEOUT s), else why not."""
    config = _config(tgt)  # the configuration just deployed
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while (survey := _survey(config))["problems"] and time.monotonic() < deadline:
        time.sleep(0.5)
    report["holders after"] = _show(survey["holders"])
    if survey["problems"]:
        return "final check failed: " + "; ".join(survey["problems"])
    return None


def _under_probes(probes, rollout):
    """Run ``rollout`` (it returns its problem or None) while the probes
    run; returns every problem, the probes' too."""
    for probe in probes:
        probe.start()
    try:
        time.sleep(PROBE_LEAD)
        if all(probe.is_alive() for probe in probes):
            problem = rollout()
        else:
            problem = "nothing deployed: a probe is not running"
    finally:
        probe_problems = [probe.stop() for probe in probes]
    return [p for p in [problem, *probe_problems] if p]


def _deploy(config, tgt, client, rate, max_failed, report):
    """Pre-check, then the rollout under probes; returns the problems."""
    before = _survey(config)
    report["holders before"] = _show(before["holders"])
    if before["problems"]:
        return ["pre-check failed: " + "; ".join(before["problems"])]
    order, holding = _rollout_order(config, before["holders"])
    urls = [_frontend_url(config, vip) for vip in sorted(config["vips"])]
    report.update(order=", ".join(order), probe=f"{', '.join(urls)} from {client}, {rate} requests/s each",
                  steps=[])
    probes = [_Probe(client, url, rate, max_failed) for url in urls]
    problems = _under_probes(
        probes, lambda: _roll_out(config, order, holding, report["steps"]) or _settled(tgt, report))
    seen = [probe.answer for probe in probes if isinstance(probe.answer, dict)]
    if seen:
        report["failed requests"] = f"{sum(s['failed'] for s in seen)} of {sum(s['total'] for s in seen)}"
    return problems


def deploy(client=None, rate=100, max_failed=0, tgt="*"):
    """
    A rolling deploy of the havip pillar as it is now: ``state.apply havip``
    on one node at a time, each taken out of service first, checked after
    and put back, while ``client`` (default: the first node that is not a
    balancer) probes the frontend on every VIP at ``rate`` requests/s.

    1. pre-check, as :py:func:`status`;
    2. the nodes that are only backends, by name: drained on every balancer
       (``havip.drain``), applied, checked (``havip.check``), readied on
       every balancer (``havip.ready``);
    3. the balancers holding no VIP: applied, checked;
    4. the balancers holding VIPs: ``havip.standby`` (the VIPs move away),
       applied, checked, ``havip.resume``; both moves are handovers, as in
       :py:func:`standby`, so no connection in flight is lost;
    5. every node healthy and each VIP on its preferred holder; every probe
       request answered.

    A node that is backend and balancer goes with the balancers, drained
    first and readied last.

    The first failing step stops the rollout: the nodes after it are left
    untouched, a backend whose apply or check failed stays drained, a
    balancer stays on standby; the comment says which step failed, why, and
    what is left so.  Any failure (a failed probe request too) makes
    ``salt-run`` exit 1; ``max_failed`` failed requests per VIP are
    tolerated (default 0).  Returns every step with its duration.

    CLI Example:

    .. code-block:: bash

        salt-run havip.deploy
        salt-run havip.deploy client=client1
    """
    report = {}
    try:
        config = _config(tgt)
        client = _pick_client(config, client, "deploy:client")
    except ValueError as exc:
        return _fail(report, str(exc))
    problems = _deploy(config, tgt, client, rate, max_failed, report)
    if problems:
        return _fail(report, "rolling deploy FAILED: " + "; ".join(problems))
    failed = report["failed requests"]
    report.update(result=True, comment=f"rolling deploy done: {report['order']}; " + (
        "no request failed" if failed.startswith("0 of") else
        f"{failed} requests failed (max_failed: {max_failed} per VIP)"))
    return report

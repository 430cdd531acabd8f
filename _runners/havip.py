"""
havip, cluster-wide: who holds each VIP, is every node healthy, a live
failover test that measures and fails loudly, and a rolling deploy that
loses no request.  Used by ``salt-run`` and by the orchestrate files
``havip.failover_test`` and ``havip.deploy``.

The cluster is discovered from what the formula deployed on the minions
(``havip.config``); the minions answer for themselves (``havip.status``,
``havip.check``), so nothing here needs the pillar.  The reports are plain
data (``--out=json``); ``comment`` says what they mean.

This runner is the command surface: the work is done by the helpers in the
formula's ``_utils/havip_*.py``, which ``salt-run saltutil.sync_all`` brings
to the master.
"""

import contextlib
import threading
import time
import uuid

import salt.client

try:
    import havip_facts
    import havip_health
    import havip_rollout
except ImportError as missing:
    NOT_SYNCED = (False, f"havip: its helpers (_utils/havip_*.py) are not on the master ({missing}):"
                         " run salt-run saltutil.sync_all")
else:
    NOT_SYNCED = None

__virtualname__ = "havip"


def __virtual__():
    return NOT_SYNCED or __virtualname__


class _Minions:
    """The minions, asked through a LocalClient."""

    def __init__(self, client):
        self.client = client

    def answers(self, minions, fun, arg=(), kwarg=None, timeout=None):
        """{minion: return} of the minions that answered, errors included."""
        return self.client.cmd(list(minions), fun, arg=list(arg), kwarg=kwarg or {},
                               tgt_type="list", timeout=timeout or havip_facts.CALL_TIMEOUT)

    def call(self, minions, fun, arg=(), kwarg=None, timeout=None):
        """{minion: return} of the minions that answered with data (not an error)."""
        answers = self.answers(minions, fun, arg, kwarg, timeout)
        return {name: ret for name, ret in answers.items() if isinstance(ret, dict)}

    def config(self, tgt):
        """The havip configuration deployed on the minions matching ``tgt``."""
        answers = self.client.cmd(tgt, "havip.config", timeout=havip_facts.CALL_TIMEOUT)
        return havip_facts.deployed_config(answers, tgt)


@contextlib.contextmanager
def _connect():
    """The minions, through one LocalClient for this run (or this thread: a
    LocalClient listens for its own returns), closed at the end."""
    with salt.client.get_local_client(__opts__["conf_file"]) as client:
        yield _Minions(client)


def _fail(report, reason):
    __context__["retcode"] = 1
    report.update(result=False, comment=reason)
    return report


def _survey(minions, config):
    """Status and health of every node, and the problems they add up to."""
    names = sorted(config["nodes"])
    return havip_health.survey(config, minions.call(names, "havip.status"), minions.call(names, "havip.check"))


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
    with _connect() as minions:
        try:
            config = minions.config(tgt)
        except ValueError as exc:
            return _fail({}, str(exc))
        survey = _survey(minions, config)
    report = havip_health.cluster_view(config, survey)
    if survey["problems"]:
        return _fail(report, "; ".join(survey["problems"]))
    report.update(result=True, comment="every VIP has exactly one holder, the preferred one;"
                  " every node is healthy")
    return report


# ---- failover test ------------------------------------------------------------


class _Background(threading.Thread):
    """A salt call that runs while the test goes on; ``result`` after join()."""

    def __init__(self, minion, fun, arg=(), kwarg=None, timeout=None):
        super().__init__(daemon=True)
        self.call = (minion, fun, arg, kwarg, timeout)
        self.result = None

    def run(self):
        minion, fun, arg, kwarg, timeout = self.call
        with _connect() as minions:
            self.result = minions.call([minion], fun, arg, kwarg, timeout).get(minion)


def _wait_for_holder(minions, candidates, vip, timeout):
    """(name, since) of the first candidate that holds ``vip`` as MASTER."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, status in sorted(minions.call(candidates, "havip.status").items()):
            entry = status["vips"].get(vip, {})
            if entry.get("held") and entry.get("state") == "MASTER":
                return name, entry["since"]
        time.sleep(0.2)
    return None, None


def _restore(minions, config, holder, expected, servers_up, budget):
    """`state.apply havip` on the broken balancer, then wait for the cluster
    to look as it did before: the ``expected`` holders, and every backend
    server UP on each balancer that was (``servers_up``).  Returns (seconds,
    problem or None)."""
    start = time.monotonic()
    applied = minions.call([holder], "state.apply", ["havip"], timeout=havip_rollout.APPLY_TIMEOUT).get(holder)
    if not isinstance(applied, dict) or not all(s.get("result") for s in applied.values()):
        return time.monotonic() - start, f"state.apply havip on {holder} failed"
    deadline = time.monotonic() + budget
    while True:
        survey = _survey(minions, config)
        problems = survey["problems"] + havip_health.servers_not_back(
            servers_up, havip_health.servers_up(config, survey["statuses"]))
        if survey["holders"] == expected and not problems:
            return time.monotonic() - start, None
        if time.monotonic() > deadline:
            return time.monotonic() - start, (
                f"cluster not restored within {budget:.1f} s of the apply: holders "
                f"{havip_health.show(survey['holders'])}" + "".join(f"; {p}" for p in problems))
        time.sleep(0.5)


def _break_and_measure(minions, config, report, move_budget):
    """Steps 2-4 of the failover test: break ``report["holder"]`` while the
    client probes, wait for the VIP on another balancer; fills in the
    figures, returns (the new holder or None, problems), or None when the
    failure could not be injected."""
    holder, vip, probing = report["holder"], report["vip"], report["probe"]
    seconds = 1.0 + move_budget + 3.0
    probe = _Background(probing["client"], "havip.probe",
                        kwarg={"url": probing["url"], "seconds": seconds, "rate": probing["rate"]},
                        timeout=seconds + 30)
    probe.start()
    time.sleep(1.0)  # good answers before the failure
    problems = []
    breaker = _Background(holder, "havip.inject", [report["failure"]],
                          # a link stays down until the probe is over: its
                          # return (the old holder preempting) is not the failover
                          {"duration": seconds + 1.0}, timeout=seconds + 30)
    injected_at = time.time()
    breaker.start()
    if report["failure"] != "link_down":
        breaker.join()
        if not breaker.result:
            probe.join()
            return None
        injected_at = breaker.result["at"]
    others = [b["name"] for b in config["balancers"] if b["name"] != holder]
    new_holder, since = _wait_for_holder(minions, others, vip, move_budget + 2.0)
    if new_holder is None:
        problems.append(f"VIP {vip} not on another balancer within {move_budget:.1f} s")
    else:
        moved = since - injected_at
        report.update(new_holder=new_holder, vip_moved_after=round(moved, 2))
        if moved > move_budget:
            problems.append(f"VIP {vip} moved after {moved:.2f} s, over the budget of {move_budget:.1f} s")
    probe.join()
    seen = probe.result
    if not seen:
        problems.append(f"the probe on {probing['client']} returned nothing")
    else:
        report.update(client_visible_outage=round(seen["longest_outage"], 2),
                      failed_requests=seen["failed"], requests=seen["total"])
        failing_for = (seen["last_failure"] or 0) + seen["started"] - injected_at
        if not seen["recovered"] or failing_for > move_budget + 1.0:
            problems.append(f"traffic through {probing['url']} did not resume within {move_budget + 1.0:.1f} s")
    breaker.join()
    return new_holder, problems


def _failover_test(minions, report, client, vip, rate, tgt):
    """The failover test of :py:func:`failover_test`, filling in ``report``."""
    failure = report["failure"]
    try:
        if unknown := havip_facts.unknown_failure(failure):
            raise ValueError(unknown)
        config = minions.config(tgt)
        client = havip_facts.probing_client(config, client, "failover_test:client")
    except ValueError as exc:
        return _fail(report, str(exc))
    before = _survey(minions, config)
    report["holders_before"] = before["holders"]
    if before["problems"]:
        return _fail(report, "pre-check failed: " + "; ".join(before["problems"]))
    vip = vip or sorted(config["vips"])[0]
    if vip not in config["vips"]:
        return _fail(report, f"unknown VIP {vip!r} (known: {', '.join(sorted(config['vips']))})")
    holder = before["holders"][vip][0]
    move_budget, restore_budget = havip_facts.failover_budgets(config, failure)
    report.update(vip=vip, holder=holder, move_budget=round(move_budget, 2),
                  probe={"url": havip_facts.frontend_url(config, vip), "client": client, "rate": rate})
    measured = _break_and_measure(minions, config, report, move_budget)
    if measured is None:
        return _fail(report, f"havip.inject {failure} on {holder} failed")
    new_holder, problems = measured
    expected = dict(before["holders"])
    if new_holder and not config["keepalived"]["preempt"]:
        expected[vip] = [new_holder]  # without preemption the VIP stays where it went
    took, problem = _restore(minions, config, holder, expected,
                             havip_health.servers_up(config, before["statuses"]), restore_budget)
    report.update(restored_after=round(took, 1), restore_budget=round(restore_budget, 2),
                  holders_after=_survey(minions, config)["holders"])
    if problem:
        problems.append(problem)
    if problems:
        return _fail(report, "failover test FAILED: " + "; ".join(problems))
    report.update(result=True, comment=f"failover test passed: {failure} on {holder}")
    return report


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
    with _connect() as minions:
        return _failover_test(minions, {"failure": failure}, client, vip, rate, tgt)


# ---- planned switchover -------------------------------------------------------


def _planned(name, fun, tgt):
    """The report of ``fun`` (havip.standby or havip.resume) on balancer
    ``name`` as a handover."""
    verb = fun.split(".")[1]
    report = {"balancer": name}
    with _connect() as minions:
        try:
            config = minions.config(tgt)
        except ValueError as exc:
            return _fail(report, str(exc))
        balancers = [node["name"] for node in config["balancers"]]
        if name not in balancers:
            return _fail(report, f"{name!r} is not a balancer (balancers: {', '.join(balancers)})")
        start = time.monotonic()
        problem, notes = _move(minions, config, havip_rollout.move_step(config, name, fun))
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


def _run_step(minions, step):
    """(None or why the step failed, {target where it went through: its answer})."""
    answers = minions.answers(step.targets, step.fun, step.arg, step.kwarg, step.timeout)
    problems = {name: havip_rollout.step_problem(step.fun, answers.get(name)) for name in step.targets}
    failed = "; ".join(f"{name}: {problem}" for name, problem in problems.items() if problem)
    return failed or None, {name: answers[name] for name, problem in problems.items() if not problem}


def _call_step(minions, targets, fun, arg=(), timeout=None):
    """A one-off step; its problem names the function."""
    step = havip_rollout.Step(fun, targets, fun, list(arg), {}, timeout or havip_facts.CALL_TIMEOUT)
    problem, answers = _run_step(minions, step)
    return (f"{fun}: {problem}" if problem else None), answers


def _handover(minions, config, step, givers):
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
        problem, answers = _call_step(minions, [giver], "havip.linger", [vips])
        if problem:
            break
        lingering.append(giver)
        relay_to.update(answers[giver]["relay_to"])
    else:
        relayed = True  # undone on every taker, also where it failed
        problem, _ = _call_step(minions, takers, "havip.relay", [relay_to])
        if not problem:
            problem, _ = _run_step(minions, step)
    problems, released = [problem], {}
    if lingering:
        linger = havip_facts.WAIT_DEFAULT
        trouble, released = _call_step(minions, lingering, "havip.release", [linger],
                                       linger + havip_facts.CALL_TIMEOUT)
        problems.append(trouble)
    if relayed:
        problems.append(_call_step(minions, takers, "havip.unrelay")[0])
    return "; ".join(p for p in problems if p) or None, released


def _move(minions, config, step):
    """``step`` (havip.standby or havip.resume of one balancer), as a
    handover when it moves VIPs; (problem or None, notes on the handover)."""
    (name,) = step.targets
    balancers = [node["name"] for node in config["balancers"]]
    held = havip_health.holders(config, minions.call(balancers, "havip.status"))
    givers = havip_rollout.givers(config, name, step.fun, held)
    if not givers:
        return _run_step(minions, step)[0], []
    problem, released = _handover(minions, config, step, givers)
    return problem, havip_rollout.handover_notes(givers, released)


# ---- rolling deploy -----------------------------------------------------------


class _Probe(threading.Thread):
    """``havip.probe`` of ``url`` from ``client`` for as long as the rollout
    takes: started for WAIT_LIMIT s (the longest probe), ended by creating
    its stop file through ``minions``."""

    def __init__(self, minions, client, url, rate, max_failed=0):
        super().__init__(daemon=True)
        self.minions = minions
        self.client, self.url, self.rate, self.max_failed = client, url, rate, max_failed
        self.stop_file = f"/tmp/havip-deploy-{uuid.uuid4().hex}.stop"
        self.answer = None

    def run(self):
        limit = havip_facts.WAIT_LIMIT
        kwarg = {"url": self.url, "seconds": limit, "rate": self.rate, "stop_file": self.stop_file}
        with _connect() as minions:
            self.answer = minions.answers([self.client], "havip.probe", kwarg=kwarg,
                                          timeout=limit + 30).get(self.client)

    def stop(self):
        """End the probe; returns its problem, None if every request it sent
        was answered."""
        ended_early = not self.is_alive()
        if not ended_early:
            self.minions.answers([self.client], "file.touch", [self.stop_file])
            self.join(havip_facts.CALL_TIMEOUT)
        return self._problem(ended_early)

    def _problem(self, ended_early):
        where = f"the probe of {self.url} on {self.client}"
        if self.is_alive():
            return f"{where} did not stop"
        return havip_rollout.probe_problem(self.answer, where, self.url, ended_early, self.max_failed)


def _roll_out(minions, config, order, holding, steps):
    """Run every node's steps in ``order`` (a standby or resume as a
    handover), appending "label: seconds" to ``steps``.  Stops at the first
    failing step; returns why it failed, what that node is left with and
    which nodes were left untouched, or None when every step passed."""
    for index, name in enumerate(order):
        done = []
        for step in havip_rollout.node_steps(config, name, name in holding):
            start = time.monotonic()
            notes = []
            if step.fun in havip_rollout.MOVES:
                problem, notes = _move(minions, config, step)
                went_through = [] if problem else step.targets
            else:
                problem, answers = _run_step(minions, step)
                went_through = list(answers)
            steps.append(f"{step.label}: {time.monotonic() - start:.1f} s" + (" FAILED" if problem else "")
                         + "".join(f" ({note})" for note in notes))
            if problem:
                untouched = order[index + 1:]
                return "; ".join([f"step '{step.label}' failed: {problem}", "stopped there",
                                  *havip_rollout.left_behind(name, done, step, went_through)]
                                 + ([f"untouched: {', '.join(untouched)}"] if untouched else []))
            done.append(step)
    return None


def _settled(minions, tgt, report):
    """None once every node is healthy and each VIP on its preferred holder
    (polled for up to SETTLE_TIMEOUT s), else why not."""
    config = minions.config(tgt)  # the configuration just deployed
    deadline = time.monotonic() + havip_rollout.SETTLE_TIMEOUT
    while (survey := _survey(minions, config))["problems"] and time.monotonic() < deadline:
        time.sleep(0.5)
    report["holders_after"] = survey["holders"]
    if survey["problems"]:
        return "final check failed: " + "; ".join(survey["problems"])
    return None


def _under_probes(probes, rollout):
    """Run ``rollout`` (it returns its problem or None) while the probes
    run; returns every problem, the probes' too."""
    for probe in probes:
        probe.start()
    try:
        time.sleep(havip_rollout.PROBE_LEAD)
        if all(probe.is_alive() for probe in probes):
            problem = rollout()
        else:
            problem = "nothing deployed: a probe is not running"
    finally:
        probe_problems = [probe.stop() for probe in probes]
    return [p for p in [problem, *probe_problems] if p]


def _deploy(minions, config, tgt, client, rate, max_failed, report):
    """Pre-check, then the rollout under probes; returns the problems."""
    before = _survey(minions, config)
    report["holders_before"] = before["holders"]
    if before["problems"]:
        return ["pre-check failed: " + "; ".join(before["problems"])]
    order, holding = havip_rollout.rollout_order(config, before["holders"])
    urls = [havip_facts.frontend_url(config, vip) for vip in sorted(config["vips"])]
    report.update(order=order, probe={"urls": urls, "client": client, "rate": rate}, steps=[])
    probes = [_Probe(minions, client, url, rate, max_failed) for url in urls]
    problems = _under_probes(probes, lambda: _roll_out(minions, config, order, holding, report["steps"])
                             or _settled(minions, tgt, report))
    seen = [probe.answer for probe in probes if isinstance(probe.answer, dict)]
    if seen:
        report.update(failed_requests=sum(s["failed"] for s in seen), requests=sum(s["total"] for s in seen))
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
    with _connect() as minions:
        try:
            config = minions.config(tgt)
            client = havip_facts.probing_client(config, client, "deploy:client")
        except ValueError as exc:
            return _fail(report, str(exc))
        problems = _deploy(minions, config, tgt, client, rate, max_failed, report)
    if problems:
        return _fail(report, "rolling deploy FAILED: " + "; ".join(problems))
    failed = report["failed_requests"]
    report.update(result=True, comment=f"rolling deploy done: {', '.join(report['order'])}; " + (
        "no request failed" if not failed else
        f"{failed} of {report['requests']} requests failed (max_failed: {max_failed} per VIP)"))
    return report

"""
The runner's live failover test (``havip.failover_test``): the checks
before anything is broken, the break of the VIP's holder while the client
probes every service (a request per pool it reaches, on each of its VIPs:
the targets), the wait for the VIP on another balancer, the measurements,
the restore, and the report.

The runner passes in the minions (havip_master.Minions) and the function
that opens a connection of its own for a call in the background: no Salt
dunders here.
"""

import time

import havip_cluster
import havip_facts
import havip_health
import havip_master
import havip_rollout
import havip_targets
import havip_timing


def wait_for_holder(minions, candidates, vip, timeout):
    """(name, since) of the first candidate that holds ``vip`` as MASTER."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, status in sorted(minions.call(candidates, "havip.status").items()):
            entry = status["vips"].get(vip, {})
            if entry.get("held") and entry.get("state") == "MASTER":
                return name, entry["since_s"]
        time.sleep(0.2)
    return None, None


def restore(minions, config, holder, failure, expected, servers_up, budget):
    """`state.apply havip` on the broken balancer, then wait for the cluster
    to look as it did before: the ``expected`` holders, and every backend
    server UP on each balancer that was (``servers_up``).  Returns (seconds,
    problem or None); a failed apply's problem says what ``failure`` left
    there."""
    start = time.monotonic()
    applied = minions.answers([holder], "state.apply", ["havip"], timeout=havip_rollout.APPLY_TIMEOUT).get(holder)
    if problem := havip_rollout.step_problem("state.apply", applied):
        return time.monotonic() - start, (f"state.apply havip on {holder} failed ({problem}); not restored: "
                                          + havip_facts.FAILURE_LEFT[failure].format(holder=holder))
    deadline = time.monotonic() + budget
    while True:
        survey = havip_master.survey(minions, config)
        problems = survey["problems"] + havip_health.servers_not_back(
            servers_up, havip_health.servers_up(config, survey["statuses"]))
        if survey["holders"] == expected and not problems:
            return time.monotonic() - start, None
        if time.monotonic() > deadline:
            return time.monotonic() - start, (
                f"cluster not restored within {budget:.1f} s of the apply: holders "
                f"{havip_health.show(survey['holders'])}" + "".join(f"; {p}" for p in problems))
        time.sleep(0.5)


def target_report(target, client, rate):
    """A target's entry in the report (its figures come after the test)."""
    return {"vip": target["vip"], "pool": target["pool"],
            "probe": {"url": target["url"], "host": target["host"], "client": client, "rate": rate}}


def probe_kwarg(probing, seconds):
    """havip.probe's keywords for a target's ``probing``: its URL, ``host``
    when it asks for one."""
    named = {"host": probing["host"]} if probing.get("host") else {}
    return {"url": probing["url"], **named, "seconds": seconds, "rate": probing["rate"]}


def probes(connect, entries, seconds, timeout):
    """havip.probe of every target (``entries``: their reports) on the
    client, all at once, each for ``seconds`` s: started (Background), each
    waited for ``timeout`` s."""
    started = []
    for entry in entries:
        probing = entry["probe"]
        started.append(havip_master.Background(connect, probing["client"], "havip.probe",
                                               kwarg=probe_kwarg(probing, seconds), timeout=timeout))
        started[-1].start()
    return started


def reach_problem(connect, entries):
    """Why the client cannot reach a target (a probe of 1 s at the test's
    rate of every target at once, before anything is broken), or None."""
    running = probes(connect, entries, 1, havip_facts.CALL_TIMEOUT + 1)
    for entry, probe in zip(entries, running, strict=True):
        probe.join()
        seen, probing = probe.result, entry["probe"]
        target = havip_targets.shown(probing["url"], probing.get("host"))
        where = f"the client {probing['client']} cannot probe {target} before the test"
        if not isinstance(seen, dict):
            return f"{where}: {'no answer' if seen is None else havip_rollout.error_text(seen)}"
        if seen["failed"]:
            return f"{where}: {seen['failed']} of {seen['total']} failed"
    return None


def injection_problem(answer, failure, holder):
    """What the answer of havip.inject says is wrong: None when it broke
    the holder; a lost answer (the failure may have happened: the holder
    is restored all the same) or the minion's error."""
    if isinstance(answer, dict):
        return None
    if answer is None:
        return f"the answer of havip.inject {failure} on {holder} was lost (restored all the same)"
    return f"havip.inject {failure} on {holder} failed: {havip_rollout.error_text(answer)}"


def break_and_measure(minions, connect, config, report, move_budget):
    """Steps 2-4 of the failover test: break ``report["holder"]`` while the
    client probes, wait for the VIP on another balancer; fills in the
    figures, returns (the new holder or None, problems), or None when the
    failure was refused (nothing was broken)."""
    holder, vip, failure = report["holder"], report["vip"], report["failure"]
    targets = targets_of(report)
    seconds = 1.0 + move_budget + 3.0
    running = probes(connect, [entry for _, entry in targets], seconds, seconds + 30)
    time.sleep(1.0)  # good answers before the failure
    problems = []
    # confirm: the pre-check found another healthy balancer in service
    # (else "no other healthy balancer could take over").  A link stays
    # down until the probe is over: its return (the old holder preempting)
    # is not the failover.
    breaker = havip_master.Background(connect, holder, "havip.inject", [failure],
                                      {"duration": seconds + 1.0, "confirm": True}, timeout=seconds + 30)
    injected_at = time.time()
    breaker.start()
    if failure != "link_down":
        breaker.join()
        if breaker.result is not None and not isinstance(breaker.result, dict):
            for probe in running:
                probe.join()
            return None
        if breaker.result is None:
            problems.append(injection_problem(None, failure, holder))
        else:
            injected_at = breaker.result["at_s"]
    others = [b["name"] for b in config["balancers"] if b["name"] != holder]
    new_holder, since = wait_for_holder(minions, others, vip, move_budget + 2.0)
    if new_holder is None:
        problems.append(f"VIP {vip} not on another balancer within {move_budget:.1f} s")
    else:
        moved = since - injected_at
        report.update(new_holder=new_holder, vip_moved_after_s=round(moved, 2))
        if moved > move_budget:
            problems.append(f"VIP {vip} moved after {moved:.2f} s, over the budget of {move_budget:.1f} s")
    for (service, entry), probe in zip(targets, running, strict=True):
        probe.join()
        problems += [f"service {service}, pool {entry['pool']}: {problem}"
                     for problem in traffic_problems(probe.result, entry, injected_at, move_budget)]
    add_up(report)
    breaker.join()
    if failure == "link_down" and (problem := injection_problem(breaker.result, failure, holder)):
        problems.append(problem)
    return new_holder, problems


def traffic_problems(seen, report, injected_at, move_budget):
    """What the probe's answer ``seen`` says of the failover (``report``:
    a target's); fills in its figures."""
    probing = report["probe"]
    if not isinstance(seen, dict):
        return [f"the probe on {probing['client']} returned nothing"]
    report.update(client_visible_outage_s=round(seen["longest_outage_s"], 2),
                  failed_requests=seen["failed"], requests=seen["total"])
    failing_for = (seen["last_failure_s"] or 0) + seen["started_s"] - injected_at
    if not seen["recovered"] or failing_for > move_budget + 1.0:
        target = havip_targets.shown(probing["url"], probing.get("host"))
        return [f"traffic through {target} did not resume within {move_budget + 1.0:.1f} s"]
    return []


def targets_of(report):
    """(service, its target's entry) of every target of ``report``."""
    return [(name, entry) for name, service in report["services"].items() for entry in service["targets"]]


def add_up(report):
    """Each service's figures from its targets', and the whole test's from
    every target's: the longest outage, the failed requests and the
    requests (of the targets whose probe answered)."""
    for service in report["services"].values():
        _add_up(service, service["targets"])
    _add_up(report, [entry for _, entry in targets_of(report)])


def _add_up(part, entries):
    measured = [entry for entry in entries if "requests" in entry]
    if measured:
        part.update(client_visible_outage_s=max(entry["client_visible_outage_s"] for entry in measured),
                    failed_requests=sum(entry["failed_requests"] for entry in measured),
                    requests=sum(entry["requests"] for entry in measured))


def broken_and_restored(minions, connect, config, report, before, budgets):
    """Steps 2-5 of the failover test: break the holder and measure, then
    restore it whatever happened in between (an error is one more problem;
    an interruption restores too).  Returns the problems, or None when the
    failure was refused (nothing was broken, nothing restored)."""
    holder, vip = report["holder"], report["vip"]
    move_budget, restore_budget = budgets
    broken, new_holder, problems = True, None, []
    try:
        measured = break_and_measure(minions, connect, config, report, move_budget)
        broken = measured is not None
        new_holder, problems = measured or (None, [])
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # whatever failed after the injection, the holder is restored below
        new_holder = report.get("new_holder")
        problems = [f"the test stopped after the injection: {type(exc).__name__}: {exc}"]
    finally:
        if broken:
            expected = dict(before["holders"])
            if new_holder and not config["keepalived"]["preempt"]:
                expected[vip] = [new_holder]  # without preemption the VIP stays where it went
            took, problem = restore(minions, config, holder, report["failure"], expected,
                                    havip_health.servers_up(config, before["statuses"]), restore_budget)
            report.update(restored_after_s=round(took, 1), restore_budget_s=round(restore_budget, 2),
                          holders_after=havip_master.survey(minions, config)["holders"])
            problems += [problem] if problem else []
    return problems if broken else None


def planned(report, config, client, rate):
    """Fill in what the test probes: ``services`` ({service: its
    ``targets``' entries, and why a part of it is ``not_probed``}), and
    ``probe``, the first target on the VIP tested (today's frontend on
    it); why there is nothing to probe, or None."""
    targets, not_probed = havip_targets.probe_targets(config)
    report["services"] = {service["name"]: {"targets": [], **({"not_probed": not_probed[service["name"]]}
                                                               if service["name"] in not_probed else {})}
                          for service in config["services"]}
    for target in targets:
        report["services"][target["service"]]["targets"].append(target_report(target, client, rate))
    if not targets:
        return "no service to probe" + "".join(f"; {name}: {', '.join(reasons)}"
                                               for name, reasons in not_probed.items())
    first = next((target for target in targets if target["vip"] == report["vip"]), targets[0])
    report["probe"] = target_report(first, client, rate)["probe"]
    return None


def with_leftovers(text, report):
    """``text``, naming what the pre-check found left behind."""
    leftovers = report.get("leftovers")
    return text + (f"; leftovers: {'; '.join(leftovers)}" if leftovers else "")


def run(minions, connect, report, client, vip, rate, tgt, tgt_type):
    """The failover test of the runner's ``havip.failover_test`` (the
    failure to inject in ``report``), filling in ``report``; returns
    (passed, its comment)."""
    failure = report["failure"]
    try:
        config = minions.config(tgt, tgt_type)
        client = havip_cluster.probing_client(config, client, "failover_test:client")
    except ValueError as exc:
        return False, str(exc)
    before = havip_master.survey(minions, config)
    report.update(holders_before=before["holders"], leftovers=havip_health.leftovers(config, before["statuses"]))
    if before["problems"]:
        return False, with_leftovers("pre-check failed: " + "; ".join(before["problems"]), report)
    vip = vip or sorted(config["vips"])[0]
    if vip not in config["vips"]:
        return False, f"unknown VIP {vip!r} (known: {', '.join(sorted(config['vips']))})"
    holder = before["holders"][vip][0]
    move_budget, restore_budget = havip_timing.failover_budgets(config, failure)
    report.update(vip=vip, holder=holder, move_budget_s=round(move_budget, 2))
    if problem := planned(report, config, client, rate):
        return False, with_leftovers(f"{problem}; nothing was broken", report)
    if problem := havip_master.pending_problem(minions, config) or reach_problem(
            connect, [entry for _, entry in targets_of(report)]):
        return False, with_leftovers(f"{problem}; nothing was broken", report)
    problems = broken_and_restored(minions, connect, config, report, before, (move_budget, restore_budget))
    if problems is None:
        return False, with_leftovers(f"havip.inject {failure} on {holder} failed", report)
    if problems:
        return False, with_leftovers("failover test FAILED: " + "; ".join(problems), report)
    return True, with_leftovers(f"failover test passed: {failure} on {holder}", report)

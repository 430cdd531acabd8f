"""
The runner's rolling deploy (``havip.deploy``) as it runs: the probes of
every service for as long as the rollout takes, each node's steps in turn
(the plan is havip_rollout's; the nodes a failed run left drained first:
havip_rerun), the final check, and the report.

The runner passes in the minions (havip_master.Minions) and the function
that opens a connection of its own for a probe in the background: no Salt
dunders here.
"""

import threading
import time
import uuid

import havip_cluster
import havip_facts
import havip_health
import havip_master
import havip_rerun
import havip_rollout
import havip_targets


class Probe(threading.Thread):
    """``havip.probe`` of ``url`` (with ``host``, the Host header a target
    of havip_targets asks for) from ``client`` for as long as the rollout
    takes: started for WAIT_LIMIT s (the longest probe) through its own
    connection (``connect()``), ended by creating its stop file through
    ``minions``."""

    def __init__(self, minions, connect, client, url, rate, max_failed=0, host=None):
        super().__init__(daemon=True)
        self.minions, self.connect = minions, connect
        self.client, self.url, self.rate, self.max_failed, self.host = client, url, rate, max_failed, host
        self.stop_file = f"/tmp/havip-deploy-{uuid.uuid4().hex}.stop"
        self.answer = None

    def run(self):
        limit = havip_facts.WAIT_LIMIT
        kwarg = {"url": self.url, **({"host": self.host} if self.host else {}), "seconds": limit, "rate": self.rate,
                 "stop_file": self.stop_file}
        with self.connect() as minions:
            self.answer = minions.answers([self.client], "havip.probe", kwarg=kwarg,
                                          timeout=limit + 30).get(self.client)

    def stop(self):
        """End the probe, and remove its stop file once it has ended;
        returns its problem, None if every request it sent was answered."""
        ended_early = not self.is_alive()
        if not ended_early:
            self.minions.answers([self.client], "file.touch", [self.stop_file])
            self.join(havip_facts.CALL_TIMEOUT)
            if not self.is_alive():
                self.minions.answers([self.client], "file.remove", [self.stop_file])
        return self.problem(ended_early)

    def problem(self, ended_early):
        """Why the probe failed the deploy, or None."""
        where = f"the probe of {havip_targets.shown(self.url, self.host)} on {self.client}"
        if self.is_alive():
            return f"{where} did not stop (its stop file {self.stop_file} stays there)"
        return havip_rollout.probe_problem(self.answer, where, self.url, ended_early, self.max_failed)


def holds(minions, config, name):
    """(None or why it cannot be known, whether balancer ``name`` holds a
    VIP now)."""
    status = minions.call([name], "havip.status").get(name)
    if status is None:
        return f"{name} did not answer havip.status", False
    return None, any(name in names for names in havip_health.holders(config, {name: status}).values())


def logged_step(minions, step, steps, record):
    """havip_master.run_step of ``step``, "label: seconds" (and FAILED)
    appended to ``steps``, what it drained or readied noted in ``record``
    (havip_rerun.Record)."""
    start = time.monotonic()
    problem, answers = havip_master.run_step(minions, step)
    record.note(step, answers)
    steps.append(f"{step.label}: {time.monotonic() - start:.1f} s" + (" FAILED" if problem else ""))
    return problem, answers


def roll_out(minions, config, order, steps, record):
    """Run every node's steps in ``order``, appending "label: seconds" to
    ``steps`` (what they drain and ready noted in ``record``).  Whether a
    balancer holds a VIP (and so goes on standby for its apply) is read
    when its turn comes: a failover meanwhile moves the VIPs.  Stops at
    the first failing step; returns why it failed, what that node is left
    with and which nodes were left untouched, or None when every step
    passed."""
    for index, name in enumerate(order):
        problem, holding = None, False
        if "balancer" in config["nodes"][name]["roles"]:
            problem, holding = holds(minions, config, name)
        if problem:
            return f"{problem}; stopped there; untouched: {', '.join(order[index:])}"
        untouched = [f"untouched: {', '.join(order[index + 1:])}"] if order[index + 1:] else []
        done = []
        for step in havip_rollout.node_steps(config, name, holding):
            problem, answers = logged_step(minions, step, steps, record)
            if problem:
                return "; ".join([f"step '{step.label}' failed: {problem}", "stopped there",
                                  *havip_rollout.left_behind(name, done, step, list(answers))] + untouched)
            done.append(step)
    return None


def settled(minions, tgt, tgt_type, report):
    """None once every node is healthy and each VIP on its preferred holder
    (polled for up to SETTLE_TIMEOUT s), else why not."""
    config = minions.config(tgt, tgt_type)  # the configuration just deployed
    deadline = time.monotonic() + havip_rollout.SETTLE_TIMEOUT
    while (survey := havip_master.survey(minions, config))["problems"] and time.monotonic() < deadline:
        time.sleep(0.5)
    report["holders_after"] = survey["holders"]
    if survey["problems"]:
        return "final check failed: " + "; ".join(survey["problems"])
    return None


def probe_report(targets, client, rate):
    """The report's ``probe``: the ``urls`` requested and, when a target
    asks for a host, the ``hosts`` (each URL's, in order; None: the URL's
    address)."""
    hosts = [target["host"] for target in targets]
    return {"urls": [target["url"] for target in targets], **({"hosts": hosts} if any(hosts) else {}),
            "client": client, "rate": rate}


def under_probes(probes, rollout):
    """Run ``rollout`` (it returns its problem or None) while the probes
    run; returns every problem, the probes' too."""
    for probe in probes:
        probe.start()
    try:
        time.sleep(havip_rollout.PROBE_LEAD)
        running = all(probe.is_alive() for probe in probes)
        problem = rollout() if running else "nothing deployed: a probe is not running"
    finally:
        probe_problems = [probe.stop() for probe in probes]
    return [p for p in [problem, *probe_problems] if p]


def deploy(minions, connect, config, tgt, tgt_type, client, rate, max_failed, report, path):
    """Pre-check, then the rollout under probes, the nodes a failed run of
    it left drained first (as recorded at ``path``: havip_rerun); returns
    the problems."""
    before = havip_master.survey(minions, config)
    report["holders_before"] = before["holders"]
    if before["problems"]:
        return ["pre-check failed: " + "; ".join(before["problems"])]
    if problem := havip_master.pending_problem(minions, config):
        return [f"refused, nothing deployed: {problem}"]
    record = havip_rerun.Record(path, config, "havip")
    left = record.still_drained(before["statuses"])
    order = havip_rerun.first(havip_rollout.rollout_order(config, before["holders"]), left)
    targets = havip_targets.of_pools(config, [pool["name"] for pool in config["pools"]])
    report.update(order=order, completed_first=left, probe=probe_report(targets, client, rate), steps=[])
    probes = [Probe(minions, connect, client, target["url"], rate, max_failed, target["host"]) for target in targets]
    problems = under_probes(probes, lambda: roll_out(minions, config, order, report["steps"], record)
                            or settled(minions, tgt, tgt_type, report))
    seen = [probe.answer for probe in probes if isinstance(probe.answer, dict)]
    if seen:
        report.update(failed_requests=sum(s["failed"] for s in seen), requests=sum(s["total"] for s in seen))
    return problems


def first_note(left):
    """What the comment says of the nodes a failed run left drained, taken
    first."""
    return f" ({', '.join(left)} first: a failed deploy left {'it' if len(left) == 1 else 'them'} drained)" \
        if left else ""


def run(minions, connect, report, path, client, rate, max_failed, tgt, tgt_type):
    """The rolling deploy of the runner's ``havip.deploy``, filling in
    ``report`` (``path``: the record of what a failed deploy left drained,
    havip_rerun's); returns (done, its comment)."""
    try:
        config = minions.config(tgt, tgt_type)
        client = havip_cluster.probing_client(config, client, "deploy:client")
    except ValueError as exc:
        return False, str(exc)
    problems = deploy(minions, connect, config, tgt, tgt_type, client, rate, max_failed, report, path)
    if problems:
        return False, "rolling deploy FAILED: " + "; ".join(problems)
    failed = report["failed_requests"]
    return True, f"rolling deploy done: {', '.join(report['order'])}{first_note(report['completed_first'])}; " + (
        "no request failed" if not failed else
        f"{failed} of {report['requests']} requests failed (max_failed: {max_failed} per VIP)")

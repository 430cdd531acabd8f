"""
The rolling deploy of the operator's own application (the runner's
``havip.deploy`` with ``state``) as it runs: the servers of the chosen
pools that are nodes, one node at a time in the order of their names,
each drained on every balancer in every pool that holds it, applied
(``state.apply <state>`` there) and readied on every balancer in those
pools (``havip.ready`` waits until it is UP), under probes (started and
stopped for each node's turn) of every service that sends requests to a
pool holding one of those nodes; then the final check and the report.
The first failure (a step's, or a failed probe request) stops the
rollout: that node is left drained (drained again when its ready or the
probes failed), the nodes before it serving, those after it untouched;
the same deploy run again takes that node first (havip_rerun).
Servers given by address are no Salt minions: skipped, named.

The runner passes in the minions (havip_master.Minions) and the function
that opens a connection of its own for a probe: no Salt dunders here.
"""

import havip_cluster
import havip_deploy
import havip_master
import havip_options
import havip_rerun
import havip_rollout
import havip_targets
from havip_rollout import APPLY_TIMEOUT, Step, server_step


def plan(config, pools):
    """(the nodes that are servers of ``pools``, by name: the rollout's
    order; {node: how havip.drain names each of its servers, in every pool
    that holds it, chosen or not}; the servers of ``pools`` given by
    address, as ``pool/server``)."""
    chosen = [pool for pool in config["pools"] if pool["name"] in pools]
    order = sorted({server["node"] for pool in chosen for server in pool["servers"] if server["node"]})
    skipped = [f"{pool['name']}/{server['name']}" for pool in chosen for server in pool["servers"]
               if not server["node"]]
    return order, {node: havip_rollout.server_references(config, node) for node in order}, skipped


def touched_pools(config, order):
    """The pools that hold a node of ``order``: their services are probed."""
    return [pool["name"] for pool in config["pools"] if any(server["node"] in order for server in pool["servers"])]


class Turn:
    """One node's turn: its steps (appending "label: seconds" to
    ``steps``, what they drain and ready noted in ``record``), and where
    it is drained."""

    def __init__(self, minions, config, state, node, references, steps, record):
        self.minions, self.state, self.node, self.references, self.steps = minions, state, node, references, steps
        self.record = record
        self.balancers = [balancer["name"] for balancer in config["balancers"]]
        self.drained = {}       # reference -> the balancers where it was drained
        self.readied = False    # a ready step ran: it may take requests again

    def run(self):
        """Drained in every pool, applied, readied in every pool; None, or
        why the first failing step failed."""
        steps = [server_step("drain", reference, self.balancers) for reference in self.references]
        steps.append(Step(f"apply {self.state} on {self.node}", [self.node], "state.apply", [self.state], {},
                          APPLY_TIMEOUT))
        steps += [server_step("ready", reference, self.balancers) for reference in self.references]
        for step in steps:
            if problem := self.step(step):
                return f"step '{step.label}' failed: {problem}"
        return None

    def step(self, step):
        """Run ``step``; None, or why it failed."""
        problem, answers = havip_deploy.logged_step(self.minions, step, self.steps, self.record)
        if step.fun == "havip.drain":
            self.drained[step.arg[0]] = sorted(set(self.drained.get(step.arg[0], [])) | set(answers))
        elif step.fun == "havip.ready":
            self.readied = True
            self.drained[step.arg[0]] = []
        return problem

    def take_out(self):
        """Drain the node again in every pool (its ready or the probes
        failed: it must not serve); None, or why that failed."""
        problems = [problem for reference in self.references
                    if (problem := self.step(server_step("drain", reference, self.balancers)))]
        return f"draining {self.node} again failed: {'; '.join(problems)}" if problems else None

    def left(self):
        """Where the node's servers are left drained."""
        return [f"{reference} stays drained on {', '.join(on)} (havip.ready {reference} there puts it back)"
                for reference, on in self.drained.items() if on]


def roll_out(minions, connect, config, state, places, targets, report, max_failed, record):
    """Each node's turn in ``report["order"]`` under the probes (what they
    drain and ready noted in ``record``); returns the problems of the
    first that failed, what it left and which nodes it left untouched, or
    [] when every turn passed."""
    order, probing = report["order"], report["probe"]
    for index, node in enumerate(order):
        turn = Turn(minions, config, state, node, places[node], report["steps"], record)
        probes = [havip_deploy.Probe(minions, connect, probing["client"], target["url"], probing["rate"], max_failed,
                                     target["host"]) for target in targets]
        problems = havip_deploy.under_probes(probes, turn.run)
        seen = [probe.answer for probe in probes if isinstance(probe.answer, dict)]
        report["failed_requests"] += sum(answer["failed"] for answer in seen)
        report["requests"] += sum(answer["total"] for answer in seen)
        if problems:
            taken_out = turn.take_out() if turn.readied else None
            untouched = [f"untouched: {', '.join(order[index + 1:])}"] if order[index + 1:] else []
            return [*problems, f"stopped at {node}", *([taken_out] if taken_out else []), *turn.left(), *untouched]
        report["deployed"].append(node)
    return []


def deploy(minions, connect, config, state, places, client, rate, max_failed, tgt, tgt_type, report, path):
    """Pre-check (as the runner's status), then each node's turn (those a
    failed run of this state left drained first, as recorded at ``path``:
    havip_rerun), then the final check; returns the problems."""
    before = havip_master.survey(minions, config)
    report["holders_before"] = before["holders"]
    if before["problems"]:
        return ["pre-check failed: " + "; ".join(before["problems"])]
    record = havip_rerun.Record(path, config, state)
    left = [node for node in record.still_drained(before["statuses"]) if node in places]
    targets = havip_targets.of_pools(config, touched_pools(config, list(places)))
    report.update(order=havip_rerun.first(report["order"], left), completed_first=left,
                  probe=havip_deploy.probe_report(targets, client, rate), steps=[],
                  deployed=[], failed_requests=0, requests=0)
    problems = roll_out(minions, connect, config, state, places, targets, report, max_failed, record)
    if problems:
        return problems
    problem = havip_deploy.settled(minions, tgt, tgt_type, report)
    return [problem] if problem else []


def run(minions, connect, report, path, state, pools, client, rate, max_failed, tgt, tgt_type):
    """The rolling deploy of ``state`` on the servers of ``pools`` (the
    runner's ``havip.deploy`` with ``state``), filling in ``report``
    (``path``: the record of what a failed deploy left drained,
    havip_rerun's); returns (done, its comment)."""
    try:
        config = minions.config(tgt, tgt_type)
        pools = havip_options.deploy_pools(config, pools)
        client = havip_cluster.probing_client(config, client, "deploy:client")
    except ValueError as exc:
        return False, str(exc)
    order, places, skipped = plan(config, pools)
    report.update(state=state, pools=pools, order=order, skipped=skipped)
    problems = deploy(minions, connect, config, state, places, client, rate, max_failed, tgt, tgt_type, report,
                      path)
    named = [f"skipped (given by address): {', '.join(skipped)}"] if skipped else []
    if problems:
        return False, f"rolling deploy of {state} FAILED: " + "; ".join(problems + named)
    failed = report["failed_requests"]
    return True, "; ".join([
        f"rolling deploy of {state} done: {', '.join(report['order'])}"
        + havip_deploy.first_note(report["completed_first"]),
        "no request failed" if not failed else
        f"{failed} of {report['requests']} requests failed (max_failed: {max_failed} per service, VIP and node)",
        *named])

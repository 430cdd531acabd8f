"""
The rolling deploy's plan (the runner's ``havip.deploy``), and how it
judges the minions' answers: the order of the nodes, each node's steps,
what a failed step leaves behind, a change of VRRP version it refuses, and
a minion's error on one line.

Pure helpers: they plan from the cluster's configuration and its holders,
and judge the answers they are given; the runner makes the salt calls.
"""

import collections

import havip_servers
from havip_facts import CALL_TIMEOUT, FACTS_STATE, WAIT_DEFAULT
from havip_timing import move_budget

# Seconds of probing before the first step (the probe's job must reach the client).
PROBE_LEAD = 2.0
APPLY_TIMEOUT = 300
# Seconds a minion may take to render the formula (state.show_sls).
RENDER_TIMEOUT = 60
# Seconds the cluster may take to look healthy after the last step.
SETTLE_TIMEOUT = 10

# One step of a rollout: ``fun`` on every one of ``targets``.
Step = collections.namedtuple("Step", "label targets fun arg kwarg timeout")


def switch_timeout(config):
    """Seconds a standby or resume call may take: its own budget and a salt
    round trip."""
    return move_budget(config["keepalived"]) + CALL_TIMEOUT


def move_step(config, name, fun):
    """``fun`` (havip.standby or havip.resume) of balancer ``name`` as a step."""
    return Step(f"{fun.split('.')[1]} {name}", [name], fun, [], {}, switch_timeout(config))


def move_done(verb, name, answer):
    """What balancer ``name``'s ``answer`` to ``havip.<verb>`` (standby, or
    resume) says was done."""
    already = "" if answer["changed"] else f" (it was {'on standby' if verb == 'standby' else 'in service'} already)"
    moved = f"{', '.join(answer['moved'])} moved in {answer['took_s']:.1f} s" if answer["moved"] else "no VIP moved"
    return f"{verb} {name} done: {moved}{already}"


def rollout_order(config, held):
    """The nodes in rollout order: those that are only backends, then the
    balancers holding no VIP, then those holding VIPs (by name within each
    group).  ``held``: {vip: holders} (before the rollout: whether a
    balancer holds a VIP when its turn comes is read again then)."""
    holding = {name for names in held.values() for name in names}
    backends = [name for name, node in sorted(config["nodes"].items()) if "balancer" not in node["roles"]]
    balancers = [node["name"] for node in config["balancers"]]
    return backends + [b for b in balancers if b not in holding] + [b for b in balancers if b in holding]


def server_references(config, name):
    """How ``havip.drain``/``havip.ready`` name the servers that are node
    ``name`` (the model's pools): ``pool/server`` in every pool that holds
    it; in today's pair (its one pool, havip_backends) the bare server
    name, as it always was."""
    pools = config["pools"]
    names = [pool["name"] for pool in pools]
    return [havip_servers.name(names, pool["name"], server["name"])
            for pool in pools for server in pool["servers"] if server["node"] == name]


def server_step(verb, reference, balancers):
    """``havip.<verb>`` (drain, or ready) of server ``reference`` on every
    balancer, as a step."""
    return Step(f"{verb} {reference} on {', '.join(balancers)}", balancers, f"havip.{verb}", [reference],
                {"timeout": WAIT_DEFAULT}, WAIT_DEFAULT + CALL_TIMEOUT)


def node_steps(config, name, holds):
    """One node's steps: its servers drained on every balancer (in every
    pool that holds it), its VIPs moved away, the apply and the check,
    then back in reverse order."""
    balancers = [node["name"] for node in config["balancers"]]
    references = server_references(config, name)
    steps = [server_step("drain", reference, balancers) for reference in references]
    if holds:
        steps.append(move_step(config, name, "havip.standby"))
    steps.append(Step(f"apply {name}", [name], "state.apply", ["havip"], {}, APPLY_TIMEOUT))
    steps.append(Step(f"check {name}", [name], "havip.check", [], {}, CALL_TIMEOUT))
    if holds:
        steps.append(move_step(config, name, "havip.resume"))
    return steps + [server_step("ready", reference, balancers) for reference in references]


def left_behind(name, done, failed, went_through):
    """What a node is left with when its ``failed`` step stopped the rollout
    after its ``done`` steps (``went_through``: where the failed step did):
    each server drained and not readied since, a standby not ended."""
    ran = [*done, failed]
    readied = {step.arg[0] for step in ran if step.fun == "havip.ready"}
    drained = {step.arg[0]: step.targets for step in done if step.fun == "havip.drain"}
    if failed.fun == "havip.drain":
        drained[failed.arg[0]] = went_through
    notes = [f"{reference} stays drained on {', '.join(on)} (havip.ready {reference} there puts it back)"
             for reference, on in drained.items() if on and reference not in readied]
    if "havip.standby" in {step.fun for step in done} and "havip.resume" not in {step.fun for step in ran}:
        notes.append(f"{name} stays on standby (havip.resume on {name} ends it)")
    return notes


# ---- the minions' answers ---------------------------------------------------------


def error_line(text):
    """The line of a minion's error message that says what went wrong: the
    first, or a traceback's last (the exception)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if "Traceback (most recent call last)" in text else lines[0]


def error_text(answer):
    """A minion's error answer (a message, or a list of them such as render
    errors) on one line."""
    texts = [str(text) for text in (answer if isinstance(answer, list) else [answer])]
    return "; ".join(error_line(text) for text in texts if text.strip()) or repr(answer)


def apply_problem(states):
    """The states that failed in a ``state.apply`` return, earliest first."""
    failed = sorted((state for state in states.values() if not state.get("result")),
                    key=lambda state: state.get("__run_num__", 0))
    return "; ".join(f"{state.get('__id__')} failed ({str(state.get('comment')).strip().splitlines()[0]})"
                     for state in failed) or None


def step_problem(fun, answer):
    """Why a minion's answer to a rollout step is a failure, or None."""
    if answer is None:
        return "did not answer"
    if not isinstance(answer, dict):
        return error_text(answer)
    if fun == "state.apply":
        return apply_problem(answer)
    if fun == "havip.check" and not answer["healthy"]:
        return "unhealthy: " + "; ".join(answer["reasons"])
    return None


def probe_problem(seen, where, url, ended_early, max_failed):
    """Why the rollout's probe of ``url`` (``where``: which, from where)
    failed it, from its answer ``seen``, or None; ``ended_early``: it was
    over before the rollout."""
    if not isinstance(seen, dict):
        return f"{where} failed: {'no answer' if seen is None else error_text(seen)}"
    if ended_early:
        return f"{where} ended after {seen['duration_s']:.0f} s, before the rollout did"
    if seen["failed"] > max_failed:
        return (f"{seen['failed']} of {seen['total']} requests to {url} failed"
                f" (longest outage {seen['longest_outage_s']:.2f} s)")
    return None


# ---- the VRRP version -------------------------------------------------------------


def pending_config(answer):
    """The configuration the current pillar would deploy on a minion, from
    its ``state.show_sls havip.facts`` (the facts file's dataset: defaults,
    OS family and pillar merged and validated by the formula's own
    map.jinja).  Raises ValueError with the minion's error when it does not
    render."""
    if not isinstance(answer, dict):
        raise ValueError("did not answer" if answer is None else error_text(answer))
    for item in answer.get(FACTS_STATE, {}).get("file", []):
        if isinstance(item, dict) and "dataset" in item:
            return item["dataset"]
    raise ValueError(f"no {FACTS_STATE} in its havip.facts")


def vrrp_version_problem(deployed, pending):
    """Why the rolling deploy refuses, changing nothing, or None: a
    balancer whose new pillar does not render, or that it would move to
    another keepalived:vrrp_version.  VRRPv2 and v3 peers do not talk to
    each other: rolled one balancer at a time, each half would hold the
    VIPs.  ``pending``: {balancer: its state.show_sls havip.facts answer};
    ``deployed``: {balancer: its havip.config}."""
    problems, changed = [], {}
    for name in sorted(pending):
        try:
            new = pending_config(pending[name])["keepalived"]["vrrp_version"]
        except ValueError as exc:
            problems.append(f"the new pillar does not render on {name}: {exc}")
            continue
        old = deployed.get(name, {}).get("keepalived", {}).get("vrrp_version")
        if old is not None and new != old:
            changed.setdefault((old, new), []).append(name)
    everyone = ",".join(sorted(pending))
    problems += [
        f"the new pillar changes keepalived:vrrp_version from {old} to {new} on {', '.join(names)}:"
        " VRRPv2 and v3 peers do not talk to each other, so rolled one balancer at a time each half would"
        f" hold the VIPs; change it on every balancer at once (salt -L '{everyone}' state.apply havip,"
        " accepting a short split while they reload), then deploy"
        for (old, new), names in sorted(changed.items())]
    return "; ".join(problems) or None

"""
A rolling deploy run again after it failed (the runner's ``havip.deploy``):
where each deploy drained a server and has not readied it since, recorded
on the master, and the nodes its rerun takes first.

The record is a JSON file in the master's cachedir, written by the runner
alone (under its lock) after each drain or ready step: {cluster (its
nodes): {deploy (``havip``, or the operator's state): {server, as
havip.drain names it: [the balancers where it stays drained]}}}.  A rerun
of the same deploy on the same cluster takes first the nodes whose
recorded servers the balancers still show DRAIN: they are out of service
already, so completing them (drained again, applied, checked, readied)
leaves as many servers UP as ever, where starting with another node would
leave one fewer (havip.drain refuses then when it would leave none).

What it can tell: HAProxy does not say who drained a server; the record
says which drains this deploy made and did not undo.  A server drained by
anyone else (an operator, another master, the other kind of deploy) is not
in it: the rerun takes that node in its turn, and havip.drain's refusal
stands.  What it cannot tell: a server the deploy left drained, readied by
hand and then drained by hand again before the rerun is taken as the
deploy's.

Pure helpers but for the record's file, whose path comes in.
"""

import contextlib
import json
import os

import havip_rollout
import havip_server_state


def drained(state):
    """Is ``state`` (a status HAProxy gives, checked by havip_answers)
    DRAIN: ``DRAIN``, or ``DRAIN (agent)``?"""
    return isinstance(state, str) and state.split(" ", 1)[0] == "DRAIN"


def read(path):
    """The record at ``path``: a mapping, {} when there is none or it is
    not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write(path, record):
    """Replace the record at ``path`` at once (only the master's user reads
    it: havip_server_state.write), its directory made first if need be."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    havip_server_state.write(path, json.dumps(record, sort_keys=True))


class Record:
    """What deploy ``kind`` (``havip``, or the operator's state) of the
    cluster of ``config`` drained and has not readied since: ``servers``
    ({server reference: [balancers]}), saved at ``path`` at every change.
    What the file says is kept only where it names a server of the
    cluster's nodes and its balancers."""

    def __init__(self, path, config, kind):
        self.path, self.kind = path, kind
        self.cluster = ",".join(sorted(config["nodes"]))
        self.nodes = {node: havip_rollout.server_references(config, node) for node in sorted(config["nodes"])}
        self.balancers = [balancer["name"] for balancer in config["balancers"]]
        entry = read(path).get(self.cluster)
        self.servers = self.known(entry.get(kind) if isinstance(entry, dict) else None)

    def known(self, servers):
        """Of a recorded {server: [balancers]}, the cluster's servers on its
        balancers."""
        references = {reference for places in self.nodes.values() for reference in places}
        if not isinstance(servers, dict):
            return {}
        kept = {reference: sorted({b for b in on if b in self.balancers})
                for reference, on in servers.items() if reference in references and isinstance(on, list)}
        return {reference: on for reference, on in kept.items() if on}

    def save(self):
        """Write the record back: this deploy's entry replaced (removed
        when nothing stays drained), the others' kept.  A write that fails
        is let go: the record only helps a rerun, which without it is
        refused where it would be today (the failed run's comment says what
        to ready)."""
        record = read(self.path)
        entry = record.get(self.cluster)
        entry = {**(entry if isinstance(entry, dict) else {}), self.kind: self.servers}
        record[self.cluster] = {kind: servers for kind, servers in entry.items() if servers}
        if not record[self.cluster]:
            del record[self.cluster]
        with contextlib.suppress(OSError):
            write(self.path, record)

    def note(self, step, answers):
        """After ``step``, which went through on the balancers of
        ``answers``: a drain adds them to where its server stays drained, a
        ready takes them away."""
        if step.fun not in ("havip.drain", "havip.ready"):
            return
        reference, through = step.arg[0], set(answers)
        on = set(self.servers.get(reference, []))
        on = on | through if step.fun == "havip.drain" else on - through
        self.servers = {**self.servers, reference: sorted(on)}
        self.servers = {ref: where for ref, where in self.servers.items() if where}
        self.save()

    def still_drained(self, statuses):
        """The nodes a rerun takes first, by name: those with a recorded
        server that a balancer it was left drained on still shows DRAIN
        (``statuses``: the balancers' ``havip.status``, as
        havip_answers.verdicts believed them).  The record keeps only
        those drains: one readied meanwhile is not the deploy's anymore."""
        def shown(balancer, reference):
            haproxy = statuses.get(balancer, {}).get("haproxy") or {}
            return (haproxy.get("backends") or {}).get(reference)
        servers = {reference: [b for b in on if drained(shown(b, reference))]
                   for reference, on in self.servers.items()}
        servers = {reference: on for reference, on in servers.items() if on}
        if servers != self.servers:
            self.servers = servers
            self.save()
        return [node for node, references in self.nodes.items() if set(references) & set(servers)]


def first(order, nodes):
    """``order`` with ``nodes`` first (each group in its order)."""
    return [name for name in order if name in nodes] + [name for name in order if name not in nodes]

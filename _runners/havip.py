"""
havip, cluster-wide: who holds each VIP, is every node healthy, a live
failover test that measures and fails loudly, planned switchovers, and a
rolling deploy that loses no request.  Used by ``salt-run`` and by the
orchestrate files ``havip.failover_test`` and ``havip.deploy``.

The cluster and its configuration come from the pillar the master
compiles for the minions matching ``tgt`` (default every minion; one
minion of the cluster is enough) and for the cluster's nodes, merged over
the formula's parameters and validated as map.jinja does, without
secrets: a master with several clusters targets one, and is refused when
the target spans more, or when the nodes' pillars disagree.  What minions
answer (``havip.status``, ``havip.check``) is believed about themselves
only, never about their cluster.  The reports are plain data
(``--out=json``); ``comment`` says what they mean, and a failing one has
``retcode: 1`` (``salt-run``'s exit status).  One failover test, deploy,
standby or resume runs at a time on a master (a lock in its cachedir).

This runner is the command surface: the work is done by the helpers in the
formula's ``_utils/havip_*.py``, which ``salt-run saltutil.sync_all`` brings
to the master.
"""

import contextlib
import inspect
import os
import re
import threading
import time
import uuid

import salt.client
import salt.fileclient
import salt.pillar
import salt.utils.event
import salt.utils.minions
import salt.utils.yaml
from salt.exceptions import CommandExecutionError

try:
    import havip_cluster
    import havip_contract
    import havip_facts
    import havip_health
    import havip_lock
    import havip_pillar
    import havip_rollout
    import havip_timing
    import havip_transition
except ImportError as missing:
    NOT_SYNCED = (False, f"havip: its helpers (_utils/havip_*.py) are not on the master ({missing}):"
                         " run salt-run saltutil.sync_all")
else:
    NOT_SYNCED = None

__virtualname__ = "havip"
# The formula's directory on the master's file server (map.jinja's tplroot).
FORMULA = "havip"


def __virtual__():
    return NOT_SYNCED or __virtualname__


class _Minions:
    """The minions, asked through a LocalClient; and what the master knows
    of them itself: their keys, and the pillar it compiles for them."""

    def __init__(self, client, opts):
        self.client, self.opts = client, opts
        self.parameters = {}  # {OS family: defaults.yaml <- its file}

    def answers(self, minions, fun, arg=(), kwarg=None, timeout=None):
        """{minion: return} of the minions that answered, errors included."""
        return self.client.cmd(list(minions), fun, arg=list(arg), kwarg=kwarg or {},
                               tgt_type="list", timeout=timeout or havip_facts.CALL_TIMEOUT)

    def call(self, minions, fun, arg=(), kwarg=None, timeout=None):
        """{minion: return} of the minions that answered with data (not an error)."""
        answers = self.answers(minions, fun, arg, kwarg, timeout)
        return {name: ret for name, ret in answers.items() if isinstance(ret, dict)}

    def config(self, tgt, tgt_type="glob"):
        """The havip configuration of the cluster of the minions matching
        ``tgt``, from the pillar the master compiles for each (what a minion
        answers is never believed about its cluster); refused (ValueError)
        when they belong to several clusters, or the nodes' pillars
        disagree."""
        matching = salt.utils.minions.CkMinions(self.opts).check_minions(tgt, tgt_type)["minions"]
        configs = {name: self.pillar_config(name) for name in sorted(matching)}
        config = havip_cluster.cluster_config(configs, tgt)
        configs.update({name: self.pillar_config(name) for name in config["nodes"] if name not in configs})
        if problem := havip_cluster.disagreement(config, configs):
            raise ValueError(problem)
        return config

    def pillar_config(self, minion):
        """The havip configuration the master derives from the pillar it
        compiles for ``minion`` (the grains in its cache select the pillar
        and the OS family's parameters, as on the minion), without secrets;
        None without havip nodes."""
        grains = salt.utils.minions.get_minion_data(minion, self.opts)[1] or {}
        pillar = salt.pillar.get_pillar(self.opts, grains, minion, saltenv=self.opts.get("saltenv") or "base",
                                        pillarenv=self.opts.get("pillarenv")).compile_pillar()
        if pillar.get("_errors"):
            # The errors may quote the pillar's lines, secrets too: counted, not shown.
            raise ValueError(f"the master cannot compile the pillar of {minion} ({len(pillar['_errors'])}"
                             f" errors: salt-run pillar.show_pillar {minion} shows them)")
        family = grains.get("os_family")
        try:
            return havip_pillar.master_config(pillar.get("havip"), self.formula_parameters(
                family if isinstance(family, str) and re.fullmatch(r"[A-Za-z0-9_]+", family) else None))
        except CommandExecutionError as exc:
            raise ValueError(f"the pillar of {minion}: {exc}") from None

    def formula_parameters(self, family):
        """map.jinja's first steps: the formula's defaults.yaml <- the OS
        family's file (if there is one), from the master's file server."""
        if family not in self.parameters:
            defaults = self.formula_yaml("defaults")
            if defaults is None:
                raise ValueError(f"salt://{FORMULA}/parameters/defaults.yaml is not on this master's file server")
            over = self.formula_yaml(f"os_family/{family}") if family else None
            self.parameters[family] = havip_pillar.merge(defaults.get("havip") or {}, (over or {}).get("havip") or {})
        return self.parameters[family]

    def formula_yaml(self, name):
        """The formula's ``parameters/<name>.yaml`` from the master's file
        server, None if there is none."""
        with salt.fileclient.get_file_client(self.opts) as files:
            path = files.cache_file(f"salt://{FORMULA}/parameters/{name}.yaml", self.opts.get("saltenv") or "base")
        if not path:
            return None
        with open(path, encoding="utf-8") as handle:
            return salt.utils.yaml.safe_load(handle) or {}


@contextlib.contextmanager
def _connect():
    """The minions, through one LocalClient for this run (or this thread: a
    LocalClient listens for its own returns), closed at the end."""
    with salt.client.get_local_client(__opts__["conf_file"]) as client:
        yield _Minions(client, __opts__)


def _fail(report, reason):
    """``report`` as a failure: ``salt-run`` exits with its ``retcode``, an
    orchestrate step fails by the context's."""
    __context__["retcode"] = 1
    report.update(result=False, comment=reason, retcode=1)
    return report


def _exclusive(function, report, args, run):
    """``run()`` (it returns the report) while this run holds the master's
    runner lock; refused, running nothing, when one of ``args`` (its
    options) is not what it accepts, or while another run holds it."""
    if problem := _invalid_option(function, args):
        return _fail(report, problem)
    path = os.path.join(__opts__["cachedir"], havip_facts.RUNNER_LOCK)
    try:
        with havip_lock.exclusive(path, f"havip.{function}", args):
            return run()
    except havip_lock.Busy as busy:
        return _fail(report, f"havip.{function} refused: {busy}")


def _is_number(value, low, high):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


# The target types of Salt's minion matcher (CkMinions) a tgt_type may name.
TARGET_TYPES = ("glob", "pcre", "list", "grain", "grain_pcre", "pillar", "pillar_pcre", "pillar_exact", "compound",
                "compound_pillar_exact", "ipcidr", "range", "nodegroup")


def _option_checks():
    """Every option of the runner's functions: (its check, what it accepts)."""
    return {
        "name": (havip_contract.is_name, "a balancer's minion id (letters, digits and _ . -)"),
        "client": (lambda value: value is None or havip_contract.is_name(value), "a minion id (letters, digits and _ . -)"),
        "vip": (lambda value: value is None or havip_contract.is_name(value), "a VIP's name (letters, digits and _ . -)"),
        "failure": (lambda value: isinstance(value, str) and value in havip_facts.FAILURES,
                    f"one of {', '.join(havip_facts.FAILURES)}"),
        "rate": (lambda value: _is_number(value, 0.1, 1000), "a number of requests per second from 0.1 to 1000"),
        "max_failed": (lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                       "a whole number from 0 up"),
        "tgt": (lambda value: (isinstance(value, str) and value != "")
                or (isinstance(value, list) and value != [] and all(isinstance(item, str) for item in value)),
                "a Salt target (a string, or a list of minion ids)"),
        "tgt_type": (lambda value: isinstance(value, str) and value in TARGET_TYPES,
                     f"one of {', '.join(TARGET_TYPES)}"),
    }


def _invalid_option(function, values):
    """Why one of ``values`` ({option: value}) of runner ``function`` is
    refused, or None."""
    checks = _option_checks()
    for key, value in values.items():
        valid, accepts = checks[key]
        if not valid(value):
            return f"{function}:{key}: must be {accepts}, got {value!r}"
    return None


def _unknown_options(function, options):
    """Why ``options`` (the keyword arguments ``function`` does not take,
    e.g. from an orchestrate file's pillar) are refused, or None.  Salt's
    own ``__pub_*`` keywords are not options."""
    given = [name for name in options if not str(name).startswith("__")]
    known = [name for name, parameter in inspect.signature(function).parameters.items()
             if parameter.kind is parameter.POSITIONAL_OR_KEYWORD]
    found = havip_contract.unknown_key(given, known)
    return f"{function.__name__}:{found[0]}: {found[1]}" if found else None


def _survey(minions, config):
    """Status and health of every node, and the problems they add up to."""
    names = sorted(config["nodes"])
    return havip_health.survey(config, minions.call(names, "havip.status"), minions.call(names, "havip.check"))


def status(tgt="*", tgt_type="glob"):
    """
    The cluster at a glance: the holders of every VIP, the preferred holder,
    every node's health verdict, and the problems.  Exits non-zero (and an
    orchestrate step using it fails) on any problem: a VIP with no holder or
    two ("split brain"), a VIP away from its preferred holder while
    preemption is on, an unhealthy or silent node, or no healthy balancer
    left to take over.  The cluster is the pillar's as the master compiles
    it now (a change not applied yet shows).  Refused when the minions
    matching ``tgt`` belong to several havip clusters, or the pillars of its
    nodes disagree.  Takes no lock.

    CLI Example:

    .. code-block:: bash

        salt-run havip.status
        salt-run havip.status tgt='lb*'
    """
    if problem := _invalid_option("status", {"tgt": tgt, "tgt_type": tgt_type}):
        return _fail({}, problem)
    with _connect() as minions:
        try:
            config = minions.config(tgt, tgt_type)
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
    """A salt call that runs while the test goes on; ``result`` after
    join(): the minion's answer (an error message too), None if it was
    lost."""

    def __init__(self, minion, fun, arg=(), kwarg=None, timeout=None):
        super().__init__(daemon=True)
        self.call = (minion, fun, arg, kwarg, timeout)
        self.result = None

    def run(self):
        minion, fun, arg, kwarg, timeout = self.call
        with _connect() as minions:
            self.result = minions.answers([minion], fun, arg, kwarg, timeout).get(minion)


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


def _restore(minions, config, holder, failure, expected, servers_up, budget):
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


def _probe_problem(minions, probing):
    """Why the client cannot probe the URL (a probe of 1 s at the test's
    rate, before anything is broken), or None."""
    client, url = probing["client"], probing["url"]
    seen = minions.answers([client], "havip.probe", kwarg={"url": url, "seconds": 1, "rate": probing["rate"]},
                           timeout=havip_facts.CALL_TIMEOUT + 1).get(client)
    where = f"the client {client} cannot probe {url} before the test"
    if not isinstance(seen, dict):
        return f"{where}: {'no answer' if seen is None else havip_rollout.error_text(seen)}"
    if seen["failed"]:
        return f"{where}: {seen['failed']} of {seen['total']} failed"
    return None


def _injection_problem(answer, failure, holder):
    """What the answer of havip.inject says is wrong: None when it broke
    the holder; a lost answer (the failure may have happened: the holder
    is restored all the same) or the minion's error."""
    if isinstance(answer, dict):
        return None
    if answer is None:
        return f"the answer of havip.inject {failure} on {holder} was lost (restored all the same)"
    return f"havip.inject {failure} on {holder} failed: {havip_rollout.error_text(answer)}"


def _break_and_measure(minions, config, report, move_budget):
    """Steps 2-4 of the failover test: break ``report["holder"]`` while the
    client probes, wait for the VIP on another balancer; fills in the
    figures, returns (the new holder or None, problems), or None when the
    failure was refused (nothing was broken)."""
    holder, vip, probing, failure = report["holder"], report["vip"], report["probe"], report["failure"]
    seconds = 1.0 + move_budget + 3.0
    probe = _Background(probing["client"], "havip.probe",
                        kwarg={"url": probing["url"], "seconds": seconds, "rate": probing["rate"]},
                        timeout=seconds + 30)
    probe.start()
    time.sleep(1.0)  # good answers before the failure
    problems = []
    # confirm: the pre-check found another healthy balancer in service
    # (else "no other healthy balancer could take over").  A link stays
    # down until the probe is over: its return (the old holder preempting)
    # is not the failover.
    breaker = _Background(holder, "havip.inject", [failure], {"duration": seconds + 1.0, "confirm": True},
                          timeout=seconds + 30)
    injected_at = time.time()
    breaker.start()
    if failure != "link_down":
        breaker.join()
        if breaker.result is not None and not isinstance(breaker.result, dict):
            probe.join()
            return None
        if breaker.result is None:
            problems.append(_injection_problem(None, failure, holder))
        else:
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
    problems += _traffic_problems(probe.result, report, injected_at, move_budget)
    breaker.join()
    if failure == "link_down" and (problem := _injection_problem(breaker.result, failure, holder)):
        problems.append(problem)
    return new_holder, problems


def _traffic_problems(seen, report, injected_at, move_budget):
    """What the probe's answer ``seen`` says of the failover; fills in its
    figures."""
    probing = report["probe"]
    if not isinstance(seen, dict):
        return [f"the probe on {probing['client']} returned nothing"]
    report.update(client_visible_outage=round(seen["longest_outage"], 2),
                  failed_requests=seen["failed"], requests=seen["total"])
    failing_for = (seen["last_failure"] or 0) + seen["started"] - injected_at
    if not seen["recovered"] or failing_for > move_budget + 1.0:
        return [f"traffic through {probing['url']} did not resume within {move_budget + 1.0:.1f} s"]
    return []


def _broken_and_restored(minions, config, report, before, budgets):
    """Steps 2-5 of the failover test: break the holder and measure, then
    restore it whatever happened in between (an error is one more problem;
    an interruption restores too).  Returns the problems, or None when the
    failure was refused (nothing was broken, nothing restored)."""
    holder, vip = report["holder"], report["vip"]
    move_budget, restore_budget = budgets
    broken, new_holder, problems = True, None, []
    try:
        measured = _break_and_measure(minions, config, report, move_budget)
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
            took, problem = _restore(minions, config, holder, report["failure"], expected,
                                     havip_health.servers_up(config, before["statuses"]), restore_budget)
            report.update(restored_after=round(took, 1), restore_budget=round(restore_budget, 2),
                          holders_after=_survey(minions, config)["holders"])
            problems += [problem] if problem else []
    return problems if broken else None


def _with_leftovers(text, report):
    """``text``, naming what the pre-check found left behind."""
    leftovers = report.get("leftovers")
    return text + (f"; leftovers: {'; '.join(leftovers)}" if leftovers else "")


def _failover_test(minions, report, client, vip, rate, tgt, tgt_type):
    """The failover test of :py:func:`failover_test`, filling in ``report``."""
    failure = report["failure"]
    try:
        config = minions.config(tgt, tgt_type)
        client = havip_cluster.probing_client(config, client, "failover_test:client")
    except ValueError as exc:
        return _fail(report, str(exc))
    before = _survey(minions, config)
    report.update(holders_before=before["holders"], leftovers=havip_health.leftovers(config, before["statuses"]))
    if before["problems"]:
        return _fail(report, _with_leftovers("pre-check failed: " + "; ".join(before["problems"]), report))
    vip = vip or sorted(config["vips"])[0]
    if vip not in config["vips"]:
        return _fail(report, f"unknown VIP {vip!r} (known: {', '.join(sorted(config['vips']))})")
    holder = before["holders"][vip][0]
    move_budget, restore_budget = havip_timing.failover_budgets(config, failure)
    report.update(vip=vip, holder=holder, move_budget=round(move_budget, 2),
                  probe={"url": havip_cluster.frontend_url(config, vip), "client": client, "rate": rate})
    if problem := _pending_problem(minions, config) or _probe_problem(minions, report["probe"]):
        return _fail(report, _with_leftovers(f"{problem}; nothing was broken", report))
    problems = _broken_and_restored(minions, config, report, before, (move_budget, restore_budget))
    if problems is None:
        return _fail(report, _with_leftovers(f"havip.inject {failure} on {holder} failed", report))
    if problems:
        return _fail(report, _with_leftovers("failover test FAILED: " + "; ".join(problems), report))
    report.update(result=True, comment=_with_leftovers(f"failover test passed: {failure} on {holder}", report))
    return report


def failover_test(failure="kill_haproxy", client=None, vip=None, rate=100, tgt="*", tgt_type="glob",
                  **options):
    """
    A live failover test.  Checks the cluster (as :py:func:`status`), that
    the pillar renders on every balancer without changing
    ``keepalived:vrrp_version`` (the restore applies it: as the deploy's
    pre-check) and that ``client`` (default: the first node that is not a
    balancer) can probe the frontend on the VIP (1 s at ``rate``
    requests/s), then probes it while it breaks the VIP's holder
    (``failure``: kill_haproxy, stop_haproxy, kill_keepalived, link_down;
    ``havip.inject`` with ``confirm=True``, the pre-check having found
    another healthy balancer in service), waits - bounded by budgets
    computed from the keepalived timers - for the VIP on another balancer
    and for traffic to resume, then restores the holder with ``state.apply
    havip`` and waits for the cluster to be as before.  The restore runs
    whatever happens after the injection (its answer lost, an error, an
    interruption); when its apply fails, the comment says what the failure
    left on the holder.  Reports the figures, and ``leftovers``: balancers
    on standby and backend servers out of rotation that the pre-check found
    (a failed deploy step leaves them).  Exits non-zero with the reason if
    any step fails.

    ``tgt``/``tgt_type``: the minions of the cluster to test (refused when
    they belong to several clusters).  Any other keyword, or an option's
    value of another type or range, is refused before anything runs (the
    orchestrate file passes its whole ``failover_test`` pillar).  Refused
    while another failover test, deploy, standby or resume runs on this
    master.

    CLI Example:

    .. code-block:: bash

        salt-run havip.failover_test
        salt-run havip.failover_test failure=link_down client=client1 tgt='lb*'
    """
    report = {"failure": failure}
    if problem := _unknown_options(failover_test, options):
        return _fail(report, problem)

    def run():
        with _connect() as minions:
            return _failover_test(minions, report, client, vip, rate, tgt, tgt_type)
    return _exclusive("failover_test", report, {"failure": failure, "client": client, "vip": vip, "rate": rate,
                                                "tgt": tgt, "tgt_type": tgt_type}, run)


# ---- planned switchover -------------------------------------------------------


def _switch(name, fun, tgt, tgt_type):
    """``fun`` (havip.standby or havip.resume) on balancer ``name``, as a
    report."""
    verb = fun.split(".")[1]
    report = {"balancer": name}
    with _connect() as minions:
        try:
            config = minions.config(tgt, tgt_type)
        except ValueError as exc:
            return _fail(report, str(exc))
        balancers = [node["name"] for node in config["balancers"]]
        if name not in balancers:
            return _fail(report, f"{name!r} is not a balancer (balancers: {', '.join(balancers)})")
        problem, answers = _run_step(minions, havip_rollout.move_step(config, name, fun))
    if problem:
        return _fail(report, f"{verb} {name} FAILED: {problem}")
    answer = answers[name]
    already = "" if answer["changed"] else f" (it was {'on standby' if verb == 'standby' else 'in service'} already)"
    moved = f"{', '.join(answer['moved'])} moved in {answer['seconds']:.1f} s" if answer["moved"] else "no VIP moved"
    report.update(moved=answer["moved"], seconds=answer["seconds"], result=True,
                  comment=f"{verb} {name} done: {moved}{already}")
    return report


def standby(name, tgt="*", tgt_type="glob"):
    """
    Planned maintenance on balancer ``name``: ``havip.standby`` there - its
    VIPs move to the other balancers and stay away, across re-applies and
    restarts, until :py:func:`resume`.  Like every move, it is a handover
    (keepalived's notify script): ``name`` serves the connections it has
    until they end, the new holder relaying their packets to it, so none is
    lost.  Refused while another failover test, deploy, standby or resume
    runs on this master.

    Reports ``balancer``, ``moved`` (the VIPs), ``seconds``; exits non-zero
    when the move fails, the comment says why.

    CLI Example:

    .. code-block:: bash

        salt-run havip.standby svr1
    """
    return _exclusive("standby", {"balancer": name}, {"name": name, "tgt": tgt, "tgt_type": tgt_type},
                      lambda: _switch(name, "havip.standby", tgt, tgt_type))


def resume(name, tgt="*", tgt_type="glob"):
    """
    End :py:func:`standby` of balancer ``name``: ``havip.resume`` there.
    With preemption on it takes back the VIPs it is preferred for, a
    handover as every move is.  Reports as :py:func:`standby`.

    CLI Example:

    .. code-block:: bash

        salt-run havip.resume svr1
    """
    return _exclusive("resume", {"balancer": name}, {"name": name, "tgt": tgt, "tgt_type": tgt_type},
                      lambda: _switch(name, "havip.resume", tgt, tgt_type))


def _run_step(minions, step):
    """(None or why the step failed, {target where it went through: its answer})."""
    answers = minions.answers(step.targets, step.fun, step.arg, step.kwarg, step.timeout)
    problems = {name: havip_rollout.step_problem(step.fun, answers.get(name)) for name in step.targets}
    failed = "; ".join(f"{name}: {problem}" for name, problem in problems.items() if problem)
    return failed or None, {name: answers[name] for name, problem in problems.items() if not problem}


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
        """End the probe, and remove its stop file once it has ended;
        returns its problem, None if every request it sent was answered."""
        ended_early = not self.is_alive()
        if not ended_early:
            self.minions.answers([self.client], "file.touch", [self.stop_file])
            self.join(havip_facts.CALL_TIMEOUT)
            if not self.is_alive():
                self.minions.answers([self.client], "file.remove", [self.stop_file])
        return self._problem(ended_early)

    def _problem(self, ended_early):
        where = f"the probe of {self.url} on {self.client}"
        if self.is_alive():
            return f"{where} did not stop (its stop file {self.stop_file} stays there)"
        return havip_rollout.probe_problem(self.answer, where, self.url, ended_early, self.max_failed)


def _holds(minions, config, name):
    """(None or why it cannot be known, whether balancer ``name`` holds a
    VIP now)."""
    status = minions.call([name], "havip.status").get(name)
    if status is None:
        return f"{name} did not answer havip.status", False
    return None, any(name in names for names in havip_health.holders(config, {name: status}).values())


def _roll_out(minions, config, order, steps):
    """Run every node's steps in ``order``, appending "label: seconds" to
    ``steps``.  Whether a balancer holds a VIP (and so goes on standby for
    its apply) is read when its turn comes: a failover meanwhile moves the
    VIPs.  Stops at the first failing step; returns why it failed, what
    that node is left with and which nodes were left untouched, or None
    when every step passed."""
    for index, name in enumerate(order):
        problem, holds = None, False
        if "balancer" in config["nodes"][name]["roles"]:
            problem, holds = _holds(minions, config, name)
        if problem:
            return f"{problem}; stopped there; untouched: {', '.join(order[index:])}"
        untouched = [f"untouched: {', '.join(order[index + 1:])}"] if order[index + 1:] else []
        done = []
        for step in havip_rollout.node_steps(config, name, holds):
            start = time.monotonic()
            problem, answers = _run_step(minions, step)
            steps.append(f"{step.label}: {time.monotonic() - start:.1f} s" + (" FAILED" if problem else ""))
            if problem:
                return "; ".join([f"step '{step.label}' failed: {problem}", "stopped there",
                                  *havip_rollout.left_behind(name, done, step, list(answers))] + untouched)
            done.append(step)
    return None


def _settled(minions, tgt, tgt_type, report):
    """None once every node is healthy and each VIP on its preferred holder
    (polled for up to SETTLE_TIMEOUT s), else why not."""
    config = minions.config(tgt, tgt_type)  # the configuration just deployed
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


def _pending_problem(minions, config):
    """Why the pillar as it is now cannot be applied to one balancer at a
    time (it does not render on one, or changes keepalived:vrrp_version),
    or None: the deploy applies it so, the failover test's restore too."""
    balancers = [node["name"] for node in config["balancers"]]
    pending = minions.answers(balancers, "state.show_sls", ["havip.facts"], timeout=havip_rollout.RENDER_TIMEOUT)
    return havip_rollout.vrrp_version_problem(minions.call(balancers, "havip.config"),
                                              {name: pending.get(name) for name in balancers})


def _deploy(minions, config, tgt, tgt_type, client, rate, max_failed, report):
    """Pre-check, then the rollout under probes; returns the problems."""
    before = _survey(minions, config)
    report["holders_before"] = before["holders"]
    if before["problems"]:
        return ["pre-check failed: " + "; ".join(before["problems"])]
    if problem := _pending_problem(minions, config):
        return [f"refused, nothing deployed: {problem}"]
    order = havip_rollout.rollout_order(config, before["holders"])
    urls = [havip_cluster.frontend_url(config, vip) for vip in sorted(config["vips"])]
    report.update(order=order, probe={"urls": urls, "client": client, "rate": rate}, steps=[])
    probes = [_Probe(minions, client, url, rate, max_failed) for url in urls]
    problems = _under_probes(probes, lambda: _roll_out(minions, config, order, report["steps"])
                             or _settled(minions, tgt, tgt_type, report))
    seen = [probe.answer for probe in probes if isinstance(probe.answer, dict)]
    if seen:
        report.update(failed_requests=sum(s["failed"] for s in seen), requests=sum(s["total"] for s in seen))
    return problems


def _deployed(report, client, rate, max_failed, tgt, tgt_type):
    """The rolling deploy of :py:func:`deploy`, filling in ``report``."""
    with _connect() as minions:
        try:
            config = minions.config(tgt, tgt_type)
            client = havip_cluster.probing_client(config, client, "deploy:client")
        except ValueError as exc:
            return _fail(report, str(exc))
        problems = _deploy(minions, config, tgt, tgt_type, client, rate, max_failed, report)
    if problems:
        return _fail(report, "rolling deploy FAILED: " + "; ".join(problems))
    failed = report["failed_requests"]
    report.update(result=True, comment=f"rolling deploy done: {', '.join(report['order'])}; " + (
        "no request failed" if not failed else
        f"{failed} of {report['requests']} requests failed (max_failed: {max_failed} per VIP)"))
    return report


def deploy(client=None, rate=100, max_failed=0, tgt="*", tgt_type="glob", **options):
    """
    A rolling deploy of the havip pillar as it is now: ``state.apply havip``
    on one node at a time, each taken out of service first, checked after
    and put back, while ``client`` (default: the first node that is not a
    balancer) probes the frontend on every VIP at ``rate`` requests/s.

    1. pre-check, as :py:func:`status`; and the new pillar must render on
       every balancer and keep its ``keepalived:vrrp_version`` (read with
       ``state.show_sls havip.facts``).  VRRPv2 and v3 peers do not talk
       to each other: rolled one balancer at a time, each half would hold
       the VIPs.  A version change is refused, nothing deployed: apply it
       to every balancer at once (``salt -L 'svr1,svr2' state.apply
       havip``, accepting a short split), then deploy.  The cluster is
       the pillar's as it is now: a node or VIP it adds fails the
       pre-check until applied on its own;
    2. the nodes that are only backends, by name: drained on every balancer
       (``havip.drain``), applied, checked (``havip.check``), readied on
       every balancer (``havip.ready``);
    3. the balancers holding no VIP, then those holding VIPs (as the
       pre-check found them); whether one holds a VIP is read again when
       its turn comes (a failover may have moved them meanwhile).  One
       holding a VIP: ``havip.standby`` (its VIPs move away, a handover as
       every move is), applied, checked, ``havip.resume``; one holding
       none: applied, checked;
    4. every node healthy and each VIP on its preferred holder; every probe
       request answered.

    A node that is backend and balancer goes with the balancers, drained
    first and readied last.

    The first failing step stops the rollout: the nodes after it are left
    untouched, a backend whose apply or check failed stays drained, a
    balancer stays on standby; the comment says which step failed, why, and
    what is left so.  Any failure (a failed probe request too) makes
    ``salt-run`` exit 1; ``max_failed`` failed requests per VIP are
    tolerated (default 0).  Returns every step with its duration.

    ``tgt``/``tgt_type``: the minions of the cluster to deploy (refused
    when they belong to several clusters).  Any other keyword (naming the
    nearest known one), or an option's value of another type or range, is
    refused before anything runs (the orchestrate file passes its whole
    ``deploy`` pillar).  Refused while another failover test, deploy,
    standby or resume runs on this master.  The probes' stop files on the
    client are removed once the probes have ended.

    CLI Example:

    .. code-block:: bash

        salt-run havip.deploy
        salt-run havip.deploy client=client1 tgt='lb*'
    """
    report = {}
    if problem := _unknown_options(deploy, options):
        return _fail(report, problem)
    return _exclusive("deploy", report, {"client": client, "rate": rate, "max_failed": max_failed, "tgt": tgt,
                                         "tgt_type": tgt_type},
                      lambda: _deployed(report, client, rate, max_failed, tgt, tgt_type))


def _accepted_key(minion):
    """The public key (PEM) the master accepted for ``minion`` (a checked
    name)."""
    with open(os.path.join(__opts__["pki_dir"], "minions", minion), "rb") as handle:
        return handle.read()


def log_transition(minion, vip, state, previous, at):
    """
    Log one VRRP transition that the havip beacon reported, once the minion
    it names confirms it: one line ``<at> <minion> <vip> <previous> ->
    <state>`` appended to the master option ``havip_vrrp_log`` (default
    ``/var/log/salt/havip-vrrp.log``, created if missing), and a VIP taken
    over (MASTER) announced as the event ``havip/vip/<vip>/holder`` (data
    ``vip``, ``holder``, ``at``).  The example reactor
    (``havip/reactor/vrrp.sls``) calls it for every beacon event.

    An event does not prove its sender (any minion can fire one naming
    another), and neither does a job return on the master's bus (any minion
    sees the jobs published and can fire a return in another's name), so
    what it says is refused, with nothing written or fired, unless:
    ``minion`` and ``vip`` are names and ``state`` and ``previous`` VRRP
    states keepalived reports; ``at`` is a finite number of seconds since
    the epoch within 300 s of the master's clock; the master accepted a key
    for ``minion``; at most 60 transitions of ``minion`` were asked about in
    the last minute (counted in the master's cachedir); and ``minion``
    itself, asked (``havip.status`` with a nonce sealed to that key), has
    that VIP in that state since that time, proven by an HMAC keyed by the
    nonce, which only the holder of its private key can open.

    CLI Example:

    .. code-block:: bash

        salt-run havip.log_transition svr2 VI_1 MASTER BACKUP 1764670000.25
    """
    report = {}
    if problem := havip_transition.problem(minion, vip, state, previous, at, time.time()):
        return _fail(report, f"havip.log_transition: {problem}")
    try:
        nonce, sealed = havip_transition.challenge(_accepted_key(minion))
    except (OSError, ValueError) as error:
        return _fail(report, f"havip.log_transition: {minion} refused: no key accepted for it ({error})")
    if not havip_transition.admit(os.path.join(__opts__["cachedir"], havip_transition.COUNTED), minion,
                                  time.time()):
        return _fail(report, f"havip.log_transition: {minion} refused: more than {havip_transition.RATE_LIMIT}"
                             f" transitions in {havip_transition.RATE_WINDOW} s")
    with _connect() as minions:
        answer = minions.answers([minion], "havip.status", kwarg={"challenge": sealed}).get(minion)
    if problem := havip_transition.unconfirmed(answer, vip, state, at, nonce):
        return _fail(report, f"havip.log_transition: {minion} does not confirm {vip} {state} at {at}: {problem}")
    line = f"{at} {minion} {vip} {previous} -> {state}\n"
    path = __opts__.get(havip_facts.TRANSITION_LOG_OPTION, havip_facts.TRANSITION_LOG)
    with open(path, "a", encoding="utf-8") as log:
        log.write(line)
    if state == "MASTER":
        with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False) as bus:
            bus.fire_event({"vip": vip, "holder": minion, "at": at}, f"havip/vip/{vip}/holder")
    return {"result": True, "comment": f"{path}: {line.strip()}"}

"""
What the master knows of a havip cluster, for the runner: its minions,
asked through a LocalClient, and what it derives itself - the pillar it
compiles for each (the cluster and its configuration come from there,
never from what a minion answers), the formula's parameters from its file
server; and the cluster-wide questions every runner function asks: the
survey of the nodes, whether the pillar as it is now can be applied, one
step on its targets.

The runner passes in what it owns (its ``__opts__``, a LocalClient, the
function that connects): no Salt dunders here.
"""

import contextlib
import re
import threading

import havip_answers
import havip_cluster
import havip_facts
import havip_health
import havip_pillar
import havip_rollout
import salt.fileclient
import salt.loader
import salt.pillar
import salt.utils.dictupdate
import salt.utils.minions
import salt.utils.yaml
from salt.exceptions import CommandExecutionError

# The formula's directory on the master's file server (map.jinja's tplroot).
FORMULA = "havip"


def merge(base, over):
    """``over`` merged over ``base`` as map.jinja's ``slsutil.merge`` does
    (dictionaries recursively, lists replaced), neither changed."""
    return salt.utils.dictupdate.merge(base, over, strategy="recurse", merge_lists=False)


def master_config(pillar, parameters):
    """What map.jinja makes of a minion's havip ``pillar``, derived on the
    master (the runner): merged over ``parameters`` (defaults.yaml <- the OS
    family's file) and validated without the minion's own data (its
    interfaces; a backend's address from the mine is None), without
    secrets.  None when the pillar names no node."""
    if pillar is None:
        return None
    if not isinstance(pillar, dict):
        raise CommandExecutionError(f"havip pillar: havip: must be a dictionary, got {type(pillar).__name__}")
    config = havip_pillar.validate(merge(parameters, pillar), mine_get=lambda tgt, fun: {})
    return config if config["nodes"] else None


class _Kept:
    """A file client shared by the compiles of one runner call: what
    ``destroy`` each compile calls on it when done is put off to the end of
    the call (:py:func:`shared_file_clients`)."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def destroy(self):
        """Kept open until the runner call's compiles end."""


@contextlib.contextmanager
def shared_file_clients():
    """While the master compiles the pillars of one runner call, one file
    client of each kind serves them all.  Salt's compiler builds a pillar
    client and a file server client for every minion (``salt.pillar.Pillar``
    asks ``salt.fileclient.get_file_client`` for both), each with its own
    loaders: most of a compile's time, and neither depends on the minion
    (they read the master's pillar and file roots).  Undone, and the
    clients destroyed, when the compiles end, whatever happens."""
    build, made = salt.fileclient.get_file_client, {}

    def shared(opts, *args, **kwargs):
        key = (args, tuple(sorted(kwargs.items())))
        if key not in made:
            made[key] = _Kept(build(opts, *args, **kwargs))
        return made[key]

    salt.fileclient.get_file_client = shared
    try:
        yield
    finally:
        salt.fileclient.get_file_client = build
        for kept in made.values():
            with contextlib.suppress(AttributeError):  # Salt's pillar client has no destroy
                kept.client.destroy()


class Minions:
    """The minions, asked through a LocalClient; and what the master knows
    of them itself: their keys, and the pillar it compiles for them."""

    def __init__(self, client, opts):
        self.client, self.opts = client, opts
        self.parameters = {}  # {OS family: defaults.yaml <- its file}
        self.functions = None  # the execution modules pillar compiles call (pillar_functions)

    def answers(self, minions, fun, arg=(), kwarg=None, timeout=None):
        """{minion: return} of the minions that answered, errors included."""
        return self.client.cmd(list(minions), fun, arg=list(arg), kwarg=kwarg or {},
                               tgt_type="list", timeout=timeout or havip_facts.CALL_TIMEOUT)

    def publish(self, tgt, tgt_type, fun, kwarg=None):
        """Publish ``fun`` to the minions matching ``tgt`` without waiting:
        the job ({"jid", "minions": those it went to}; {} if it could not be
        published), whose answers ``returns`` collects."""
        return self.client.run_job(tgt, fun, arg=[], tgt_type=tgt_type, kwarg=kwarg or {},
                                   timeout=havip_facts.CALL_TIMEOUT, listen=True) or {}

    def returns(self, job, minions, timeout=None):
        """{minion: return} of those of ``minions`` the published ``job``
        went to that answered, errors included (as ``answers``): read until
        all of them answered or timed out (Salt's collection would wait for
        every minion the job went to); the others' answers are not read."""
        expected = set(minions) & set(job.get("minions", ()))
        answered = {}
        if not expected:
            return answered
        events = self.client.get_cli_event_returns(job["jid"], sorted(expected),
                                                   timeout or havip_facts.CALL_TIMEOUT, sorted(expected), "list")
        with contextlib.closing(events):
            for answer in events:
                answered.update({name: data.get("ret", {}) for name, data in answer.items() if name in expected})
                if len(answered) == len(expected):
                    break
        return answered

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
        with shared_file_clients():
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
                                        funcs=self.pillar_functions(grains),
                                        pillarenv=self.opts.get("pillarenv")).compile_pillar()
        if pillar.get("_errors"):
            # The errors may quote the pillar's lines, secrets too: counted, not shown.
            raise ValueError(f"the master cannot compile the pillar of {minion} ({len(pillar['_errors'])}"
                             f" errors: salt-run pillar.show_pillar {minion} shows them)")
        family = grains.get("os_family")
        try:
            return master_config(pillar.get("havip"), self.formula_parameters(
                family if isinstance(family, str) and re.fullmatch(r"[A-Za-z0-9_]+", family) else None))
        except CommandExecutionError as exc:
            raise ValueError(f"the pillar of {minion}: {exc}") from None

    def pillar_functions(self, grains):
        """The execution modules a pillar compile calls (``salt[...]`` in a
        pillar file), their ``__grains__`` the minion's: one loader for
        every pillar this call compiles, as Salt's master shares its own
        (building them is most of a compile's time)."""
        if self.functions is None:
            self.functions = salt.loader.minion_mods(self.opts)
        for loader in (self.functions, getattr(self.functions, "_dunder_salt", None)):
            if loader is not None:
                loader.pack["__grains__"] = grains
        return self.functions

    def formula_parameters(self, family):
        """map.jinja's first steps: the formula's defaults.yaml <- the OS
        family's file (if there is one), from the master's file server."""
        if family not in self.parameters:
            defaults = self.formula_yaml("defaults")
            if defaults is None:
                raise ValueError(f"salt://{FORMULA}/parameters/defaults.yaml is not on this master's file server")
            over = self.formula_yaml(f"os_family/{family}") if family else None
            self.parameters[family] = merge(defaults.get("havip") or {}, (over or {}).get("havip") or {})
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


class Background(threading.Thread):
    """A salt call that runs while the caller goes on, through its own
    connection (``connect()``: a context manager giving Minions);
    ``result`` after join(): the minion's answer (an error message too),
    None if it was lost."""

    def __init__(self, connect, minion, fun, arg=(), kwarg=None, timeout=None):
        super().__init__(daemon=True)
        self.connect = connect
        self.call = (minion, fun, arg, kwarg, timeout)
        self.result = None

    def run(self):
        minion, fun, arg, kwarg, timeout = self.call
        with self.connect() as minions:
            self.result = minions.answers([minion], fun, arg, kwarg, timeout).get(minion)


# The one call the survey makes to each node: its health and the status it judged.
CHECK, CHECK_KWARG = "havip.check", {"with_status": True}


def publish_survey(minions, tgt, tgt_type):
    """The survey's call published to the minions matching ``tgt`` ahead
    of time (the job ``survey`` collects), so that they work while the
    master compiles their pillars; their answers are read for the
    cluster's nodes only, once the pillars say which they are."""
    return minions.publish(tgt, tgt_type, CHECK, CHECK_KWARG)


def survey(minions, config, published=None):
    """Status and health of every node, and the problems they add up to:
    one call to each (``havip.check`` with the status it judged; the nodes
    the ``published`` job went to answer it, the others are asked now),
    its answer believed about itself only once checked (havip_answers'
    ``verdicts``); one that answers an error did not answer."""
    names = sorted(config["nodes"])
    published = published or {}
    answers = minions.returns(published, names) if published else {}
    if rest := [name for name in names if name not in published.get("minions", ())]:
        answers.update(minions.call(rest, CHECK, kwarg=CHECK_KWARG))
    answers = {name: answers[name] for name in names if isinstance(answers.get(name), dict)}
    checks, statuses = havip_answers.verdicts(config, answers)
    return havip_health.survey(config, statuses, checks)


def pending_problem(minions, config):
    """Why the pillar as it is now cannot be applied to one balancer at a
    time (it does not render on one, or changes keepalived:vrrp_version),
    or None: the deploy applies it so, the failover test's restore too."""
    balancers = [node["name"] for node in config["balancers"]]
    pending = minions.answers(balancers, "state.show_sls", ["havip.facts"], timeout=havip_rollout.RENDER_TIMEOUT)
    return havip_rollout.vrrp_version_problem(minions.call(balancers, "havip.config"),
                                              {name: pending.get(name) for name in balancers})


def run_step(minions, step):
    """(None or why the step failed, {target where it went through: its answer})."""
    answers = minions.answers(step.targets, step.fun, step.arg, step.kwarg, step.timeout)
    problems = {name: havip_rollout.step_problem(step.fun, answers.get(name)) for name in step.targets}
    failed = "; ".join(f"{name}: {problem}" for name, problem in problems.items() if problem)
    return failed or None, {name: answers[name] for name, problem in problems.items() if not problem}

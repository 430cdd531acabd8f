"""
Unit tests of the havip runner (``_runners/havip.py``) with every salt call
faked (the minions answer through a fake of its LocalClient wrapper): the
cluster's verdicts, the failover test's control flow, the rolling deploy
(the order of the steps, the stop at the first failing one, what it
reports), ``havip.standby``/``havip.resume``, the lock that lets one of
them run at a time, and a master with two clusters.
"""

import copy
import fnmatch
import functools
import os
import re
import threading
import types

import havip_deploy
import havip_facts
import havip_failover
import havip_lock
import havip_master
import havip_servers
import havip_transition
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from test.saltcall import REPO, seed_pillar
from test.unit.utils.test_havip_failover import FIGURES, two_services_on_two_vips
from test.unit.utils.test_havip_health import answers_of, shop_statuses
from test.unit.utils.test_havip_services import two_services

VIP = "192.168.100.10"
NODES = ("nginx1", "nginx2", "svr1", "svr2")
BALANCERS = ("svr1", "svr2")
URL = "http://192.168.100.10:9090/"


def use_clock(monkeypatch, clock):
    """The failover test and the deploy (their helpers) on ``clock``."""
    for helper in (havip_failover, havip_deploy):
        monkeypatch.setattr(helper, "time", clock)


@pytest.fixture
def runner(surface, tmp_path):
    module = surface("runner")
    module.__opts__ = {"conf_file": "/dev/null", "cachedir": str(tmp_path / "cache")}
    module.__context__ = {}

    def no_salt():
        raise AssertionError("unexpected salt client")
    module._connect = no_salt
    return module


class Master:
    """The master's side of a run: its minions' keys and the pillar it
    compiles for each (``pillars``: {minion: its havip pillar, None for
    none}; ``errors``: {minion: the compile errors}), Debian grains in its
    cache, the formula's parameters from this repository."""

    def __init__(self, runner, monkeypatch, pillars):
        self.pillars, self.errors, self.compiled = pillars, {}, []
        master = self

        class CkMinions:
            def __init__(self, opts):
                pass

            def check_minions(self, tgt, tgt_type="glob"):
                names = tgt.split(",") if tgt_type == "list" else fnmatch.filter(master.pillars, tgt)
                return {"minions": [name for name in names if name in master.pillars], "missing": []}

        class Pillar:
            def __init__(self, opts, grains, minion_id, saltenv=None, funcs=None, pillarenv=None):
                assert grains == {"os_family": "Debian", "id": minion_id} and saltenv == "base"
                self.minion_id = minion_id

            def compile_pillar(self):
                master.compiled.append(self.minion_id)
                if self.minion_id in master.errors:
                    return {"_errors": master.errors[self.minion_id]}
                havip = master.pillars.get(self.minion_id)
                return {} if havip is None else {"havip": copy.deepcopy(havip), "other": "data"}

        def formula_yaml(_, name):
            path = REPO / "havip" / "parameters" / f"{name}.yaml"
            return yaml.safe_load(path.read_text()) if path.exists() else None

        monkeypatch.setattr(runner.salt.utils.minions, "CkMinions", CkMinions)
        monkeypatch.setattr(runner.salt.utils.minions, "get_minion_data",
                            lambda minion, opts: (minion, {"os_family": "Debian", "id": minion}, None))
        monkeypatch.setattr(runner.salt.pillar, "get_pillar", Pillar)
        monkeypatch.setattr(havip_master.Minions, "formula_yaml", formula_yaml)


def seed_and(edit=None):
    """The seed's havip pillar after an optional ``edit`` of it."""
    pillar = seed_pillar()["havip"]
    if edit:
        edit(pillar)
    return pillar


@pytest.fixture
def master(monkeypatch):
    """Factory: the Master of ``runner`` with ``pillars`` (default: the
    seed's for its nodes and the client)."""
    def make(runner, pillars=None):
        return Master(runner, monkeypatch, pillars or {name: seed_and() for name in (*NODES, "client")})
    return make


# An answer that never comes back (the minion did what it was asked).
LOST = object()


class Cluster:
    """Canned answers of the minions to havip.status / havip.check, and a
    record of every call the runner makes."""

    def __init__(self, runner, config):
        self.deployed = config
        self.pending = config           # what the current pillar would deploy (state.show_sls havip.facts)
        self.holders = {"VI_1": ["svr1"]}
        self.states = {}                # balancer -> VRRP state of VI_1
        self.reasons = {}               # node -> reasons it is unhealthy
        self.standby = set()
        self.silent = set()
        self.down = {}                  # balancer -> backend servers its HAProxy has DOWN
        self.server_states = {}         # balancer -> {server: status} overriding UP/DOWN
        self.calls = []
        self.published = []             # (tgt, fun, kwarg) of every call published ahead
        self.config_calls = []
        self.closed = 0
        runner._connect = lambda: self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed += 1

    def config(self, tgt, tgt_type="glob"):
        self.config_calls.append(tgt)
        return copy.deepcopy(self.deployed)

    def status(self, name):
        if name not in BALANCERS:
            return {"roles": ["backend"], "vips": {},
                    "nginx": {"running": True, "answering": True, "url": "http://x/"}}
        vips = {}
        for vip, entry in self.deployed["vips"].items():
            held = name in self.holders[vip]
            vips[vip] = {"address": entry["address"], "interface": "ens32", "held": held,
                         "state": self.states.get(name, "MASTER" if held else "BACKUP"),
                         "since_s": 1_700_000_000.0, "priority": entry["priorities"][name]}
        servers = {server: "DOWN" if server in self.down.get(name, ()) else "UP" for server in ("nginx1", "nginx2")}
        servers.update(self.server_states.get(name, {}))
        return {"roles": ["balancer"], "vips": vips, "standby": name in self.standby,
                "haproxy": {"running": True, "backends": servers}}

    def check(self, name):
        reasons = self.reasons.get(name, [])
        return {"healthy": not reasons, "reasons": reasons, "standby": name in self.standby}

    def answer(self, name, fun, arg, kwarg):
        if fun == "havip.status":
            return self.status(name)
        if fun == "havip.check":
            check = self.check(name)
            if (kwarg or {}).get("with_status"):
                check["status"] = self.answer(name, "havip.status", [], {})
            return check
        if fun == "havip.config":
            return copy.deepcopy(self.deployed)
        if fun == "state.show_sls":
            return {"havip-facts-file": {"__sls__": "havip.facts", "file": [
                {"name": "/etc/havip/havip.json"}, {"dataset": copy.deepcopy(self.pending)}, "serialize"]}}
        if fun == "havip.probe" and kwarg["seconds"] == 1:  # the failover test's first look
            return {"url": kwarg["url"], "started_s": 1_700_000_000.0, "duration_s": 1.0, "total": 100, "failed": 0,
                    "first_failure_s": None, "last_failure_s": None, "longest_outage_s": 0.0, "recovered": True,
                    "backends": {}}
        raise AssertionError(f"unexpected call {fun} on {name}")

    def ask(self, minions, fun, arg=(), kwarg=None):
        """{minion: answer} of every minion that is not silent, recorded in ``calls``."""
        minions = list(minions)
        self.calls.append((minions, fun, list(arg), kwarg))
        asked = {name: self.answer(name, fun, arg, kwarg) for name in minions if name not in self.silent}
        return {name: ret for name, ret in asked.items() if ret is not LOST}

    def answers(self, minions, fun, arg=(), kwarg=None, timeout=10):
        return self.ask(minions, fun, arg, kwarg)

    def publish(self, tgt, tgt_type, fun, kwarg=None):
        """The job of ``fun`` published to the nodes matching ``tgt``, recorded
        in ``published``; each answers when ``returns`` collects it."""
        self.published.append((tgt, fun, kwarg))
        names = tgt.split(",") if tgt_type == "list" else fnmatch.filter(self.deployed["nodes"], tgt)
        return {"jid": len(self.published), "minions": names, "call": (fun, kwarg)}

    def returns(self, job, minions, timeout=10):
        fun, kwarg = job["call"]
        return self.ask(sorted(set(minions) & set(job["minions"])), fun, [], kwarg)

    def call(self, minions, fun, arg=(), kwarg=None, timeout=10):
        return {name: ret for name, ret in self.ask(minions, fun, arg, kwarg).items() if isinstance(ret, dict)}

    def funs(self):
        return [fun for _, fun, _, _ in self.calls]


@pytest.fixture
def cluster(runner, facts):
    return Cluster(runner, facts())


# ---- status -----------------------------------------------------------------


def test_status_of_a_healthy_cluster(runner, cluster):
    report = runner.status()
    assert report["result"] is True
    assert report["comment"].startswith("every VIP has exactly one holder, the preferred one")
    assert report["vips"] == {"VI_1": {"address": VIP, "holders": ["svr1"], "preferred": "svr1"}}
    assert report["vips"]["VI_1"]["preferred"] == "svr1"
    assert report["nodes"] == {name: "healthy" for name in NODES}
    assert report["problems"] == []
    assert "retcode" not in runner.__context__ and "retcode" not in report
    assert cluster.config_calls == ["*"]
    assert cluster.calls == [(list(NODES), "havip.check", [], {"with_status": True})]


def local_client(asked, answer, minions=(*NODES, "client")):
    """A fake LocalClient class: ``answer(name, fun, arg, kwarg)`` of every
    one of ``minions`` asked, each call recorded in ``asked`` ((tgt,
    fun), or (the minions a job went to, fun) for a published one)."""
    class LocalClient:
        def __init__(self, conf_file):
            self.conf_file, self.closed, self.jobs = conf_file, False, {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.closed = True

        def cmd(self, tgt, fun, arg=(), kwarg=None, tgt_type="glob", timeout=None):
            asked.append((tgt, fun))
            names = tgt if tgt_type == "list" else fnmatch.filter(minions, tgt)
            return {name: ret for name in names if (ret := answer(name, fun, arg, kwarg)) is not LOST}

        def run_job(self, tgt, fun, arg=(), tgt_type="glob", kwarg=None, timeout=None, listen=False):
            assert listen, "the returns of a job published unheard are lost"
            names = tgt.split(",") if tgt_type == "list" else fnmatch.filter(minions, tgt)
            asked.append((names, fun))
            self.jobs[str(len(asked))] = (fun, list(arg), kwarg, names)
            return {"jid": str(len(asked)), "minions": names}

        def get_cli_event_returns(self, jid, expected, timeout, tgt, tgt_type):
            """As Salt's: the return of every minion the job went to (the
            master's new-job event names them all) as it comes; after the
            timeout, those that gave none.  Waiting for them once every
            expected minion has answered is a failure."""
            fun, arg, kwarg, names = self.jobs[jid]
            lost = []
            for name in names:
                if (ret := answer(name, fun, arg, kwarg)) is LOST:
                    lost.append(name)
                else:
                    yield {name: {"ret": ret, "retcode": 0}}
            assert not lost or set(lost) & set(expected), f"waited for {lost}: every minion expected had answered"
            for name in lost:
                yield {name: {"out": "no_return", "ret": "Minion did not return. [No response]", "retcode": 1}}
    return LocalClient


@pytest.fixture
def real_runner(surface, tmp_path):
    """The runner with its own _Minions (a LocalClient is faked by the test)."""
    runner = surface("runner")
    runner.__opts__ = {"conf_file": "/etc/salt/master", "cachedir": str(tmp_path / "cache")}
    runner.__context__ = {}
    return runner


def test_a_run_asks_through_one_local_client_and_closes_it(real_runner, master, cluster, monkeypatch):
    clients, asked = [], []
    LocalClient = local_client(asked, cluster.answer)

    def connect(conf_file):
        clients.append(LocalClient(conf_file))
        return clients[-1]
    master(real_runner)
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", connect)
    assert real_runner.status()["result"] is True
    assert [(client.conf_file, client.closed) for client in clients] == [("/etc/salt/master", True)]


def test_the_cluster_and_its_configuration_come_from_the_pillar_the_master_compiles(real_runner, master, cluster,
                                                                                   monkeypatch):
    """No minion is asked about its cluster: every matching minion's pillar
    and every node's is compiled on the master, merged over the formula's
    parameters and validated there."""
    asked = []
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", local_client(asked, cluster.answer))
    compiling = master(real_runner)
    report = real_runner.status(tgt="svr1")
    assert report["result"] is True, report["comment"]
    assert report["nodes"] == {name: "healthy" for name in NODES}
    assert sorted(compiling.compiled) == sorted(NODES)
    assert {fun for _, fun in asked} == {"havip.check"}


def shop_master(real_runner, master, facts, monkeypatch, statuses):
    """The two services' cluster (test_havip_services' two_services) on the
    master, its nodes answering havip.check with_status=True healthy with
    ``statuses``; returns the (tgt, fun) of every call the runner makes."""
    config = facts(two_services)
    answers = answers_of(config, statuses)

    def answer(name, fun, arg, kwarg):
        assert (fun, arg, kwarg) == ("havip.check", [], {"with_status": True})
        return copy.deepcopy(answers[name]) if name in answers else LOST
    asked = []
    monkeypatch.setattr(real_runner.salt.client, "get_local_client",
                        local_client(asked, answer, minions=(*config["nodes"], "client")))
    master(real_runner, {name: seed_and(two_services) for name in (*config["nodes"], "client")})
    return asked


def test_status_asks_every_node_once_and_shows_each_service_and_pool_across_the_balancers(
        real_runner, master, facts, monkeypatch):
    asked = shop_master(real_runner, master, facts, monkeypatch, shop_statuses(svr2={"api": {"app2": "DRAIN"}}))
    report = real_runner.status()
    assert report["result"] is True, report["comment"]
    assert asked == [([*NODES, "app1", "app2", "client"], "havip.check")]
    assert report["services"] == {"db": {"svr1": "OPEN", "svr2": "STOP"}, "shop": {"svr1": "OPEN", "svr2": "OPEN"}}
    assert report["pools"]["api"] == {"app1": {"svr1": "UP", "svr2": "UP"}, "app2": {"svr1": "UP", "svr2": "DRAIN"},
                                      "legacy": {"svr1": "UP", "svr2": "UP"}}
    assert report["nodes"] == {name: "healthy" for name in ("app1", "app2", *NODES)}


def test_status_fails_on_a_pool_with_no_server_up_and_on_a_server_up_here_and_down_there(
        real_runner, master, facts, monkeypatch):
    """The balancers' own verdicts say healthy: the runner judges the pools
    across them itself."""
    shop_master(real_runner, master, facts, monkeypatch, shop_statuses(
        svr1={"sql": {"app1": "DOWN"}, "web": {"nginx2": "DOWN"}}, svr2={"sql": {"app1": "MAINT"}}))
    report = real_runner.status()
    assert report["result"] is False and report["retcode"] == 1 and real_runner.__context__["retcode"] == 1
    assert report["problems"] == ["no server is UP in pool sql on svr1, svr2 (svr1: app1 DOWN; svr2: app1 MAINT)",
                                  "server nginx2 of pool web is UP on svr2 and DOWN on svr1"]
    assert report["comment"] == "; ".join(report["problems"])


def test_status_names_a_balancers_listing_it_cannot_believe_and_does_not_repeat_it(real_runner, master, facts,
                                                                                   monkeypatch):
    statuses = shop_statuses()
    statuses["svr2"]["haproxy"]["pools"]["web"]["\x1b]0;owned\x07"] = {"status": "UP"}
    shop_master(real_runner, master, facts, monkeypatch, statuses)
    report = real_runner.status()
    assert report["result"] is False
    assert report["problems"] == ["svr2: its HAProxy pools and services are refused: it lists a server (not a name)"
                                  " in pool web that is not one of its servers in the configuration"]
    assert "owned" not in repr(report)
    assert report["pools"]["web"]["nginx1"] == {"svr1": "UP", "svr2": None}


def test_a_master_with_two_clusters_refuses_a_target_that_spans_both(real_runner, master, staging, cluster,
                                                                      monkeypatch):
    """Production (the seed) and staging answer one master: a failover test
    or a deploy of '*' would pick one silently; it names both instead."""
    asked = []
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", local_client(asked, cluster.answer))
    master(real_runner, {**{name: seed_and() for name in NODES}, "lb1": seed_and(staging),
                         "web1": seed_and(staging), "client": None})
    report = real_runner.status()
    assert report == {"result": False, "retcode": 1, "comment": (
        "the minions matching '*' belong to 2 havip clusters: {lb1, web1} and {nginx1, nginx2, svr1, svr2};"
        " target one with tgt (e.g. tgt='lb1,web1' tgt_type=list)")}
    # Its read-only check went out while the master compiled the pillars: no answer read, nothing else asked.
    assert asked == [([*NODES, "client"], "havip.check")]
    asked.clear()
    # One minion of a cluster is target enough; the other cluster is never asked.
    for tgt, tgt_type in (("svr*", "glob"), ("svr1,nginx1", "list")):
        assert real_runner.status(tgt=tgt, tgt_type=tgt_type)["result"] is True
    assert {name for tgt, _ in asked for name in tgt} == set(NODES)


def forged(config):
    """A config a minion in no cluster answers: itself a balancer beside
    production's svr1 and staging's lb1."""
    config["nodes"] = {"aaa-evil": {"roles": ["balancer"], "address": "192.168.200.66", "priority": 250},
                       "lb1": {"roles": ["balancer"], "address": "192.168.200.13", "priority": 150},
                       "svr1": {"roles": ["backend"], "address": "192.168.100.13"},
                       "web1": {"roles": ["backend"], "address": "192.168.200.11"}}
    config["vips"] = {"VI_S": {"address": "192.168.200.10/24", "interface": "ens32", "virtual_router_id": 61}}


def test_a_minion_in_no_cluster_cannot_join_or_merge_clusters_by_what_it_answers(
        real_runner, master, staging, cluster, facts, monkeypatch):
    """aaa-evil has no havip pillar; its havip.config (and everything else
    it answers) names it a balancer of a cluster with svr1 and staging's
    lb1.  Believed, it merged both clusters and its config won (it sorts
    first): a failover test of '*' killed HAProxy on lb1."""
    deployed = {name: facts(minion=name) for name in NODES}
    deployed.update({name: facts(staging, minion=name) for name in ("lb1", "web1")})
    deployed["aaa-evil"] = facts(forged, minion="aaa-evil")

    def answer(name, fun, arg, kwarg):
        if fun == "havip.config":
            return copy.deepcopy(deployed[name])
        return cluster.answer(name, fun, arg, kwarg)
    asked = []
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", local_client(asked, answer, list(deployed)))
    master(real_runner, {**{name: seed_and() for name in NODES}, "lb1": seed_and(staging),
                         "web1": seed_and(staging), "aaa-evil": None})
    for run in (real_runner.status, real_runner.failover_test, real_runner.deploy):
        report = run()
        assert report["result"] is False
        assert report["comment"].startswith("the minions matching '*' belong to 2 havip clusters: {lb1, web1} and"
                                            " {nginx1, nginx2, svr1, svr2}"), report["comment"]
    # Only status's read-only check went out (while the master compiled the pillars); no answer was read.
    assert asked == [(list(deployed), "havip.check")]
    report = real_runner.status(tgt="aaa-evil")
    assert report["comment"] == ("no minion matching 'aaa-evil' has a havip pillar on this master"
                                 " (salt-run pillar.show_pillar <minion> shows what it compiles)")
    report = real_runner.status(tgt="aaa-evil,svr1", tgt_type="list")
    assert report["result"] is True, report["comment"]
    assert "aaa-evil" not in report["nodes"] and report["vips"]["VI_1"]["holders"] == ["svr1"]


def unread(name, fun, arg, kwarg):
    raise AssertionError(f"the answer of {name} to {fun} was read")


def test_status_publishes_its_call_before_the_master_compiles_a_pillar_and_reports_as_if_it_asked_after(
        real_runner, master, cluster, monkeypatch):
    """The minions matching tgt work on havip.check while the master
    compiles the pillars; the nodes tgt does not match are asked after.
    The report is the one of asking every node after: one of either that
    does not answer did not answer; a minion that is no node is not waited
    for, and its answer is not read."""
    def answer(name, fun, arg, kwarg):
        assert (fun, arg, kwarg) == ("havip.check", [], {"with_status": True})
        if name == "client":
            return LOST
        return LOST if name in ("nginx2", "svr2") else cluster.answer(name, fun, arg, kwarg)
    compiling = master(real_runner)
    asked, compiled_at_publish = [], []
    LocalClient = local_client(asked, answer)

    class Publishing(LocalClient):
        def run_job(self, *args, **kwargs):
            compiled_at_publish.append(list(compiling.compiled))
            return super().run_job(*args, **kwargs)

    class Unpublished(LocalClient):
        def run_job(self, *args, **kwargs):
            return {}
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", Publishing)
    report = real_runner.status(tgt="svr*")
    assert compiled_at_publish == [[]]
    assert asked == [(["svr1", "svr2"], "havip.check"), (["nginx1", "nginx2"], "havip.check")]
    assert report["result"] is False
    assert report["nodes"] == {"nginx1": "healthy", "svr1": "healthy"}
    assert "nginx2 did not answer" in report["comment"] and "svr2 did not answer" in report["comment"]
    asked.clear()
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", Unpublished)
    assert real_runner.status(tgt="svr*") == report
    assert asked == [(list(NODES), "havip.check")]
    asked.clear()
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", Publishing)
    assert real_runner.status() == report
    assert asked == [([*NODES, "client"], "havip.check")]


def test_status_does_not_wait_for_a_minion_it_published_to_that_is_no_node(real_runner, master, cluster,
                                                                           monkeypatch):
    """The client matches '*' and never answers: Salt's collection would
    wait the timeout for it (the fake fails then); every node answered."""
    def answer(name, fun, arg, kwarg):
        return LOST if name == "client" else cluster.answer(name, fun, arg, kwarg)
    asked = []
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", local_client(asked, answer))
    master(real_runner)
    report = real_runner.status()
    assert report["result"] is True, report["comment"]
    assert asked == [([*NODES, "client"], "havip.check")]


@pytest.mark.parametrize("pillars, comment", [
    ({"nginx1": seed_and(lambda p: p.setdefault("keepalived", {}).update(preempt=False))},
     "the master compiles another havip pillar for nginx1 (havip:keepalived differs): every node of a cluster"
     " needs the same one"),
    ({"nginx2": None}, "nginx2 is a node of the cluster but the master compiles no havip pillar for it"),
], ids=["another pillar", "no pillar"])
def test_nodes_whose_pillars_make_no_one_cluster_are_refused(real_runner, master, pillars, comment, monkeypatch):
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", local_client([], unread))
    compiling = master(real_runner)
    compiling.pillars.update(pillars)
    report = real_runner.status(tgt="svr1")
    assert report == {"result": False, "retcode": 1, "comment": comment}


def test_a_pillar_the_master_cannot_compile_or_refuses_is_named_without_its_secrets(real_runner, master,
                                                                                     monkeypatch):
    monkeypatch.setattr(real_runner.salt.client, "get_local_client", local_client([], unread))
    compiling = master(real_runner)
    compiling.errors["nginx1"] = ["Rendering SLS 'havip' failed: line 3: password: hunter2-is-secret"]
    report = real_runner.status()
    assert report == {"result": False, "retcode": 1, "comment": (
        "the master cannot compile the pillar of nginx1 (1 errors: salt-run pillar.show_pillar nginx1 shows them)")}
    compiling.errors.clear()
    compiling.pillars["svr2"]["stats"]["password"] = "Passw0rd"
    report = real_runner.status()
    assert report["comment"] == ("the pillar of svr2: havip pillar: havip:stats:password: is a well-known"
                                 " placeholder: choose a password of your own")


def two_vips_one_per_balancer(config):
    config["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32", "virtual_router_id": 52,
                              "priorities": {"svr2": 200}}


def test_status_wants_each_vip_on_its_own_preferred_balancer(runner, facts):
    cluster = Cluster(runner, facts(two_vips_one_per_balancer))
    cluster.holders = {"VI_1": ["svr1"], "VI_2": ["svr2"]}
    report = runner.status()
    assert report["result"] is True, report
    assert {vip: entry["preferred"] for vip, entry in report["vips"].items()} == {"VI_1": "svr1", "VI_2": "svr2"}
    cluster.holders = {"VI_1": ["svr1"], "VI_2": ["svr1"]}
    report = runner.status()
    assert report["result"] is False
    assert report["comment"] == "VIP VI_2 (192.168.100.20) is held by svr1, not by the preferred svr2"


def test_status_detects_split_brain(runner, cluster):
    cluster.holders["VI_1"] = ["svr1", "svr2"]
    report = runner.status()
    assert report["result"] is False
    assert "split brain: VIP VI_1 (192.168.100.10) is held by svr1 and svr2" in report["comment"]
    assert runner.__context__["retcode"] == 1
    # salt-run's exit status is the report's retcode; an orchestrate step's the context's.
    assert report["retcode"] == 1


def test_status_detects_a_vip_without_holder(runner, cluster):
    cluster.holders["VI_1"] = []
    report = runner.status()
    assert report["result"] is False
    assert "VIP VI_1 (192.168.100.10) has no holder" in report["comment"]
    assert runner.__context__["retcode"] == 1


def test_status_with_preemption_wants_the_preferred_balancer_as_holder(runner, cluster):
    cluster.holders["VI_1"] = ["svr2"]
    report = runner.status()
    assert report["result"] is False
    assert "VIP VI_1 (192.168.100.10) is held by svr2, not by the preferred svr1" in report["comment"]
    assert runner.__context__["retcode"] == 1


def test_status_without_preemption_accepts_any_holder(runner, facts):
    def no_preempt(config):
        config["keepalived"]["preempt"] = False
    cluster = Cluster(runner, facts(no_preempt))
    cluster.holders["VI_1"] = ["svr2"]
    report = runner.status()
    assert report["result"] is True, report["comment"]
    assert "retcode" not in runner.__context__


def test_status_when_only_the_backup_is_unhealthy_no_one_could_take_over(runner, cluster):
    cluster.reasons["svr2"] = ["HAProxy is not running"]
    report = runner.status()
    assert report["result"] is False
    assert "svr2: HAProxy is not running" in report["problems"]
    assert "no other healthy balancer could take over VIP VI_1 from svr1" in report["comment"]
    assert report["nodes"]["svr2"] == "unhealthy: HAProxy is not running"
    assert report["vips"]["VI_1"]["preferred"] == "svr1"
    assert runner.__context__["retcode"] == 1


def test_status_counts_a_backup_on_standby_as_unable_to_take_over(runner, cluster):
    cluster.standby.add("svr2")
    report = runner.status()
    assert report["nodes"]["svr2"] == "healthy (standby)"
    assert report["problems"] == ["no other healthy balancer could take over VIP VI_1 from svr1"]
    assert report["result"] is False


def test_status_prefers_the_backup_while_the_master_is_on_standby(runner, cluster):
    cluster.standby.add("svr1")
    cluster.holders["VI_1"] = ["svr2"]
    report = runner.status()
    assert report["vips"]["VI_1"]["preferred"] == "svr2"
    assert report["problems"] == ["no other healthy balancer could take over VIP VI_1 from svr2"]


def test_status_reports_a_silent_node(runner, cluster):
    cluster.silent.add("nginx2")
    report = runner.status()
    assert report["result"] is False
    assert "nginx2 did not answer" in report["comment"]
    assert "nginx2" not in report["nodes"]
    assert runner.__context__["retcode"] == 1


def test_status_fails_when_havip_is_deployed_nowhere(runner, cluster, monkeypatch):
    def nothing(tgt, tgt_type):
        raise ValueError(f"no minion matching {tgt!r} has havip deployed (run state.apply havip)")
    monkeypatch.setattr(cluster, "config", nothing)
    report = runner.status(tgt="lb*")
    assert report == {"result": False, "retcode": 1,
                      "comment": "no minion matching 'lb*' has havip deployed (run state.apply havip)"}
    assert runner.__context__["retcode"] == 1


def all_balancers(config):
    config["nodes"]["nginx1"].update(roles=["backend", "balancer"], priority=120)
    config["nodes"]["nginx2"].update(roles=["backend", "balancer"], priority=110)
    config["backend"]["port"] = 8080


# ---- failover_test ------------------------------------------------------------


def test_failover_test_refuses_an_unknown_failure(runner, cluster):
    report = runner.failover_test(failure="bogus")
    assert report["result"] is False
    assert report["comment"] == ("failover_test:failure: must be one of kill_haproxy, stop_haproxy,"
                                 " kill_keepalived, link_down, got 'bogus'")
    assert runner.__context__["retcode"] == 1
    assert cluster.calls == []


def test_failover_test_without_a_client_on_an_all_balancer_cluster_fails(runner, facts):
    cluster = Cluster(runner, facts(all_balancers))
    report = runner.failover_test()
    assert report["result"] is False
    assert "failover_test:client" in report["comment"]
    assert cluster.calls == []


def test_failover_test_stops_at_a_failed_pre_check_without_breaking_anything(runner, cluster):
    cluster.holders["VI_1"] = ["svr1", "svr2"]
    report = runner.failover_test()
    assert report["result"] is False
    assert report["comment"].startswith("pre-check failed: split brain")
    assert runner.__context__["retcode"] == 1
    assert cluster.funs() == ["havip.check"]


class FailoverCluster(Cluster):
    """svr1 holds the VIP until havip.inject breaks it; svr2 then takes it
    over (after `takeover` s, or never), and state.apply on svr1 restores it."""

    AT = 1_700_000_100.0

    def __init__(self, runner, config, takeover=3.0):
        super().__init__(runner, config)
        self.takeover = takeover
        self.inject_lost = False        # havip.inject breaks svr1, its answer never comes back

    def answer(self, name, fun, arg, kwarg):
        if fun == "havip.inject":
            if self.takeover is not None:
                self.holders["VI_1"] = ["svr2"]
            self.reasons["svr1"] = ["HAProxy is not running"]
            return LOST if self.inject_lost else {"failure": arg[0], "at_s": self.AT}
        if fun == "havip.probe" and kwarg["seconds"] > 1:
            return {"started_s": self.AT - 1.0, "total": 1200, "failed": 30, "longest_outage_s": 2.5,
                    "last_failure_s": 3.5, "recovered": True, "first_failure_s": 1.0, "backends": {}}
        if fun == "state.apply":
            self.holders["VI_1"] = ["svr1"]
            self.reasons.pop("svr1")
            return {"file_|-x_|-x_|-managed": {"result": True}}
        ret = super().answer(name, fun, arg, kwarg)
        if fun == "havip.status" and name == "svr2" and self.takeover is not None:
            ret["vips"]["VI_1"]["since_s"] = self.AT + self.takeover
        return ret


def test_failover_test_reports_the_move_and_the_restore(runner, monkeypatch, facts, fake_time):
    use_clock(monkeypatch, fake_time())
    cluster = FailoverCluster(runner, facts())
    report = runner.failover_test()
    assert report["result"] is True, report["comment"]
    assert report["comment"] == "failover test passed: kill_haproxy on svr1"
    assert (report["holder"], report["new_holder"], report["vip_moved_after_s"], report["move_budget_s"]) == (
        "svr1", "svr2", 3.0, 4.2)
    assert report["client_visible_outage_s"] == 2.5
    assert (report["failed_requests"], report["requests"]) == (30, 1200)
    assert report["holders_before"] == report["holders_after"] == {"VI_1": ["svr1"]}
    assert "retcode" not in runner.__context__
    injects = [call for call in cluster.calls if call[1] == "havip.inject"]
    assert injects == [(["svr1"], "havip.inject", ["kill_haproxy"], {"duration": pytest.approx(9.2), "confirm": True})]
    first_look, probe = [call for call in cluster.calls if call[1] == "havip.probe"]
    assert first_look == (["nginx1"], "havip.probe", [], {"url": URL, "seconds": 1, "rate": 100})
    assert cluster.funs().index("havip.probe") < cluster.funs().index("havip.inject")
    assert probe[0] == ["nginx1"]
    assert probe[3] == {"url": "http://192.168.100.10:9090/", "seconds": pytest.approx(8.2), "rate": 100}
    assert (["svr1"], "state.apply", ["havip"], None) in cluster.calls
    assert report["leftovers"] == [] and "retcode" not in report


def test_failover_test_refuses_when_the_client_cannot_probe_before_breaking_anything(runner, monkeypatch, facts,
                                                                                     fake_time):
    class Unreachable(FailoverCluster):
        def answer(self, name, fun, arg, kwarg):
            ret = super().answer(name, fun, arg, kwarg)
            return {**ret, "failed": 3} if fun == "havip.probe" else ret
    use_clock(monkeypatch, fake_time())
    cluster = Unreachable(runner, facts())
    report = runner.failover_test()
    assert report["result"] is False and report["retcode"] == 1
    assert report["comment"] == (f"the client nginx1 cannot probe {URL} before the test: 3 of 100 failed;"
                                 " nothing was broken")
    assert [fun for fun in cluster.funs() if fun not in ("havip.status", "havip.check")] == [
        "state.show_sls", "havip.config", "havip.probe"]


def test_failover_test_restores_when_the_injections_answer_is_lost(runner, monkeypatch, facts, fake_time):
    class Clock(fake_time):
        """The master's clock: the failure happens at AT, 1 s into the probe."""

        def time(self):
            return FailoverCluster.AT - 1.0 + self.now
    use_clock(monkeypatch, Clock())
    cluster = FailoverCluster(runner, facts())
    cluster.inject_lost = True
    report = runner.failover_test()
    assert report["result"] is False
    assert report["comment"] == ("failover test FAILED: the answer of havip.inject kill_haproxy on svr1 was lost"
                                 " (restored all the same)")
    assert (["svr1"], "state.apply", ["havip"], None) in cluster.calls
    assert report["holders_after"] == {"VI_1": ["svr1"]} and report["new_holder"] == "svr2"


def test_failover_test_names_a_server_left_drained_by_a_failed_deploy(runner, monkeypatch, facts, fake_time):
    use_clock(monkeypatch, fake_time())
    cluster = FailoverCluster(runner, facts())
    cluster.server_states["svr2"] = {"nginx2": "DRAIN"}
    report = runner.failover_test()
    assert report["result"] is True, report["comment"]
    assert report["leftovers"] == ["nginx2 is drained on svr2 (havip.ready nginx2 there puts it back)"]
    assert report["comment"] == ("failover test passed: kill_haproxy on svr1; leftovers: nginx2 is drained on svr2"
                                 " (havip.ready nginx2 there puts it back)")


def test_failover_test_names_a_standby_left_set_by_a_failed_deploy(runner, cluster):
    cluster.standby.add("svr2")
    report = runner.failover_test()
    assert report["result"] is False
    assert report["comment"] == ("pre-check failed: no other healthy balancer could take over VIP VI_1 from svr1;"
                                 " leftovers: svr2 is on standby (havip.resume on svr2 ends it)")
    assert report["leftovers"] == ["svr2 is on standby (havip.resume on svr2 ends it)"]
    assert "havip.inject" not in cluster.funs()


def test_failover_test_refuses_an_unknown_option_naming_the_nearest_known_one(runner, cluster):
    report = runner.failover_test(failur="link_down", __pub_user="root")
    assert report == {"failure": "kill_haproxy", "result": False, "retcode": 1, "comment": (
        "failover_test:failur: unknown key (did you mean failure? known: failure, client, vip, rate, tgt,"
        " tgt_type)")}
    assert cluster.calls == [] and cluster.config_calls == []


def test_failover_test_is_refused_while_a_deploy_runs_and_runs_once_it_is_done(runner, cluster, tmp_path):
    lock = os.path.join(runner.__opts__["cachedir"], havip_facts.RUNNER_LOCK)
    with havip_lock.exclusive(lock, "havip.deploy", {"client": "client"}):
        report = runner.failover_test()
    assert report["result"] is False and report["retcode"] == 1
    assert re.fullmatch(rf"havip.failover_test refused: havip.deploy is running since [\d:\- ]+ \(pid {os.getpid()}\)",
                        report["comment"]), report["comment"]
    assert cluster.calls == [] and cluster.config_calls == []
    cluster.holders["VI_1"] = ["svr1", "svr2"]  # stops at the pre-check, breaking nothing
    assert runner.failover_test()["comment"].startswith("pre-check failed")


def test_failover_test_stops_when_the_failure_cannot_be_injected(runner, monkeypatch, facts, fake_time):
    class Refusing(FailoverCluster):
        def answer(self, name, fun, arg, kwarg):
            if fun == "havip.inject":
                return "ERROR executing 'havip.inject': havip.inject: HAProxy is not running here"
            return super().answer(name, fun, arg, kwarg)
    use_clock(monkeypatch, fake_time())
    cluster = Refusing(runner, facts())
    report = runner.failover_test()
    assert report["result"] is False
    assert report["comment"] == "havip.inject kill_haproxy on svr1 failed"
    assert "state.apply" not in cluster.funs()
    assert runner.__context__["retcode"] == 1


def test_failover_test_restores_the_holder_when_an_error_stops_it_after_the_injection(runner, monkeypatch, facts,
                                                                                       fake_time):
    """svr2 answers a status without ``since`` once it holds the VIP (a
    minion's answer is untrusted): the wait for the new holder fails, and
    HAProxy on svr1, stopped, is started again all the same."""
    class Malformed(FailoverCluster):
        def answer(self, name, fun, arg, kwarg):
            ret = super().answer(name, fun, arg, kwarg)
            if fun == "havip.status" and name == "svr2" and "svr2" in self.holders["VI_1"]:
                del ret["vips"]["VI_1"]["since_s"]
            return ret
    use_clock(monkeypatch, fake_time())
    cluster = Malformed(runner, facts())
    report = runner.failover_test(failure="stop_haproxy")
    assert report["result"] is False and report["retcode"] == 1
    assert report["comment"] == "failover test FAILED: the test stopped after the injection: KeyError: 'since_s'"
    assert cluster.funs().count("state.apply") == 1
    assert cluster.funs().index("havip.inject") < cluster.funs().index("state.apply")
    assert report["holders_after"] == {"VI_1": ["svr1"]}


def test_failover_test_interrupted_after_the_injection_restores_the_holder(runner, monkeypatch, facts, fake_time):
    def interrupted(*args):
        raise KeyboardInterrupt
    use_clock(monkeypatch, fake_time())
    monkeypatch.setattr(havip_failover, "wait_for_holder", interrupted)
    cluster = FailoverCluster(runner, facts())
    with pytest.raises(KeyboardInterrupt):
        runner.failover_test(failure="kill_keepalived")
    assert cluster.funs().index("havip.inject") < cluster.funs().index("state.apply")


def test_failover_test_says_what_a_failed_restore_left_behind(runner, monkeypatch, facts, fake_time):
    class ApplyFails(FailoverCluster):
        def answer(self, name, fun, arg, kwarg):
            return PAGE_FILE_FAILED if fun == "state.apply" else super().answer(name, fun, arg, kwarg)
    use_clock(monkeypatch, fake_time())
    ApplyFails(runner, facts())
    report = runner.failover_test(failure="stop_haproxy")
    assert report["result"] is False
    assert report["comment"] == (
        "failover test FAILED: state.apply havip on svr1 failed (havip-nginx-page-file failed (Unable to manage"
        " file: [Errno 30] Read-only file system)); not restored: HAProxy stays stopped on svr1")


def test_failover_test_refuses_a_pillar_that_does_not_render_before_breaking_anything(runner, monkeypatch, facts,
                                                                                     fake_time):
    """The restore is an apply: an expired certificate would fail it with
    the holder broken."""
    class Expired(FailoverCluster):
        def answer(self, name, fun, arg, kwarg):
            if fun == "state.show_sls" and name == "svr1":
                return ["Rendering SLS 'base:havip.facts' failed: Jinja error: havip pillar:"
                        " havip:frontend:tls:certificate: the certificate expired on 2026-12-01 00:00 UTC"]
            return super().answer(name, fun, arg, kwarg)
    use_clock(monkeypatch, fake_time())
    cluster = Expired(runner, facts())
    report = runner.failover_test()
    assert report["result"] is False and report["retcode"] == 1
    assert report["comment"] == (
        "the new pillar does not render on svr1: Rendering SLS 'base:havip.facts' failed: Jinja error: havip pillar:"
        " havip:frontend:tls:certificate: the certificate expired on 2026-12-01 00:00 UTC; nothing was broken")
    assert not {"havip.probe", "havip.inject", "state.apply"} & set(cluster.funs())


class LinkDownCluster(FailoverCluster):
    """The failure also costs svr1's HAProxy its view of nginx1; after the
    apply nginx1 rises again on the ``rises_after``-th status call (never
    when None)."""

    def __init__(self, runner, config, rises_after):
        super().__init__(runner, config)
        self.rises_after = rises_after
        self.polls_after_apply = None

    def answer(self, name, fun, arg, kwarg):
        if fun == "havip.inject":
            self.down["svr1"] = {"nginx1"}
        if fun == "state.apply":
            self.polls_after_apply = 0
        if fun == "havip.status" and name == "svr1" and self.polls_after_apply is not None:
            self.polls_after_apply += 1
            if self.polls_after_apply == self.rises_after:
                self.down.pop("svr1")
        return super().answer(name, fun, arg, kwarg)


def test_failover_test_restore_waits_until_every_server_that_was_up_is_up_again(
        runner, monkeypatch, facts, fake_time):
    use_clock(monkeypatch, fake_time())
    cluster = LinkDownCluster(runner, facts(), rises_after=3)
    report = runner.failover_test()
    assert report["result"] is True, report["comment"]
    assert cluster.polls_after_apply >= 3
    assert (report["restored_after_s"], report["restore_budget_s"]) == (1.0, 8.2)


@pytest.mark.parametrize("broken, reasons", [
    (lambda runner, facts: FailoverCluster(runner, facts(), takeover=None),
     ["VIP VI_1 not on another balancer within 4.2 s"]),
    (lambda runner, facts: LinkDownCluster(runner, facts(), rises_after=None),
     ["cluster not restored within 8.2 s of the apply", "nginx1 not UP on svr1 (it was before the test)"]),
], ids=["no balancer takes the vip over", "a server stays down after the restore budget"])
def test_failover_test_fails_and_says_why(runner, monkeypatch, broken, reasons, facts, fake_time):
    use_clock(monkeypatch, fake_time())
    broken(runner, facts)
    report = runner.failover_test()
    assert report["result"] is False
    assert [reason for reason in reasons if reason not in report["comment"]] == []
    assert runner.__context__["retcode"] == 1


class TwoServiceCluster(FailoverCluster):
    """The failover test of two services (test_havip_failover's: ``shop``
    on VI_1 and VI_2, ``db`` on VI_2): every target's probe answers with
    its own figures; ``stuck`` (url, host) never recovers."""

    def __init__(self, runner, config, stuck=None):
        super().__init__(runner, config)
        self.holders["VI_2"] = ["svr1"]
        self.stuck = stuck

    def answer(self, name, fun, arg, kwarg):
        if fun == "havip.inject":
            self.holders["VI_2"] = ["svr2"]
        if fun == "state.apply":
            self.holders["VI_2"] = ["svr1"]
        if fun == "havip.probe" and kwarg["seconds"] > 1:
            outage = 0.2 if kwarg.get("host") == "api.example.com" else 0.05
            recovered = (kwarg["url"], kwarg.get("host")) != self.stuck
            return {"started_s": self.AT - 1.0, "total": 800, "failed": int(outage * 100), "longest_outage_s": outage,
                    "last_failure_s": 1.0 + outage, "recovered": recovered, "first_failure_s": 1.0, "backends": {}}
        ret = super().answer(name, fun, arg, kwarg)
        if fun == "havip.status" and name == "svr2" and "VI_2" in ret["vips"]:
            ret["vips"]["VI_2"]["since_s"] = self.AT + self.takeover
        return ret


VI_2_URL = "http://192.168.100.9"


def test_failover_test_probes_every_service_at_once_and_reports_each(runner, monkeypatch, facts, fake_time):
    use_clock(monkeypatch, fake_time())
    cluster = TwoServiceCluster(runner, facts(two_services_on_two_vips))
    report = runner.failover_test()
    assert report["result"] is True, report["comment"]
    probes = [call[3] for call in cluster.calls if call[1] == "havip.probe" and call[3]["seconds"] > 1]
    assert sorted((kwarg["url"], kwarg.get("host") or "") for kwarg in probes) == sorted([
        (f"{VI_2_URL}:5432/", ""),
        *((f"{address}:80/{path}", host) for address in ("http://192.168.100.10", VI_2_URL)
          for path, host in [("", ""), ("", "api.example.com"), ("static", "probe.static.example.com")])])
    assert all(call[0] == ["app1"] for call in cluster.calls if call[1] == "havip.probe")
    assert report["probe"] == {"url": "http://192.168.100.10:80/", "host": None, "client": "app1", "rate": 100}
    assert report["services"]["db"]["targets"] == [{
        "vip": "VI_2", "pool": "sql",
        "probe": {"url": f"{VI_2_URL}:5432/", "host": None, "client": "app1", "rate": 100},
        "client_visible_outage_s": 0.05, "failed_requests": 5, "requests": 800}]
    assert [(t["vip"], t["pool"], t["probe"]["host"], t["client_visible_outage_s"])
            for t in report["services"]["shop"]["targets"]] == [
        (vip, pool, host, 0.2 if pool == "api" else 0.05) for vip in ("VI_1", "VI_2")
        for pool, host in (("web", None), ("api", "api.example.com"), ("static", "probe.static.example.com"))]
    assert report["services"]["shop"]["not_probed"] == [
        "TLS port 8443: the failover test probes the plain port only"]
    assert {key: report["services"]["shop"][key] for key in FIGURES} == {
        "client_visible_outage_s": 0.2, "failed_requests": 60, "requests": 4800}
    assert {key: report[key] for key in FIGURES} == {
        "client_visible_outage_s": 0.2, "failed_requests": 65, "requests": 5600}


def test_failover_test_fails_naming_the_service_and_the_target_whose_traffic_did_not_resume(
        runner, monkeypatch, facts, fake_time):
    use_clock(monkeypatch, fake_time())
    TwoServiceCluster(runner, facts(two_services_on_two_vips),
                      stuck=(f"{VI_2_URL}:80/static", "probe.static.example.com"))
    report = runner.failover_test()
    assert report["result"] is False and report["retcode"] == 1
    assert report["comment"] == (
        "failover test FAILED: service shop, pool static: traffic through http://192.168.100.9:80/static"
        " (host probe.static.example.com) did not resume within 5.2 s")


def test_failover_test_names_the_target_the_client_cannot_probe_before_breaking_anything(
        runner, monkeypatch, facts, fake_time):
    class Unreachable(TwoServiceCluster):
        def answer(self, name, fun, arg, kwarg):
            if fun == "havip.probe" and kwarg.get("host") == "api.example.com":
                return "ERROR executing 'havip.probe': no route"
            return super().answer(name, fun, arg, kwarg)
    use_clock(monkeypatch, fake_time())
    cluster = Unreachable(runner, facts(two_services_on_two_vips))
    report = runner.failover_test()
    assert report["result"] is False
    assert report["comment"] == ("the client app1 cannot probe http://192.168.100.10:80/ (host api.example.com)"
                                 " before the test: ERROR executing 'havip.probe': no route; nothing was broken")
    assert "havip.inject" not in cluster.funs()


# ---- deploy -----------------------------------------------------------------------


def probe_report(url, failed=0):
    return {"url": url, "started_s": 1_700_000_000.0, "duration_s": 42.0, "total": 4200, "failed": failed,
            "first_failure_s": 20.0 if failed else None, "last_failure_s": 20.0 if failed else None,
            "longest_outage_s": 0.01 if failed else 0.0, "recovered": True, "backends": {}}


PAGE_FILE_FAILED = {
    "file_|-havip-facts-file_|-/etc/havip/havip.json_|-serialize": {
        "__id__": "havip-facts-file", "result": True, "comment": "File is in the correct state",
        "__run_num__": 0},
    "file_|-havip-nginx-page-file_|-/var/www/html/index.html_|-managed": {
        "__id__": "havip-nginx-page-file", "result": False, "__run_num__": 4,
        "comment": "Unable to manage file: [Errno 30] Read-only file system\n(details)"},
}


class DeployCluster(Cluster):
    """The Cluster's minions, answering the rollout's calls too.  The probe
    runs until its stop file is touched; standby and resume move the VIPs
    as keepalived would; any (function, minion) in ``errors`` answers that
    error instead; ``after`` {(function, args): callable} runs after that
    call (a failover in the middle of the rollout)."""

    # Calls that read, not rollout steps.
    READS = ("havip.probe", "file.touch", "file.remove", "state.show_sls")

    def __init__(self, runner, config):
        super().__init__(runner, config)
        self.errors = {}
        self.failed_applies = set()       # their state.apply fails the page file
        self.broken_by_apply = {}         # node -> reasons its check gives after its apply
        self.resume_brings_back = True
        self.probe_failed = 0
        self.probe_runs_out = False       # the probe ends by itself at once
        self.stops = {}                   # stop file -> threading.Event
        self.probes = []                  # (client, kwarg) of every havip.probe call
        self.touched = []
        self.removed = []                 # files removed on the client
        self.rollout = []                 # (minions, fun, arg) of every step through answers
        self.after = {}

    def answers(self, minions, fun, arg=(), kwarg=None, timeout=10):
        minions = list(minions)
        if fun not in self.READS:
            self.rollout.append((minions, fun, list(arg)))
        asked = self.ask(minions, fun, arg, kwarg)
        self.after.pop((fun, tuple(arg)), lambda: None)()
        return asked

    def answer(self, name, fun, arg, kwarg):
        if (fun, name) in self.errors:
            return self.errors[(fun, name)]
        if fun == "havip.probe":
            return self.probe(name, kwarg)
        if fun == "file.touch":
            self.touched.append(arg[0])
            self.stops.setdefault(arg[0], threading.Event()).set()
            return True
        if fun == "file.remove":
            self.removed.append(arg[0])
            return True
        if fun in ("havip.drain", "havip.ready"):
            return self.server_answer(name, fun, arg[0])
        if fun == "havip.standby":
            return self.standby_answer(name)
        if fun == "havip.resume":
            return self.resume_answer(name)
        if fun == "state.apply":
            return self.apply(name)
        return super().answer(name, fun, arg, kwarg)

    def server_answer(self, balancer, fun, server):
        """havip.drain or havip.ready of ``server`` on ``balancer``, its
        status there changed as HAProxy's; a drain refused, as the module
        refuses it, when the other servers of its pool listed there are
        none UP."""
        shown = self.status(balancer).get("haproxy", {}).get("backends", {})
        pool = havip_servers.split(server)[0]
        others = [state for other, state in shown.items() if other != server and havip_servers.split(other)[0] == pool]
        if fun == "havip.drain" and others and not any(state.startswith("UP") for state in others):
            return (f"ERROR executing 'havip.drain': havip.drain: refused, no other backend server is UP here;"
                    f" draining {server} would leave none to answer")
        self.server_states.setdefault(balancer, {})[server] = "DRAIN" if fun == "havip.drain" else "UP"
        return {"server": server, "state": fun.split(".")[1], "took_s": 0.1}

    def probe(self, name, kwarg):
        self.probes.append((name, kwarg))
        if not self.probe_runs_out:
            assert self.stops.setdefault(kwarg["stop_file"], threading.Event()).wait(5), "probe never stopped"
        return probe_report(kwarg["url"], self.probe_failed)

    def standby_answer(self, name):
        if name in self.standby:
            return {"standby": True, "changed": False, "moved": [], "took_s": 0.0}
        moved = [vip for vip, names in self.holders.items() if name in names]
        for vip in moved:
            self.holders[vip] = [next(b for b in self.deployed["vips"][vip]["order"] if b != name)]
        self.standby.add(name)
        return {"standby": True, "changed": True, "moved": moved, "took_s": 0.2}

    def resume_answer(self, name):
        self.standby.discard(name)
        preferred = [vip for vip, entry in self.deployed["vips"].items() if entry["order"][0] == name]
        for vip in preferred if self.resume_brings_back else []:
            self.holders[vip] = [name]
        return {"standby": False, "changed": True, "moved": preferred, "took_s": 0.2}

    def apply(self, name):
        if name in self.failed_applies:
            return PAGE_FILE_FAILED
        self.reasons[name] = self.broken_by_apply.get(name, [])
        return {"file_|-havip-facts-file_|-/etc/havip/havip.json_|-serialize": {
            "__id__": "havip-facts-file", "result": True, "comment": "updated", "__run_num__": 0}}


@pytest.fixture
def deploying(runner, monkeypatch, facts, fake_time):
    """The minions of a DeployCluster, the runner on a fake clock."""
    use_clock(monkeypatch, fake_time())
    return DeployCluster(runner, facts())


def steps_of(name, balancers=("svr1", "svr2")):
    """The calls that roll out a backend."""
    return [(list(balancers), "havip.drain", [name]), ([name], "state.apply", ["havip"]),
            ([name], "havip.check", []), (list(balancers), "havip.ready", [name])]


def steps_of_idle(balancer):
    return [([balancer], "state.apply", ["havip"]), ([balancer], "havip.check", [])]


def steps_of_holder(balancer):
    """A holder's steps: its VIPs moved away (a handover by keepalived's
    notify path, not the runner's business), applied, checked, back."""
    return [([balancer], "havip.standby", []), ([balancer], "state.apply", ["havip"]),
            ([balancer], "havip.check", []), ([balancer], "havip.resume", [])]


def labels(report):
    return [step.rsplit(": ", 1)[0] for step in report["steps"]]


def test_deploy_rolls_backends_then_the_idle_balancer_then_the_holder_each_out_of_service(runner, deploying):
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    assert report["comment"] == "rolling deploy done: nginx1, nginx2, svr2, svr1; no request failed"
    assert deploying.rollout == (steps_of("nginx1") + steps_of("nginx2") + steps_of_idle("svr2")
                               + steps_of_holder("svr1"))
    assert labels(report) == [
        "drain nginx1 on svr1, svr2", "apply nginx1", "check nginx1", "ready nginx1 on svr1, svr2",
        "drain nginx2 on svr1, svr2", "apply nginx2", "check nginx2", "ready nginx2 on svr1, svr2",
        "apply svr2", "check svr2",
        "standby svr1", "apply svr1", "check svr1", "resume svr1"]
    assert all(re.fullmatch(r"[\w ,]+: \d+\.\d s", step) for step in report["steps"]), report["steps"]
    assert report["order"] == ["nginx1", "nginx2", "svr2", "svr1"]
    assert report["holders_before"] == report["holders_after"] == {"VI_1": ["svr1"]}
    assert (report["failed_requests"], report["requests"]) == (0, 4200)
    assert report["probe"] == {"urls": [URL], "client": "client", "rate": 100}
    assert "retcode" not in runner.__context__ and "retcode" not in report
    # The new pillar rendered on every balancer (its VRRP version compared) before anything.
    assert deploying.calls[1][:2] == (["svr1", "svr2"], "state.show_sls")


def test_deploy_probes_from_the_client_for_the_whole_rollout_and_stops_the_probe_after(runner, deploying):
    runner.deploy(client="client")
    ((client, kwarg),) = deploying.probes
    assert client == "client"
    assert kwarg["url"] == URL and kwarg["rate"] == 100 and kwarg["seconds"] == havip_facts.WAIT_LIMIT
    assert deploying.touched == [kwarg["stop_file"]]
    assert kwarg["stop_file"].startswith("/tmp/havip-deploy-")


def test_deploy_passes_the_drain_and_ready_timeout_to_the_balancers(runner, deploying, monkeypatch):
    calls = []
    answers = deploying.answers
    monkeypatch.setattr(deploying, "answers", lambda minions, fun, arg=(), kwarg=None, timeout=10:
                        calls.append((fun, kwarg, timeout)) or answers(minions, fun, arg, kwarg, timeout))
    runner.deploy(client="client")
    server_calls = {(fun, kwarg["timeout"], timeout) for fun, kwarg, timeout in calls
                    if fun in ("havip.drain", "havip.ready")}
    assert server_calls == {("havip.drain", 30, 40), ("havip.ready", 30, 40)}


def test_deploy_moves_each_holders_vips_away_before_applying_it(runner, monkeypatch, facts, fake_time):
    use_clock(monkeypatch, fake_time())
    cluster = DeployCluster(runner, facts(two_vips_one_per_balancer))
    cluster.holders = {"VI_1": ["svr1"], "VI_2": ["svr2"]}
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    assert cluster.rollout == (steps_of("nginx1") + steps_of("nginx2") + steps_of_holder("svr1")
                               + steps_of_holder("svr2"))
    assert report["holders_after"] == {"VI_1": ["svr1"], "VI_2": ["svr2"]}
    # one probe per VIP
    assert sorted(kwarg["url"] for _, kwarg in cluster.probes) == [URL, "http://192.168.100.20:9090/"]
    assert (report["failed_requests"], report["requests"]) == (0, 8400)


def test_deploy_drains_a_node_that_is_backend_and_balancer_but_applies_it_with_the_balancers(
        runner, monkeypatch, facts, fake_time):
    def nginx1_balances_too(config):
        config["nodes"]["nginx1"].update(roles=["backend", "balancer"], priority=90)
    use_clock(monkeypatch, fake_time())
    cluster = DeployCluster(runner, facts(nginx1_balances_too))
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    everyone = ("nginx1", "svr1", "svr2")
    assert cluster.rollout == (steps_of("nginx2", everyone) + steps_of("nginx1", everyone)
                               + steps_of_idle("svr2") + steps_of_holder("svr1"))


def test_deploy_stops_at_a_failed_backend_apply_leaving_it_drained_and_the_rest_untouched(runner, deploying):
    deploying.failed_applies.add("nginx1")
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert runner.__context__["retcode"] == 1 and report["retcode"] == 1
    assert report["comment"] == (
        "rolling deploy FAILED: step 'apply nginx1' failed: nginx1: havip-nginx-page-file failed"
        " (Unable to manage file: [Errno 30] Read-only file system); stopped there;"
        " nginx1 stays drained on svr1, svr2 (havip.ready nginx1 there puts it back);"
        " untouched: nginx2, svr2, svr1")
    assert deploying.rollout == steps_of("nginx1")[:2]
    assert labels(report) == ["drain nginx1 on svr1, svr2", "apply nginx1"]
    assert report["steps"][-1].endswith(" FAILED")
    assert (report["failed_requests"], report["requests"]) == (0, 4200)
    assert deploying.touched  # the probe was stopped all the same


def test_deploy_stops_at_a_failed_check_of_a_holder_leaving_it_on_standby(runner, deploying):
    deploying.broken_by_apply["svr1"] = ["HAProxy is not running"]
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert report["comment"] == (
        "rolling deploy FAILED: step 'check svr1' failed: svr1: unhealthy: HAProxy is not running;"
        " stopped there; svr1 stays on standby (havip.resume on svr1 ends it)")
    assert deploying.rollout[-1] == (["svr1"], "havip.check", [])
    assert "havip.resume" not in [fun for _, fun, _ in deploying.rollout]


def test_deploy_stopped_by_a_refused_drain_says_where_the_backend_is_drained(runner, deploying):
    deploying.errors[("havip.drain", "svr2")] = (
        "ERROR executing 'havip.drain': havip.drain: refused, no other backend server is UP here"
        " (nginx2 DOWN); draining nginx1 would leave none to answer")
    report = runner.deploy(client="client")
    assert report["comment"] == (
        "rolling deploy FAILED: step 'drain nginx1 on svr1, svr2' failed: svr2: ERROR executing"
        " 'havip.drain': havip.drain: refused, no other backend server is UP here (nginx2 DOWN);"
        " draining nginx1 would leave none to answer; stopped there;"
        " nginx1 stays drained on svr1 (havip.ready nginx1 there puts it back);"
        " untouched: nginx2, svr2, svr1")
    assert deploying.rollout == steps_of("nginx1")[:1]


def test_deploy_stopped_by_a_failed_ready_does_not_call_the_backend_drained(runner, deploying):
    deploying.errors[("havip.ready", "svr2")] = (
        "ERROR executing 'havip.ready': havip.ready: nginx1 is in rotation again but not UP after 30.0 s"
        " (DOWN): its health checks fail")
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert "step 'ready nginx1 on svr1, svr2' failed: svr2: ERROR executing 'havip.ready'" in report["comment"]
    assert "stays drained" not in report["comment"]
    assert report["comment"].endswith("stopped there; untouched: nginx2, svr2, svr1")


def test_deploy_fails_when_the_probe_saw_a_failed_request_though_every_step_passed(runner, deploying):
    deploying.probe_failed = 1
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert runner.__context__["retcode"] == 1
    assert report["comment"] == (
        f"rolling deploy FAILED: 1 of 4200 requests to {URL} failed (longest outage 0.01 s)")
    assert len(report["steps"]) == 14
    assert (report["failed_requests"], report["requests"]) == (1, 4200)


def test_deploy_fails_when_the_cluster_is_not_healthy_after_the_last_step(runner, deploying):
    deploying.resume_brings_back = False
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert report["comment"] == ("rolling deploy FAILED: final check failed: VIP VI_1 (192.168.100.10)"
                                 " is held by svr2, not by the preferred svr1")
    assert report["holders_after"] == {"VI_1": ["svr2"]}


def test_deploy_stops_at_a_failed_pre_check_before_probing_or_touching_anything(runner, deploying):
    deploying.holders["VI_1"] = ["svr1", "svr2"]
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert report["comment"].startswith("rolling deploy FAILED: pre-check failed: split brain")
    assert deploying.rollout == [] and deploying.probes == []


def test_deploy_touches_nothing_when_the_probe_does_not_start(runner, monkeypatch, facts, fake_time):
    class ProbesEndFirst(fake_time):
        """FakeTime whose sleep first waits for the probes' threads to end."""

        def sleep(self, seconds):
            for thread in threading.enumerate():
                if isinstance(thread, havip_deploy.Probe):
                    thread.join(5)
            super().sleep(seconds)
    use_clock(monkeypatch, ProbesEndFirst())
    cluster = DeployCluster(runner, facts())
    cluster.errors[("havip.probe", "client")] = (
        "Passed invalid arguments to havip.probe: probe() got an unexpected keyword argument 'stop_file'\n"
        "\n    Request ``url`` from this minion ...\n")
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert report["comment"] == (
        "rolling deploy FAILED: nothing deployed: a probe is not running;"
        f" the probe of {URL} on client failed: Passed invalid arguments to havip.probe:"
        " probe() got an unexpected keyword argument 'stop_file'")
    assert cluster.rollout == [] and cluster.touched == []
    assert report["steps"] == []


def test_a_probe_that_ended_before_the_rollout_is_a_failure(runner, deploying):
    deploying.probe_runs_out = True
    probe = havip_deploy.Probe(deploying, runner._connect, "client", URL, 100)
    probe.start()
    probe.join(5)
    assert probe.stop() == f"the probe of {URL} on client ended after 42 s, before the rollout did"
    assert deploying.touched == []


def test_deploy_on_a_cluster_of_balancers_only_asks_for_the_deploy_client_pillar(runner, facts):
    def all_balancers(config):
        for name in ("nginx1", "nginx2"):
            config["nodes"][name].update(roles=["backend", "balancer"], priority={"nginx1": 120, "nginx2": 110}[name])
    cluster = DeployCluster(runner, facts(all_balancers))
    report = runner.deploy()
    assert report["comment"] == "every node is a balancer: name the probing minion (pillar deploy:client)"
    assert cluster.calls == [] and cluster.rollout == []


def test_deploy_stands_by_the_balancer_that_holds_the_vip_when_its_turn_comes(runner, deploying):
    """A failover during the backend phase moves the VIP to svr2: svr2 goes
    on standby for its apply (not applied as the only holder), and svr1,
    holding the VIP again by then, too."""
    def failover():
        deploying.holders["VI_1"] = ["svr2"]
    deploying.after[("havip.ready", ("nginx2",))] = failover  # once the last backend is back
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    assert deploying.rollout == (steps_of("nginx1") + steps_of("nginx2") + steps_of_holder("svr2")
                                 + steps_of_holder("svr1"))
    assert report["order"] == ["nginx1", "nginx2", "svr2", "svr1"]  # as the pre-check found the holders
    assert report["holders_after"] == {"VI_1": ["svr1"]}


def test_deploy_stops_when_a_balancer_cannot_say_whether_it_holds_a_vip(runner, deploying):
    deploying.after[("havip.ready", ("nginx2",))] = lambda: deploying.silent.add("svr2")
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert report["comment"].startswith(
        "rolling deploy FAILED: svr2 did not answer havip.status; stopped there; untouched: svr2, svr1")
    assert deploying.rollout == steps_of("nginx1") + steps_of("nginx2")


def test_deploy_refuses_a_change_of_vrrp_version_before_touching_anything(runner, deploying, facts):
    def vrrpv2(config):
        config["keepalived"].update(vrrp_version=2, advert_int=1)
    deploying.deployed = facts(vrrpv2)
    report = runner.deploy(client="client")
    assert report["result"] is False and report["retcode"] == 1
    assert report["comment"] == (
        "rolling deploy FAILED: refused, nothing deployed: the new pillar changes keepalived:vrrp_version from"
        " 2 to 3 on svr1, svr2: VRRPv2 and v3 peers do not talk to each other, so rolled one balancer at a"
        " time each half would hold the VIPs; change it on every balancer at once (salt -L 'svr1,svr2'"
        " state.apply havip, accepting a short split while they reload), then deploy")
    assert deploying.rollout == [] and deploying.probes == []


def test_deploy_refuses_an_unknown_option_and_a_run_while_another_runs(runner, deploying):
    report = runner.deploy(clinet="client")
    assert report["comment"] == ("deploy:clinet: unknown key (did you mean client? known: client, rate,"
                                 " max_failed, tgt, tgt_type, state, pools)")
    lock = os.path.join(runner.__opts__["cachedir"], havip_facts.RUNNER_LOCK)
    with havip_lock.exclusive(lock, "havip.failover_test", {}):
        report = runner.deploy(client="client")
    assert report["comment"].startswith("havip.deploy refused: havip.failover_test is running since ")
    assert report["retcode"] == 1
    assert deploying.calls == [] and deploying.rollout == []


@pytest.mark.parametrize("function, options, comment", [
    ("deploy", {"max_failed": "2"}, "deploy:max_failed: must be a whole number from 0 up, got '2'"),
    ("deploy", {"max_failed": -1}, "deploy:max_failed: must be a whole number from 0 up, got -1"),
    ("deploy", {"rate": "100"}, "deploy:rate: must be a number of requests per second from 0.1 to 1000, got '100'"),
    ("deploy", {"client": ["client"]},
     "deploy:client: must be a minion id (letters, digits and _ . -), got ['client']"),
    ("deploy", {"tgt_type": "globb"}, "deploy:tgt_type: must be one of glob, pcre, list, grain, grain_pcre, pillar,"
     " pillar_pcre, pillar_exact, compound, compound_pillar_exact, ipcidr, range, nodegroup, got 'globb'"),
    ("failover_test", {"rate": 5000},
     "failover_test:rate: must be a number of requests per second from 0.1 to 1000, got 5000"),
    ("failover_test", {"vip": 1}, "failover_test:vip: must be a VIP's name (letters, digits and _ . -), got 1"),
    ("failover_test", {"client": "client; rm -rf /"},
     "failover_test:client: must be a minion id (letters, digits and _ . -), got 'client; rm -rf /'"),
    ("failover_test", {"failure": None}, "failover_test:failure: must be one of kill_haproxy, stop_haproxy,"
     " kill_keepalived, link_down, got None"),
    ("failover_test", {"tgt": ""}, "failover_test:tgt: must be a Salt target (a string, or a list of minion ids),"
     " got ''"),
    ("status", {"tgt": 5}, "status:tgt: must be a Salt target (a string, or a list of minion ids), got 5"),
    ("standby", {"name": True}, "standby:name: must be a balancer's minion id (letters, digits and _ . -), got True"),
    ("resume", {"name": "svr1", "tgt_type": None}, "resume:tgt_type: must be one of glob, pcre, list, grain,"
     " grain_pcre, pillar, pillar_pcre, pillar_exact, compound, compound_pillar_exact, ipcidr, range, nodegroup,"
     " got None"),
], ids=lambda value: value if isinstance(value, str) and " " not in value else None)
def test_an_option_of_the_wrong_type_is_refused_before_anything_runs(runner, deploying, function, options, comment):
    """deploy(max_failed="2") deployed every node, then raised TypeError
    comparing the failed requests with it."""
    if function in ("standby", "resume"):
        options = {"name": "svr1", **options}
    report = getattr(runner, function)(**options)
    assert report["result"] is False and report["retcode"] == 1
    assert report["comment"] == comment
    assert deploying.calls == [] and deploying.config_calls == [] and deploying.rollout == []


def test_deploy_removes_its_probes_stop_files_however_it_ends(runner, deploying):
    assert runner.deploy(client="client")["result"] is True
    assert deploying.removed == deploying.touched and len(deploying.removed) == 1
    deploying.failed_applies.add("nginx1")
    assert runner.deploy(client="client")["result"] is False
    assert deploying.removed == deploying.touched and len(deploying.removed) == 2


def test_a_rerun_of_a_deploy_that_failed_after_its_first_backend_completes_the_one_it_left_drained_first(
        runner, deploying):
    """Chaos seed 4445, round 1: the pillar broken once nginx1 was done,
    the deploy stopped at nginx2's apply, nginx2 left drained; the same
    command again, the pillar fixed, started with nginx1, and havip.drain
    refused it (nginx2, the only other, not UP)."""
    deploying.failed_applies.add("nginx2")
    failed = runner.deploy(client="client")
    assert "nginx2 stays drained on svr1, svr2" in failed["comment"]
    deploying.failed_applies.clear()
    deploying.rollout.clear()
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    assert report["comment"] == ("rolling deploy done: nginx2, nginx1, svr2, svr1 (nginx2 first: a failed deploy"
                                 " left it drained); no request failed")
    assert (report["order"], report["completed_first"]) == (["nginx2", "nginx1", "svr2", "svr1"], ["nginx2"])
    # Drained again (its pool's rule checked again), applied, checked, readied: then the others.
    assert deploying.rollout == (steps_of("nginx2") + steps_of("nginx1") + steps_of_idle("svr2")
                                 + steps_of_holder("svr1"))
    assert deploying.server_states == {b: {"nginx1": "UP", "nginx2": "UP"} for b in BALANCERS}
    # Done: a third run is in the usual order.
    assert runner.deploy(client="client")["order"] == ["nginx1", "nginx2", "svr2", "svr1"]


@pytest.mark.parametrize("drained_by", ["an operator", "a deploy of the operator's state"])
def test_a_deploy_still_refuses_to_drain_the_last_server_up_beside_one_someone_else_drained(
        runner, deploying, drained_by):
    """The record says which drains a deploy made: a server drained by
    hand, or by the other kind of deploy, is not this deploy's to ready."""
    if drained_by == "an operator":
        deploying.server_states = {b: {"nginx2": "DRAIN"} for b in BALANCERS}
    else:
        deploying.failed_applies.add("nginx2")
        assert "nginx2 stays drained on svr1, svr2" in runner.deploy(state=APP, client="client")["comment"]
        deploying.failed_applies.clear()
    deploying.rollout.clear()
    report = runner.deploy(client="client")
    assert report["result"] is False and report["completed_first"] == []
    assert report["comment"].startswith(
        "rolling deploy FAILED: step 'drain nginx1 on svr1, svr2' failed: svr1: ERROR executing 'havip.drain':"
        " havip.drain: refused, no other backend server is UP here")
    assert deploying.rollout == steps_of("nginx1")[:1]


def test_a_rerun_takes_a_server_readied_by_hand_since_in_its_turn(runner, deploying):
    deploying.failed_applies.add("nginx2")
    runner.deploy(client="client")
    deploying.failed_applies.clear()
    deploying.server_states["svr1"]["nginx2"] = "UP"  # salt svr1 havip.ready nginx2: still DRAIN on svr2
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    assert report["order"][:2] == ["nginx2", "nginx1"]
    deploying.failed_applies.add("nginx2")
    runner.deploy(client="client")
    deploying.failed_applies.clear()
    deploying.server_states = {b: {"nginx2": "UP"} for b in BALANCERS}  # readied everywhere by hand
    assert runner.deploy(client="client")["order"] == ["nginx1", "nginx2", "svr2", "svr1"]


# ---- rolling deploy of the operator's application (state, pools) ----------------


def app_services(config):
    """The seed with two app nodes and services: ``shop`` (http) sends
    api.example.com to pool api (app1, app2, a server given by address),
    /old to pool ext (by address only), the rest to web (the nginx pages);
    ``db`` (tcp) goes to pool sql, whose server db-b is app2."""
    config["nodes"]["app1"] = {"roles": ["app"], "address": "192.168.100.21"}
    config["nodes"]["app2"] = {"roles": ["app"], "address": "192.168.100.22"}
    config["services"] = {
        "shop": {"port": 80, "mode": "http", "pool": "web", "routes": [
            {"host": "api.example.com", "pool": "api"}, {"path_prefix": "/old", "pool": "ext"}]},
        "db": {"port": 5432, "pool": "sql"}}
    config["pools"] = {
        "web": {"servers": {"nginx1": {"node": "nginx1"}, "nginx2": {"node": "nginx2"}}},
        "api": {"port": 8080, "servers": {"app1": {"node": "app1"}, "app2": {"node": "app2"},
                                          "legacy": {"address": "10.0.0.9"}}},
        "ext": {"servers": {"old": {"address": "10.0.0.8"}}},
        "sql": {"port": 5432, "servers": {"db-b": {"node": "app2"}}}}


APP = "shop.app"
SHOP_URLS = ["http://192.168.100.10:5432/", "http://192.168.100.10:80/"]  # db, shop


@pytest.fixture
def apps(runner, monkeypatch, facts, fake_time):
    """The minions of a DeployCluster with the app services, on a fake clock."""
    use_clock(monkeypatch, fake_time())
    return DeployCluster(runner, facts(app_services))


def app_steps(node, *references, state=APP, balancers=("svr1", "svr2")):
    """The calls that roll the operator's ``state`` out to ``node``, server
    ``references`` (pool/server) of its pools."""
    return ([(list(balancers), "havip.drain", [reference]) for reference in references]
            + [([node], "state.apply", [state])]
            + [(list(balancers), "havip.ready", [reference]) for reference in references])


def test_deploy_of_a_state_rolls_each_node_of_the_pools_one_at_a_time_drained_in_every_pool_that_holds_it(
        runner, apps):
    report = runner.deploy(state=APP, pools=["api"], client="client")
    assert report["result"] is True, report["comment"]
    assert report["comment"] == ("rolling deploy of shop.app done: app1, app2; no request failed;"
                                 " skipped (given by address): api/legacy")
    # app1 whole (drained, applied, readied) before app2 is touched; app2 is
    # sql's server db-b too: drained and readied there as well.
    assert apps.rollout == app_steps("app1", "api/app1") + app_steps("app2", "api/app2", "sql/db-b")
    assert labels(report) == [
        "drain api/app1 on svr1, svr2", "apply shop.app on app1", "ready api/app1 on svr1, svr2",
        "drain api/app2 on svr1, svr2", "drain sql/db-b on svr1, svr2", "apply shop.app on app2",
        "ready api/app2 on svr1, svr2", "ready sql/db-b on svr1, svr2"]
    assert (report["state"], report["pools"], report["order"], report["deployed"], report["skipped"]) == (
        APP, ["api"], ["app1", "app2"], ["app1", "app2"], ["api/legacy"])
    # Each node under its own probes of every service reaching its pools, stopped after its turn.
    # shop's by the Host api.example.com that routes to api (havip_targets).
    assert report["probe"] == {"urls": SHOP_URLS, "hosts": [None, "api.example.com"], "client": "client", "rate": 100}
    assert [kwarg["url"] for _, kwarg in apps.probes] == SHOP_URLS * 2
    assert len(apps.touched) == 4 and apps.removed == apps.touched
    assert (report["failed_requests"], report["requests"]) == (0, 4 * 4200)
    assert report["holders_before"] == report["holders_after"] == {"VI_1": ["svr1"]}
    # The pillar is not applied: no state.show_sls, no havip, no standby.
    assert {fun for _, fun, _ in apps.rollout} == {"havip.drain", "state.apply", "havip.ready"}
    assert "state.show_sls" not in apps.funs()


def test_deploy_of_a_state_drains_a_node_in_a_pool_not_chosen(runner, apps):
    report = runner.deploy(state=APP, pools=["sql"], client="client")
    assert report["result"] is True, report["comment"]
    assert apps.rollout == app_steps("app2", "api/app2", "sql/db-b")
    assert report["comment"] == "rolling deploy of shop.app done: app2; no request failed"
    assert report["skipped"] == [] and report["probe"]["urls"] == SHOP_URLS


def test_deploy_of_a_state_without_pools_rolls_every_pool_with_a_node_server(runner, apps):
    report = runner.deploy(state=APP, client="client")
    assert report["result"] is True, report["comment"]
    assert report["pools"] == ["api", "sql", "web"]  # not ext: its only server is given by address
    assert report["order"] == ["app1", "app2", "nginx1", "nginx2"]
    assert apps.rollout == (app_steps("app1", "api/app1") + app_steps("app2", "api/app2", "sql/db-b")
                            + app_steps("nginx1", "web/nginx1") + app_steps("nginx2", "web/nginx2"))


def test_deploy_of_a_state_on_todays_pair_rolls_the_backends_by_their_names(runner, deploying):
    report = runner.deploy(state=APP, client="client")
    assert report["result"] is True, report["comment"]
    assert report["pools"] == [havip_facts.HAPROXY_BACKEND]
    assert deploying.rollout == app_steps("nginx1", "nginx1") + app_steps("nginx2", "nginx2")
    assert report["probe"]["urls"] == [URL]  # today's frontend, as today's deploy probes it


def test_deploy_of_a_state_stops_at_a_failed_apply_with_that_server_drained_and_the_one_before_serving(
        runner, apps):
    apps.failed_applies.add("app2")
    report = runner.deploy(state=APP, pools=["api"], client="client")
    assert report["result"] is False and report["retcode"] == 1 and runner.__context__["retcode"] == 1
    assert report["comment"] == (
        "rolling deploy of shop.app FAILED: step 'apply shop.app on app2' failed: app2: havip-nginx-page-file"
        " failed (Unable to manage file: [Errno 30] Read-only file system); stopped at app2;"
        " api/app2 stays drained on svr1, svr2 (havip.ready api/app2 there puts it back);"
        " sql/db-b stays drained on svr1, svr2 (havip.ready sql/db-b there puts it back);"
        " skipped (given by address): api/legacy")
    assert apps.rollout == app_steps("app1", "api/app1") + app_steps("app2", "api/app2", "sql/db-b")[:3]
    assert report["deployed"] == ["app1"]  # readied: serving
    assert labels(report)[-1] == "apply shop.app on app2" and report["steps"][-1].endswith(" FAILED")
    assert apps.removed == apps.touched and len(apps.touched) == 4  # its probes stopped all the same


def test_deploy_of_a_state_whose_ready_fails_drains_that_server_again_and_leaves_the_rest_untouched(
        runner, apps):
    apps.errors[("havip.ready", "svr2")] = (
        "ERROR executing 'havip.ready': havip.ready: api/app1 is in rotation again but not UP after 30.0 s"
        " (DOWN): its health checks fail")
    report = runner.deploy(state=APP, pools=["api"], client="client")
    assert report["result"] is False
    assert report["comment"] == (
        "rolling deploy of shop.app FAILED: step 'ready api/app1 on svr1, svr2' failed: svr2: ERROR executing"
        " 'havip.ready': havip.ready: api/app1 is in rotation again but not UP after 30.0 s (DOWN): its health"
        " checks fail; stopped at app1; api/app1 stays drained on svr1, svr2 (havip.ready api/app1 there puts"
        " it back); untouched: app2; skipped (given by address): api/legacy")
    assert apps.rollout == app_steps("app1", "api/app1") + [(["svr1", "svr2"], "havip.drain", ["api/app1"])]
    assert report["deployed"] == []


def test_deploy_of_a_state_stops_when_the_probes_saw_a_failed_request_with_that_server_drained_again(
        runner, apps):
    apps.probe_failed = 1
    report = runner.deploy(state=APP, pools=["api"], client="client")
    assert report["result"] is False
    assert report["comment"] == (
        "rolling deploy of shop.app FAILED: 1 of 4200 requests to http://192.168.100.10:5432/ failed (longest"
        " outage 0.01 s); 1 of 4200 requests to http://192.168.100.10:80/ failed (longest outage 0.01 s);"
        " stopped at app1; api/app1 stays drained on svr1, svr2 (havip.ready api/app1 there puts it back);"
        " untouched: app2; skipped (given by address): api/legacy")
    assert apps.rollout == app_steps("app1", "api/app1") + [(["svr1", "svr2"], "havip.drain", ["api/app1"])]
    assert (report["failed_requests"], report["requests"]) == (2, 8400)


def test_a_rerun_of_a_deploy_of_a_state_completes_the_node_it_left_drained_first(runner, apps):
    apps.failed_applies.add("app2")
    runner.deploy(state=APP, pools=["api"], client="client")
    apps.failed_applies.clear()
    apps.rollout.clear()
    report = runner.deploy(state=APP, pools=["api"], client="client")
    assert report["result"] is True, report["comment"]
    assert report["comment"] == (
        "rolling deploy of shop.app done: app2, app1 (app2 first: a failed deploy left it drained);"
        " no request failed; skipped (given by address): api/legacy")
    assert apps.rollout == app_steps("app2", "api/app2", "sql/db-b") + app_steps("app1", "api/app1")
    # Another state's rerun is not this one's.
    apps.failed_applies.add("app2")
    runner.deploy(state=APP, pools=["api"], client="client")
    apps.failed_applies.clear()
    assert runner.deploy(state="shop.other", pools=["api"], client="client")["order"] == ["app1", "app2"]


def test_deploy_of_a_state_says_where_a_refused_drain_left_the_server(runner, apps):
    apps.errors[("havip.drain", "svr2")] = (
        "ERROR executing 'havip.drain': havip.drain: refused, no other server is UP in pool api here")
    report = runner.deploy(state=APP, pools=["api"], client="client")
    assert report["comment"] == (
        "rolling deploy of shop.app FAILED: step 'drain api/app1 on svr1, svr2' failed: svr2: ERROR executing"
        " 'havip.drain': havip.drain: refused, no other server is UP in pool api here; stopped at app1;"
        " api/app1 stays drained on svr1 (havip.ready api/app1 there puts it back);"
        " untouched: app2; skipped (given by address): api/legacy")
    assert apps.rollout == app_steps("app1", "api/app1")[:1]


def test_deploy_of_a_state_stops_at_a_failed_pre_check_before_touching_anything(runner, apps):
    apps.reasons["app1"] = ["its HTTP service does not answer"]
    report = runner.deploy(state=APP, pools=["api"], client="client")
    assert report["comment"] == "rolling deploy of shop.app FAILED: pre-check failed: app1: its HTTP service does" \
                                " not answer; skipped (given by address): api/legacy"
    assert apps.rollout == [] and apps.probes == []


@pytest.mark.parametrize("options, comment", [
    ({"pools": ["api"]}, "deploy:pools: needs deploy:state (the SLS to apply on the pools' servers)"),
    ({"state": APP, "pools": "api"},
     "deploy:pools: must be a list of pool names (names of havip:pools, at least one), got 'api'"),
    ({"state": APP, "pools": []},
     "deploy:pools: must be a list of pool names (names of havip:pools, at least one), got []"),
    ({"state": "../etc/shadow"}, "deploy:state: must be an SLS name (words of letters, digits, _ and - joined by"
     " single dots) that is not the formula's own (havip, havip.*: salt-run havip.deploy without state deploys"
     " those), got '../etc/shadow'"),
    ({"state": "havip", "pools": ["web"]}, "deploy:state: must be an SLS name (words of letters, digits, _ and -"
     " joined by single dots) that is not the formula's own (havip, havip.*: salt-run havip.deploy without state"
     " deploys those), got 'havip'"),
], ids=["pools without state", "pools a string", "pools empty", "state a path", "state havip"])
def test_deploy_of_a_state_refuses_a_bad_option_before_anything_runs(runner, apps, options, comment):
    report = runner.deploy(client="client", **options)
    assert report["result"] is False and report["retcode"] == 1
    assert report["comment"] == comment
    assert apps.calls == [] and apps.config_calls == [] and apps.rollout == []


@pytest.mark.parametrize("pools, comment", [
    (["api", "shop"], "deploy:pools: shop is not a pool (pools: api, ext, sql, web)"),
    (["ext"], "deploy:pools: ext has no server that is a node (every one is given by address): nothing to"
              " deploy there"),
])
def test_deploy_of_a_state_refuses_pools_the_model_cannot_deploy_before_asking_any_minion(runner, apps, pools,
                                                                                          comment):
    report = runner.deploy(state=APP, pools=pools, client="client")
    assert report["result"] is False and report["comment"] == comment
    assert apps.calls == [] and apps.rollout == []


def test_deploy_of_the_pillar_with_services_drains_each_node_in_every_pool_that_holds_it_and_probes_each_service(
        runner, apps):
    """It drained by bare node name (app nodes not at all) and probed the
    frontend:port no service listens on."""
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    assert report["order"] == ["app1", "app2", "nginx1", "nginx2", "svr2", "svr1"]
    on = ["svr1", "svr2"]
    assert apps.rollout[:10] == [
        (on, "havip.drain", ["api/app1"]), (["app1"], "state.apply", ["havip"]), (["app1"], "havip.check", []),
        (on, "havip.ready", ["api/app1"]),
        (on, "havip.drain", ["api/app2"]), (on, "havip.drain", ["sql/db-b"]), (["app2"], "state.apply", ["havip"]),
        (["app2"], "havip.check", []), (on, "havip.ready", ["api/app2"]), (on, "havip.ready", ["sql/db-b"])]
    assert apps.rollout[10] == (on, "havip.drain", ["web/nginx1"])
    # Each pool by a request its service routes there: web by /, api by its host, ext by /old.
    every = ["http://192.168.100.10:5432/", "http://192.168.100.10:80/", "http://192.168.100.10:80/",
             "http://192.168.100.10:80/old"]
    assert (report["probe"]["urls"], report["probe"]["hosts"]) == (every, [None, None, "api.example.com", None])
    assert sorted(((kwarg["url"], kwarg.get("host")) for _, kwarg in apps.probes), key=str) == sorted(
        zip(every, [None, None, "api.example.com", None], strict=True), key=str)


def test_deploy_of_the_pillar_with_services_stopped_at_a_node_says_where_each_of_its_servers_stays_drained(
        runner, apps):
    apps.failed_applies.add("app2")
    report = runner.deploy(client="client")
    assert report["comment"].endswith(
        "stopped there; api/app2 stays drained on svr1, svr2 (havip.ready api/app2 there puts it back);"
        " sql/db-b stays drained on svr1, svr2 (havip.ready sql/db-b there puts it back);"
        " untouched: nginx1, nginx2, svr2, svr1")


# ---- the runner: havip.standby / havip.resume -----------------------------------


def test_runner_standby_calls_the_balancers_standby_and_reports_the_move(runner, deploying):
    report = runner.standby("svr1")
    assert report == {"balancer": "svr1", "moved": ["VI_1"], "took_s": 0.2, "result": True,
                      "comment": "standby svr1 done: VI_1 moved in 0.2 s"}
    assert deploying.rollout == [(["svr1"], "havip.standby", [])]
    assert deploying.holders == {"VI_1": ["svr2"]}


def test_runner_resume_takes_the_vips_back(runner, deploying):
    runner.standby("svr1")
    deploying.rollout.clear()
    report = runner.resume("svr1")
    assert report["result"] is True, report["comment"]
    assert report["comment"] == "resume svr1 done: VI_1 moved in 0.2 s"
    assert deploying.rollout == [(["svr1"], "havip.resume", [])]
    assert deploying.holders == {"VI_1": ["svr1"]}


def test_runner_standby_of_a_balancer_holding_nothing_or_already_on_standby(runner, deploying):
    assert runner.standby("svr2")["comment"] == "standby svr2 done: no VIP moved"
    assert runner.standby("svr2")["comment"] == "standby svr2 done: no VIP moved (it was on standby already)"


def test_runner_standby_that_fails_says_why_and_exits_non_zero(runner, deploying):
    deploying.errors[("havip.standby", "svr1")] = (
        "ERROR executing 'havip.standby': havip.standby: refused, no other healthy balancer could take over"
        " the VIPs (svr2: its HAProxy has no backend server UP)")
    report = runner.standby("svr1")
    assert report == {"balancer": "svr1", "result": False, "retcode": 1, "comment": (
        "standby svr1 FAILED: svr1: ERROR executing 'havip.standby': havip.standby: refused, no other healthy"
        " balancer could take over the VIPs (svr2: its HAProxy has no backend server UP)")}
    assert runner.__context__["retcode"] == 1
    assert deploying.holders == {"VI_1": ["svr1"]}


def test_runner_standby_refuses_a_node_that_is_no_balancer(runner, deploying):
    report = runner.standby("nginx1")
    assert report["result"] is False
    assert report["comment"] == "'nginx1' is not a balancer (balancers: svr1, svr2)"
    assert deploying.rollout == []


@pytest.mark.parametrize("function", ["standby", "resume"])
def test_runner_standby_and_resume_are_refused_while_a_deploy_runs(runner, deploying, function):
    lock = os.path.join(runner.__opts__["cachedir"], havip_facts.RUNNER_LOCK)
    with havip_lock.exclusive(lock, "havip.deploy", {}):
        report = getattr(runner, function)("svr1")
    assert report["result"] is False and report["balancer"] == "svr1"
    assert report["comment"].startswith(f"havip.{function} refused: havip.deploy is running since ")
    assert deploying.rollout == [] and deploying.config_calls == []


NOW = 1_764_670_000.0


@functools.cache
def minion_key(name):
    """The private key of minion ``name`` (PEM), as salt-minion keeps it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def accepted_key(name):
    """Its public key, as the master keeps the key it accepted."""
    key = serialization.load_pem_private_key(minion_key(name), None).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class Transitions:
    """``log_transition`` on a master whose clock reads NOW and that
    accepted the keys of svr1 and svr2: the minions' ``havip.status``
    answers (``vips``: {minion: {vip: (state, since)}}, proven as the module
    proves them; ``forged``: answers fired in a minion's name by another,
    which cannot open the sealed nonce; a minion in neither does not
    answer), who was asked, the events fired on the master's bus, the log's
    lines."""

    def __init__(self, runner, monkeypatch, tmp_path):
        self.runner, self.log = runner, tmp_path / "vrrp.log"
        self.vips, self.forged, self.asked, self.fired = {}, {}, [], []
        (tmp_path / "pki" / "minions").mkdir(parents=True)
        for name in ("svr1", "svr2"):
            (tmp_path / "pki" / "minions" / name).write_bytes(accepted_key(name))
        runner.__opts__.update(havip_vrrp_log=str(self.log), sock_dir=str(tmp_path / "sock"),
                               pki_dir=str(tmp_path / "pki"))
        monkeypatch.setattr(runner, "time", types.SimpleNamespace(time=lambda: NOW))
        monkeypatch.setattr(runner.salt.client, "get_local_client", local_client(self.asked, self.answer))
        transitions = self

        class Bus:
            def __init__(self, opts, sock_dir, listen):
                assert (sock_dir, listen) == (opts["sock_dir"], False)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                pass

            def fire_event(self, data, tag):
                transitions.fired.append((tag, data))
        monkeypatch.setattr(runner.salt.utils.event, "get_master_event", Bus)

    def answer(self, name, fun, arg, kwarg):
        assert (fun, arg, list(kwarg)) == ("havip.status", [], ["challenge"])
        if name in self.forged:
            vips = self._vips(self.forged[name])
            return {"roles": ["balancer"], "vips": vips, "proof": havip_transition.proof(os.urandom(32), vips)}
        if name not in self.vips:
            return LOST
        vips = self._vips(self.vips[name])
        nonce = havip_transition.unseal(minion_key(name), kwarg["challenge"])
        return {"roles": ["balancer"], "vips": vips, "proof": havip_transition.proof(nonce, vips)}

    @staticmethod
    def _vips(states):
        return {vip: {"state": state, "since_s": since} for vip, (state, since) in states.items()}

    def lines(self):
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def transitions(real_runner, monkeypatch, tmp_path):
    return Transitions(real_runner, monkeypatch, tmp_path)


def test_a_confirmed_transition_is_logged_and_a_new_holder_announced(transitions):
    transitions.vips = {"svr2": {"VI_1": ("MASTER", NOW - 0.4)}, "svr1": {"VI_1": ("FAULT", NOW + 0.5)}}
    log_transition = transitions.runner.log_transition
    assert log_transition("svr2", "VI_1", "MASTER", "BACKUP", NOW - 0.25)["result"] is True
    assert log_transition("svr1", "VI_1", "FAULT", "MASTER", NOW + 0.5)["result"] is True
    assert transitions.lines() == [f"{NOW - 0.25} svr2 VI_1 BACKUP -> MASTER", f"{NOW + 0.5} svr1 VI_1 MASTER -> FAULT"]
    assert transitions.fired == [("havip/vip/VI_1/holder", {"vip": "VI_1", "holder": "svr2", "at": NOW - 0.25})]
    assert transitions.asked == [(["svr2"], "havip.status"), (["svr1"], "havip.status")]


def test_a_stop_is_confirmed_by_a_stopped_keepalived(transitions):
    transitions.vips = {"svr1": {"VI_1": ("STOPPED", NOW)}}
    assert transitions.runner.log_transition("svr1", "VI_1", "STOP", "MASTER", NOW + 1)["result"] is True
    assert transitions.lines() == [f"{NOW + 1} svr1 VI_1 MASTER -> STOP"] and transitions.fired == []


@pytest.mark.parametrize("svr1", [None, {"VI_1": ("BACKUP", NOW - 100)}, {"VI_1": ("MASTER", NOW - 100)},
                                  {"VI_1": ("MASTER", NOW + 5)}, {"VI_2": ("MASTER", NOW)}])
def test_a_minion_cannot_speak_for_another(transitions, svr1):
    """web7 fires salt/beacon/svr1/havip/VI_1/MASTER (its tag and its data
    say svr1): svr1 is asked and does not confirm it (no answer, another
    state, a change at another time, no such VIP), so nothing is logged or
    announced.  Before, the reactor took the minion from the event and
    fired the announcement itself."""
    transitions.vips = {"web7": {"VI_1": ("MASTER", NOW)}, **({"svr1": svr1} if svr1 else {})}
    refused = transitions.runner.log_transition("svr1", "VI_1", "MASTER", "BACKUP", NOW)
    assert refused["result"] is False and refused["retcode"] == 1
    assert refused["comment"].startswith("havip.log_transition: svr1 does not confirm VI_1 MASTER at "), refused
    assert transitions.asked == [(["svr1"], "havip.status")]
    assert transitions.lines() == [] and transitions.fired == []


def test_a_return_fired_in_another_minions_name_does_not_confirm(transitions):
    """web7 saw the job published to svr1 and fired
    salt/job/<jid>/ret/svr1 first, saying what it claimed: without svr1's
    key it cannot make the proof, so nothing is logged or announced."""
    transitions.forged = {"svr1": {"VI_1": ("MASTER", NOW)}}
    refused = transitions.runner.log_transition("svr1", "VI_1", "MASTER", "BACKUP", NOW)
    assert refused["comment"] == (f"havip.log_transition: svr1 does not confirm VI_1 MASTER at {NOW}: its answer is"
                                  " not proven by the key the master accepted for it")
    assert transitions.lines() == [] and transitions.fired == []


def test_a_minion_the_master_accepted_no_key_for_is_not_asked(transitions):
    transitions.vips = {"web7": {"VI_1": ("MASTER", NOW)}}
    refused = transitions.runner.log_transition("web7", "VI_1", "MASTER", "BACKUP", NOW)
    assert refused["comment"].startswith("havip.log_transition: web7 refused: no key accepted for it (")
    assert transitions.asked == [] and transitions.lines() == [] and transitions.fired == []


@pytest.mark.parametrize("key, value", [("minion", "svr2\n1 evil VI_1 X -> Y"), ("vip", "VI 1"), ("vip", "*/../VI_2"),
                                        ("state", "master"), ("state", "PRIMARY"), ("state", ["MASTER"]),
                                        ("previous", "BACKUP;"), ("at", "soon"), ("at", str(NOW)),
                                        ("at", float("nan")), ("at", float("-inf")), ("at", float("1e999")),
                                        ("at", True), ("at", None), ("at", NOW - 301), ("at", NOW + 301)])
def test_what_a_minion_sent_is_checked_before_anything_is_asked_logged_or_fired(transitions, key, value):
    transitions.vips = {"svr2": {"VI_1": ("MASTER", NOW), "VI 1": ("MASTER", NOW), "*/../VI_2": ("MASTER", NOW)}}
    transition = {"minion": "svr2", "vip": "VI_1", "state": "MASTER", "previous": "BACKUP", "at": NOW, key: value}
    refused = transitions.runner.log_transition(**transition)
    assert refused["result"] is False and refused["retcode"] == 1
    assert refused["comment"].startswith(f"havip.log_transition: {key} "), refused["comment"]
    assert transitions.asked == [] and transitions.lines() == [] and transitions.fired == []


def test_transitions_are_rate_limited_per_minion(transitions, monkeypatch):
    transitions.vips = {"svr1": {"VI_1": ("MASTER", NOW)}, "svr2": {"VI_1": ("BACKUP", NOW)}}
    log_transition = transitions.runner.log_transition
    for _ in range(60):
        assert log_transition("svr1", "VI_1", "MASTER", "BACKUP", NOW)["result"] is True
    refused = log_transition("svr1", "VI_1", "MASTER", "BACKUP", NOW)
    assert refused["result"] is False
    assert refused["comment"] == "havip.log_transition: svr1 refused: more than 60 transitions in 60 s"
    assert len(transitions.lines()) == len(transitions.fired) == 60
    assert log_transition("svr2", "VI_1", "BACKUP", "MASTER", NOW)["result"] is True
    monkeypatch.setattr(transitions.runner, "time", types.SimpleNamespace(time=lambda: NOW + 60))
    assert log_transition("svr1", "VI_1", "MASTER", "BACKUP", NOW)["result"] is True
    assert len(transitions.fired) == 61


def test_a_flood_of_forged_transitions_asks_the_minion_named_at_most_60_times_a_minute(transitions):
    transitions.forged = {"svr1": {"VI_1": ("MASTER", NOW)}}
    for _ in range(61):
        transitions.runner.log_transition("svr1", "VI_1", "MASTER", "BACKUP", NOW)
    assert transitions.asked == [(["svr1"], "havip.status")] * 60
    assert transitions.lines() == [] and transitions.fired == []

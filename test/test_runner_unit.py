"""
Fast tier: the havip runner with its salt calls (`_call`, `_config`) faked:
the cluster's verdicts and the failover test's control flow, no minion.
"""

import copy
import importlib.util

import pytest

from test.saltcall import REPO
from test.test_module_unit import load_module, merged_seed

VIP = "192.168.100.10"
NODES = ("nginx1", "nginx2", "svr1", "svr2")
BALANCERS = ("svr1", "svr2")


@pytest.fixture
def runner():
    spec = importlib.util.spec_from_file_location("havip_runner", REPO / "_runners" / "havip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__opts__ = {"conf_file": "/dev/null"}
    module.__context__ = {}

    def no_salt():
        raise AssertionError("unexpected salt client")
    module._local = no_salt
    return module


def facts(edit=None, minion="svr1"):
    """The facts a balancer's havip.config returns: the validated seed."""
    config = merged_seed()
    if edit:
        edit(config)
    return load_module().validate(config, minion)


class Cluster:
    """Canned answers of the minions to havip.status / havip.check, and a
    record of every call the runner makes."""

    def __init__(self, runner, config=None):
        self.config = config or facts()
        self.holders = {"VI_1": ["svr1"]}
        self.states = {}                # balancer -> VRRP state of VI_1
        self.reasons = {}               # node -> reasons it is unhealthy
        self.standby = set()
        self.silent = set()
        self.down = {}                  # balancer -> backend servers its HAProxy has DOWN
        self.calls = []
        self.config_calls = []
        runner._call = self.call
        runner._config = self.get_config

    def get_config(self, tgt):
        self.config_calls.append(tgt)
        return copy.deepcopy(self.config)

    def status(self, name):
        if name not in BALANCERS:
            return {"roles": ["backend"], "vips": {},
                    "nginx": {"running": True, "answering": True, "url": "http://x/"}}
        vips = {}
        for vip, entry in self.config["vips"].items():
            held = name in self.holders[vip]
            vips[vip] = {"address": entry["address"], "interface": "ens32", "held": held,
                         "state": self.states.get(name, "MASTER" if held else "BACKUP"),
                         "since": 1_700_000_000.0, "priority": entry["priorities"][name]}
        servers = {server: "DOWN" if server in self.down.get(name, ()) else "UP" for server in ("nginx1", "nginx2")}
        return {"roles": ["balancer"], "vips": vips, "standby": name in self.standby,
                "haproxy": {"running": True, "backends": servers}}

    def check(self, name):
        reasons = self.reasons.get(name, [])
        return {"healthy": not reasons, "reasons": reasons, "standby": name in self.standby}

    def answer(self, name, fun, arg, kwarg):
        if fun == "havip.status":
            return self.status(name)
        if fun == "havip.check":
            return self.check(name)
        raise AssertionError(f"unexpected call {fun} on {name}")

    def call(self, minions, fun, arg=(), kwarg=None, timeout=10):
        minions = list(minions)
        self.calls.append((minions, fun, list(arg), kwarg))
        answers = {}
        for name in minions:
            if name in self.silent:
                continue
            ret = self.answer(name, fun, arg, kwarg)
            if isinstance(ret, dict):
                answers[name] = ret
        return answers

    def funs(self):
        return [fun for _, fun, _, _ in self.calls]


@pytest.fixture
def cluster(runner):
    return Cluster(runner)


# ---- status -----------------------------------------------------------------


def test_status_of_a_healthy_cluster(runner, cluster):
    report = runner.status()
    assert report["result"] is True
    assert report["comment"].startswith("every VIP has exactly one holder, the preferred one")
    assert report["vips"] == {"VI_1": {"address": VIP, "holders": ["svr1"], "preferred": "svr1"}}
    assert report["vips"]["VI_1"]["preferred"] == "svr1"
    assert report["nodes"] == {name: "healthy" for name in NODES}
    assert report["problems"] == []
    assert "retcode" not in runner.__context__
    assert cluster.config_calls == ["*"]
    assert sorted(cluster.funs()) == ["havip.check", "havip.status"]
    assert all(minions == list(NODES) for minions, _, _, _ in cluster.calls)


def two_vips_one_per_balancer(config):
    config["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32", "virtual_router_id": 52,
                              "priorities": {"svr2": 200}}


def test_status_wants_each_vip_on_its_own_preferred_balancer(runner):
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


def test_status_without_preemption_accepts_any_holder(runner):
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


def test_status_fails_when_havip_is_deployed_nowhere(runner, monkeypatch):
    def nothing(tgt):
        raise ValueError(f"no minion matching {tgt!r} has havip deployed (run state.apply havip)")
    monkeypatch.setattr(runner, "_config", nothing)
    report = runner.status(tgt="lb*")
    assert report == {"result": False,
                      "comment": "no minion matching 'lb*' has havip deployed (run state.apply havip)"}
    assert runner.__context__["retcode"] == 1


# ---- budgets, client ----------------------------------------------------------


@pytest.mark.parametrize("failure, move", [
    # detection (interval 1 x fall 1 + timeout 2) for HAProxy failures, then
    # 4 adverts of 0.05 s + 1 s
    ("kill_haproxy", 4.2),
    ("stop_haproxy", 4.2),
    ("kill_keepalived", 1.2),
    ("link_down", 1.2),
])
def test_budgets_with_the_default_timers(runner, failure, move):
    # restore: interval 1 x rise 2 + timeout 2 + preempt_delay 0 + 4 adverts
    # + 2 s, + HAProxy's server checks inter 1s x rise 2
    assert runner._budgets(facts(), failure) == pytest.approx((move, 8.2))


def test_budgets_follow_the_configured_timers(runner):
    def slow(config):
        config["keepalived"].update(advert_int=2, preempt_delay=5)
        config["keepalived"]["check"].update(interval=2, fall=3, timeout=3, rise=4)
        config["backend"]["check"].update(inter="1500ms", rise=3)
    config = facts(slow)
    # move: 2 x 3 + 3 + 4 x 2 + 1; restore: 2 x 4 + 3 + 5 + 4 x 2 + 2 + 1.5 x 3
    assert runner._budgets(config, "kill_haproxy") == (18.0, 30.5)
    assert runner._budgets(config, "kill_keepalived") == (9.0, 30.5)


def test_pick_client_takes_the_first_node_that_is_not_a_balancer(runner):
    assert runner._pick_client(facts(), None) == "nginx1"
    assert runner._pick_client(facts(), "client1") == "client1"


def all_balancers(config):
    config["nodes"]["nginx1"]["roles"] = ["backend", "balancer"]
    config["nodes"]["nginx2"]["roles"] = ["backend", "balancer"]
    config["backend"]["port"] = 8080


def test_pick_client_asks_for_a_client_when_every_node_is_a_balancer(runner):
    with pytest.raises(ValueError, match=r"pillar failover_test:client"):
        runner._pick_client(facts(all_balancers), None)


# ---- failover_test ------------------------------------------------------------


def test_failover_test_refuses_an_unknown_failure(runner, cluster):
    report = runner.failover_test(failure="bogus")
    assert report["result"] is False
    assert report["comment"] == (
        "unknown failure 'bogus' (known: kill_haproxy, stop_haproxy, kill_keepalived, link_down)")
    assert runner.__context__["retcode"] == 1
    assert cluster.calls == []


def test_failover_test_without_a_client_on_an_all_balancer_cluster_fails(runner):
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
    assert set(cluster.funs()) == {"havip.status", "havip.check"}
    assert "havip.inject" not in cluster.funs()


class FakeTime:
    """The runner's `time`: sleep() only advances the clock."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def time(self):
        return 1_700_000_000.0 + self.now


class FailoverCluster(Cluster):
    """svr1 holds the VIP until havip.inject breaks it; svr2 then takes it
    over (after `takeover` s, or never), and state.apply on svr1 restores it."""

    AT = 1_700_000_100.0

    def __init__(self, runner, takeover=3.0):
        super().__init__(runner)
        self.takeover = takeover

    def answer(self, name, fun, arg, kwarg):
        if fun == "havip.inject":
            if self.takeover is not None:
                self.holders["VI_1"] = ["svr2"]
            self.reasons["svr1"] = ["HAProxy is not running"]
            return {"failure": arg[0], "at": self.AT}
        if fun == "havip.probe":
            return {"started": self.AT - 1.0, "total": 1200, "failed": 30, "longest_outage": 2.5,
                    "last_failure": 3.5, "recovered": True, "first_failure": 1.0, "backends": {}}
        if fun == "state.apply":
            self.holders["VI_1"] = ["svr1"]
            self.reasons.pop("svr1")
            return {"file_|-x_|-x_|-managed": {"result": True}}
        ret = super().answer(name, fun, arg, kwarg)
        if fun == "havip.status" and name == "svr2" and self.takeover is not None:
            ret["vips"]["VI_1"]["since"] = self.AT + self.takeover
        return ret


def test_failover_test_reports_the_move_and_the_restore(runner, monkeypatch):
    monkeypatch.setattr(runner, "time", FakeTime())
    cluster = FailoverCluster(runner)
    report = runner.failover_test()
    assert report["result"] is True, report["comment"]
    assert report["comment"] == "failover test passed: kill_haproxy on svr1"
    assert report["VIP moved after"] == "3.00 s (svr1 -> svr2; budget 4.2 s)"
    assert report["failed requests"] == "30 of 1200"
    assert report["holders before"] == report["holders after"] == "VI_1: svr1"
    assert "retcode" not in runner.__context__
    injects = [call for call in cluster.calls if call[1] == "havip.inject"]
    assert injects == [(["svr1"], "havip.inject", ["kill_haproxy"], {"duration": pytest.approx(9.2)})]
    probe = next(call for call in cluster.calls if call[1] == "havip.probe")
    assert probe[0] == ["nginx1"]
    assert probe[3] == {"url": "http://192.168.100.10:9090/", "seconds": pytest.approx(8.2), "rate": 100}
    assert (["svr1"], "state.apply", ["havip"], None) in cluster.calls


class LinkDownCluster(FailoverCluster):
    """The failure also costs svr1's HAProxy its view of nginx1; after the
    apply nginx1 rises again on the ``rises_after``-th status call (never
    when None)."""

    def __init__(self, runner, rises_after):
        super().__init__(runner)
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


def test_failover_test_restore_waits_until_every_server_that_was_up_is_up_again(runner, monkeypatch):
    monkeypatch.setattr(runner, "time", FakeTime())
    cluster = LinkDownCluster(runner, rises_after=3)
    report = runner.failover_test()
    assert report["result"] is True, report["comment"]
    assert cluster.polls_after_apply >= 3
    assert report["restored after"] == "1.0 s (apply + budget 8.2 s)"


@pytest.mark.parametrize("broken, reasons", [
    (lambda runner: FailoverCluster(runner, takeover=None),
     ["VIP VI_1 not on another balancer within 4.2 s"]),
    (lambda runner: LinkDownCluster(runner, rises_after=None),
     ["cluster not restored within 8.2 s of the apply", "nginx1 not UP on svr1 (it was before the test)"]),
], ids=["no balancer takes the vip over", "a server stays down after the restore budget"])
def test_failover_test_fails_and_says_why(runner, monkeypatch, broken, reasons):
    monkeypatch.setattr(runner, "time", FakeTime())
    broken(runner)
    report = runner.failover_test()
    assert report["result"] is False
    assert [reason for reason in reasons if reason not in report["comment"]] == []
    assert runner.__context__["retcode"] == 1

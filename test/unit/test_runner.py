"""
Unit tests of the havip runner (``_runners/havip.py``) with every salt call
faked (the minions answer through a fake of its LocalClient wrapper): the
cluster's verdicts, the failover test's control flow, the rolling deploy
(the order of the steps, the stop at the first failing one, what it
reports) and the handovers of ``havip.standby``/``havip.resume``.
"""

import copy
import threading

import havip_facts
import pytest

VIP = "192.168.100.10"
NODES = ("nginx1", "nginx2", "svr1", "svr2")
BALANCERS = ("svr1", "svr2")
URL = "http://192.168.100.10:9090/"


@pytest.fixture
def runner(surface):
    module = surface("runner")
    module.__opts__ = {"conf_file": "/dev/null"}
    module.__context__ = {}

    def no_salt():
        raise AssertionError("unexpected salt client")
    module._connect = no_salt
    return module


class Cluster:
    """Canned answers of the minions to havip.status / havip.check, and a
    record of every call the runner makes."""

    def __init__(self, runner, config):
        self.deployed = config
        self.holders = {"VI_1": ["svr1"]}
        self.states = {}                # balancer -> VRRP state of VI_1
        self.reasons = {}               # node -> reasons it is unhealthy
        self.standby = set()
        self.silent = set()
        self.down = {}                  # balancer -> backend servers its HAProxy has DOWN
        self.calls = []
        self.config_calls = []
        self.closed = 0
        runner._connect = lambda: self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed += 1

    def config(self, tgt):
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
    assert "retcode" not in runner.__context__
    assert cluster.config_calls == ["*"]
    assert sorted(cluster.funs()) == ["havip.check", "havip.status"]
    assert all(minions == list(NODES) for minions, _, _, _ in cluster.calls)


def test_a_run_asks_through_one_local_client_and_closes_it(surface, cluster, monkeypatch):
    runner = surface("runner")
    runner.__opts__ = {"conf_file": "/etc/salt/master"}
    runner.__context__ = {}
    clients = []

    class LocalClient:
        def __init__(self, conf_file):
            self.conf_file, self.closed = conf_file, False
            clients.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.closed = True

        def cmd(self, tgt, fun, arg=(), kwarg=None, tgt_type="glob", timeout=None):
            if fun == "havip.config":
                return {"svr1": cluster.config(tgt)}
            return {name: cluster.answer(name, fun, arg, kwarg) for name in tgt}
    monkeypatch.setattr(runner.salt.client, "get_local_client", LocalClient)
    assert runner.status()["result"] is True
    assert [(client.conf_file, client.closed) for client in clients] == [("/etc/salt/master", True)]


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
    def nothing(tgt):
        raise ValueError(f"no minion matching {tgt!r} has havip deployed (run state.apply havip)")
    monkeypatch.setattr(cluster, "config", nothing)
    report = runner.status(tgt="lb*")
    assert report == {"result": False,
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
    assert report["comment"] == (
        "unknown failure 'bogus' (known: kill_haproxy, stop_haproxy, kill_keepalived, link_down)")
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
    assert set(cluster.funs()) == {"havip.status", "havip.check"}
    assert "havip.inject" not in cluster.funs()


class FailoverCluster(Cluster):
    """svr1 holds the VIP until havip.inject breaks it; svr2 then takes it
    over (after `takeover` s, or never), and state.apply on svr1 restores it."""

    AT = 1_700_000_100.0

    def __init__(self, runner, config, takeover=3.0):
        super().__init__(runner, config)
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


def test_failover_test_reports_the_move_and_the_restore(runner, monkeypatch, facts, fake_time):
    monkeypatch.setattr(runner, "time", fake_time())
    cluster = FailoverCluster(runner, facts())
    report = runner.failover_test()
    assert report["result"] is True, report["comment"]
    assert report["comment"] == "failover test passed: kill_haproxy on svr1"
    assert (report["holder"], report["new_holder"], report["vip_moved_after"], report["move_budget"]) == (
        "svr1", "svr2", 3.0, 4.2)
    assert report["client_visible_outage"] == 2.5
    assert (report["failed_requests"], report["requests"]) == (30, 1200)
    assert report["holders_before"] == report["holders_after"] == {"VI_1": ["svr1"]}
    assert "retcode" not in runner.__context__
    injects = [call for call in cluster.calls if call[1] == "havip.inject"]
    assert injects == [(["svr1"], "havip.inject", ["kill_haproxy"], {"duration": pytest.approx(9.2)})]
    probe = next(call for call in cluster.calls if call[1] == "havip.probe")
    assert probe[0] == ["nginx1"]
    assert probe[3] == {"url": "http://192.168.100.10:9090/", "seconds": pytest.approx(8.2), "rate": 100}
    assert (["svr1"], "state.apply", ["havip"], None) in cluster.calls


def test_failover_test_stops_when_the_failure_cannot_be_injected(runner, monkeypatch, facts, fake_time):
    class Refusing(FailoverCluster):
        def answer(self, name, fun, arg, kwarg):
            if fun == "havip.inject":
                return "ERROR executing 'havip.inject': havip.inject: HAProxy is not running here"
            return super().answer(name, fun, arg, kwarg)
    monkeypatch.setattr(runner, "time", fake_time())
    cluster = Refusing(runner, facts())
    report = runner.failover_test()
    assert report["result"] is False
    assert report["comment"] == "havip.inject kill_haproxy on svr1 failed"
    assert "state.apply" not in cluster.funs()
    assert runner.__context__["retcode"] == 1


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
    monkeypatch.setattr(runner, "time", fake_time())
    cluster = LinkDownCluster(runner, facts(), rises_after=3)
    report = runner.failover_test()
    assert report["result"] is True, report["comment"]
    assert cluster.polls_after_apply >= 3
    assert (report["restored_after"], report["restore_budget"]) == (1.0, 8.2)


@pytest.mark.parametrize("broken, reasons", [
    (lambda runner, facts: FailoverCluster(runner, facts(), takeover=None),
     ["VIP VI_1 not on another balancer within 4.2 s"]),
    (lambda runner, facts: LinkDownCluster(runner, facts(), rises_after=None),
     ["cluster not restored within 8.2 s of the apply", "nginx1 not UP on svr1 (it was before the test)"]),
], ids=["no balancer takes the vip over", "a server stays down after the restore budget"])
def test_failover_test_fails_and_says_why(runner, monkeypatch, broken, reasons, facts, fake_time):
    monkeypatch.setattr(runner, "time", fake_time())
    broken(runner, facts)
    report = runner.failover_test()
    assert report["result"] is False
    assert [reason for reason in reasons if reason not in report["comment"]] == []
    assert runner.__context__["retcode"] == 1


# ---- deploy -----------------------------------------------------------------------


def probe_report(url, failed=0):
    return {"url": url, "started": 1_700_000_000.0, "seconds": 42.0, "total": 4200, "failed": failed,
            "first_failure": 20.0 if failed else None, "last_failure": 20.0 if failed else None,
            "longest_outage": 0.01 if failed else 0.0, "recovered": True, "backends": {}}


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
    error instead."""

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
        self.rollout = []                 # (minions, fun, arg) of every other call through answers
        self.cut = {}                     # giver -> connections its havip.release cuts

    def answers(self, minions, fun, arg=(), kwarg=None, timeout=10):
        minions = list(minions)
        if fun not in ("havip.probe", "file.touch"):
            self.rollout.append((minions, fun, list(arg)))
        return {name: self.answer(name, fun, arg, kwarg) for name in minions if name not in self.silent}

    def answer(self, name, fun, arg, kwarg):
        if (fun, name) in self.errors:
            return self.errors[(fun, name)]
        if fun == "havip.probe":
            return self.probe(name, kwarg)
        if fun == "file.touch":
            self.touched.append(arg[0])
            self.stops.setdefault(arg[0], threading.Event()).set()
            return True
        if fun in ("havip.drain", "havip.ready"):
            return {"server": arg[0], "state": fun.split(".")[1], "seconds": 0.1}
        if fun == "havip.linger":
            return {"lingering": arg[0], "relay_to": {vip: self.address(name) for vip in arg[0]}}
        if fun == "havip.relay":
            return {"relay": arg[0]}
        if fun == "havip.release":
            return {"released": ["VI_1"], "seconds": 1.0, "cut": self.cut.get(name, 0)}
        if fun == "havip.unrelay":
            return {"relay": {}}
        if fun == "havip.standby":
            return self.standby_answer(name)
        if fun == "havip.resume":
            return self.resume_answer(name)
        if fun == "state.apply":
            return self.apply(name)
        return super().answer(name, fun, arg, kwarg)

    def address(self, name):
        return self.deployed["nodes"][name]["address"]

    def probe(self, name, kwarg):
        self.probes.append((name, kwarg))
        if not self.probe_runs_out:
            assert self.stops.setdefault(kwarg["stop_file"], threading.Event()).wait(5), "probe never stopped"
        return probe_report(kwarg["url"], self.probe_failed)

    def standby_answer(self, name):
        moved = [vip for vip, names in self.holders.items() if name in names]
        for vip in moved:
            self.holders[vip] = [next(b for b in self.deployed["vips"][vip]["order"] if b != name)]
        self.standby.add(name)
        return {"standby": True, "changed": True, "moved": moved, "seconds": 0.2}

    def resume_answer(self, name):
        self.standby.discard(name)
        preferred = [vip for vip, entry in self.deployed["vips"].items() if entry["order"][0] == name]
        for vip in preferred if self.resume_brings_back else []:
            self.holders[vip] = [name]
        return {"standby": False, "changed": True, "moved": preferred, "seconds": 0.2}

    def apply(self, name):
        if name in self.failed_applies:
            return PAGE_FILE_FAILED
        self.reasons[name] = self.broken_by_apply.get(name, [])
        return {"file_|-havip-facts-file_|-/etc/havip/havip.json_|-serialize": {
            "__id__": "havip-facts-file", "result": True, "comment": "updated", "__run_num__": 0}}


@pytest.fixture
def deploying(runner, monkeypatch, facts, fake_time):
    """The minions of a DeployCluster, the runner on a fake clock."""
    monkeypatch.setattr(runner, "time", fake_time())
    return DeployCluster(runner, facts())


def steps_of(name, balancers=("svr1", "svr2")):
    """The calls that roll out a backend."""
    return [(list(balancers), "havip.drain", [name]), ([name], "state.apply", ["havip"]),
            ([name], "havip.check", []), (list(balancers), "havip.ready", [name])]


def steps_of_idle(balancer):
    return [([balancer], "state.apply", ["havip"]), ([balancer], "havip.check", [])]


ADDRESS = {"svr1": "192.168.100.13", "svr2": "192.168.100.14"}


def handover(fun, mover, giver, takers, vips=("VI_1",)):
    """The calls of ``fun`` on ``mover`` as a handover of ``vips`` from
    ``giver`` (havip.linger, havip.release) with ``takers`` relaying."""
    return [([giver], "havip.linger", [list(vips)]),
            (list(takers), "havip.relay", [{vip: ADDRESS[giver] for vip in vips}]),
            ([mover], fun, []), ([giver], "havip.release", [30]), (list(takers), "havip.unrelay", [])]


def steps_of_holder(balancer, peer="svr2", vips=("VI_1",), others=None):
    """A holder's steps; ``others``: the balancers other than it (default: its peer)."""
    others = others or [peer]
    return (handover("havip.standby", balancer, balancer, others, vips)
            + [([balancer], "state.apply", ["havip"]), ([balancer], "havip.check", [])]
            + handover("havip.resume", balancer, peer, [b for b in [*others, balancer] if b != peer], vips))


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
    assert report["steps"][-4].endswith(" s (svr1 served its connections on VI_1 1.0 s more)")
    assert report["steps"][-1].endswith(" s (svr2 served its connections on VI_1 1.0 s more)")
    assert report["order"] == ["nginx1", "nginx2", "svr2", "svr1"]
    assert report["holders_before"] == report["holders_after"] == {"VI_1": ["svr1"]}
    assert (report["failed_requests"], report["requests"]) == (0, 4200)
    assert report["probe"] == {"urls": [URL], "client": "client", "rate": 100}
    assert "retcode" not in runner.__context__


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
    monkeypatch.setattr(runner, "time", fake_time())
    cluster = DeployCluster(runner, facts(two_vips_one_per_balancer))
    cluster.holders = {"VI_1": ["svr1"], "VI_2": ["svr2"]}
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    assert cluster.rollout == (steps_of("nginx1") + steps_of("nginx2") + steps_of_holder("svr1", "svr2", ["VI_1"])
                               + steps_of_holder("svr2", "svr1", ["VI_2"]))
    assert report["holders_after"] == {"VI_1": ["svr1"], "VI_2": ["svr2"]}
    # one probe per VIP
    assert sorted(kwarg["url"] for _, kwarg in cluster.probes) == [URL, "http://192.168.100.20:9090/"]
    assert (report["failed_requests"], report["requests"]) == (0, 8400)


def test_deploy_drains_a_node_that_is_backend_and_balancer_but_applies_it_with_the_balancers(
        runner, monkeypatch, facts, fake_time):
    def nginx1_balances_too(config):
        config["nodes"]["nginx1"].update(roles=["backend", "balancer"], priority=90)
    monkeypatch.setattr(runner, "time", fake_time())
    cluster = DeployCluster(runner, facts(nginx1_balances_too))
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    everyone = ("nginx1", "svr1", "svr2")
    assert cluster.rollout == (steps_of("nginx2", everyone) + steps_of("nginx1", everyone)
                               + steps_of_idle("svr2") + steps_of_holder("svr1", others=["nginx1", "svr2"]))


def test_deploy_stops_at_a_failed_backend_apply_leaving_it_drained_and_the_rest_untouched(runner, deploying):
    deploying.failed_applies.add("nginx1")
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert runner.__context__["retcode"] == 1
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
                if isinstance(thread, runner._Probe):
                    thread.join(5)
            super().sleep(seconds)
    monkeypatch.setattr(runner, "time", ProbesEndFirst())
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
    probe = runner._Probe(deploying, "client", URL, 100)
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


@pytest.mark.parametrize("max_failed, problem", [
    (0, f"1 of 500 requests to {URL} failed (longest outage 0.01 s)"), (1, None)])
def test_a_probe_fails_the_deploy_only_above_max_failed_requests(runner, max_failed, problem):
    probe = runner._Probe(None, "client", URL, 100, max_failed)
    probe.answer = {"failed": 1, "total": 500, "longest_outage": 0.01, "seconds": 5.0}
    assert probe._problem(ended_early=False) == problem


# ---- the runner: havip.standby / havip.resume -----------------------------------


def test_runner_standby_hands_the_holders_vips_over_to_the_other_balancers(runner, deploying):
    report = runner.standby("svr1")
    assert report["result"] is True, report["comment"]
    assert report["comment"] == "standby svr1 done: no connection lost in the move"
    assert report["handover"] == ["svr1 served its connections on VI_1 1.0 s more"]
    assert deploying.rollout == handover("havip.standby", "svr1", "svr1", ["svr2"])
    assert deploying.holders == {"VI_1": ["svr2"]}


def test_runner_resume_takes_the_vips_back_from_their_holder_as_a_handover(runner, deploying):
    runner.standby("svr1")
    deploying.rollout.clear()
    report = runner.resume("svr1")
    assert report["result"] is True, report["comment"]
    assert deploying.rollout == handover("havip.resume", "svr1", "svr2", ["svr1"])
    assert report["handover"] == ["svr2 served its connections on VI_1 1.0 s more"]
    assert deploying.holders == {"VI_1": ["svr1"]}


def test_runner_standby_of_a_balancer_holding_nothing_is_a_plain_standby(runner, deploying):
    report = runner.standby("svr2")
    assert report["result"] is True
    assert report["comment"] == "standby svr2 done: no VIP had to move"
    assert deploying.rollout == [(["svr2"], "havip.standby", [])]


def test_runner_resume_without_preemption_moves_nothing_and_hands_nothing_over(
        runner, monkeypatch, facts, fake_time):
    def no_preempt(config):
        config["keepalived"]["preempt"] = False
    monkeypatch.setattr(runner, "time", fake_time())
    cluster = DeployCluster(runner, facts(no_preempt))
    cluster.holders = {"VI_1": ["svr2"]}
    cluster.standby.add("svr1")
    assert runner.resume("svr1")["result"] is True
    assert cluster.rollout == [(["svr1"], "havip.resume", [])]


def test_a_refused_linger_stops_the_handover_before_anything_moves(runner, deploying):
    deploying.errors[("havip.linger", "svr1")] = (
        "ERROR executing 'havip.linger': havip.linger: refused, net.ipv4.conf.all.arp_ignore = 0")
    report = runner.standby("svr1")
    assert report["result"] is False and runner.__context__["retcode"] == 1
    assert report["comment"] == ("standby svr1 FAILED: havip.linger: svr1: ERROR executing 'havip.linger':"
                                 " havip.linger: refused, net.ipv4.conf.all.arp_ignore = 0")
    assert deploying.rollout == [(["svr1"], "havip.linger", [["VI_1"]])]
    assert deploying.holders == {"VI_1": ["svr1"]}


def test_a_failed_move_still_releases_the_vips_and_ends_the_relays(runner, deploying):
    deploying.errors[("havip.standby", "svr1")] = (
        "ERROR executing 'havip.standby': havip.standby: no balancer took over VI_1 within 2.2 s;"
        " standby undone, this balancer is in service again")
    report = runner.standby("svr1")
    assert report["result"] is False
    assert report["comment"].startswith("standby svr1 FAILED: svr1: ERROR executing 'havip.standby'")
    assert deploying.rollout == handover("havip.standby", "svr1", "svr1", ["svr2"])


def test_a_relay_that_fails_on_a_peer_ends_it_everywhere_and_moves_nothing(runner, deploying):
    deploying.errors[("havip.relay", "svr2")] = "ERROR executing 'havip.relay': havip: nft refused the relay table"
    report = runner.standby("svr1")
    assert "havip.relay: svr2: ERROR executing 'havip.relay'" in report["comment"]
    assert [fun for _, fun, _ in deploying.rollout] == ["havip.linger", "havip.relay", "havip.release",
                                                      "havip.unrelay"]
    assert deploying.holders == {"VI_1": ["svr1"]}


def test_connections_cut_after_the_linger_timeout_are_reported(runner, deploying):
    deploying.cut["svr1"] = 2
    report = runner.standby("svr1")
    assert report["result"] is True
    assert report["handover"] == ["svr1 served its connections on VI_1 1.0 s more, then cut 2"]


def test_runner_standby_refuses_a_node_that_is_no_balancer(runner, deploying):
    report = runner.standby("nginx1")
    assert report["result"] is False
    assert report["comment"] == "'nginx1' is not a balancer (balancers: svr1, svr2)"
    assert deploying.rollout == []

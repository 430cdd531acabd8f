"""
Fast tier: the rolling deploy - the module's ``havip.drain``/``havip.ready``
on a fake HAProxy runtime API, its probe's stop file, and the runner's
``havip.deploy`` with every salt call faked: the order of the steps, the
stop at the first failing one, and what it reports.
"""

import threading

import pytest
from salt.exceptions import CommandExecutionError

# Fixtures and fakes of the module's and the runner's own tests.
from test.saltcall import DEBIAN_GRAINS
from test.test_module_unit import backend, dead_pid, deploy, havip, lb  # noqa: F401
from test.test_runner_unit import Cluster, FakeTime, facts, runner, two_vips_one_per_balancer  # noqa: F401

SOCKET = "/run/haproxy/admin.sock"
DRAIN = "set server havip_backends/nginx1 state drain"
READY = "set server havip_backends/nginx1 state ready"
URL = "http://192.168.100.10:9090/"


def stat_csv(**servers):
    """`show stat` CSV with the havip backend servers as name=(status, scur)."""
    rows = [f"havip_backends,{name},{scur},{status}" for name, (status, scur) in servers.items()]
    return "\n".join(["# pxname,svname,scur,status", "havip_backends,FRONTEND,0,OPEN", *rows,
                      "havip_backends,BACKEND,0,UP", "stats,FRONTEND,0,OPEN"]) + "\n"


class RuntimeApi:
    """HAProxy's runtime API: `show stat` answers the next of ``stats`` (the
    last one repeats), `set server` answers ``answer`` (empty: done); with
    ``error`` every command raises it."""

    def __init__(self, *stats, answer="\n", error=None):
        self.stats = list(stats)
        self.answer = answer
        self.error = error
        self.calls = []

    def __call__(self, path, command, timeout=2.0):
        self.calls.append((path, command))
        if self.error:
            raise self.error
        if command == "show stat":
            return self.stats.pop(0) if len(self.stats) > 1 else self.stats[0]
        return self.answer

    def commands(self):
        assert {path for path, _ in self.calls} <= {SOCKET}
        return [command for _, command in self.calls]


@pytest.fixture
def api(havip):
    """Factory: installs a RuntimeApi as the module's runtime API (after the
    Rig has put its own)."""
    def install(*stats, **kwargs):
        fake = RuntimeApi(*stats, **kwargs)
        havip._runtime_api = fake
        return fake
    return install


# ---- havip.drain / havip.ready --------------------------------------------------


def test_drain_sets_the_server_to_drain_and_returns_once_its_sessions_ended(havip, lb, api):
    fake = api(stat_csv(nginx1=("UP", 3), nginx2=("UP", 1)),
               stat_csv(nginx1=("DRAIN", 2), nginx2=("UP", 2)),
               stat_csv(nginx1=("DRAIN", 0), nginx2=("UP", 3)))
    result = havip.drain("nginx1")
    assert fake.commands() == ["show stat", DRAIN, "show stat", "show stat"]
    assert result["server"] == "nginx1" and result["state"] == "drain"
    assert 0.1 <= result["seconds"] < 2  # one poll while 2 sessions were left


def test_drain_refuses_when_no_other_server_is_up_and_changes_nothing(havip, lb, api):
    fake = api(stat_csv(nginx1=("UP", 5), nginx2=("DOWN", 0)))
    refused = (r"^havip.drain: refused, no other backend server is UP here \(nginx2 DOWN\);"
               r" draining nginx1 would leave none to answer$")
    with pytest.raises(CommandExecutionError, match=refused):
        havip.drain("nginx1")
    assert fake.commands() == ["show stat"]


def test_drain_raises_when_sessions_outlast_the_timeout_and_the_server_stays_drained(havip, lb, api):
    fake = api(stat_csv(nginx1=("DRAIN", 2), nginx2=("UP", 0)))
    with pytest.raises(CommandExecutionError, match=r"nginx1 still has 2 sessions after 0.3 s;"
                                                    r" it stays drained \(havip.ready nginx1 puts it back\)"):
        havip.drain("nginx1", timeout=0.3)
    assert fake.commands().count(DRAIN) == 1
    assert READY not in fake.commands()


def test_drain_names_haproxys_answer_when_it_refuses_the_command(havip, lb, api):
    api(stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)), answer="Permission denied.\n")
    with pytest.raises(CommandExecutionError, match=rf"HAProxy refused `{DRAIN}`: Permission denied.$"):
        havip.drain("nginx1")


@pytest.mark.parametrize("function", ["drain", "ready"])
def test_drain_and_ready_raise_when_the_runtime_api_does_not_answer(havip, lb, api, function):
    api(error=ConnectionRefusedError("[Errno 111] Connection refused"))
    with pytest.raises(CommandExecutionError, match=r"HAProxy's runtime API \(/run/haproxy/admin.sock\)"
                                                    r" did not answer: \[Errno 111\] Connection refused"):
        getattr(havip, function)("nginx1")


@pytest.mark.parametrize("function", ["drain", "ready"])
def test_drain_and_ready_refuse_an_unknown_server_without_asking_haproxy(havip, lb, api, function):
    fake = api(stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)))
    with pytest.raises(CommandExecutionError, match=rf"^havip.{function}: unknown backend server 'nginx9'"
                                                    r" \(known: nginx1, nginx2\)$"):
        getattr(havip, function)("nginx9")
    assert fake.calls == []


@pytest.mark.parametrize("function", ["drain", "ready"])
def test_drain_and_ready_refuse_on_a_backend(havip, backend, function):
    with pytest.raises(CommandExecutionError, match="nginx1 is not a balancer"):
        getattr(havip, function)("nginx2")


@pytest.mark.parametrize("function", ["drain", "ready"])
@pytest.mark.parametrize("timeout", [0, -1, 3601, "30", True])
def test_drain_and_ready_reject_a_bad_timeout(havip, lb, api, function, timeout):
    fake = api(stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)))
    with pytest.raises(CommandExecutionError, match=rf"havip.{function}: timeout must be above 0 and at most"):
        getattr(havip, function)("nginx1", timeout=timeout)
    assert fake.calls == []


def test_drain_without_a_stats_socket_line_names_the_pillar_key(havip, deploy):
    def no_socket(config):
        config["haproxy"]["global"] = ["daemon"]
    deploy("svr1", no_socket)
    with pytest.raises(CommandExecutionError, match="no `stats socket` line in havip:haproxy:global"):
        havip.drain("nginx1")


def test_ready_sets_the_server_ready_and_returns_once_haproxy_sees_it_up(havip, lb, api):
    fake = api(stat_csv(nginx1=("DOWN 1/2", 0), nginx2=("UP", 0)),
               stat_csv(nginx1=("UP", 0), nginx2=("UP", 0)))
    result = havip.ready("nginx1")
    assert fake.commands() == [READY, "show stat", "show stat"]
    assert result["server"] == "nginx1" and result["state"] == "ready"


def test_ready_raises_naming_the_status_when_the_server_does_not_come_up(havip, lb, api):
    api(stat_csv(nginx1=("DOWN", 0), nginx2=("UP", 0)))
    with pytest.raises(CommandExecutionError, match=r"^havip.ready: nginx1 is in rotation again but not UP"
                                                    r" after 0.3 s \(DOWN\): its health checks fail$"):
        havip.ready("nginx1", timeout=0.3)


def test_probe_ends_early_once_its_stop_file_exists(havip, tmp_path, monkeypatch):
    stop_file = tmp_path / "stop"

    def fetch(url, timeout):
        fetch.calls += 1
        if fetch.calls == 3:
            stop_file.touch()
        return "nginx1"
    fetch.calls = 0
    monkeypatch.setattr(havip, "_fetch_body", fetch)
    report = havip.probe(url="http://vip/", seconds=60, rate=50, stop_file=str(stop_file))
    assert 3 <= report["total"] <= 10 and report["failed"] == 0
    assert report["seconds"] < 5


# ---- the runner: havip.deploy ---------------------------------------------------


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

    def __init__(self, runner, config=None):
        super().__init__(runner, config)
        runner._answers = self.answers
        self.errors = {}
        self.failed_applies = set()       # their state.apply fails the page file
        self.broken_by_apply = {}         # node -> reasons its check gives after its apply
        self.resume_brings_back = True
        self.probe_failed = 0
        self.probe_runs_out = False       # the probe ends by itself at once
        self.stops = {}                   # stop file -> threading.Event
        self.probes = []                  # (client, kwarg) of every havip.probe call
        self.touched = []
        self.rollout = []                 # (minions, fun, arg) of every other call through _answers
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
        return self.config["nodes"][name]["address"]

    def probe(self, name, kwarg):
        self.probes.append((name, kwarg))
        if not self.probe_runs_out:
            assert self.stops.setdefault(kwarg["stop_file"], threading.Event()).wait(5), "probe never stopped"
        return probe_report(kwarg["url"], self.probe_failed)

    def standby_answer(self, name):
        moved = [vip for vip, names in self.holders.items() if name in names]
        for vip in moved:
            self.holders[vip] = [next(b for b in self.config["vips"][vip]["order"] if b != name)]
        self.standby.add(name)
        return {"standby": True, "changed": True, "moved": moved, "seconds": 0.2}

    def resume_answer(self, name):
        self.standby.discard(name)
        preferred = [vip for vip, entry in self.config["vips"].items() if entry["order"][0] == name]
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
def cluster(runner, monkeypatch):
    monkeypatch.setattr(runner, "time", FakeTime())
    return DeployCluster(runner)


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


def test_deploy_rolls_backends_then_the_idle_balancer_then_the_holder_each_out_of_service(runner, cluster):
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    assert report["comment"] == "rolling deploy done: nginx1, nginx2, svr2, svr1; no request failed"
    assert cluster.rollout == (steps_of("nginx1") + steps_of("nginx2") + steps_of_idle("svr2")
                               + steps_of_holder("svr1"))
    assert labels(report) == [
        "drain nginx1 on svr1, svr2", "apply nginx1", "check nginx1", "ready nginx1 on svr1, svr2",
        "drain nginx2 on svr1, svr2", "apply nginx2", "check nginx2", "ready nginx2 on svr1, svr2",
        "apply svr2", "check svr2",
        "standby svr1", "apply svr1", "check svr1", "resume svr1"]
    assert report["steps"][-4].endswith(" s (svr1 served its connections on VI_1 1.0 s more)")
    assert report["steps"][-1].endswith(" s (svr2 served its connections on VI_1 1.0 s more)")
    assert report["order"] == "nginx1, nginx2, svr2, svr1"
    assert report["holders before"] == report["holders after"] == "VI_1: svr1"
    assert report["failed requests"] == "0 of 4200"
    assert report["probe"] == f"{URL} from client, 100 requests/s each"
    assert "retcode" not in runner.__context__


def test_deploy_probes_from_the_client_for_the_whole_rollout_and_stops_the_probe_after(runner, cluster):
    runner.deploy(client="client")
    ((client, kwarg),) = cluster.probes
    assert client == "client"
    assert kwarg["url"] == URL and kwarg["rate"] == 100 and kwarg["seconds"] == runner.PROBE_LIMIT
    assert cluster.touched == [kwarg["stop_file"]]
    assert kwarg["stop_file"].startswith("/tmp/havip-deploy-")


def test_deploy_passes_the_drain_and_ready_timeout_to_the_balancers(runner, cluster, monkeypatch):
    calls = []
    answers = cluster.answers
    monkeypatch.setattr(runner, "_answers", lambda minions, fun, arg=(), kwarg=None, timeout=10:
                        calls.append((fun, kwarg, timeout)) or answers(minions, fun, arg, kwarg, timeout))
    runner.deploy(client="client")
    server_calls = {(fun, kwarg["timeout"], timeout) for fun, kwarg, timeout in calls
                    if fun in ("havip.drain", "havip.ready")}
    assert server_calls == {("havip.drain", 30, 40), ("havip.ready", 30, 40)}


def test_deploy_moves_each_holders_vips_away_before_applying_it(runner, monkeypatch):
    monkeypatch.setattr(runner, "time", FakeTime())
    cluster = DeployCluster(runner, facts(two_vips_one_per_balancer))
    cluster.holders = {"VI_1": ["svr1"], "VI_2": ["svr2"]}
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    assert cluster.rollout == (steps_of("nginx1") + steps_of("nginx2") + steps_of_holder("svr1", "svr2", ["VI_1"])
                               + steps_of_holder("svr2", "svr1", ["VI_2"]))
    assert report["holders after"] == "VI_1: svr1, VI_2: svr2"
    # one probe per VIP
    assert sorted(kwarg["url"] for _, kwarg in cluster.probes) == [URL, "http://192.168.100.20:9090/"]
    assert report["failed requests"] == "0 of 8400"


def test_deploy_drains_a_node_that_is_backend_and_balancer_but_applies_it_with_the_balancers(runner, monkeypatch):
    def nginx1_balances_too(config):
        config["nodes"]["nginx1"]["roles"] = ["backend", "balancer"]
    monkeypatch.setattr(runner, "time", FakeTime())
    cluster = DeployCluster(runner, facts(nginx1_balances_too))
    report = runner.deploy(client="client")
    assert report["result"] is True, report["comment"]
    everyone = ("nginx1", "svr1", "svr2")
    assert cluster.rollout == (steps_of("nginx2", everyone) + steps_of("nginx1", everyone)
                               + steps_of_idle("svr2") + steps_of_holder("svr1", others=["nginx1", "svr2"]))


def test_deploy_stops_at_a_failed_backend_apply_leaving_it_drained_and_the_rest_untouched(runner, cluster):
    cluster.failed_applies.add("nginx1")
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert runner.__context__["retcode"] == 1
    assert report["comment"] == (
        "rolling deploy FAILED: step 'apply nginx1' failed: nginx1: havip-nginx-page-file failed"
        " (Unable to manage file: [Errno 30] Read-only file system); stopped there;"
        " nginx1 stays drained on svr1, svr2 (havip.ready nginx1 there puts it back);"
        " untouched: nginx2, svr2, svr1")
    assert cluster.rollout == steps_of("nginx1")[:2]
    assert labels(report) == ["drain nginx1 on svr1, svr2", "apply nginx1"]
    assert report["steps"][-1].endswith(" FAILED")
    assert report["failed requests"] == "0 of 4200"
    assert cluster.touched  # the probe was stopped all the same


def test_deploy_stops_at_a_failed_check_of_a_holder_leaving_it_on_standby(runner, cluster):
    cluster.broken_by_apply["svr1"] = ["HAProxy is not running"]
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert report["comment"] == (
        "rolling deploy FAILED: step 'check svr1' failed: svr1: unhealthy: HAProxy is not running;"
        " stopped there; svr1 stays on standby (havip.resume on svr1 ends it)")
    assert cluster.rollout[-1] == (["svr1"], "havip.check", [])
    assert "havip.resume" not in [fun for _, fun, _ in cluster.rollout]


def test_deploy_stopped_by_a_refused_drain_says_where_the_backend_is_drained(runner, cluster):
    cluster.errors[("havip.drain", "svr2")] = (
        "ERROR executing 'havip.drain': havip.drain: refused, no other backend server is UP here"
        " (nginx2 DOWN); draining nginx1 would leave none to answer")
    report = runner.deploy(client="client")
    assert report["comment"] == (
        "rolling deploy FAILED: step 'drain nginx1 on svr1, svr2' failed: svr2: ERROR executing"
        " 'havip.drain': havip.drain: refused, no other backend server is UP here (nginx2 DOWN);"
        " draining nginx1 would leave none to answer; stopped there;"
        " nginx1 stays drained on svr1 (havip.ready nginx1 there puts it back);"
        " untouched: nginx2, svr2, svr1")
    assert cluster.rollout == steps_of("nginx1")[:1]


def test_deploy_stopped_by_a_failed_ready_does_not_call_the_backend_drained(runner, cluster):
    cluster.errors[("havip.ready", "svr2")] = (
        "ERROR executing 'havip.ready': havip.ready: nginx1 is in rotation again but not UP after 30.0 s"
        " (DOWN): its health checks fail")
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert "step 'ready nginx1 on svr1, svr2' failed: svr2: ERROR executing 'havip.ready'" in report["comment"]
    assert "stays drained" not in report["comment"]
    assert report["comment"].endswith("stopped there; untouched: nginx2, svr2, svr1")


def test_deploy_fails_when_the_probe_saw_a_failed_request_though_every_step_passed(runner, cluster):
    cluster.probe_failed = 1
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert runner.__context__["retcode"] == 1
    assert report["comment"] == (
        f"rolling deploy FAILED: 1 of 4200 requests to {URL} failed (longest outage 0.01 s)")
    assert len(report["steps"]) == 14
    assert report["failed requests"] == "1 of 4200"


def test_deploy_fails_when_the_cluster_is_not_healthy_after_the_last_step(runner, cluster):
    cluster.resume_brings_back = False
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert report["comment"] == ("rolling deploy FAILED: final check failed: VIP VI_1 (192.168.100.10)"
                                 " is held by svr2, not by the preferred svr1")
    assert report["holders after"] == "VI_1: svr2"


def test_deploy_stops_at_a_failed_pre_check_before_probing_or_touching_anything(runner, cluster):
    cluster.holders["VI_1"] = ["svr1", "svr2"]
    report = runner.deploy(client="client")
    assert report["result"] is False
    assert report["comment"].startswith("rolling deploy FAILED: pre-check failed: split brain")
    assert cluster.rollout == [] and cluster.probes == []


class ProbesEndFirst(FakeTime):
    """FakeTime whose sleep first waits for the probes' threads to end."""

    def __init__(self, runner):
        super().__init__()
        self.runner = runner

    def sleep(self, seconds):
        for thread in threading.enumerate():
            if isinstance(thread, self.runner._Probe):
                thread.join(5)
        super().sleep(seconds)


def test_deploy_touches_nothing_when_the_probe_does_not_start(runner, monkeypatch):
    monkeypatch.setattr(runner, "time", ProbesEndFirst(runner))
    cluster = DeployCluster(runner)
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


def test_a_probe_that_ended_before_the_rollout_is_a_failure(runner, cluster):
    cluster.probe_runs_out = True
    probe = runner._Probe("client", URL, 100)
    probe.start()
    probe.join(5)
    assert probe.stop() == f"the probe of {URL} on client ended after 42 s, before the rollout did"
    assert cluster.touched == []


def test_deploy_on_a_cluster_of_balancers_only_asks_for_the_deploy_client_pillar(runner):
    def all_balancers(config):
        for name in ("nginx1", "nginx2"):
            config["nodes"][name]["roles"] = ["backend", "balancer"]
    cluster = DeployCluster(runner, facts(all_balancers))
    report = runner.deploy()
    assert report["comment"] == "every node is a balancer: name the probing minion (pillar deploy:client)"
    assert cluster.calls == [] and cluster.rollout == []


@pytest.mark.parametrize("answer, line", [
    ("ERROR executing 'havip.standby': havip.standby: refused",
     "ERROR executing 'havip.standby': havip.standby: refused"),
    ("Passed invalid arguments to havip.drain: drain() missing 1 required positional argument\n\n    Usage",
     "Passed invalid arguments to havip.drain: drain() missing 1 required positional argument"),
    ("The minion function caused an exception: Traceback (most recent call last):\n  File \"x\", line 1\n"
     "KeyError: 'scur'\n", "KeyError: 'scur'"),
    (["Rendering SLS 'base:havip' failed: Jinja error: havip pillar: havip:nodes:svr1:priority: bad\n; line 3"],
     "Rendering SLS 'base:havip' failed: Jinja error: havip pillar: havip:nodes:svr1:priority: bad"),
], ids=["message", "invalid-arguments", "traceback", "render-errors"])
def test_a_minions_error_is_reported_by_the_line_that_says_what_went_wrong(runner, answer, line):
    assert runner._error_text(answer) == line


# ---- the orchestrate: havip/deploy.sls ------------------------------------------


def test_the_orchestrate_runs_the_deploy_after_the_status_pre_check_with_the_deploy_pillar(salt_call):
    pillar = {"deploy": {"client": "client1", "rate": 50, "unknown": 1}}
    states = salt_call("master", DEBIAN_GRAINS).show_sls(pillar, sls="havip.deploy")
    assert states["havip-deploy-precheck"] == {"fun": "salt.runner", "name": "havip.status", "order": 10000}
    run = states["havip-deploy-run"]
    assert {key: run[key] for key in ("fun", "name", "client", "rate", "require")} == {
        "fun": "salt.runner", "name": "havip.deploy", "client": "client1", "rate": 50,
        "require": [{"salt": "havip-deploy-precheck"}]}
    assert "unknown" not in run


@pytest.mark.parametrize("max_failed, problem", [
    (0, f"1 of 500 requests to {URL} failed (longest outage 0.01 s)"), (1, None)])
def test_a_probe_fails_the_deploy_only_above_max_failed_requests(runner, max_failed, problem):
    probe = runner._Probe("client", URL, 100, max_failed)
    probe.answer = {"failed": 1, "total": 500, "longest_outage": 0.01, "seconds": 5.0}
    assert probe._problem(ended_early=False) == problem

"""
Fast tier: the rolling deploy - the module's ``havip.drain``/``havip.ready``
on a fake HAProxy runtime API, and its probe's stop file.
"""

import pytest
from salt.exceptions import CommandExecutionError

# Fixtures of the module's own tests.
from test.test_module_unit import backend, dead_pid, deploy, havip, lb  # noqa: F401

SOCKET = "/run/haproxy/admin.sock"
DRAIN = "set server havip_backends/nginx1 state drain"
READY = "set server havip_backends/nginx1 state ready"


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

"""
The havip states (``_states/havip.py``) run by Salt's own state machinery
(``salt.state.State`` over the real loader: the execution module and its
helpers from the formula, the states beside them), on SLS text as an
operator writes it.  Only the execution module's functions that touch the
daemons (``havip.status``, ``drain``, ``ready``, ``standby``, ``resume``)
are stubs, over a fake balancer.
"""

import inspect
import re

import pytest
import salt.config
import salt.state
from salt.exceptions import CommandExecutionError

from test.saltcall import REPO

GRAINS = {"id": "svr1", "kernel": "Linux", "os_family": "Debian", "os": "Debian", "osmajorrelease": 12}
STATES = ("drained", "serving", "standby", "in_service")


class Balancer:
    """What the stubbed module functions see and change: HAProxy's backend
    servers, the standby flag and the VIPs held; every call recorded."""

    def __init__(self):
        self.backends = {"nginx1": "UP", "nginx2": "UP"}
        self.standby = False
        self.calls = []
        self.refusal = None  # a CommandExecutionError's message for the next change

    def status(self):
        self.calls.append(("status",))
        return {"roles": ["balancer"], "standby": self.standby,
                "vips": {"VI_1": {"address": "192.168.100.10", "held": not self.standby}},
                "haproxy": {"running": True, "config_valid": True, "backends": dict(self.backends)}}

    def _change(self, call):
        self.calls.append(call)
        if self.refusal:
            raise CommandExecutionError(self.refusal)

    def drain(self, server, timeout=None):
        self._change(("drain", server, timeout))
        self.backends[server] = "DRAIN"
        return {"server": server, "state": "drain"}

    def ready(self, server, timeout=None):
        self._change(("ready", server, timeout))
        self.backends[server] = "UP"
        return {"server": server, "state": "ready"}

    def standby_(self, timeout=None):
        self._change(("standby", timeout))
        self.standby = True
        return {"standby": True, "changed": True, "moved": ["VI_1"]}

    def resume(self, timeout=None):
        self._change(("resume", timeout))
        self.standby = False
        return {"standby": False, "changed": True, "moved": ["VI_1"]}

    def changes(self):
        return [call for call in self.calls if call[0] != "status"]


def minion_opts(tmp_path, module_dirs):
    opts = salt.config.minion_config(None)
    opts.update({
        "id": GRAINS["id"], "grains": dict(GRAINS), "file_client": "local", "enable_fqdns_grains": False,
        "root_dir": str(tmp_path), "cachedir": str(tmp_path / "cache"), "pki_dir": str(tmp_path / "pki"),
        "file_roots": {"base": [str(tmp_path / "roots")]},
        "module_dirs": module_dirs, "utils_dirs": [str(REPO / "_utils")], "states_dirs": [str(REPO / "_states")],
    })
    return opts


@pytest.fixture
def balancer():
    return Balancer()


@pytest.fixture
def run(tmp_path, balancer):
    """run(SLS text, test=False) -> {state id: its return}, on a fresh State
    (as every `state.apply` gets) whose havip module functions that touch
    daemons are the fake balancer's."""
    def apply(sls, test=False):
        state = salt.state.State({**minion_opts(tmp_path, [str(REPO / "_modules")]), "test": test})
        assert "havip.status" in state.functions  # the real module, loaded
        for name, function in {"status": balancer.status, "drain": balancer.drain, "ready": balancer.ready,
                               "standby": balancer.standby_, "resume": balancer.resume}.items():
            state.functions[f"havip.{name}"] = function
        returns = state.call_template_str(sls)
        return {ret["__id__"]: ret for ret in returns.values()}
    return apply


def test_drained_drains_once_then_reports_no_change_and_serving_puts_it_back(run, balancer):
    first = run("nginx1:\n  havip.drained:\n    - timeout: 60\n")["nginx1"]
    assert first["result"] is True
    assert first["changes"]["status"] == {"old": "UP", "new": "DRAIN"}
    assert first["comment"] == "backend server nginx1 is out of rotation (drained) here"
    again = run("nginx1:\n  havip.drained: []\n")["nginx1"]
    assert (again["result"], again["changes"]) == (True, {})
    assert again["comment"] == "backend server nginx1 is already out of rotation (drained) here (DRAIN)"
    back = run("nginx1:\n  havip.serving: []\n")["nginx1"]
    assert back["result"] is True and back["changes"]["status"] == {"old": "DRAIN", "new": "UP"}
    assert run("nginx1:\n  havip.serving: []\n")["nginx1"]["changes"] == {}
    assert balancer.changes() == [("drain", "nginx1", 60), ("ready", "nginx1", None)]


def test_a_server_in_maintenance_is_already_out_of_rotation(run, balancer):
    balancer.backends["nginx1"] = "MAINT"
    ret = run("nginx1:\n  havip.drained: []\n")["nginx1"]
    assert (ret["result"], ret["changes"]) == (True, {})
    assert balancer.changes() == []


def test_standby_then_in_service_each_once(run, balancer):
    ret = run("maintenance:\n  havip.standby: []\n")["maintenance"]
    assert ret["result"] is True and ret["changes"]["standby"] == {"old": False, "new": True}
    assert ret["changes"]["report"]["moved"] == ["VI_1"]
    assert ret["comment"] == "svr1 is on standby"
    assert run("maintenance:\n  havip.standby: []\n")["maintenance"]["changes"] == {}
    ret = run("back:\n  havip.in_service:\n    - timeout: 20\n")["back"]
    assert ret["changes"]["standby"] == {"old": True, "new": False}
    assert run("back:\n  havip.in_service: []\n")["back"]["comment"] == "svr1 is already in service"
    assert balancer.changes() == [("standby", None), ("resume", 20)]


def test_test_mode_says_what_would_change_and_changes_nothing(run, balancer):
    ret = run("nginx1:\n  havip.drained: []\n", test=True)["nginx1"]
    assert ret["result"] is None
    assert ret["comment"] == "backend server nginx1 would be out of rotation (drained) here (now UP)"
    assert ret["changes"] == {"status": {"old": "UP", "new": "DRAIN"}}
    ret = run("maintenance:\n  havip.standby: []\n", test=True)["maintenance"]
    assert ret["result"] is None
    assert ret["comment"] == "svr1 would be on standby; the VIPs it holds would move: VI_1"
    assert ret["changes"] == {"standby": {"old": False, "new": True}}
    # Already so: no change to announce, test or not.
    ret = run("nginx2:\n  havip.serving: []\n", test=True)["nginx2"]
    assert (ret["result"], ret["changes"]) == (True, {})
    assert balancer.changes() == []
    assert (balancer.backends, balancer.standby) == ({"nginx1": "UP", "nginx2": "UP"}, False)


def test_a_refusal_of_the_module_fails_the_state_with_its_message_and_no_change(run, balancer):
    balancer.refusal = "havip.drain: refused, no other backend server is UP here (nginx2 DOWN)"
    ret = run("nginx1:\n  havip.drained: []\n")["nginx1"]
    assert ret["result"] is False
    assert ret["comment"] == balancer.refusal
    assert ret["changes"] == {}
    balancer.refusal = "havip.standby: refused, no other healthy balancer could take over the VIPs"
    ret = run("maintenance:\n  havip.standby: []\n")["maintenance"]
    assert (ret["result"], ret["comment"], ret["changes"]) == (False, balancer.refusal, {})


def test_a_failure_after_a_change_reports_the_change_it_left(run, balancer):
    """A drain whose sessions outlast the timeout leaves the server drained:
    the failed state says so in its changes."""
    def drain_too_slowly(server, timeout=None):
        balancer.backends[server] = "DRAIN"
        raise CommandExecutionError(f"havip.drain: {server} still has 3 sessions after 30.0 s; it stays drained")
    balancer.drain = drain_too_slowly
    ret = run("nginx1:\n  havip.drained: []\n")["nginx1"]
    assert ret["result"] is False and "still has 3 sessions" in ret["comment"]
    assert ret["changes"] == {"status": {"old": "UP", "new": "DRAIN"}}


def test_an_unknown_server_or_a_node_that_is_no_balancer_fails_naming_why(run, balancer):
    ret = run("nginx9:\n  havip.drained: []\n", test=True)["nginx9"]
    assert (ret["result"], ret["comment"]) == (False, "unknown backend server 'nginx9' (known: nginx1, nginx2)")
    balancer.status = lambda: {"roles": ["backend"], "vips": {}, "nginx": {"running": True}}
    ret = run("maintenance:\n  havip.standby: []\n")["maintenance"]
    assert (ret["result"], ret["comment"]) == (False, "svr1 is not a balancer")
    assert balancer.changes() == []


def test_a_pools_server_is_drained_once_and_served_again_by_pool_slash_server_or_a_bare_name(run, balancer):
    balancer.backends = {"web/nginx1": "UP", "web/app1": "UP", "api/app1": "UP"}
    ret = run("web/app1:\n  havip.drained: []\n", test=True)["web/app1"]
    assert ret["result"] is None
    assert ret["comment"] == "backend server web/app1 would be out of rotation (drained) here (now UP)"
    first = run("web/app1:\n  havip.drained: []\n")["web/app1"]
    assert first["result"] is True and first["changes"]["status"] == {"old": "UP", "new": "DRAIN"}
    assert run("web/app1:\n  havip.drained: []\n", test=True)["web/app1"]["changes"] == {}
    # A bare name that one pool alone holds; app1 is in two pools.
    assert run("nginx1:\n  havip.drained: []\n")["nginx1"]["comment"] == (
        "backend server web/nginx1 is out of rotation (drained) here")
    ambiguous = run("app1:\n  havip.serving: []\n")["app1"]
    assert (ambiguous["result"], ambiguous["comment"]) == (
        False, "server 'app1' is in the pools api and web: name one of them (api/app1 or web/app1)")
    assert run("web/app1:\n  havip.serving: []\n")["web/app1"]["changes"]["status"] == {"old": "DRAIN", "new": "UP"}
    assert balancer.changes() == [("drain", "web/app1", None), ("drain", "web/nginx1", None),
                                  ("ready", "web/app1", None)]


def test_without_the_havip_execution_module_the_states_are_not_loaded_and_say_why(tmp_path):
    state = salt.state.State(minion_opts(tmp_path, []))  # the formula's _modules not synced
    assert "havip.status" not in state.functions and "havip.drained" not in state.states
    assert "the havip execution module is not loaded" in state.states.missing_fun_string("havip.drained")


def yaml_examples(function):
    return re.findall(r"\.\. code-block:: yaml\n\n((?:        .*\n|\n)+)", function.__doc__)


@pytest.mark.parametrize("name", STATES)
def test_every_states_docstring_example_runs_as_written(run, tmp_path, name):
    state = salt.state.State(minion_opts(tmp_path, [str(REPO / "_modules")]))
    function = state.states[f"havip.{name}"]
    (example,) = yaml_examples(function)
    returns = run(inspect.cleandoc("\n" + example), test=True)
    assert [ret["result"] for ret in returns.values()] in ([None], [True]), returns

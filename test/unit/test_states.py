"""
Unit tests of the havip states (``_states/havip.py``) with fake Salt
dunders: what each reads of ``havip.status``, when it calls the execution
module, what it reports.  (test/loader/test_states.py runs them through
Salt's own state machinery.)
"""

import inspect

import pytest
from salt.exceptions import CommandExecutionError

STATES = ["drained", "in_service", "serving", "standby"]
NOT_DEPLOYED = ("havip: nothing is deployed on this minion (/etc/havip/havip.json is missing); run state.apply"
                " havip first")


def balancer_status(backends=None, standby=False, error=None):
    haproxy = {"running": True, "config_valid": True, "backends": backends}
    if error:
        haproxy["error"] = error
    return {"roles": ["balancer"], "standby": standby, "vips": {"VI_1": {"held": not standby}}, "haproxy": haproxy}


@pytest.fixture
def states(surface):
    """The state module on svr1, not in test mode."""
    module = surface("states")
    module.__grains__ = {"id": "svr1"}
    module.__opts__ = {"test": False}
    return module


def give(states, *statuses, **functions):
    """``states``' __salt__: havip.status answers ``statuses`` one after the
    other (the last one from then on); each of ``functions`` (havip.<name>)
    returns its value or raises it.  Returns the list of their calls."""
    answers, calls = list(statuses), []

    def status():
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def record(name, result):
        def function(*args, **kwargs):
            calls.append((name, args, kwargs))
            if isinstance(result, Exception):
                raise result
            return result
        return function

    states.__salt__ = {"havip.status": status}
    states.__salt__.update({f"havip.{name}": record(name, result) for name, result in functions.items()})
    return calls


def test_every_state_is_documented_with_an_sls_example(states):
    public = {name: value for name, value in vars(states).items()
              if inspect.isfunction(value) and not name.startswith("_")}
    assert sorted(public) == STATES
    assert [name for name, function in public.items() if ".. code-block:: yaml" not in function.__doc__] == []


def test_without_the_execution_module_the_states_are_not_loaded_and_say_how_to_sync(states):
    states.__salt__ = {"test.ping": lambda: True}
    available, reason = states.__virtual__()
    assert available is False
    assert reason == ("havip: the havip execution module is not loaded (_modules/havip.py): run"
                      " saltutil.sync_all")
    give(states, balancer_status())
    assert states.__virtual__() == "havip"


@pytest.mark.parametrize("function", STATES)
def test_a_minion_without_havip_deployed_fails_with_the_modules_message(states, function):
    states.__salt__ = {"havip.status": lambda: (_ for _ in ()).throw(CommandExecutionError(NOT_DEPLOYED))}
    ret = getattr(states, function)("nginx1")
    assert ret == {"name": "nginx1", "result": False, "changes": {}, "comment": NOT_DEPLOYED}


def test_drained_fails_when_haproxys_runtime_api_does_not_answer_and_calls_nothing(states):
    calls = give(states, balancer_status(None, error="HAProxy's runtime API (/run/haproxy/admin.sock) did not answer:"
                                                     " refused"), drain={})
    ret = states.drained("nginx1")
    assert ret["result"] is False
    assert ret["comment"] == ("HAProxy's runtime API did not answer: HAProxy's runtime API (/run/haproxy/admin.sock)"
                              " did not answer: refused")
    assert calls == []


def test_a_server_down_may_be_drained_already_and_is_drained_again_with_no_status_change(states):
    """HAProxy shows a drained server whose checks fail as DOWN: drained
    cannot tell, and drains it (again); what it reports is what moved."""
    calls = give(states, balancer_status({"nginx1": "DOWN", "nginx2": "UP"}),
                 drain={"server": "nginx1", "state": "drain"})
    ret = states.drained("nginx1", timeout=5)
    assert ret["result"] is True
    assert ret["changes"] == {"report": {"server": "nginx1", "state": "drain"}}
    assert calls == [("drain", ("nginx1",), {"timeout": 5})]


def test_serving_a_server_whose_checks_fail_fails_with_the_modules_message(states):
    message = "havip.ready: nginx1 is in rotation again but not UP after 30.0 s (DOWN): its health checks fail"
    give(states, balancer_status({"nginx1": "DRAIN", "nginx2": "UP"}),
         balancer_status({"nginx1": "DOWN", "nginx2": "UP"}), ready=CommandExecutionError(message))
    ret = states.serving("nginx1")
    assert (ret["result"], ret["comment"]) == (False, message)
    assert ret["changes"] == {"status": {"old": "DRAIN", "new": "DOWN"}}


def test_in_service_whose_vips_do_not_come_back_in_time_fails_and_says_it_is_in_service(states):
    message = "havip.resume: in service again, but VI_1 did not come back within 5.0 s"
    give(states, balancer_status(standby=True), balancer_status(standby=False), resume=CommandExecutionError(message))
    ret = states.in_service("back")
    assert (ret["result"], ret["comment"]) == (False, message)
    assert ret["changes"] == {"standby": {"old": True, "new": False}}


def test_test_mode_on_standby_without_a_held_vip_names_none(states):
    states.__opts__ = {"test": True}
    status = balancer_status()
    status["vips"]["VI_1"]["held"] = False
    calls = give(states, status, standby={})
    ret = states.standby("maintenance")
    assert (ret["result"], ret["comment"]) == (None, "svr1 would be on standby")
    assert calls == []


def test_a_backend_only_node_has_no_backend_servers_to_drain(states):
    give(states, {"roles": ["backend"], "vips": {}, "nginx": {"running": True}})
    ret = states.serving("nginx1")
    assert (ret["result"], ret["comment"]) == (False, "svr1 is not a balancer: it has no backend servers")


# ---- a pool's server: pool/server, or a name one pool alone holds ---------------------

SHOP = {"web/nginx1": "UP", "web/app1": "UP", "api/app1": "UP", "api/app2": "DRAIN"}


@pytest.mark.parametrize("name", ["web/app1", "web/nginx1"])
def test_drained_drains_a_pools_server_by_its_name(states, name):
    calls = give(states, balancer_status(SHOP), balancer_status({**SHOP, name: "DRAIN"}),
                 drain={"server": name, "pool": "web", "state": "drain"})
    ret = states.drained(name)
    assert (ret["result"], ret["comment"]) == (True, f"backend server {name} is out of rotation (drained) here")
    assert ret["changes"]["status"] == {"old": "UP", "new": "DRAIN"}
    assert calls == [("drain", (name,), {})]


def test_a_bare_name_one_pool_alone_holds_is_that_pools_server(states):
    calls = give(states, balancer_status(SHOP), ready={})
    ret = states.drained("app2")
    assert (ret["result"], ret["comment"]) == (True, "backend server api/app2 is already out of rotation (drained)"
                                                     " here (DRAIN)")
    ret = states.serving("nginx1")
    assert (ret["result"], ret["comment"]) == (True, "backend server web/nginx1 is already in rotation and UP here"
                                                     " (UP)")
    assert calls == []


def test_test_mode_on_a_pools_server_says_what_would_change_and_calls_nothing(states):
    states.__opts__ = {"test": True}
    calls = give(states, balancer_status(SHOP), ready={}, drain={})
    ret = states.serving("api/app2")
    assert (ret["result"], ret["comment"]) == (None, "backend server api/app2 would be in rotation and UP here"
                                                     " (now DRAIN)")
    assert ret["changes"] == {"status": {"old": "DRAIN", "new": "UP"}}
    assert (states.drained("api/app2")["result"], states.drained("web/app1")["result"]) == (True, None)
    assert calls == []


@pytest.mark.parametrize("name, comment", [
    ("app1", "server 'app1' is in the pools api and web: name one of them (api/app1 or web/app1)"),
    ("sql/app1", "unknown pool 'sql' in 'sql/app1' (pools: api, web)"),
    ("web/app2", "unknown server 'app2' in pool web (its servers: app1, nginx1)"),
])
def test_a_name_of_no_server_or_of_several_fails_naming_why_and_calls_nothing(states, name, comment):
    calls = give(states, balancer_status(SHOP), drain={})
    ret = states.drained(name)
    assert (ret["result"], ret["comment"], ret["changes"]) == (False, comment, {})
    assert calls == []


def test_todays_pool_slash_server_is_the_bare_server(states):
    calls = give(states, balancer_status({"nginx1": "UP", "nginx2": "UP"}),
                 balancer_status({"nginx1": "DRAIN", "nginx2": "UP"}), drain={"server": "nginx1"})
    ret = states.drained("havip_backends/nginx1")
    assert ret["comment"] == "backend server nginx1 is out of rotation (drained) here"
    assert calls == [("drain", ("nginx1",), {})]

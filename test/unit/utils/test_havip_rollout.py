"""
Unit tests of ``_utils/havip_rollout.py``: the rolling deploy's plan and
how it reads the minions' answers (the whole deploy, with its salt calls
faked: test/unit/test_runner.py).
"""

import havip_cluster
import havip_rollout
import havip_targets
import pytest

from test.unit.test_runner import app_services


def labels(steps):
    return [step.label for step in steps]


def test_rollout_order_is_backends_then_idle_balancers_then_holders(facts):
    assert havip_rollout.rollout_order(facts(), {"VI_1": ["svr1"]}) == ["nginx1", "nginx2", "svr2", "svr1"]


def test_a_backend_is_drained_and_readied_on_every_balancer(facts):
    steps = havip_rollout.node_steps(facts(), "nginx1", holds=False)
    assert labels(steps) == ["drain nginx1 on svr1, svr2", "apply nginx1", "check nginx1",
                             "ready nginx1 on svr1, svr2"]
    assert (steps[0].kwarg, steps[0].timeout) == ({"timeout": 30}, 40)


def test_servers_are_named_by_pool_and_server_with_services_and_by_their_bare_names_in_todays_pair(facts):
    assert havip_rollout.server_references(facts(), "nginx1") == ["nginx1"]
    assert havip_rollout.server_references(facts(), "svr1") == []
    config = facts(app_services)
    assert havip_rollout.server_references(config, "app2") == ["api/app2", "sql/db-b"]
    assert labels(havip_rollout.node_steps(config, "app2", holds=False)) == [
        "drain api/app2 on svr1, svr2", "drain sql/db-b on svr1, svr2", "apply app2", "check app2",
        "ready api/app2 on svr1, svr2", "ready sql/db-b on svr1, svr2"]


def test_what_a_node_is_left_with_names_each_server_drained_and_not_readied(facts):
    steps = havip_rollout.node_steps(facts(app_services), "app2", holds=False)
    assert havip_rollout.left_behind("app2", steps[:1], steps[1], ["svr1"]) == [
        "api/app2 stays drained on svr1, svr2 (havip.ready api/app2 there puts it back)",
        "sql/db-b stays drained on svr1 (havip.ready sql/db-b there puts it back)"]
    assert havip_rollout.left_behind("app2", steps[:4], steps[4], ["svr1"]) == [
        "sql/db-b stays drained on svr1, svr2 (havip.ready sql/db-b there puts it back)"]


def test_the_probes_request_every_service_on_its_vips_and_in_todays_pair_the_frontend(facts):
    config = facts()
    targets = havip_targets.of_pools(config, [pool["name"] for pool in config["pools"]])
    assert [target["url"] for target in targets] == [
        havip_cluster.frontend_url(config, vip) for vip in sorted(config["vips"])]


def test_a_holder_moves_its_vips_away_for_its_apply(facts):
    steps = havip_rollout.node_steps(facts(), "svr1", holds=True)
    assert labels(steps) == ["standby svr1", "apply svr1", "check svr1", "resume svr1"]
    # 4 adverts of 0.05 s + preempt_delay 0 + 2 s, and a salt round trip
    assert steps[0].timeout == pytest.approx(12.2)


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
def test_a_minions_error_is_reported_by_the_line_that_says_what_went_wrong(answer, line):
    assert havip_rollout.error_text(answer) == line


def show_sls(config):
    """A minion's `state.show_sls havip.facts` answer (as Salt returns it)."""
    return {"havip-facts-file": {"__sls__": "havip.facts", "__env__": "base",
                                 "file": [{"name": "/etc/havip/havip.json"}, {"dataset": config},
                                          {"serializer": "json"}, "serialize", {"order": 10000}]}}


def vrrpv2(config):
    config["keepalived"].update(vrrp_version=2, advert_int=1)


def test_the_deploy_refuses_a_change_of_vrrp_version_naming_every_balancer(facts):
    deployed = {"svr1": facts(vrrpv2), "svr2": facts(vrrpv2, minion="svr2")}
    pending = {"svr1": show_sls(facts()), "svr2": show_sls(facts(minion="svr2"))}
    assert havip_rollout.vrrp_version_problem(deployed, pending) == (
        "the new pillar changes keepalived:vrrp_version from 2 to 3 on svr1, svr2: VRRPv2 and v3 peers do not"
        " talk to each other, so rolled one balancer at a time each half would hold the VIPs; change it on"
        " every balancer at once (salt -L 'svr1,svr2' state.apply havip, accepting a short split while they"
        " reload), then deploy")
    assert havip_rollout.vrrp_version_problem(deployed, {name: show_sls(deployed[name]) for name in deployed}) is None


def test_the_deploy_refuses_a_pillar_that_does_not_render_on_a_balancer(facts):
    pending = {"svr1": ["Rendering SLS 'base:havip.facts' failed: Jinja error: havip pillar: havip:vips: bad\n"],
               "svr2": None}
    assert havip_rollout.vrrp_version_problem({"svr1": facts()}, pending) == (
        "the new pillar does not render on svr1: Rendering SLS 'base:havip.facts' failed: Jinja error: havip"
        " pillar: havip:vips: bad; the new pillar does not render on svr2: did not answer")

"""
Unit tests of ``_utils/havip_health.py``: a node's verdict and the
cluster's, from the reports they are given (through the surfaces:
test/unit/test_module.py's check, test/unit/test_runner.py's status).
"""

import havip_health
import pytest

NGINX_OK = {"running": True, "answering": True, "url": "http://192.168.100.11:80/"}


def balancer(held, state="MASTER", standby=False, backends=None):
    return {"roles": ["balancer"], "standby": standby, "relay": {} if held else {"VI_1": ["192.168.100.14"]},
            "tracking": True, "keepalived": {"running": True},
            "haproxy": {"running": True, "config_valid": True, "backends": backends or {"nginx1": "UP"}},
            "vips": {"VI_1": {"held": held, "lingering": False, "state": state, "since_s": 1000.0}}}


def test_a_node_with_both_roles_gets_both_verdicts(facts):
    report = {**balancer(True, backends={"nginx1": "DOWN"}), "roles": ["backend", "balancer"],
              "nginx": {**NGINX_OK, "running": False}}
    assert havip_health.node_verdict(report, facts(), 1000.0) == {
        "healthy": False, "standby": False,
        "reasons": ["no backend server is UP in HAProxy (nginx1 DOWN)", "nginx is not running"]}


def pools(**servers):
    """havip.status's haproxy ``pools`` of {pool: {server: status}}."""
    return {pool: {server: {"status": state, "weight": 1, "sessions": 0} for server, state in states.items()}
            for pool, states in servers.items()}


def test_check_names_each_pool_with_no_server_up():
    report = balancer(True, backends={"web/nginx1": "UP", "web/app1": "DOWN", "api/app1": "MAINT",
                                      "api/app2": "DOWN 1/2", "static/nginx1": "UP 1/2"})
    report["haproxy"]["pools"] = {
        **pools(web={"nginx1": "UP", "app1": "DOWN"}, api={"app1": "MAINT", "app2": "DOWN 1/2"},
                static={"nginx1": "UP 1/2"}),
        "sql": {"db1": {"status": None, "weight": None, "sessions": None}}}  # HAProxy does not show it
    assert havip_health.balancer_problems(report) == [
        "no server is UP in pool api (app1 MAINT, app2 DOWN 1/2)",
        "no server is UP in pool sql (none)",
    ]


def test_todays_pair_keeps_todays_words_when_no_server_is_up():
    report = balancer(True, backends={"nginx1": "DRAIN", "nginx2": "DOWN"})
    report["haproxy"]["pools"] = pools(havip_backends={"nginx1": "DRAIN", "nginx2": "DOWN"})
    assert havip_health.balancer_problems(report) == ["no backend server is UP in HAProxy (nginx1 DRAIN, nginx2 DOWN)"]
    report["haproxy"].update(backends={}, pools=pools(havip_backends={}))
    assert havip_health.balancer_problems(report) == ["no backend server is UP in HAProxy (none)"]


@pytest.mark.parametrize("now, problems", [
    (1035.0, []),
    (1035.5, ["VIP VI_1 is still kept on lo 36 s after it left (its handover did not end: state.apply havip ends it)"]),
])
def test_a_lingering_vip_is_a_problem_only_past_release_max_and_5_s(facts, now, problems):
    report = balancer(False, "BACKUP")
    report["vips"]["VI_1"]["lingering"] = True
    assert havip_health.handover_problems(report, facts(), now) == problems


def test_the_handover_wants_a_relay_where_the_vip_is_not_held_and_conntrack_on(facts):
    report = {**balancer(False, "BACKUP"), "relay": {}, "tracking": False}
    assert havip_health.handover_problems(report, facts(), 1000.0) == [
        "no handover relay for VIP VI_1 here: state.apply havip sets it up",
        "conntrack is not kept on for the handover here (no table inet havip_track): state.apply havip sets it up"]
    # The holder keeps the relay it had (its own connections are known): no problem either way.
    assert havip_health.handover_problems({**balancer(True), "relay": {"VI_1": ["x"]}}, facts(), 1000.0) == []


def test_node_summary_in_a_word_or_a_sentence():
    assert havip_health.node_summary({"healthy": True, "standby": True, "reasons": []}) == "healthy (standby)"
    assert havip_health.node_summary({"healthy": False, "standby": False, "reasons": ["a", "b"]}) == (
        "unhealthy: a; b")


def test_survey_of_a_healthy_cluster_and_of_a_split_brain(facts):
    config = facts()
    checks = {name: {"healthy": True, "reasons": [], "standby": False} for name in config["nodes"]}
    statuses = {"svr1": balancer(True), "svr2": balancer(False, "BACKUP")}
    survey = havip_health.survey(config, statuses, checks)
    assert (survey["holders"], survey["preferred"], survey["problems"]) == (
        {"VI_1": ["svr1"]}, {"VI_1": "svr1"}, [])
    statuses["svr2"] = balancer(True)
    assert havip_health.survey(config, statuses, checks)["problems"] == [
        "split brain: VIP VI_1 (192.168.100.10) is held by svr1 and svr2"]


def test_servers_not_back_names_each_server_that_was_up_before():
    assert havip_health.servers_not_back({"svr1": ["nginx1", "nginx2"]}, {"svr1": ["nginx2"]}) == [
        "nginx1 not UP on svr1 (it was before the test)"]
    assert havip_health.show({"VI_1": ["svr1"], "VI_2": []}) == "VI_1: svr1, VI_2: none"


def test_leftovers_name_balancers_on_standby_and_servers_out_of_rotation(facts):
    statuses = {"svr1": balancer(True, backends={"nginx1": "DRAIN", "nginx2": "UP"}),
                "svr2": balancer(False, "BACKUP", standby=True, backends={"nginx1": "DRAIN", "nginx2": "MAINT"}),
                "nginx1": {"roles": ["backend"], "vips": {}, "nginx": NGINX_OK}}
    assert havip_health.leftovers(facts(), statuses) == [
        "svr2 is on standby (havip.resume on svr2 ends it)",
        "nginx1 is drained on svr1, svr2 (havip.ready nginx1 there puts it back)",
        "nginx2 is in maintenance on svr2 (havip.ready nginx2 there puts it back)"]
    assert havip_health.leftovers(facts(), {"svr1": balancer(True)}) == []

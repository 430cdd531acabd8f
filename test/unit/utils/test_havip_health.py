"""
Unit tests of ``_utils/havip_health.py``: a node's verdict and the
cluster's, from the reports they are given (through the surfaces:
test/unit/test_module.py's check, test/unit/test_runner.py's status).
"""

import havip_health

NGINX_OK = {"running": True, "answering": True, "url": "http://192.168.100.11:80/"}


def balancer(held, state="MASTER", standby=False, backends=None):
    return {"roles": ["balancer"], "standby": standby, "relay": {}, "keepalived": {"running": True},
            "haproxy": {"running": True, "config_valid": True, "backends": backends or {"nginx1": "UP"}},
            "vips": {"VI_1": {"held": held, "lingering": False, "state": state}}}


def test_a_node_with_both_roles_gets_both_verdicts():
    report = {**balancer(True, backends={"nginx1": "DOWN"}), "roles": ["backend", "balancer"],
              "nginx": {**NGINX_OK, "running": False}}
    assert havip_health.node_verdict(report) == {
        "healthy": False, "standby": False,
        "reasons": ["no backend server is UP in HAProxy (nginx1 DOWN)", "nginx is not running"]}


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

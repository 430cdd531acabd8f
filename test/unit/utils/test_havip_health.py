"""
Unit tests of ``_utils/havip_health.py``: a node's verdict and the
cluster's, from the reports they are given (through the surfaces:
test/unit/test_module.py's check, test/unit/test_runner.py's status).
"""

import havip_answers
import havip_health
import pytest

from test.unit.utils.test_havip_services import two_services

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


# ---- the runner's survey: one answer per node, services and pools across the balancers ----


def with_haproxy(report, pools, services):
    """A balancer's status with ``haproxy``'s pools ({pool: {server:
    status}}) and services ({service: status}) as havip.status gives them."""
    report["haproxy"].update(
        backends={f"{pool}/{server}": state for pool, servers in pools.items() for server, state in servers.items()},
        pools={pool: {server: {"status": state, "weight": 1, "sessions": 0} for server, state in servers.items()}
               for pool, servers in pools.items()},
        services={service: {"status": state, "sessions": 0} for service, state in services.items()})
    return report


SHOP_UP = {"web": {"nginx1": "UP", "nginx2": "UP"}, "api": {"app1": "UP", "app2": "UP", "legacy": "UP"},
           "static": {"nginx1": "UP"}, "sql": {"app1": "UP"}}


def shop_statuses(svr1=None, svr2=None, svr2_standby=False):
    """svr1 and svr2 (on standby if so) of the two services' cluster, their
    pools as SHOP_UP updated by ``svr1``/``svr2`` ({pool: {server: status}})."""
    def pools(changes):
        return {pool: {**servers, **(changes or {}).get(pool, {})} for pool, servers in SHOP_UP.items()}
    return {"svr1": with_haproxy(balancer(True), pools(svr1), {"shop": "OPEN", "db": "OPEN"}),
            "svr2": with_haproxy(balancer(False, "BACKUP", standby=svr2_standby), pools(svr2),
                                 {"shop": "OPEN", "db": "STOP"})}


def healthy_checks(config, standby=()):
    return {name: {"healthy": True, "reasons": [], "standby": name in standby} for name in config["nodes"]}


def test_survey_shows_each_service_and_each_pools_servers_across_the_balancers(facts):
    config = facts(two_services)
    surveyed = havip_health.survey(config, shop_statuses(svr2={"api": {"legacy": "DRAIN"}}), healthy_checks(config))
    assert surveyed["problems"] == []
    view = havip_health.cluster_view(config, surveyed)
    assert view["services"] == {"db": {"svr1": "OPEN", "svr2": "STOP"}, "shop": {"svr1": "OPEN", "svr2": "OPEN"}}
    assert view["pools"]["api"] == {"app1": {"svr1": "UP", "svr2": "UP"}, "app2": {"svr1": "UP", "svr2": "UP"},
                                    "legacy": {"svr1": "UP", "svr2": "DRAIN"}}
    assert list(view["pools"]) == ["api", "sql", "static", "web"]


def test_todays_pair_is_one_service_and_one_pool_in_the_view(facts):
    config = facts()
    statuses = {"svr1": with_haproxy(balancer(True), {"havip_backends": {"nginx1": "UP", "nginx2": "MAINT"}},
                                     {"havip": "OPEN"})}
    surveyed = havip_health.survey(config, statuses, healthy_checks(config))
    view = havip_health.cluster_view(config, surveyed)
    assert view["services"] == {"havip": {"svr1": "OPEN", "svr2": None}}
    assert view["pools"] == {"havip_backends": {"nginx1": {"svr1": "UP", "svr2": None},
                                                "nginx2": {"svr1": "MAINT", "svr2": None}}}
    assert surveyed["problems"] == []


def test_a_pool_with_no_server_up_on_a_balancer_in_service_is_a_problem_naming_what_each_sees(facts):
    config = facts(two_services)
    down = {"api": {"app1": "DOWN", "app2": "MAINT", "legacy": "DOWN 1/2"}}
    surveyed = havip_health.survey(config, shop_statuses(svr1=down, svr2=down), healthy_checks(config))
    assert surveyed["problems"] == [
        "no server is UP in pool api on svr1, svr2 (svr1: app1 DOWN, app2 MAINT, legacy DOWN 1/2;"
        " svr2: app1 DOWN, app2 MAINT, legacy DOWN 1/2)"]
    # A balancer on standby serves nothing: no server UP there is shown, not a problem of the pool (a
    # server it sees DOWN and another balancer UP still is).
    surveyed = havip_health.survey(config, shop_statuses(svr2=down, svr2_standby=True),
                                   healthy_checks(config, standby=["svr2"]))
    assert surveyed["problems"] == ["no other healthy balancer could take over VIP VI_1 from svr1",
                                    "server app1 of pool api is UP on svr1 and DOWN on svr2",
                                    "server legacy of pool api is UP on svr1 and DOWN on svr2"]
    assert surveyed["pools"]["api"]["app2"] == {"svr1": "UP", "svr2": "MAINT"}


def test_a_server_up_on_one_balancer_and_down_on_another_is_a_problem_a_drain_is_not(facts):
    config = facts(two_services)
    statuses = shop_statuses(svr1={"web": {"nginx2": "DOWN"}, "api": {"app2": "MAINT"}},
                             svr2={"web": {"nginx2": "UP 1/3"}, "api": {"app1": "DRAIN", "app2": "DOWN"}})
    assert havip_health.survey(config, statuses, healthy_checks(config))["problems"] == [
        "server nginx2 of pool web is UP on svr2 and DOWN on svr1"]


def test_a_balancer_whose_haproxy_gives_no_pools_adds_nothing_to_judge(facts):
    """Its HAProxy's API did not answer (its own verdict says so): its
    column is unknown, not a pool without servers."""
    config = facts(two_services)
    statuses = shop_statuses()
    statuses["svr2"]["haproxy"].update(pools=None, services=None, backends=None)
    surveyed = havip_health.survey(config, statuses, healthy_checks(config))
    assert surveyed["problems"] == []
    assert surveyed["pools"]["sql"] == {"app1": {"svr1": "UP", "svr2": None}}
    assert surveyed["services"]["db"] == {"svr1": "OPEN", "svr2": None}


def answers_of(config, statuses):
    """Every node's answer to havip.check with_status=True: healthy."""
    backend = {"roles": ["backend"], "vips": {}, "nginx": NGINX_OK}
    return {name: {"healthy": True, "reasons": [], "standby": False, "status": statuses.get(name, backend)}
            for name in config["nodes"]}


def test_verdicts_split_each_answer_into_its_verdict_and_the_status_it_judged(facts):
    config = facts(two_services)
    statuses = shop_statuses()
    answers = answers_of(config, statuses)
    answers["nginx1"].update(healthy=False, reasons=["nginx is not running"])
    checks, judged = havip_answers.verdicts(config, {**answers, "stranger": answers["svr1"]})
    assert checks["nginx1"] == {"healthy": False, "reasons": ["nginx is not running"], "standby": False}
    assert sorted(checks) == sorted(judged) == sorted(config["nodes"])
    assert judged["svr1"] == statuses["svr1"]


def test_a_backend_server_not_in_the_configuration_is_not_believed_the_rest_is(facts):
    """svr2's HAProxy still has a server the pillar no longer names (not
    applied yet): its listing of pools is refused, naming it, and its
    backends keep the configuration's servers only; its VIPs and verdict
    stand."""
    config = facts(two_services)
    statuses = shop_statuses()
    statuses["svr2"]["haproxy"]["pools"]["web"]["nginx3"] = {"status": "UP", "weight": 1, "sessions": 0}
    statuses["svr2"]["haproxy"]["backends"]["web/nginx3"] = "UP"
    checks, judged = havip_answers.verdicts(config, answers_of(config, statuses))
    assert checks["svr2"] == {"healthy": True, "reasons": [], "standby": False}
    assert "web/nginx3" not in judged["svr2"]["haproxy"]["backends"]
    assert judged["svr2"]["haproxy"]["backends"]["web/nginx1"] == "UP"
    assert havip_health.survey(config, judged, checks)["problems"] == [
        "svr2: its HAProxy pools and services are refused: it lists a server nginx3 in pool web that is not one of"
        " its servers in the configuration"]


def test_a_vip_the_pillar_no_longer_has_does_not_refuse_the_answer(facts):
    """svr1 still has VI_9 (its removal not applied yet): it holds VI_1 all
    the same."""
    config = facts(two_services)
    statuses = shop_statuses()
    statuses["svr1"]["vips"]["VI_9"] = {"held": True, "lingering": False, "state": "MASTER", "since_s": 1000.0}
    checks, judged = havip_answers.verdicts(config, answers_of(config, statuses))
    assert checks["svr1"]["healthy"] is True
    assert havip_health.survey(config, judged, checks)["holders"] == {"VI_1": ["svr1"]}


def set_path(answer, path, value):
    *parents, last = path
    for key in parents:
        answer = answer[key]
    answer[last] = value


@pytest.mark.parametrize("path, value, why", [
    ((), "ERROR: havip.check() got an unexpected keyword argument", "it is not a verdict with its status"),
    (("healthy",), "yes", "healthy and standby are not true or false"),
    (("reasons",), ["\x1b[2Jall fine"], "its reasons are not lines of text"),
    (("reasons",), "fine", "its reasons are not lines of text"),
    (("status",), ["svr1"], "its status is not a mapping"),
    (("status", "vips"), {"VI_1": "held"}, "its status's vips are not VIPs"),
    (("status", "haproxy"), "UP", "its status's haproxy is not a mapping"),
    (("status", "haproxy", "backends"), ["web/nginx1"], "its HAProxy backends are not servers with HAProxy's"),
    (("status", "haproxy", "backends"), {"web/nginx1": 1}, "its HAProxy backends are not servers with HAProxy's"),
], ids=["error", "healthy", "escape", "reasons", "status", "vips", "haproxy", "backends", "backend-state"])
def test_an_answer_not_shaped_as_the_modules_is_an_unhealthy_verdict_saying_why(facts, path, value, why):
    """An answer is believed about its node only once checked; a refused
    one is not repeated, and its status is not believed (svr1 held the VIP:
    now it has no holder)."""
    config = facts(two_services)
    answers = answers_of(config, shop_statuses())
    if path:
        set_path(answers["svr1"], path, value)
    else:
        answers["svr1"] = value
    checks, statuses = havip_answers.verdicts(config, answers)
    (reason,) = checks["svr1"]["reasons"]
    assert reason.startswith(f"its answer to havip.check is refused: {why}")
    assert checks["svr1"]["healthy"] is False and "svr1" not in statuses
    surveyed = havip_health.survey(config, statuses, checks)
    assert f"svr1: {reason}" in surveyed["problems"]
    assert "VIP VI_1 (192.168.100.10) has no holder" in surveyed["problems"]


@pytest.mark.parametrize("where, value, why", [
    ("pools", ["web"], "pools is not a mapping"),
    ("pools", {"shop2": {}}, "it lists a pool shop2 that is not in the configuration"),
    ("pools", {"web\n": {}}, "it lists a pool (not a name) that is not in the configuration"),
    ("pools", {"web": ["nginx1"]}, "pool web is not a mapping of servers"),
    ("pools", {"web": {"app1": {"status": "UP"}}},
     "it lists a server app1 in pool web that is not one of its servers in the configuration"),
    ("pools", {"web": {"nginx1": {"status": 1}}}, "server nginx1 of pool web has no status HAProxy gives"),
    ("pools", {"web": {"nginx1": {"status": "UP\x1b[0m"}}}, "server nginx1 of pool web has no status HAProxy gives"),
    ("pools", {"web": {"nginx1": "UP"}}, "server nginx1 of pool web has no status HAProxy gives"),
    ("services", "OPEN", "services is not a mapping"),
    ("services", {"shop ; x": {"status": "OPEN"}}, "it lists a service (not a name) that is not in the configuration"),
    ("services", {"shop": {"status": ["OPEN"]}}, "service shop has no status HAProxy gives"),
], ids=["pools", "pool", "pool-name", "servers", "server", "status-type", "status-escape", "entry", "services",
        "service", "service-status"])
def test_pools_or_services_not_the_configurations_are_a_problem_not_believed(facts, where, value, why):
    """What a balancer lists must be the configuration's pools, servers and
    services with HAProxy's statuses: otherwise none of its listing is
    believed (its column unknown) and the problem says why, never quoting
    a name that is not one."""
    config = facts(two_services)
    statuses = shop_statuses()
    statuses["svr2"]["haproxy"][where] = value
    checks, statuses = havip_answers.verdicts(config, answers_of(config, statuses))
    surveyed = havip_health.survey(config, statuses, checks)
    assert surveyed["problems"] == [f"svr2: its HAProxy pools and services are refused: {why}"]
    assert surveyed["pools"]["web"]["nginx1"] == {"svr1": "UP", "svr2": None}
    assert surveyed["services"]["shop"] == {"svr1": "OPEN", "svr2": None}

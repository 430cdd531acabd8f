"""
Unit tests of ``_utils/havip_appdeploy.py``: the plan of the rolling deploy
of the operator's application and what it probes (the whole deploy, with
its salt calls faked: test/unit/test_runner.py).
"""

import havip_appdeploy
import havip_targets

from test.unit.test_runner import app_services


def test_the_plan_takes_each_node_once_by_name_with_every_pool_and_server_that_is_it(facts):
    def app2_twice_in_api(config):
        app_services(config)
        config["pools"]["api"]["servers"]["app2-b"] = {"node": "app2", "port": 8081}
    config = facts(app2_twice_in_api)
    assert havip_appdeploy.plan(config, ["sql", "api"]) == (
        ["app1", "app2"],
        {"app1": ["api/app1"], "app2": ["api/app2", "api/app2-b", "sql/db-b"]},
        ["api/legacy"])
    assert havip_appdeploy.plan(config, ["web"]) == (
        ["nginx1", "nginx2"], {"nginx1": ["web/nginx1"], "nginx2": ["web/nginx2"]}, [])


def urls(config, pools):
    return [target["url"] for target in havip_targets.of_pools(config, pools)]


def test_the_probes_are_of_the_services_that_send_requests_to_the_pools_touched_on_each_of_their_vips(facts):
    def on_two_vips(config):
        app_services(config)
        config["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32", "virtual_router_id": 52}
        config["services"]["db"]["vips"] = ["VI_2"]
    config = facts(on_two_vips)
    assert havip_appdeploy.touched_pools(config, ["nginx1"]) == ["web"]
    assert havip_appdeploy.touched_pools(config, ["app2"]) == ["api", "sql"]
    # web is only shop's: db is not probed
    assert urls(config, ["web"]) == ["http://192.168.100.10:80/", "http://192.168.100.20:80/"]
    # sql is db's, api a route of shop's
    assert urls(config, ["api", "sql"]) == [
        "http://192.168.100.20:5432/", "http://192.168.100.10:80/", "http://192.168.100.20:80/"]

"""
Unit tests of ``_utils/havip_failover.py``: how the failover test reads
the answers of the injection and of the probe (the whole test, with its
salt calls faked: test/unit/test_runner.py).
"""

import havip_failover
import havip_targets
import pytest

from test.formula import second_vip
from test.unit.utils.test_havip_services import PEM, two_services

URL = "http://192.168.100.10:9090/"
AT = 1_700_000_100.0


@pytest.mark.parametrize("answer, problem", [
    ({"failure": "kill_haproxy", "at_s": AT}, None),
    (None, "the answer of havip.inject kill_haproxy on svr1 was lost (restored all the same)"),
    ("ERROR: havip.inject: refused\nmore", "havip.inject kill_haproxy on svr1 failed: ERROR: havip.inject: refused"),
])
def test_what_the_injections_answer_says(answer, problem):
    assert havip_failover.injection_problem(answer, "kill_haproxy", "svr1") == problem


def probed(**seen):
    return {"started_s": AT - 1.0, "total": 1200, "failed": 30, "longest_outage_s": 2.5, "last_failure_s": 3.5,
            "recovered": True, **seen}


@pytest.mark.parametrize("seen, problems", [
    (probed(), []),
    (probed(recovered=False), [f"traffic through {URL} did not resume within 5.0 s"]),
    (probed(last_failure_s=6.5), [f"traffic through {URL} did not resume within 5.0 s"]),
    (None, ["the probe on nginx1 returned nothing"]),
])
def test_the_probe_says_whether_traffic_resumed_within_the_budget(seen, problems):
    report = {"probe": {"client": "nginx1", "url": URL, "rate": 100}}
    assert havip_failover.traffic_problems(seen, report, AT, 4.0) == problems
    if seen:
        assert (report["client_visible_outage_s"], report["failed_requests"], report["requests"]) == (2.5, 30, 1200)


def test_the_comment_names_what_the_pre_check_found_left_behind():
    assert havip_failover.with_leftovers("passed", {"leftovers": []}) == "passed"
    assert havip_failover.with_leftovers("passed", {"leftovers": ["svr2 on standby", "nginx1 drained"]}) == (
        "passed; leftovers: svr2 on standby; nginx1 drained")


# ---- the targets: every service, a request per pool it reaches, on each of its VIPs


def two_services_on_two_vips(havip):
    """The issue's two services (test_havip_services.two_services): ``shop``
    (http: a host route, a wildcard route with a path, a path route; TLS)
    on both VIPs, ``db`` (tcp) on VI_2."""
    second_vip()(havip)
    two_services(havip)
    havip["services"]["db"]["vips"] = ["VI_2"]
    havip["services"]["shop"]["tls"] = {"port": 8443, "certificates": [PEM]}


def target(service, vip, pool, url, host=None):
    return {"service": service, "vip": vip, "pool": pool, "url": url, "host": host}


def test_todays_pair_is_one_target_the_frontend_on_each_vip(facts):
    assert havip_targets.probe_targets(facts()) == (
        [target("havip", "VI_1", "havip_backends", URL)], {})


def test_each_service_is_probed_on_each_of_its_vips_once_per_pool_it_reaches(facts):
    targets, not_probed = havip_targets.probe_targets(facts(two_services_on_two_vips))
    assert targets == [
        target("db", "VI_2", "sql", "http://192.168.100.9:5432/"),
        *(entry for vip, address in (("VI_1", "192.168.100.10"), ("VI_2", "192.168.100.9")) for entry in (
            target("shop", vip, "web", f"http://{address}:80/"),
            target("shop", vip, "api", f"http://{address}:80/", "api.example.com"),
            target("shop", vip, "static", f"http://{address}:80/static", "probe.static.example.com"))),
    ]
    assert not_probed == {"shop": ["TLS port 8443: the failover test probes the plain port only"]}


def test_each_target_reaches_its_pool_as_the_frontends_acls_route_it(facts):
    config = facts(two_services_on_two_vips)
    shop = next(service for service in config["services"] if service["name"] == "shop")
    targets, _ = havip_targets.probe_targets(config)
    for entry in (entry for entry in targets if entry["service"] == "shop"):
        host = entry["host"] or config["vips"][entry["vip"]]["address"]
        path = "/" + entry["url"].split("/", 3)[3]
        assert havip_targets.route_pool(shop, host, path) == entry["pool"], entry


@pytest.mark.parametrize("host, path, pool", [
    ("api.example.com", "/", "api"), ("API.Example.COM", "/v2", "api"), ("www.example.com", "/v2/x", "api"),
    ("a.static.example.com", "/static/x", "static"), ("a.static.example.com", "/", "web"),
    ("static.example.com", "/static", "web"), ("192.168.100.10", "/", "web"), ("www.example.com", "/v3", "web"),
])
def test_a_request_goes_to_the_first_route_that_matches_else_the_services_pool(facts, host, path, pool):
    shop = next(service for service in facts(two_services_on_two_vips)["services"] if service["name"] == "shop")
    assert havip_targets.route_pool(shop, host, path) == pool


def test_a_pool_an_earlier_route_takes_every_request_for_is_not_probed(facts):
    def everything_to_api_first(havip):
        two_services(havip)
        havip["services"]["shop"]["routes"].insert(0, {"path_prefix": "/", "pool": "api"})
    targets, not_probed = havip_targets.probe_targets(facts(everything_to_api_first))
    assert [(entry["service"], entry["pool"], entry["host"]) for entry in targets] == [
        ("db", "sql", None), ("shop", "api", None)]
    assert targets[1]["url"] == "http://192.168.100.10:80/"
    assert not_probed == {"shop": ["pool web on VI_1: an earlier route takes every request for it",
                                   "pool static on VI_1: an earlier route takes every request for it"]}


def test_a_service_that_redirects_to_tls_is_not_probed(facts):
    def redirecting(havip):
        two_services(havip)
        havip["services"]["shop"]["tls"] = {"certificates": [PEM], "redirect": True}
    targets, not_probed = havip_targets.probe_targets(facts(redirecting))
    assert [entry["service"] for entry in targets] == ["db"]
    assert not_probed == {"shop": ["TLS port 443: the failover test probes the plain port only",
                                   "port 80: it redirects every request to TLS"]}


def test_a_target_with_a_host_asks_for_it_and_is_named_by_it():
    probing = {"url": URL, "host": "api.example.com", "client": "nginx1", "rate": 100}
    assert havip_failover.probe_kwarg(probing, 1) == {"url": URL, "host": "api.example.com", "seconds": 1,
                                                      "rate": 100}
    assert havip_failover.probe_kwarg({**probing, "host": None}, 1) == {"url": URL, "seconds": 1, "rate": 100}
    assert havip_failover.traffic_problems(probed(recovered=False), {"probe": probing}, AT, 4.0) == [
        f"traffic through {URL} (host api.example.com) did not resume within 5.0 s"]


FIGURES = ("client_visible_outage_s", "failed_requests", "requests")


def test_each_service_reports_its_worst_target_and_the_test_its_worst_service():
    figures = ({"client_visible_outage_s": 0.05, "failed_requests": 5, "requests": 1200},
               {"client_visible_outage_s": 0.2, "failed_requests": 20, "requests": 1190}, {})
    report = {"services": {"shop": {"targets": [dict(figures[0]), dict(figures[1])]},
                           "db": {"targets": [dict(figures[2])]}}}
    havip_failover.add_up(report)
    assert {key: report["services"]["shop"][key] for key in FIGURES} == {
        "client_visible_outage_s": 0.2, "failed_requests": 25, "requests": 2390}
    assert report["services"]["db"] == {"targets": [{}]}  # its probe returned nothing
    assert {key: report[key] for key in FIGURES} == {
        "client_visible_outage_s": 0.2, "failed_requests": 25, "requests": 2390}

"""
Fast tier: the logic of the fault campaign's audits of the lab's Prometheus,
its alerts and the client's POSTs (test/lab/chaos_audits.py,
test/lab/posts.py), over answers shaped as Prometheus's API and nginx's
access log give them: each audit finds what it audits when it is wrong.
"""

import contextlib
import http.server
import threading

import pytest

from test.lab import chaos_audits, posts
from test.lab import prometheus as lab_prometheus
from test.lab import test_chaos as chaos

PREFERRED = {"VI_1": "svr1"}
BALANCERS = ["svr1", "svr2"]


def master(balancer, value, vip="VI_1"):
    """A sample of havip_vrrp_master as /api/v1/query answers it."""
    return {"metric": {"__name__": "havip_vrrp_master", "instance": f"{balancer}:9100", "job": "havip-vrrp",
                       "vip": vip}, "value": [1796535601.5, value]}


def test_one_master_per_vip_on_its_preferred_balancer_passes():
    assert chaos_audits.master_problems([master("svr1", "1"), master("svr2", "0")], PREFERRED, BALANCERS) == []


@pytest.mark.parametrize(("samples", "problems"), [
    ([master("svr1", "1"), master("svr2", "1")], ["VI_1: havip_vrrp_master 1 on svr1, svr2, not on svr1 alone"]),
    ([master("svr1", "0"), master("svr2", "0")], ["VI_1: havip_vrrp_master 1 on no balancer, not on svr1 alone"]),
    ([master("svr1", "0"), master("svr2", "1")], ["VI_1: havip_vrrp_master 1 on svr2, not on svr1 alone"]),
    ([master("svr1", "1")], ["VI_1: no havip_vrrp_master from svr2"]),
    ([master("svr1", "1"), master("svr2", "0", vip="VI_2")], ["VI_1: no havip_vrrp_master from svr2"]),
    ([], ["VI_1: no havip_vrrp_master from svr1, svr2", "VI_1: havip_vrrp_master 1 on no balancer, not on svr1 alone"]),
])
def test_two_masters_none_another_or_an_unscraped_balancer_is_a_problem(samples, problems):
    assert chaos_audits.master_problems(samples, PREFERRED, BALANCERS) == problems


def alert(name, state, **labels):
    """A sample of max_over_time(ALERTS[...]) as /api/v1/query answers it."""
    return {"metric": {"alertname": name, "alertstate": state, "severity": "critical", **labels},
            "value": [1796535601.5, "1"]}


SPLIT_BRAIN_PENDING = [alert("HavipVipSplitBrain", "pending", instance="svr1:9100", vip="VI_1"),
                       alert("HavipVipSplitBrain", "pending", instance="svr2:9100", vip="VI_1")]


def test_the_faults_alert_seen_pending_passes_and_unseen_fails():
    seen = chaos_audits.seen(SPLIT_BRAIN_PENDING)
    assert seen == {("HavipVipSplitBrain", "pending")}
    assert chaos_audits.missing_alerts(seen, {"HavipVipSplitBrain"}) == []
    assert chaos_audits.missing_alerts(seen, ()) == []
    assert chaos_audits.missing_alerts(chaos_audits.seen([]), {"HavipVipSplitBrain"}) == [
        "HavipVipSplitBrain neither pending nor firing during the fault"]


def test_an_alert_that_fired_is_a_problem_unless_explained():
    seen = chaos_audits.seen([*SPLIT_BRAIN_PENDING, alert("HavipHAProxyDown", "pending", instance="svr1:9101"),
                              alert("HavipHAProxyDown", "firing", instance="svr1:9101")])
    assert chaos_audits.unexplained_firing(seen, set()) == ["HavipHAProxyDown fired"]
    assert chaos_audits.unexplained_firing(seen, {"HavipHAProxyDown"}) == []
    assert chaos_audits.unexplained_firing(chaos_audits.seen(SPLIT_BRAIN_PENDING), set()) == []


def rules_answer(*alerts):
    """/api/v1/rules?type=alert's groups, with these (name, state) alerts active."""
    rules = [{"name": name, "state": "inactive", "health": "ok", "alerts": []}
             for name in lab_prometheus.alert_names()]
    for name, state in alerts:
        rule = next(rule for rule in rules if rule["name"] == name)
        rule["state"] = state
        rule["alerts"].append({"labels": {"alertname": name, "vip": "VI_1"}, "state": state})
    return [{"name": "havip", "rules": rules, "lastEvaluation": "2026-12-06T05:40:01.123456789Z"}]


def test_an_alert_firing_after_the_heal_is_a_problem_unless_ignored():
    assert chaos_audits.firing_now(rules_answer()) == []
    assert chaos_audits.firing_now(rules_answer(("HavipVipSplitBrain", "pending"))) == []
    assert chaos_audits.firing_now(rules_answer(("HavipVipNoHolder", "firing"))) == [
        "HavipVipNoHolder firing: alertname=HavipVipNoHolder, vip=VI_1"]
    assert chaos_audits.firing_now(rules_answer(("HavipVrrpFlapping", "firing")), ignored={"HavipVrrpFlapping"}) == []


def test_the_campaigns_alert_expectations_name_its_faults_and_havips_alerts():
    faults = {fault.name for fault in chaos.FAULTS}
    names = set(lab_prometheus.alert_names())
    for expectations in (chaos.FAULT_ALERTS, chaos.FAULT_MAY_FIRE):
        assert set(expectations) <= faults
        assert set().union(*expectations.values()) <= names
    assert names >= chaos.CAMPAIGN_PACE


def test_prometheus_times_are_read_to_the_nanosecond_in_utc():
    assert lab_prometheus.rfc3339("2026-12-06T05:40:01.123456789Z") == pytest.approx(1796535601.123456789)
    assert lab_prometheus.rfc3339("2026-12-06T05:40:01Z") == 1796535601
    assert lab_prometheus.rfc3339("2026-12-06T06:40:01.5+01:00") == 1796535601.5


def access_log(*requests):
    """nginx access log lines (Debian's `combined` format) of these request lines."""
    return [f'192.168.100.13 - - [06/Dec/2026:05:40:01 +0000] "{request}" 405 166 "-" "Python-urllib/3.11"'
            for request in requests]


def test_the_posts_of_a_token_are_read_from_the_access_log():
    lines = access_log("POST /?havip-post=ab12.0 HTTP/1.1", "GET / HTTP/1.1", "POST /?havip-post=ab12.7 HTTP/1.1",
                       "POST /?havip-post=ffff.1 HTTP/1.1", "GET /?havip-post=ab12.3 HTTP/1.1")
    assert chaos_audits.logged_posts(lines, "ab12") == [0, 7]


SENT = [[0.0, 405, True], [0.1, None, False], [0.2, 405, True]]


def test_posts_each_logged_once_pass_and_one_lost_before_a_backend_too():
    assert chaos_audits.post_problems("ab12", SENT, {"nginx1": [0], "nginx2": [2]}) == []
    assert chaos_audits.post_problems("ab12", SENT, {"nginx1": [0, 1], "nginx2": [2]}) == []


@pytest.mark.parametrize(("logged", "problems"), [
    ({"nginx1": [0], "nginx2": [2, 0]}, ["POST ab12.0 reached the backends 2 times (nginx1, nginx2)"]),
    ({"nginx1": [0, 1, 1], "nginx2": [2]}, ["POST ab12.1 reached the backends 2 times (nginx1, nginx1)"]),
    ({"nginx1": [0], "nginx2": []}, ["POST ab12.2 answered by nginx, in no backend's access log"]),
    ({"nginx1": [0, 2, 5], "nginx2": []}, ["POST ab12.5 logged, never sent"]),
])
def test_a_post_reaching_the_backends_twice_or_answered_unlogged_is_a_problem(logged, problems):
    assert chaos_audits.post_problems("ab12", SENT, logged) == problems


class NginxLike(http.server.BaseHTTPRequestHandler):
    """Answers every POST 405 as nginx does for its page, recording its path."""
    server_version, sys_version = "nginx/1.22.1", ""

    def do_POST(self):
        self.server.paths.append(self.path)
        self.send_error(405)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def nginx_like():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NginxLike)
    server.paths = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_client_sends_each_post_once_with_its_number_and_sees_nginx_answer():
    sent = []
    with nginx_like() as server:
        reports = posts.send(f"http://127.0.0.1:{server.server_address[1]}/", "ab12", 200, 1,
                             stop=lambda: sent.append(1) or len(sent) > 5)
    assert [(status, by_nginx) for _, status, by_nginx in reports] == [(405, True)] * 5
    assert sorted(server.paths) == [f"/?havip-post=ab12.{number}" for number in range(5)]
    lines = access_log(*(f"POST {path} HTTP/1.1" for path in server.paths))
    assert chaos_audits.post_problems("ab12", reports, {"web": chaos_audits.logged_posts(lines, "ab12")}) == []


def test_a_post_without_an_answer_is_recorded_as_none():
    with nginx_like() as server:
        port = server.server_address[1]
    assert posts.post(f"http://127.0.0.1:{port}/?havip-post=ab12.0", 1) == [None, False]


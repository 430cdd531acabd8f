"""
Unit tests of ``_utils/havip_probe.py``: what a client saw, summarized, and
the probe's schedule.
"""

import ipaddress
import time

import havip_probe
import pytest
from salt.exceptions import CommandExecutionError


def requests_every(period, answers):
    """[sent, body] of requests sent every ``period`` s from 0."""
    return [[index * period, body] for index, body in enumerate(answers)]


def test_summarize_counts_failures_and_the_longest_outage_of_a_recovered_run():
    requests = requests_every(0.25, ["nginx1", "nginx2", None, None, None, "nginx1", "nginx2", "nginx1"])
    report = havip_probe.summarize("http://vip:9090/", 1000.0, 2.0, requests)
    assert report == {
        "url": "http://vip:9090/",
        "started_s": 1000.0,
        "duration_s": 2.0,
        "total": 8,
        "failed": 3,
        "first_failure_s": 0.5,
        "last_failure_s": 1.0,
        # from the first failed request (.5 s) to the next answered one (1.25 s)
        "longest_outage_s": 0.75,
        "recovered": True,
        "backends": {"nginx1": 3, "nginx2": 2},
    }


def test_summarize_reports_an_outage_lasting_to_the_end_as_not_recovered():
    requests = requests_every(0.25, [None, "nginx1", None, None, "nginx2", None])
    report = havip_probe.summarize("http://vip/", 1000.0, 1.5, requests)
    assert (report["total"], report["failed"]) == (6, 4)
    assert (report["first_failure_s"], report["last_failure_s"]) == (0.0, 1.25)
    # outages: 0 -> .25 (.25 s); .5 -> 1.0 (.5 s); 1.25 -> the end at 1.5 (.25 s)
    assert report["longest_outage_s"] == 0.5
    assert report["recovered"] is False
    assert report["backends"] == {"nginx1": 1, "nginx2": 1}


def test_summarize_without_failures_and_with_a_timeline():
    report = havip_probe.summarize("http://vip/", 1000.0, 1.0, requests_every(0.25, ["a"] * 4), timeline=True)
    assert (report["failed"], report["first_failure_s"], report["last_failure_s"]) == (0, None, None)
    assert report["longest_outage_s"] == 0.0
    assert report["recovered"] is True
    assert report["backends"] == {"a": 4}
    assert report["timeline"] == [[0.0, 1], [0.25, 1], [0.5, 1], [0.75, 1]]


def test_summarize_with_answers_lists_every_request_s_body_in_order():
    requests = requests_every(0.25, ["nginx1", None, "nginx2"])
    report = havip_probe.summarize("http://vip/", 1000.0, 0.75, requests, answers=True)
    assert report["answers"] == ["nginx1", None, "nginx2"]
    assert "answers" not in havip_probe.summarize("http://vip/", 1000.0, 0.75, requests)


def test_measure_keeps_its_schedule_while_requests_hang(monkeypatch):
    """A lost request (it waits its whole timeout) does not delay the next."""
    def fetch(url, timeout, cafile):
        if fetch.calls.append(url) or len(fetch.calls) == 2:
            time.sleep(timeout)
            return None
        return "nginx1"
    fetch.calls = []
    monkeypatch.setattr(havip_probe, "fetch_body", fetch)
    report = havip_probe.measure("http://vip/", 0.5, 20, 0.3)
    assert (report["total"], report["failed"]) == (10, 1)
    assert report["first_failure_s"] == report["last_failure_s"]
    assert report["first_failure_s"] < 0.1  # the 2nd request, sent at 0.05 s
    assert report["longest_outage_s"] < 0.1  # until the 3rd, sent on time


@pytest.mark.parametrize("seconds, rate, timeout", [(0.1, 0.1, 0.01), (3600, 1000, 60), (10, 100, 0.2)])
def test_probe_args_accepts_the_edges_of_each_range_as_floats(seconds, rate, timeout):
    assert havip_probe.probe_args(seconds, rate, timeout) == (float(seconds), float(rate), float(timeout))


def test_probe_args_names_the_range_it_refuses():
    with pytest.raises(CommandExecutionError, match=r"^havip.probe: seconds must be from 0.1 to 3600, got 3601$"):
        havip_probe.probe_args(3601, 100, 0.2)


@pytest.mark.parametrize("url, allowed, expected", [
    ("http://192.168.100.10:9090/", None, "http://192.168.100.10:9090/"),
    ("https://[fd00::10]/x", {ipaddress.ip_address("fd00::10")}, "https://[fd00::10]/x"),
    ("http://192.168.100.10", {ipaddress.ip_address("192.168.100.10")}, "http://192.168.100.10/"),
])
def test_probe_url_rebuilds_an_http_url(url, allowed, expected):
    assert havip_probe.probe_url(url, allowed) == expected


@pytest.mark.parametrize("url", ["file:///etc/shadow", "http://[::1%lo]/", "http://a_b/", "http://vip/#frag",
                                 "http://vip:99999/", None])
def test_probe_url_refuses_anything_else(url):
    with pytest.raises(CommandExecutionError, match="refused: not an http or https URL"):
        havip_probe.probe_url(url)


def test_probe_url_refuses_a_host_not_allowed():
    with pytest.raises(CommandExecutionError, match="refused: its host is none of"):
        havip_probe.probe_url("http://vip/", {ipaddress.ip_address("192.168.100.10")})


def test_cluster_addresses_are_the_vips_and_the_nodes(facts):
    assert havip_probe.cluster_addresses(facts()) == {ipaddress.ip_address(a) for a in (
        "192.168.100.10", "192.168.100.11", "192.168.100.12", "192.168.100.13", "192.168.100.14")}


def test_cluster_addresses_of_a_pillar_leave_out_what_is_no_address():
    pillar = {"vips": {"VI_1": {"address": "fd00::10/64"}, "VI_2": {"address": 7}, "VI_3": "x"},
              "nodes": {"svr1": {"address": "192.168.100.13"}, "nginx1": {}, "web": {"address": "web.example"}}}
    assert havip_probe.cluster_addresses(pillar) == {ipaddress.ip_address("fd00::10"),
                                                     ipaddress.ip_address("192.168.100.13")}
    assert havip_probe.cluster_addresses({"vips": ["VI_1"]}) == set()
    assert havip_probe.cluster_addresses(pillar, groups=("vips",)) == {ipaddress.ip_address("fd00::10")}


@pytest.mark.parametrize("value", ["/etc/ssl/our-ca.pem", "/tmp/havip-deploy-0f.stop", None])
def test_file_path_accepts_a_safe_absolute_path(value):
    assert havip_probe.file_path("cafile", value) == value


@pytest.mark.parametrize("value", ["/etc/../etc/shadow", "/./x", "x/y", "/a b", "/a\n", b"/a", "/"])
def test_file_path_refuses_anything_else(value):
    with pytest.raises(CommandExecutionError, match=r"cafile .* refused"):
        havip_probe.file_path("cafile", value)

"""
Unit tests of ``_utils/havip_failover.py``: how the failover test reads
the answers of the injection and of the probe (the whole test, with its
salt calls faked: test/unit/test_runner.py).
"""

import havip_failover
import pytest

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

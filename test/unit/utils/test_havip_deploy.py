"""
Unit tests of ``_utils/havip_deploy.py``: how the rolling deploy judges its
probes (the whole deploy, with its salt calls faked:
test/unit/test_runner.py).
"""

import havip_deploy
import pytest

URL = "http://192.168.100.10:9090/"


@pytest.mark.parametrize("max_failed, problem", [
    (0, f"1 of 500 requests to {URL} failed (longest outage 0.01 s)"), (1, None)])
def test_a_probe_fails_the_deploy_only_above_max_failed_requests(max_failed, problem):
    probe = havip_deploy.Probe(None, None, "client", URL, 100, max_failed)
    probe.answer = {"failed": 1, "total": 500, "longest_outage_s": 0.01, "duration_s": 5.0}
    assert probe.problem(ended_early=False) == problem

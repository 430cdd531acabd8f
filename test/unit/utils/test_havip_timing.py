"""
Unit tests of ``_utils/havip_timing.py``: HAProxy's times, the limits of a
wait and the budgets of a VIP move and a failover.
"""

import havip_timing
import pytest
from salt.exceptions import CommandExecutionError


@pytest.mark.parametrize("failure, move", [
    # detection (interval 1 x fall 1 + timeout 2) for HAProxy failures, then
    # 4 adverts of 0.05 s + 1 s
    ("kill_haproxy", 4.2),
    ("stop_haproxy", 4.2),
    ("kill_keepalived", 1.2),
    ("link_down", 1.2),
])
def test_budgets_with_the_default_timers(facts, failure, move):
    # restore: interval 1 x rise 2 + timeout 2 + preempt_delay 0 + 4 adverts
    # + 2 s, + HAProxy's server checks inter 1s x rise 2
    assert havip_timing.failover_budgets(facts(), failure) == pytest.approx((move, 8.2))


def test_budgets_follow_the_configured_timers(facts):
    def slow(config):
        config["keepalived"].update(advert_int=2, preempt_delay=5)
        config["keepalived"]["check"].update(interval=2, fall=3, timeout=3, rise=4)
        config["backend"]["check"].update(inter="1500ms", rise=3)
    config = facts(slow)
    # move: 2 x 3 + 3 + 4 x 2 + 1; restore: 2 x 4 + 3 + 5 + 4 x 2 + 2 + 1.5 x 3
    assert havip_timing.failover_budgets(config, "kill_haproxy") == (18.0, 30.5)
    assert havip_timing.failover_budgets(config, "kill_keepalived") == (9.0, 30.5)


@pytest.mark.parametrize("value, seconds", [("1s", 1), ("500ms", 0.5), ("2000", 2), ("2m", 120), ("100us", 1e-4)])
def test_haproxy_seconds_reads_haproxys_time_syntax(value, seconds):
    assert havip_timing.haproxy_seconds(value) == pytest.approx(seconds)


def test_keepalived_restarts_after_a_peers_master_down_interval_and_1_s():
    assert havip_timing.keepalived_restart_delay({"advert_int": 0.05}) == "1200ms"
    assert havip_timing.keepalived_restart_delay({"advert_int": 1}) == "5000ms"
    assert havip_timing.keepalived_restart_delay({"advert_int": 0.07}) == "1280ms"


def test_move_budget_is_the_master_down_interval_the_preempt_delay_and_2_s():
    assert havip_timing.move_budget({"advert_int": 0.05, "preempt_delay": 0}) == pytest.approx(2.2)
    assert havip_timing.move_budget({"advert_int": 1, "preempt_delay": 5}) == 11.0


@pytest.mark.parametrize("timeout, seconds", [(None, 30.0), (0.5, 0.5), (3600, 3600.0)])
def test_wait_limit_takes_seconds_up_to_the_limit(timeout, seconds):
    assert havip_timing.wait_limit("drain", timeout) == seconds


def test_wait_limit_names_the_function_and_the_limit():
    with pytest.raises(CommandExecutionError,
                       match=r"^havip.drain: timeout must be above 0 and at most 3600 s, got 3601$"):
        havip_timing.wait_limit("drain", 3601)

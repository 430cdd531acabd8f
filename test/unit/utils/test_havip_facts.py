"""
Unit tests of ``_utils/havip_facts.py``: the facts the module, the runner,
the validation and the templates share, as keepalived and the failover
test read them.
"""

import havip_facts
import pytest

# keepalived: a track_file's value times its weight is added to the
# priority (at most 254), kept at 1 or above; from -254 on, the instance
# goes to FAULT.
KEEPALIVED_FAULT = -254
HIGHEST_PRIORITY = 254


def test_the_standby_weight_is_keepaliveds_largest():
    assert havip_facts.STANDBY_WEIGHT == -havip_facts.MAX_WEIGHT == -253


def test_standby_lowest_drops_every_priority_to_1_without_a_fault():
    added = havip_facts.STANDBY_LOWEST * havip_facts.STANDBY_WEIGHT
    assert added > KEEPALIVED_FAULT
    assert HIGHEST_PRIORITY + added <= 1


def test_standby_fault_puts_the_instances_in_fault_and_in_service_adds_nothing():
    assert havip_facts.STANDBY_FAULT * havip_facts.STANDBY_WEIGHT <= KEEPALIVED_FAULT
    assert havip_facts.IN_SERVICE * havip_facts.STANDBY_WEIGHT == 0


def test_every_failure_says_what_it_leaves_when_the_restore_fails():
    assert set(havip_facts.FAILURE_LEFT) == set(havip_facts.FAILURES)
    assert havip_facts.FAILURE_LEFT["stop_haproxy"].format(holder="svr1") == "HAProxy stays stopped on svr1"


@pytest.mark.parametrize("failure", havip_facts.FAILURES)
def test_a_known_failure_passes(failure):
    assert havip_facts.unknown_failure(failure) is None


def test_an_unknown_failure_lists_the_known_ones():
    assert havip_facts.unknown_failure("kill_nginx") == (
        "unknown failure 'kill_nginx' (known: kill_haproxy, stop_haproxy, kill_keepalived, link_down)")

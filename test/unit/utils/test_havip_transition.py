"""_utils/havip_transition.py: a reported transition's checks, the
minion's confirmation, the rate limit's file."""

import havip_transition
import pytest

NOW = 1_764_670_000.0


@pytest.mark.parametrize("at", [NOW, NOW - 300, NOW + 300, int(NOW)])
def test_a_finite_time_near_the_masters_clock_is_accepted(at):
    assert havip_transition.problem("svr1", "VI_1", "MASTER", "BACKUP", at, NOW) is None


@pytest.mark.parametrize("at", [float("nan"), float("inf"), float("-inf"), True, False, "1.5", None, NOW + 300.5])
def test_any_other_time_is_refused(at):
    assert havip_transition.problem("svr1", "VI_1", "MASTER", "BACKUP", at, NOW).startswith(f"at {at!r} refused")


@pytest.mark.parametrize("answer", [None, "MASTER", {"vips": []}, {"vips": {"VI_1": "MASTER"}},
                                    {"vips": {"VI_1": {"state": "MASTER", "since": True}}},
                                    {"vips": {"VI_1": {"state": "MASTER", "since": float("nan")}}},
                                    {"vips": {"VI_1": {"state": "MASTER", "since": NOW + 2}}},
                                    {"vips": {"VI_1": {"state": "MASTER", "since": NOW - 11}}},
                                    {"vips": {"VI_1": {"state": "STOPPED", "since": NOW}}}])
def test_an_answer_that_does_not_say_so_does_not_confirm(answer):
    assert havip_transition.unconfirmed(answer, "VI_1", "MASTER", NOW) is not None


def test_the_state_recorded_before_the_handover_confirms():
    assert havip_transition.unconfirmed({"vips": {"VI_1": {"state": "MASTER", "since": NOW - 3}}},
                                        "VI_1", "MASTER", NOW) is None


def test_the_rate_limit_counts_per_minion_and_forgets_after_its_window(tmp_path):
    path = str(tmp_path / "havip" / "transitions.json")
    assert [havip_transition.admit(path, "svr1", NOW, limit=2) for _ in range(3)] == [True, True, False]
    assert havip_transition.admit(path, "svr2", NOW, limit=2) is True
    assert havip_transition.admit(path, "svr1", NOW + 60, limit=2) is True


def test_a_damaged_count_is_started_over(tmp_path):
    path = tmp_path / "transitions.json"
    path.write_text("{not json")
    assert havip_transition.admit(str(path), "svr1", NOW) is True

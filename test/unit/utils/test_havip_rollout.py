"""
Unit tests of ``_utils/havip_rollout.py``: the rolling deploy's plan and
how it reads the minions' answers (the whole deploy, with its salt calls
faked: test/unit/test_runner.py).
"""

import havip_rollout
import pytest


def labels(steps):
    return [step.label for step in steps]


def test_rollout_order_is_backends_then_idle_balancers_then_holders(facts):
    order, holding = havip_rollout.rollout_order(facts(), {"VI_1": ["svr1"]})
    assert (order, holding) == (["nginx1", "nginx2", "svr2", "svr1"], {"svr1"})


def test_a_backend_is_drained_and_readied_on_every_balancer(facts):
    steps = havip_rollout.node_steps(facts(), "nginx1", holds=False)
    assert labels(steps) == ["drain nginx1 on svr1, svr2", "apply nginx1", "check nginx1",
                             "ready nginx1 on svr1, svr2"]
    assert (steps[0].kwarg, steps[0].timeout) == ({"timeout": 30}, 40)


def test_a_holder_moves_its_vips_away_for_its_apply(facts):
    steps = havip_rollout.node_steps(facts(), "svr1", holds=True)
    assert labels(steps) == ["standby svr1", "apply svr1", "check svr1", "resume svr1"]
    # 4 adverts of 0.05 s + preempt_delay 0 + 2 s, and a salt round trip
    assert steps[0].timeout == pytest.approx(12.2)


def test_givers_of_a_standby_and_of_a_resume(facts):
    config = facts()
    assert havip_rollout.givers(config, "svr1", "havip.standby", {"VI_1": ["svr1"]}) == {"svr1": ["VI_1"]}
    assert havip_rollout.givers(config, "svr2", "havip.standby", {"VI_1": ["svr1"]}) == {}
    assert havip_rollout.givers(config, "svr1", "havip.resume", {"VI_1": ["svr2"]}) == {"svr2": ["VI_1"]}
    assert havip_rollout.givers(config, "svr2", "havip.resume", {"VI_1": ["svr1"]}) == {}


@pytest.mark.parametrize("answer, line", [
    ("ERROR executing 'havip.standby': havip.standby: refused",
     "ERROR executing 'havip.standby': havip.standby: refused"),
    ("Passed invalid arguments to havip.drain: drain() missing 1 required positional argument\n\n    Usage",
     "Passed invalid arguments to havip.drain: drain() missing 1 required positional argument"),
    ("The minion function caused an exception: Traceback (most recent call last):\n  File \"x\", line 1\n"
     "KeyError: 'scur'\n", "KeyError: 'scur'"),
    (["Rendering SLS 'base:havip' failed: Jinja error: havip pillar: havip:nodes:svr1:priority: bad\n; line 3"],
     "Rendering SLS 'base:havip' failed: Jinja error: havip pillar: havip:nodes:svr1:priority: bad"),
], ids=["message", "invalid-arguments", "traceback", "render-errors"])
def test_a_minions_error_is_reported_by_the_line_that_says_what_went_wrong(answer, line):
    assert havip_rollout.error_text(answer) == line

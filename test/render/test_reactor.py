"""
Fast tier: the example reactor (havip/reactor/vrrp.sls) as Salt's jinja +
yaml renderers read it: what a minion's beacon event holds lands in the
one runner call as data, whatever it contains, and nothing is fired here
(the runner announces what it confirmed).
"""

import json
import pathlib

import jinja2
import yaml

REACTOR = pathlib.Path(__file__).resolve().parents[2] / "havip" / "reactor" / "vrrp.sls"


def reactions(minion, transition, claimed=None):
    """The reactor's states for a beacon event of ``minion``; its data's
    ``id`` says ``claimed`` (default ``minion``)."""
    environment = jinja2.Environment(extensions=["jinja2.ext.do"])
    environment.filters["json"] = json.dumps
    text = environment.from_string(REACTOR.read_text()).render(
        data={"id": claimed or minion, **transition}, tag=f"salt/beacon/{minion}/havip/x", opts={})
    return yaml.safe_load(text)


def log_call(states):
    assert sorted(states) == ["havip-reactor-log-transition"]
    return states["havip-reactor-log-transition"]["runner.havip.log_transition"]


def test_a_transition_goes_to_the_runner_and_nothing_is_fired_here():
    states = reactions("svr2", {"vip": "VI_1", "state": "MASTER", "previous": "BACKUP", "at": 1764670000.25})
    assert log_call(states) == [{"args": [
        {"minion": "svr2"}, {"vip": "VI_1"}, {"state": "MASTER"}, {"previous": "BACKUP"}, {"at": 1764670000.25}]}]


def test_the_minion_is_the_one_the_tag_names_for_the_runner_to_ask():
    states = reactions("svr2", {"vip": "VI_1", "state": "BACKUP", "previous": "MASTER", "at": 1.0}, claimed="svr1")
    assert {"minion": "svr2"} in log_call(states)[0]["args"]


def test_what_a_minion_sent_stays_data():
    evil = "VI_1\nhavip-evil:\n  runner.salt.cmd: [{args: [{fun: cmd.run}]}]"
    states = reactions("svr2", {"vip": evil, "state": "MASTER", "previous": "BACKUP", "at": 1.0})
    assert {"vip": evil} in log_call(states)[0]["args"]

"""
Fast tier: the example reactor (havip/reactor/vrrp.sls) as Salt's jinja +
yaml renderers read it: what a minion's beacon event holds lands in the
runner calls as data, whatever it contains.
"""

import json
import pathlib

import jinja2
import yaml

REACTOR = pathlib.Path(__file__).resolve().parents[2] / "havip" / "reactor" / "vrrp.sls"


def reactions(minion, transition):
    environment = jinja2.Environment(extensions=["jinja2.ext.do"])
    environment.filters["json"] = json.dumps
    text = environment.from_string(REACTOR.read_text()).render(
        data={"id": minion, "data": transition}, tag=f"salt/beacon/{minion}/havip/x", opts={})
    return yaml.safe_load(text)


def test_a_transition_is_logged_and_a_new_holder_announced():
    states = reactions("svr2", {"vip": "VI_1", "state": "MASTER", "previous": "BACKUP", "at": 1764670000.25})
    assert states["havip-reactor-log-transition"]["runner.havip.log_transition"] == [{"args": [
        {"minion": "svr2"}, {"vip": "VI_1"}, {"state": "MASTER"}, {"previous": "BACKUP"}, {"at": 1764670000.25}]}]
    assert states["havip-reactor-announce-holder"]["runner.event.send"] == [{"args": [
        {"tag": "havip/vip/VI_1/holder"}, {"data": {"vip": "VI_1", "holder": "svr2", "at": 1764670000.25}}]}]


def test_what_a_minion_sent_stays_data():
    evil = "VI_1\nhavip-evil:\n  runner.salt.cmd: [{args: [{fun: cmd.run}]}]"
    states = reactions("svr2", {"vip": evil, "state": "MASTER", "previous": "BACKUP", "at": 1.0})
    assert sorted(states) == ["havip-reactor-announce-holder", "havip-reactor-log-transition"]
    assert {"vip": evil} in states["havip-reactor-log-transition"]["runner.havip.log_transition"][0]["args"]

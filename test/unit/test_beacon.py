"""
Unit tests of the havip beacon (_beacons/havip.py): what keepalived's notify
script queued goes on the event bus once, oldest first; anything else in
the queue is dropped.
"""

import importlib.util
import json

import havip_facts

from test.saltcall import REPO


def queue(tmp_path, *transitions):
    events = tmp_path / "events"
    events.mkdir(exist_ok=True)
    for index, (vip, previous, state) in enumerate(transitions):
        (events / f"1800000000.{index:04d}.{vip}.json").write_text(json.dumps(
            {"vip": vip, "state": state, "previous": previous, "at": 1800000000 + index}))
    return events


def load_beacon():
    spec = importlib.util.spec_from_file_location("havip_beacon", REPO / "_beacons" / "havip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_beacon_sends_every_queued_transition_once_oldest_first(tmp_path):
    beacon = load_beacon()
    config = [{"events_dir": str(queue(tmp_path, ("VI_1", "UNKNOWN", "BACKUP"), ("VI_1", "BACKUP", "MASTER")))},
              {"interval": 1}]
    assert beacon.validate(config)[0] is True
    (tmp_path / "events" / "0.junk.json").write_text('{"vip": "x\\n", "state": "rm -rf"}')
    sent = beacon.beacon(config)
    assert [(e["tag"], e["previous"]) for e in sent] == [("VI_1/BACKUP", "UNKNOWN"), ("VI_1/MASTER", "BACKUP")]
    assert beacon.beacon(config) == [] and not list((tmp_path / "events").iterdir())


def test_the_beacon_wants_an_absolute_events_dir():
    assert load_beacon().validate([{"events_dir": "relative"}])[0] is False


def test_the_beacon_sends_the_vrrp_states_the_runner_logs():
    assert load_beacon().STATES == havip_facts.VRRP_STATES

"""
Fast tier: keepalived's notify script, as the formula renders it, records
each transition for havip.status, queues it for the havip beacon and
publishes it for Prometheus; the beacon turns the queue into events.
"""

import copy
import importlib.util
import json
import subprocess

import pytest

from test.unit.test_havip_pillar import REPO, SEED
from test.unit.test_pillar_property import render, validated


@pytest.fixture
def notify(tmp_path):
    havip = copy.deepcopy(SEED)
    havip["metrics"] = {"port": 9101}
    havip["lookup"] = {"keepalived": {"state_dir": str(tmp_path / "vrrp"), "events_dir": str(tmp_path / "events"),
                                      "handover_script": str(tmp_path / "handover")},
                       "metrics": {"textfile_dir": str(tmp_path)}}
    # The handover is havip-handover's (tested in the lab): here it only says what it was asked.
    (tmp_path / "handover").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/handover.calls\n')
    (tmp_path / "handover").chmod(0o755)
    script = tmp_path / "notify"
    script.write_text(render("notify.sh.jinja", validated(havip, "svr1"), havip))

    def run(*args):
        subprocess.run(["sh", str(script), *args], check=True)
    return run


def events(tmp_path):
    return [json.loads(path.read_text()) for path in sorted((tmp_path / "events").glob("*.json"))]


def test_each_transition_is_recorded_queued_and_published(notify, tmp_path):
    notify("INSTANCE", "VI_1", "BACKUP", "150")
    notify("INSTANCE", "VI_1", "MASTER", "150")
    notify("GROUP", "G1", "FAULT", "0")  # groups are not VIPs
    assert (tmp_path / "vrrp" / "VI_1").read_text() == "MASTER 150\n"
    assert (tmp_path / "handover.calls").read_text() == "give VI_1\nhold VI_1\n"
    queued = events(tmp_path)
    assert [(e["vip"], e["previous"], e["state"]) for e in queued] == [
        ("VI_1", "UNKNOWN", "BACKUP"), ("VI_1", "BACKUP", "MASTER")]
    assert queued[0]["at"] <= queued[1]["at"]
    prom = (tmp_path / "havip.prom").read_text()
    assert 'havip_vrrp_master{vip="VI_1"} 1\n' in prom
    assert 'havip_vrrp_transitions_total{vip="VI_1",state="MASTER"} 1\n' in prom
    assert 'havip_vrrp_transitions_total{vip="VI_1",state="BACKUP"} 1\n' in prom
    notify("INSTANCE", "VI_1", "FAULT", "150")
    assert 'havip_vrrp_master{vip="VI_1"} 0\n' in (tmp_path / "havip.prom").read_text()


def test_the_queue_keeps_at_most_1000_transitions(notify, tmp_path):
    (tmp_path / "events").mkdir()
    for index in range(1000):
        (tmp_path / "events" / f"1000000000.{index:04d}.VI_1.json").write_text("{}")
    notify("INSTANCE", "VI_1", "MASTER", "150")
    queued = sorted(path.name for path in (tmp_path / "events").glob("*.json"))
    assert len(queued) == 1000 and queued[0] == "1000000000.0001.VI_1.json"


def load_beacon():
    spec = importlib.util.spec_from_file_location("havip_beacon", REPO / "_beacons" / "havip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_beacon_sends_every_queued_transition_once_oldest_first(notify, tmp_path):
    beacon = load_beacon()
    config = [{"events_dir": str(tmp_path / "events")}, {"interval": 1}]
    assert beacon.validate(config)[0] is True
    notify("INSTANCE", "VI_1", "BACKUP", "150")
    notify("INSTANCE", "VI_1", "MASTER", "150")
    (tmp_path / "events" / "0.junk.json").write_text('{"vip": "x\\n", "state": "rm -rf"}')
    sent = beacon.beacon(config)
    assert [(e["tag"], e["previous"]) for e in sent] == [("VI_1/BACKUP", "UNKNOWN"), ("VI_1/MASTER", "BACKUP")]
    assert beacon.beacon(config) == [] and not list((tmp_path / "events").iterdir())


def test_the_beacon_wants_an_absolute_events_dir():
    assert load_beacon().validate([{"events_dir": "relative"}])[0] is False

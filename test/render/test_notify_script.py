"""
Fast tier: keepalived's notify script, as the formula renders it, records
each transition for havip.status, hands the VIP over, queues the transition
for the havip beacon and publishes it for Prometheus.
"""

import json
import subprocess

import pytest

from test.formula import render, validated
from test.saltcall import seed_pillar


def notify_on(tmp_path, balancer, **keepalived):
    """The notify script of ``balancer`` (the seed's pillar, metrics on,
    ``keepalived`` settings), writing under ``tmp_path``; returns a function
    running it as keepalived does."""
    havip = seed_pillar()["havip"]
    havip["metrics"] = {"port": 9101}
    havip["keepalived"] = keepalived
    havip["lookup"] = {"keepalived": {"state_dir": str(tmp_path / "vrrp"), "events_dir": str(tmp_path / "events"),
                                      "handover_script": str(tmp_path / "handover")},
                       "metrics": {"textfile_dir": str(tmp_path)}}
    # The handover is havip-handover's (test_handover_script.py, the lab): here it only says what it was asked.
    (tmp_path / "handover").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/handover.calls\n')
    (tmp_path / "handover").chmod(0o755)
    script = tmp_path / "notify"
    script.write_text(render("notify.sh.jinja", validated(havip, balancer), havip))

    def run(*args):  # with keepalived's umask
        subprocess.run(["sh", "-c", 'umask 077; exec sh "$@"', "sh", str(script), *args], check=True)
    return run


@pytest.fixture
def notify(tmp_path):
    return notify_on(tmp_path, "svr1")


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
    assert (tmp_path / "havip.prom").stat().st_mode & 0o777 == 0o644  # node-exporter's user reads it


def test_the_queue_keeps_at_most_1000_transitions(notify, tmp_path):
    (tmp_path / "events").mkdir()
    for index in range(1000):
        (tmp_path / "events" / f"1000000000.{index:04d}.VI_1.json").write_text("{}")
    notify("INSTANCE", "VI_1", "MASTER", "150")
    queued = sorted(path.name for path in (tmp_path / "events").glob("*.json"))
    assert len(queued) == 1000 and queued[0] == "1000000000.0001.VI_1.json"


def test_metrics_alone_publish_the_states_recorded_so_far(notify, tmp_path):
    """What the formula runs when metrics are turned on after keepalived's
    first transitions (the textfile directory did not exist then)."""
    (tmp_path / "vrrp").mkdir()
    (tmp_path / "vrrp" / "VI_1").write_text("MASTER 150\n")
    notify("METRICS")
    assert 'havip_vrrp_master{vip="VI_1"} 1\n' in (tmp_path / "havip.prom").read_text()
    assert not (tmp_path / "events").exists()  # no transition queued


@pytest.mark.parametrize("balancer, keepalived, preferred", [
    ("svr1", {}, "1"),  # the highest priority for VI_1
    ("svr2", {}, "0"),
    ("svr1", {"preempt": False}, "0"),  # without preemption the holder keeps the VIP: none is preferred
])
def test_every_vip_says_whether_it_prefers_this_balancer(tmp_path, balancer, keepalived, preferred):
    """What the alerts read for the VIPs of the configuration and their
    preferred holders (havip/metrics/alerts.yml), before any transition."""
    notify_on(tmp_path, balancer, **keepalived)("METRICS")
    prom = (tmp_path / "havip.prom").read_text()
    assert [line for line in prom.splitlines() if line.startswith("havip_vrrp_preferred")] == [
        f'havip_vrrp_preferred{{vip="VI_1"}} {preferred}']
    assert "# TYPE havip_vrrp_preferred gauge\n" in prom

"""
Fast tier: keepalived's notify script, as the formula renders it, records
each transition for havip.status, hands the VIP over, queues the transition
for the havip beacon and publishes it for Prometheus.
"""

import fcntl
import json
import subprocess
import threading

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
    # The handover is havip-handover's (test_handover_script.py, the lab): here it says what it was asked,
    # and it holds the VIP (on its interface, where keepalived adds it) while the file `holding` exists.
    (tmp_path / "handover").write_text(f'#!/bin/sh\n[ "$1" = holding ] && exec test -e {tmp_path}/holding\n'
                                       f'echo "$@" >> {tmp_path}/handover.calls\n')
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


def keepalived(tmp_path, state):
    """The VIP on its interface or not, as keepalived leaves it before it
    runs the notify script for ``state``."""
    (tmp_path / "holding").unlink(missing_ok=True)
    if state == "MASTER":
        (tmp_path / "holding").touch()


def test_each_transition_is_recorded_queued_and_published(notify, tmp_path):
    notify("INSTANCE", "VI_1", "BACKUP", "150")
    keepalived(tmp_path, "MASTER")
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
    keepalived(tmp_path, "FAULT")
    notify("INSTANCE", "VI_1", "FAULT", "150")
    assert 'havip_vrrp_master{vip="VI_1"} 0\n' in (tmp_path / "havip.prom").read_text()
    assert (tmp_path / "havip.prom").stat().st_mode & 0o777 == 0o644  # node-exporter's user reads it


@pytest.mark.parametrize("older, newer", [("MASTER", "BACKUP"), ("BACKUP", "MASTER"), ("FAULT", "MASTER")])
def test_a_run_for_a_state_keepalived_has_left_already_only_queues_its_transition(notify, tmp_path, older, newer):
    """A short flap: keepalived ran the script for ``older`` and at once for
    ``newer``, and the run for ``older`` came last."""
    keepalived(tmp_path, newer)
    notify("INSTANCE", "VI_1", newer, "150")
    notify("INSTANCE", "VI_1", older, "150")
    assert (tmp_path / "vrrp" / "VI_1").read_text() == f"{newer} 150\n"
    assert (tmp_path / "handover.calls").read_text() == f"{'hold' if newer == 'MASTER' else 'give'} VI_1\n"
    assert [e["state"] for e in events(tmp_path)] == [newer, older]
    assert f'havip_vrrp_transitions_total{{vip="VI_1",state="{older}"}} 1\n' in (tmp_path / "havip.prom").read_text()


def test_runs_for_one_vip_wait_for_each_other(notify, tmp_path):
    """keepalived does not wait for the script: a run waits for the one
    before it (the lock), then acts."""
    (tmp_path / "vrrp").mkdir()
    with open(tmp_path / "vrrp" / ".VI_1.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiting = threading.Thread(target=notify, args=("INSTANCE", "VI_1", "BACKUP", "150"))
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive() and not (tmp_path / "vrrp" / "VI_1").exists()
    waiting.join(10)
    assert (tmp_path / "vrrp" / "VI_1").read_text() == "BACKUP 150\n"


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

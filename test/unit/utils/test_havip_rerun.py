"""
Unit tests of ``_utils/havip_rerun.py``: the record of what each rolling
deploy drained and has not readied since, and the nodes its rerun takes
first (the whole deploy, with its salt calls faked: test/unit/test_runner.py).
"""

import json
import os
import stat

import havip_rerun
import pytest
from havip_rollout import server_step

CLUSTER = "nginx1,nginx2,svr1,svr2"


def statuses(**servers):
    """The balancers' havip.status, each balancer's backends as given."""
    return {balancer: {"haproxy": {"backends": backends}} for balancer, backends in servers.items()}


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "havip" / "deploy-drained.json")


def test_a_drain_is_recorded_where_it_went_through_and_a_ready_takes_it_away(facts, path):
    record = havip_rerun.Record(path, facts(), "havip")
    record.note(server_step("drain", "nginx2", ["svr1", "svr2"]), {"svr1": {}})
    assert havip_rerun.read(path) == {CLUSTER: {"havip": {"nginx2": ["svr1"]}}}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    record.note(server_step("drain", "nginx2", ["svr1", "svr2"]), {"svr1": {}, "svr2": {}})
    record.note(server_step("ready", "nginx2", ["svr1", "svr2"]), {"svr2": {}})
    assert havip_rerun.Record(path, facts(), "havip").servers == {"nginx2": ["svr1"]}
    record.note(server_step("ready", "nginx2", ["svr1", "svr2"]), {"svr1": {}, "svr2": {}})
    assert havip_rerun.read(path) == {}


def test_each_cluster_and_kind_of_deploy_has_its_own_entry(facts, path):
    havip_rerun.write(path, {"other,cluster": {"havip": {"web/app1": ["lb1"]}},
                             CLUSTER: {"shop.app": {"nginx1": ["svr2"]}}})
    record = havip_rerun.Record(path, facts(), "havip")
    assert record.servers == {}
    record.note(server_step("drain", "nginx2", ["svr1", "svr2"]), {"svr1": {}, "svr2": {}})
    assert havip_rerun.read(path) == {"other,cluster": {"havip": {"web/app1": ["lb1"]}},
                                      CLUSTER: {"shop.app": {"nginx1": ["svr2"]},
                                                "havip": {"nginx2": ["svr1", "svr2"]}}}


def test_a_save_that_fails_leaves_the_record_as_it_was_and_nothing_beside_it(facts, path, monkeypatch):
    record = havip_rerun.Record(path, facts(), "havip")
    record.note(server_step("drain", "nginx2", ["svr1", "svr2"]), {"svr1": {}})

    def full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full)
    record.note(server_step("drain", "nginx2", ["svr1", "svr2"]), {"svr2": {}})  # let go: the record only helps
    assert havip_rerun.read(path) == {CLUSTER: {"havip": {"nginx2": ["svr1"]}}}
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]


@pytest.mark.parametrize("text", [
    "not json", "[]", json.dumps({CLUSTER: ["nginx2"]}), json.dumps({CLUSTER: {"havip": ["nginx2"]}}),
    json.dumps({CLUSTER: {"havip": {"nginx3": ["svr1"], "nginx2": "svr1", "nginx1": ["svr3", 5]}}}),
])
def test_what_the_record_says_of_no_server_of_the_cluster_on_its_balancers_is_not_kept(facts, path, text):
    os.makedirs(os.path.dirname(path))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    assert havip_rerun.Record(path, facts(), "havip").servers == {}


@pytest.mark.parametrize("svr1, svr2, first", [
    ("DRAIN", "DRAIN", ["nginx2"]),
    ("DRAIN (agent)", "UP", ["nginx2"]),  # HAProxy restarted on svr2: still out on svr1
    ("UP", "UP", []),                     # readied by hand
    ("MAINT", "DOWN", []),                # not a drain
    ("DRAINED", None, []),                # not HAProxy's word; unknown
])
def test_a_rerun_takes_first_the_nodes_whose_recorded_drain_a_balancer_still_shows(facts, path, svr1, svr2, first):
    record = havip_rerun.Record(path, facts(), "havip")
    record.note(server_step("drain", "nginx2", ["svr1", "svr2"]), {"svr1": {}, "svr2": {}})
    now = statuses(svr1={"nginx1": "UP", "nginx2": svr1}, svr2={"nginx1": "UP", "nginx2": svr2})
    assert record.still_drained(now) == first
    # What a balancer no longer shows drained is not the deploy's anymore.
    assert havip_rerun.Record(path, facts(), "havip").servers == (
        {"nginx2": [b for b, state in (("svr1", svr1), ("svr2", svr2)) if havip_rerun.drained(state)]}
        if first else {})


def test_a_drain_on_a_balancer_the_record_does_not_name_is_not_the_deploys(facts, path):
    record = havip_rerun.Record(path, facts(), "havip")
    record.note(server_step("drain", "nginx2", ["svr1", "svr2"]), {"svr1": {}})
    assert record.still_drained(statuses(svr1={"nginx2": "UP"}, svr2={"nginx2": "DRAIN"})) == []


def test_first_puts_the_nodes_left_drained_ahead_in_their_order():
    assert havip_rerun.first(["nginx1", "nginx2", "svr2", "svr1"], ["svr1", "nginx2"]) == [
        "nginx2", "svr1", "nginx1", "svr2"]

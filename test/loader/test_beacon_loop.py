"""
The formula's beacon configuration run by Salt's own beacon machinery
(``salt.beacons.Beacon`` over the real loader): a transition keepalived's
notify script queued goes out at the minion's next beacon loop, which
Salt runs once a second, whatever the minion's ``loop_interval``.  (Salt
counts a beacon's ``interval`` in loop_intervals: ``interval: 1`` on a
minion with ``loop_interval: 0.05``, salt-factories' default, sent the
queue once every 20 loops, 20 s after the transition at worst.)
"""

import json

import pytest
import salt.beacons
import salt.config

from test.saltcall import DEBIAN_GRAINS, REPO, seed_pillar

# What beacon.present keeps for itself; the rest is the beacon's configuration.
STATE_ARGS = {"fun", "name", "save", "enable", "order", "__sls__", "__env__", "__id__"}


def beacon_config(salt_call, events_dir):
    """The havip beacon's configuration as the formula's state gives it to
    the minion (a list of one-key dicts), its queue moved to ``events_dir``."""
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(seed_pillar(), sls="havip.events")
    state = states["havip-events-beacon"]
    config = [{key: value} for key, value in state.items() if key not in STATE_ARGS]
    return [{"events_dir": str(events_dir)} if "events_dir" in item else item for item in config]


@pytest.mark.parametrize("loop_interval", [1, 0.05])
def test_a_queued_transition_goes_out_at_the_minions_next_beacon_loop(salt_call, tmp_path, loop_interval):
    events_dir = tmp_path / "events"
    events_dir.mkdir()
    opts = salt.config.minion_config(None)
    opts.update({"id": "svr1", "loop_interval": loop_interval, "beacons_dirs": [str(REPO / "_beacons")]})
    beacons = salt.beacons.Beacon(opts, {})
    config = {"havip": beacon_config(salt_call, events_dir)}
    assert beacons.process(config, {}) == []  # the first loop: nothing queued
    (events_dir / "1800000000.1.VI_1.json").write_text(json.dumps(
        {"vip": "VI_1", "state": "MASTER", "previous": "BACKUP", "at": 1800000000.1}))
    sent = beacons.process(config, {})
    assert [event["tag"] for event in sent] == ["salt/beacon/svr1/havip/VI_1/MASTER"]
    assert not list(events_dir.iterdir())

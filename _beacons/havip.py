"""
The havip beacon: every VRRP transition of this balancer's VIPs on the Salt
event bus, as keepalived's notify script (havip/files/notify.sh.jinja)
queued it.  The formula configures it (havip/events/init.sls):

.. code-block:: yaml

    beacons:
      havip:
        - events_dir: /run/havip/events

It runs at every beacon loop of the minion, once a second (no
``interval``: Salt counts it in the minion's ``loop_interval``).

Each transition becomes one event tagged
``salt/beacon/<minion id>/havip/<vip>/<state>`` with the data ``vip``,
``state`` (MASTER, BACKUP, FAULT, STOP), ``previous`` and ``at`` (when it
happened, seconds since the epoch).
"""

import json
import os

__virtualname__ = "havip"
# havip_facts.VRRP_STATES: Salt's beacon loader does not put the synced
# _utils on a beacon's path, so a copy (test/unit/test_beacon.py keeps it equal).
STATES = {"MASTER", "BACKUP", "FAULT", "STOP", "DELETED", "UNKNOWN"}


def __virtual__():
    return __virtualname__


def _config(config):
    merged = {}
    for item in config if isinstance(config, list) else [config]:
        merged.update(item)
    return merged


def validate(config):
    """The beacon needs ``events_dir``, an absolute path."""
    events_dir = _config(config).get("events_dir")
    if not isinstance(events_dir, str) or not os.path.isabs(events_dir):
        return False, "havip beacon: events_dir must be an absolute path"
    return True, "valid havip beacon configuration"


def _event(path):
    """The transition a queued file holds, or None if it is not one."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and isinstance(data.get("vip"), str) and data.get("state") in STATES
            and data.get("previous") in STATES and isinstance(data.get("at"), (int, float))):
        return None
    return {"tag": f"{data['vip']}/{data['state']}", **{key: data[key] for key in ("vip", "state", "previous", "at")}}


def beacon(config):
    """Every transition queued since the last run, oldest first; each file
    is removed once read."""
    events_dir = _config(config)["events_dir"]
    try:
        names = sorted(name for name in os.listdir(events_dir) if name.endswith(".json"))
    except FileNotFoundError:
        return []
    events = []
    for name in names:
        path = os.path.join(events_dir, name)
        event = _event(path)
        os.unlink(path)
        if event:
            events.append(event)
    return events

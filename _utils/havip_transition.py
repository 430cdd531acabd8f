"""
A VRRP transition a beacon event reported, as ``salt-run
havip.log_transition`` checks it before the master logs and announces it:
its fields, its time against the master's clock, the claimed minion's own
answer (``havip.status``) confirming it, and a rate limit per minion.

An event on the master's bus does not say which minion sent it (a beacon
event's tag and data are both written by the minion), so the transition is
believed only when the minion it names confirms it in a job return, which
the master keys by the id it authenticated.

Pure helpers: the clock and the rate limit's file come in as arguments (no
Salt dunders).
"""

import fcntl
import json
import math
import os
import re

from havip_contract import NAME
from havip_facts import VRRP_STATES

# How far a transition's time may be from the master's clock (seconds).
CLOCK_SKEW = 300
# The notify script records the state, hands the VIP over, then takes the
# time it queues: the state file's mtime precedes ``at`` by the handover.
HANDOVER_SLACK = 10
# At most this many transitions accepted per minion per minute.
RATE_LIMIT = 60
RATE_WINDOW = 60
# The transitions counted, in the master's cachedir.
COUNTED = "havip/transitions.json"


def problem(minion, vip, state, previous, at, now):
    """Why the transition is refused as it came (the field named), or None."""
    for key, value, valid in (("minion", minion, _is_name), ("vip", vip, _is_name), ("state", state, _is_state),
                              ("previous", previous, _is_state)):
        if not valid(value):
            return f"{key} {value!r} refused"
    if not (isinstance(at, (int, float)) and not isinstance(at, bool) and math.isfinite(at)):
        return f"at {at!r} refused: not a finite number of seconds since the epoch"
    if abs(at - now) > CLOCK_SKEW:
        return f"at {at!r} refused: more than {CLOCK_SKEW} s from the master's clock ({now:.3f})"
    return None


def _is_name(value):
    return isinstance(value, str) and re.fullmatch(NAME, value) is not None


def _is_state(value):
    return isinstance(value, str) and value in VRRP_STATES


def unconfirmed(answer, vip, state, at):
    """Why the minion's ``havip.status`` ``answer`` does not confirm that
    ``vip`` went to ``state`` at ``at``, or None when it does: that VIP's
    recorded state is ``state`` (STOPPED for a STOP: keepalived no longer
    runs) and its time is the transition's."""
    if not isinstance(answer, dict) or not isinstance(answer.get("vips"), dict):
        return "it did not answer havip.status"
    entry = answer["vips"].get(vip)
    if not isinstance(entry, dict):
        return f"it has no VIP {vip}"
    expected = ("STOP", "STOPPED") if state == "STOP" else (state,)
    if entry.get("state") not in expected:
        return f"its {vip} is {entry.get('state')!r}, not {state}"
    since = entry.get("since")
    if not (isinstance(since, (int, float)) and not isinstance(since, bool) and math.isfinite(since)
            and since - 1 <= at <= since + HANDOVER_SLACK):
        return f"its {vip} has been {state} since {since!r}, not since {at!r}"
    return None


def admit(path, minion, now, limit=RATE_LIMIT, window=RATE_WINDOW):
    """Count one accepted transition of ``minion`` at ``now`` in the file at
    ``path`` ({minion: [times]}, under an exclusive lock) and return True;
    return False, counting nothing, when ``limit`` were accepted in the last
    ``window`` seconds."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        try:
            counted = json.loads(handle.read() or "{}")
        except ValueError:
            counted = {}
        recent = {name: [t for t in times if now - window < t <= now]
                  for name, times in counted.items() if isinstance(times, list)}
        if len(recent.get(minion, [])) >= limit:
            return False
        recent[minion] = [*recent.get(minion, []), now]
        handle.seek(0)
        handle.truncate()
        json.dump({name: times for name, times in recent.items() if times}, handle)
        return True

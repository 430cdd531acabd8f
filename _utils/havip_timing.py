"""
How long things take in a havip cluster: HAProxy's time syntax, the limits
of a wait, and the budgets of a VIP move and of a failover, from the
configured timers.

Pure helpers: they take what they need as arguments (no Salt dunders).
"""

import re

from havip_facts import WAIT_DEFAULT, WAIT_LIMIT
from salt.exceptions import CommandExecutionError

# An HAProxy time: a number, in milliseconds unless a unit follows.
HAPROXY_TIME = r"([0-9]{1,9})(us|ms|s|m|h|d)?"
HAPROXY_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def haproxy_seconds(value):
    """Seconds of an HAProxy time (the pillar validation checked it): 1s,
    500ms, 2000 (ms)."""
    number, unit = re.fullmatch(HAPROXY_TIME, str(value)).groups()
    return int(number) * HAPROXY_UNITS[unit or "ms"]


def wait_limit(function, timeout):
    """``timeout`` as seconds (None: WAIT_DEFAULT), refused unless above 0
    and at most WAIT_LIMIT."""
    timeout = WAIT_DEFAULT if timeout is None else timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= WAIT_LIMIT:
        raise CommandExecutionError(f"havip.{function}: timeout must be above 0 and at most {WAIT_LIMIT} s,"
                                    f" got {timeout!r}")
    return float(timeout)


def master_down(keepalived):
    """Seconds a backup takes to see the master gone: its master-down
    interval, 3 adverts + skew (< 4 adverts)."""
    return 4 * float(keepalived["advert_int"])


def keepalived_restart_delay(keepalived):
    """systemd's RestartSec= of a keepalived that died (a crash, kill -9),
    as milliseconds: a backup's master-down interval and 1 s more, so that
    a peer has taken the VIPs (and sent its gratuitous ARP / NA) before the
    restarted keepalived removes the copies the dead one left on its
    interfaces: the clients are on the peer by then, none is cut off."""
    return f"{round((master_down(keepalived) + 1.0) * 1000)}ms"


def move_budget(keepalived):
    """Seconds a planned VIP move (havip.standby, havip.resume) may take: a
    backup's master-down interval, the preempt delay, and 2 s for the
    transitions."""
    return master_down(keepalived) + keepalived["preempt_delay"] + 2.0


def failover_budgets(config, failure):
    """Seconds the VIP may take to move, and the cluster to be restored,
    after ``failure``, from the configured timers: detection (health check
    interval x fall + timeout, for HAProxy failures), a backup's master-down
    interval and 1 s for the transition itself; restoring adds the check's
    rise, the preempt delay, and HAProxy's rise of the backend servers (a
    link that came back)."""
    keepalived = config["keepalived"]
    check = keepalived["check"]
    detect = check["interval"] * check["fall"] + check["timeout"] if failure.endswith("haproxy") else 0
    move = detect + master_down(keepalived) + 1.0
    servers = config["backend"]["check"]
    restore = (check["interval"] * check["rise"] + check["timeout"] + keepalived["preempt_delay"]
               + master_down(keepalived) + 2.0 + haproxy_seconds(servers["inter"]) * servers["rise"])
    return move, restore

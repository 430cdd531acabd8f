"""
The facts of a havip cluster that the execution module, the runner, the
pillar validation and the tests share, each defined here once: where the
formula puts things, the failures a test may inject, the limits of a wait,
HAProxy's time syntax, the budgets of a VIP move, URLs and the preferred
holders of the VIPs.

Pure helpers: they take what they need as arguments (no Salt dunders).
"""

import difflib
import re

import salt.utils.network
from salt.exceptions import CommandExecutionError

# Written by the formula (havip/facts.sls): the validated configuration.
FACTS_FILE = "/etc/havip/havip.json"
# The HAProxy backend section that holds the havip backend servers.
HAPROXY_BACKEND = "havip_backends"
# The Salt mine entry where a backend publishes its addresses (havip/mine.sls).
MINE_FUNCTION = "havip_address"
# ... and where a balancer publishes its interfaces' addresses, for the
# other balancers' handover relays.
RELAY_FUNCTION = "havip_relay_addresses"
# What keeps a balancer from announcing the VIPs it keeps on lo (the formula
# sets them).
ARP_SYSCTLS = {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2}
# The handover (havip/files/handover.sh.jinja): the holder keeps each VIP
# also on this device, where it stays for the connections in flight when the
# VIP leaves; a balancer that gave a VIP up relays through the nftables table
# RELAY_TABLE_PREFIX + <VIP name> (family ip or ip6); table inet TRACK_TABLE
# keeps conntrack on.
LINGER_DEVICE = "lo"
RELAY_TABLE_PREFIX = "havip_relay_"
TRACK_TABLE = "havip_track"
# Seconds a VIP may stay on LINGER_DEVICE after its VRRP state changed,
# beyond the handover's release_max, before havip.check calls it stuck.
RELEASE_GRACE = 5

# The VRRP states keepalived's notify script reports (and UNKNOWN, the
# previous state of a VIP's first transition): what the havip beacon sends
# and the runner's havip.log_transition accepts.  The beacon keeps a copy
# (Salt's beacon loader does not put _utils on its path); a unit test keeps
# the two equal.
VRRP_STATES = frozenset({"MASTER", "BACKUP", "FAULT", "STOP", "DELETED", "UNKNOWN"})

# What havip.inject breaks, and so what the failover test may ask for.
FAILURES = ("kill_haproxy", "stop_haproxy", "kill_keepalived", "link_down")
# What each failure leaves on ``{holder}`` until state.apply havip restores it.
FAILURE_LEFT = {
    "kill_haproxy": "HAProxy was killed on {holder} (its unit restarts it)",
    "stop_haproxy": "HAProxy stays stopped on {holder}",
    "kill_keepalived": "keepalived stays down on {holder}, its VIPs still there (a second holder)",
    "link_down": "the links of {holder} come back by their timers (havip-link-restore-<interface>)",
}
# The longest link_down (seconds).  Its restore is scheduled before the
# link goes down, as a transient systemd timer LINK_RESTORE_LATE s after the
# duration (an `ip -batch` file in LINK_RESTORE_DIR), so the link comes back
# even if the Salt job is killed meanwhile.
LINK_DOWN_MAX = 120
LINK_RESTORE_LATE = 2
LINK_RESTORE_DIR = "/run/havip"

# Seconds a server may take to drain or be UP again, and a VIP's old holder
# to finish its connections: the default of havip.drain and havip.ready,
# what the rolling deploy gives them, and the handover's release_max.
WAIT_DEFAULT = 30
# The longest wait or probe any havip function accepts (seconds).
WAIT_LIMIT = 3600
# One salt round trip to a minion: the runner's polls never wait longer.
CALL_TIMEOUT = 10
# The runner's lock, under the master's cachedir: one failover test,
# deploy, standby or resume at a time.
RUNNER_LOCK = "havip/runner.lock"

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


def unknown_failure(failure):
    """Why ``failure`` is none of FAILURES, or None."""
    if failure in FAILURES:
        return None
    return f"unknown failure {failure!r} (known: {', '.join(FAILURES)})"


def unknown_key(names, known):
    """(the first of ``names`` not in ``known``, why: "unknown key (did you
    mean <the nearest known one>? known: ...)"), or None if all are known."""
    extra = sorted(str(name) for name in names if name not in known)
    if not extra:
        return None
    near = difflib.get_close_matches(extra[0], [str(k) for k in known], n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}? " if near else ""
    return extra[0], f"unknown key ({hint}known: {', '.join(map(str, known))})"


def master_down(keepalived):
    """Seconds a backup takes to see the master gone: its master-down
    interval, 3 adverts + skew (< 4 adverts)."""
    return 4 * float(keepalived["advert_int"])


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


def url(address, port, path="/"):
    """An HTTP URL of the IP ``address``, an IPv6 one in brackets (Salt's
    ``ip_bracket``, as the templates' ``ipwrap`` filter)."""
    return f"http://{salt.utils.network.ip_bracket(address)}:{port}{path}"


def frontend_url(config, vip=None):
    """The URL of the frontend on ``vip`` (default: the first VIP)."""
    vip = vip or sorted(config["vips"])[0]
    return url(config["vips"][vip]["address"], config["frontend"]["port"])


def cluster_identity(config):
    """What tells a havip cluster from another: its node names and its VIPs
    (name, address, virtual router id)."""
    return (tuple(sorted(config["nodes"])),
            tuple(sorted((name, vip["address"], vip["virtual_router_id"]) for name, vip in config["vips"].items())))


def clusters(configs):
    """The configurations grouped by cluster: [[config, ...], ...].  Those of
    one identity are one cluster; so are identities that share a node (a
    minion has one havip pillar: they are one cluster before and after a
    change that not every node has applied yet)."""
    groups = []
    for identity in sorted({cluster_identity(config) for config in configs}):
        joined = [group for group in groups if set(identity[0]) & group["nodes"]]
        merged = {"identities": {identity}, "nodes": set(identity[0])}
        for group in joined:
            merged["identities"] |= group["identities"]
            merged["nodes"] |= group["nodes"]
            groups.remove(group)
        groups.append(merged)
    return [[config for config in configs if cluster_identity(config) in group["identities"]] for group in groups]


def cluster_config(configs, tgt):
    """The configuration of the one cluster of the minions matching ``tgt``,
    from ``configs`` ({minion: its configuration as the master derives it
    from the pillar it compiles for that minion; None without havip
    nodes}).  Refused when they belong to several clusters (a master may
    serve several: a test of one must not break another)."""
    found = clusters([config for _, config in sorted(configs.items()) if config])
    if not found:
        raise ValueError(f"no minion matching {tgt!r} has a havip pillar on this master"
                         " (salt-run pillar.show_pillar <minion> shows what it compiles)")
    if len(found) > 1:
        names = [sorted({name for config in group for name in config["nodes"]}) for group in found]
        shown = ["{" + ", ".join(group) + "}" for group in names]
        raise ValueError(
            f"the minions matching {tgt!r} belong to {len(found)} havip clusters: {', '.join(shown[:-1])}"
            f" and {shown[-1]}; target one with tgt (e.g. tgt='{','.join(names[0])}' tgt_type=list)")
    return found[0][0]


# What an OS family's parameters set (havip/parameters/os_family/*.yaml):
# the nodes of one cluster may differ there, nowhere else.
HOST_KEYS = ("lookup", "firewall", "selinux")


def disagreement(config, configs):
    """Why the pillars of the cluster's nodes do not make one cluster, or
    None: ``configs`` ({minion: its configuration as the master derives
    it, None without havip nodes}) must hold, for every node of ``config``,
    the same configuration (but for HOST_KEYS)."""
    def shared(other):
        return {key: value for key, value in other.items() if key not in HOST_KEYS}
    for name in sorted(config["nodes"]):
        other = configs.get(name)
        if other is None:
            return f"{name} is a node of the cluster but the master compiles no havip pillar for it"
        differing = sorted(key for key in set(shared(config)) | set(shared(other))
                           if config.get(key) != other.get(key))
        if differing:
            return (f"the master compiles another havip pillar for {name} (havip:{differing[0]} differs):"
                    " every node of a cluster needs the same one")
    return None


def probing_client(config, client, pillar_key):
    """The minion that probes: ``client``, else the first node that is not
    a balancer (``pillar_key`` names where to set one)."""
    if client:
        return client
    others = [name for name, node in sorted(config["nodes"].items()) if "balancer" not in node["roles"]]
    if not others:
        raise ValueError("every node is a balancer: name the probing minion"
                         f" (pillar {pillar_key})")
    return others[0]


def preferred_vips(config, name):
    """The VIPs balancer ``name`` should hold when every balancer is in
    service (it comes first in their ``order``)."""
    return sorted(vip for vip, entry in config["vips"].items() if entry["order"][0] == name)


def preferred_holders(config, usable):
    """{vip: the balancer that should hold it}: the most preferred (the VIP's
    ``order``, as keepalived ranks priorities) among ``usable``."""
    return {name: next((b for b in vip["order"] if b in usable), None)
            for name, vip in sorted(config["vips"].items())}

"""
Health verdicts, side by side: a node's (``havip.check``: what is wrong
with this minion, from its ``havip.status``) and the cluster's (the
runner's ``havip.status``: the VIPs' holders against the preferred ones,
every node's verdict, and whether another balancer could take over).

Pure helpers: they judge the reports they are given (no Salt dunders).
"""

import havip_answers
import havip_servers
from havip_cluster import preferred_holders
from havip_facts import LINGER_DEVICE, RELEASE_GRACE, TRACK_TABLE
from havip_haproxy import any_up

# ---- a node ---------------------------------------------------------------------

# The handover's rule, written here once: havip-handover
# (havip/files/handover.sh.jinja) follows it on every VRRP transition and
# state.apply, and its `check` and handover_problems below check it.
#
# A client's connection in flight when its neighbour entry for a VIP changes
# sends its next packets to the new holder, which never saw it begin.  So,
# in this order:
#  1. conntrack is on (table inet TRACK_TABLE) before anything else, and
#     stays on: a relay knows a connection as this host's own only if
#     conntrack saw it begin;
#  2. the holder (MASTER) stops a release still running for its VIP, then
#     keeps the VIP also on LINGER_DEVICE, where it stays when keepalived
#     takes it off the interface;
#  3. a balancer giving a VIP up (BACKUP, FAULT, STOP) loads its relay first
#     (table ip|ip6 RELAY_TABLE_PREFIX<name>: the packets of connections it
#     did not see begin go to the other balancers, and the one that kept
#     the VIP serves them), and only then starts the release of its copy;
#  4. the release takes the copy off once no connection on the VIP was seen
#     for 1 s, after release_max s at the latest, unless the VIP came back
#     (MASTER) meanwhile;
#  5. the relay stays when the VIP comes back (conntrack saw the holder's
#     own connections begin: they are not relayed), so that as the new
#     holder it passes the old holder's connections on.  Only havip.clean
#     (or the VIP leaving the pillar) removes it.
# In order, then: conntrack on; a VIP held on LINGER_DEVICE; a VIP not held
# relayed (where another balancer has an address of its family) and off
# LINGER_DEVICE, or on it while its release runs (release_max s, which
# havip.check stretches by RELEASE_GRACE s: the release is not watched).


def handover_problems(report, facts, now):
    """What is wrong with a balancer's handover (havip-handover), against
    the handover's rule above, from its ``havip.status`` and its deployed
    ``facts`` at time ``now``: a VIP still kept on lo long after it left, a
    VIP it does not hold without a relay to its peers, conntrack's table
    missing."""
    problems = []
    late = facts["handover"]["release_max"] + RELEASE_GRACE
    for name, vip in sorted(report["vips"].items()):
        age = None if vip["since_s"] is None else now - vip["since_s"]
        if vip["lingering"] and (age is None or age > late):
            problems.append(f"VIP {name} is still kept on {LINGER_DEVICE}" + ("" if age is None else f" {age:.0f} s")
                            + " after it left (its handover did not end: state.apply havip ends it)")
        if not vip["held"] and name not in report["relay"] and facts["vips"][name]["relay_to"]:
            problems.append(f"no handover relay for VIP {name} here: state.apply havip sets it up")
    if not report["tracking"]:
        problems.append(f"conntrack is not kept on for the handover here (no table inet {TRACK_TABLE}):"
                        " state.apply havip sets it up")
    return problems


def balancer_problems(report):
    """What is wrong with a balancer's daemons, from its ``havip.status``."""
    problems = []
    if not report["keepalived"]["running"]:
        problems.append("keepalived is not running")
    haproxy = report["haproxy"]
    if not haproxy["running"]:
        problems.append("HAProxy is not running")
    if not haproxy["config_valid"]:
        problems.append("HAProxy's configuration does not pass `haproxy -c`")
    if "error" in haproxy:
        problems.append(haproxy["error"])
    elif haproxy["running"]:
        problems += pools_down(haproxy)
    if not report["standby"]:
        problems.extend(
            f"VRRP instance {name} is in FAULT"
            for name, vip in report["vips"].items() if vip["state"] == "FAULT"
        )
    return problems


def pools_down(haproxy):
    """A reason for each pool with no server UP, from ``havip.status``'s
    ``haproxy``: its ``backends`` by pool, and every pool of its ``pools``
    (one whose servers HAProxy does not show has none UP).  Today's pair
    keeps today's words."""
    pools = {pool: {} for pool in haproxy.get("pools") or {}}
    for shown, state in haproxy["backends"].items():
        pool, server = havip_servers.split(shown)
        pools.setdefault(pool, {})[server] = state
    reasons = []
    for pool, states in sorted(pools.items()):
        if not any_up(states):
            servers = ", ".join(f"{server} {state}" for server, state in sorted(states.items())) or "none"
            reasons.append(f"no backend server is UP in HAProxy ({servers})" if havip_servers.bare(pools)
                           else f"no server is UP in pool {pool} ({servers})")
    return reasons


def backend_problems(nginx):
    """What is wrong with a backend, from its ``havip.status``'s ``nginx``."""
    if not nginx["running"]:
        return ["nginx is not running"]
    if not nginx["answering"]:
        return [f"nginx does not answer 200 on {nginx['url']}"]
    return []


def node_verdict(report, facts, now):
    """``havip.check``'s verdict on a node's ``havip.status``, with its
    deployed ``facts``, at time ``now``."""
    reasons = []
    if "balancer" in report["roles"]:
        reasons += balancer_problems(report) + handover_problems(report, facts, now)
    if "backend" in report["roles"]:
        reasons += backend_problems(report["nginx"])
    return {"healthy": not reasons, "reasons": reasons, "standby": report.get("standby", False)}


# ---- the cluster ----------------------------------------------------------------


def holders(config, statuses):
    """{vip: [balancers that have its address configured]}, from their
    ``havip.status`` ({balancer: status})."""
    return {
        vip: sorted(name for name, status in statuses.items()
                    if status.get("vips", {}).get(vip, {}).get("held"))
        for vip in sorted(config["vips"])
    }


def survey(config, statuses, checks):
    """The cluster's verdict from every node's ``havip.status`` and
    ``havip.check`` (those that answered, checked by havip_answers.verdicts):
    the holders, the preferred holders among the balancers in service,
    each pool's servers and each service across the balancers
    (havip_answers.across_balancers), and the problems."""
    names = sorted(config["nodes"])
    balancers = [n["name"] for n in config["balancers"]]
    problems = [f"{name} did not answer" for name in names if name not in checks]
    problems += [f"{name}: {reason}" for name, check in sorted(checks.items()) for reason in check["reasons"]]
    usable = [b for b in balancers if checks.get(b, {}).get("healthy") and not checks[b]["standby"]]
    preferred = preferred_holders(config, usable)
    held = holders(config, {b: statuses[b] for b in balancers if b in statuses})
    for vip, names_holding in held.items():
        address = config["vips"][vip]["address"]
        if len(names_holding) > 1:
            problems.append(f"split brain: VIP {vip} ({address}) is held by {' and '.join(names_holding)}")
        elif not names_holding:
            problems.append(f"VIP {vip} ({address}) has no holder")
        elif config["keepalived"]["preempt"] and preferred[vip] and names_holding[0] != preferred[vip]:
            problems.append(f"VIP {vip} ({address}) is held by {names_holding[0]},"
                            f" not by the preferred {preferred[vip]}")
    for vip, names_holding in held.items():
        if len(names_holding) == 1 and not set(usable) - set(names_holding):
            problems.append(f"no other healthy balancer could take over VIP {vip} from {names_holding[0]}")
    pools, services, seen, listing = havip_answers.across_balancers(config, statuses)
    problems += seen + pool_problems(pools, [b for b in listing if b in checks and not checks[b]["standby"]])
    return {"holders": held, "preferred": preferred, "usable": usable, "pools": pools, "services": services,
            "checks": checks, "statuses": statuses, "problems": problems}


def pool_problems(pools, in_service):
    """The problems of the pools across the balancers ({pool: {server:
    {balancer: status}}}): a pool with no server UP on a balancer
    ``in_service`` (those that listed their pools), and a server UP on one
    balancer and DOWN on another (DRAIN and MAINT are neither)."""
    problems = []
    for pool, servers in pools.items():
        none_up = [b for b in in_service if not any((seen[b] or "").startswith("UP") for seen in servers.values())]
        if none_up:
            problems.append(f"no server is UP in pool {pool} on {', '.join(none_up)} ({seen_by(servers)})")
        for server, seen in servers.items():
            up = [b for b, state in seen.items() if (state or "").startswith("UP")]
            down = [b for b, state in seen.items() if (state or "").startswith("DOWN")]
            if up and down:
                problems.append(f"server {server} of pool {pool} is UP on {', '.join(up)}"
                                f" and DOWN on {', '.join(down)}")
    return problems


def seen_by(servers):
    """What each balancer sees of a pool's servers: 'svr1: app1 DOWN,
    app2 MAINT; svr2: ...' (a server it does not list: 'unknown')."""
    balancers = list(next(iter(servers.values()), {}))
    return "; ".join(f"{b}: " + ", ".join(f"{server} {seen[b] or 'unknown'}" for server, seen in servers.items())
                     for b in balancers)


def node_summary(check):
    """A node's verdict in a word or a sentence, for the runner's report."""
    if check["healthy"]:
        return "healthy" + (" (standby)" if check["standby"] else "")
    return "unhealthy: " + "; ".join(check["reasons"])


def cluster_view(config, surveyed):
    """The runner's ``havip.status`` report of a :py:func:`survey`: each
    VIP's address, holders and preferred holder, each node's verdict, each
    service's frontend status ({service: {balancer: status}}) and each
    pool's servers' ({pool: {server: {balancer: status}}}) in every
    balancer's HAProxy (None: not known there), the problems."""
    return {
        "vips": {vip: {"address": config["vips"][vip]["address"], "holders": holders,
                       "preferred": surveyed["preferred"][vip]}
                 for vip, holders in surveyed["holders"].items()},
        "nodes": {name: node_summary(check) for name, check in sorted(surveyed["checks"].items())},
        "services": surveyed["services"],
        "pools": surveyed["pools"],
        "problems": surveyed["problems"],
    }


def leftovers(config, statuses):
    """What a failed rollout step (or an operator) left behind, from the
    balancers' ``havip.status``: balancers on standby, backend servers out
    of rotation in a balancer's HAProxy."""
    found, out = [], {}
    for balancer in config["balancers"]:
        name = balancer["name"]
        status = statuses.get(name, {})
        if status.get("standby"):
            found.append(f"{name} is on standby (havip.resume on {name} ends it)")
        for server, state in sorted((status.get("haproxy", {}).get("backends") or {}).items()):
            kind = next((word for key, word in havip_servers.OUT_OF_ROTATION.items() if state.startswith(key)), None)
            if kind:
                out.setdefault((server, kind), []).append(name)
    found += [f"{server} is {kind} on {', '.join(names)} (havip.ready {server} there puts it back)"
              for (server, kind), names in sorted(out.items())]
    return found


def servers_up(config, statuses):
    """{balancer: the backend servers its HAProxy has UP}."""
    return {b["name"]: sorted(server for server, state in
                              (statuses[b["name"]].get("haproxy", {}).get("backends") or {}).items()
                              if state.startswith("UP"))
            for b in config["balancers"] if b["name"] in statuses}


def servers_not_back(before, now):
    """'nginx1 not UP on svr1' for every server UP before that is not now."""
    return [f"{server} not UP on {name} (it was before the test)"
            for name, servers in sorted(before.items())
            for server in servers if server not in now.get(name, [])]


def show(held):
    """{vip: holders} on one line: 'VI_1: svr1, VI_2: none'."""
    return ", ".join(f"{vip}: {' + '.join(names) or 'none'}" for vip, names in held.items())

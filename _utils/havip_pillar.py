"""
The checks across the keys of the havip pillar, and what the states derive
from it.  ``validate`` takes the merged configuration (defaults <- OS family
<- pillar), checks every key against the contract (havip_contract) and the
keys against each other, and returns it without its secrets, with the
derived data, or raises ``Invalid`` naming the key.  Data a minion published
in the Salt mine passes the same checks as the pillar (havip_mine); what a
node listens on and what firewalld opens is havip_firewall's.  Pure: what is known
of the minion (its id, interfaces, own addresses, the mine) is passed in.
"""

import ipaddress
import re

import havip_firewall
import havip_mine
import havip_services
import havip_timing
from havip_contract import SPEC, public, walk
from havip_facts import (
    ARP_SYSCTLS,
    BACKENDS_ANSWER_TIMEOUT,
    CHECK_ADDRESS,
    FACTS_FILE,
    FACTS_STATE,
    HAPROXY_BACKEND,
    IN_SERVICE,
    LINGER_DEVICE,
    LINK_FAULT_HOLD,
    LINK_LOST,
    LINK_NODES,
    LINK_PING_GAP,
    LINK_TABLE,
    MAX_WEIGHT,
    MINE_FUNCTION,
    NFT_FAMILIES,
    RELAY_FUNCTION,
    RELAY_TABLE_PREFIX,
    STANDBY_FAULT,
    STANDBY_LOWEST,
    STANDBY_WEIGHT,
    TRACK_TABLE,
    WAIT_DEFAULT,
)
from havip_haproxy import stats_socket
from havip_values import Invalid, canonical_address, parse_address
from salt.exceptions import CommandExecutionError

# Passwords copied from examples and tutorials: refused.
PLACEHOLDERS = {"change-me", "changeme", "change_me", "password", "passw0rd", "admin", "secret",
                "s3cret", "haproxy", "123456", "12345678", "default", "example", "test"}
# The oldest releases havip's configs work with: HAProxy 2.4 (`http-request
# return`, `disable-l7-retry`, its Prometheus exporter) and keepalived 2.2
# (VRRPv3 sub-second adverts, track_file), and the oldest distribution
# releases that ship them (by grain os, else os_family).
MINIMUM_VERSIONS = {"haproxy": (2, 4), "keepalived": (2, 2)}
MINIMUM_RELEASES = {"Debian": 12, "Ubuntu": 22, "RedHat": 9}

def _vrrp_rank(address, priority):
    """VRRP's order: the higher priority wins (ties are refused)."""
    return priority, int(ipaddress.ip_address(address))


def _node(name, node, mine_args, minion_id, ip_addrs, mine_get):
    key = f"nodes:{name}"
    roles = node["roles"]
    if "address" in node:
        address = canonical_address(node["address"])
    elif mine_args and "balancer" not in roles:
        address = havip_mine.discovered_address(name, mine_args, minion_id, ip_addrs, mine_get)
    else:
        raise Invalid(f"{key}:address", "is required" + (
            "" if "balancer" in roles else " (or set havip:mine to take it from the Salt mine)"))
    entry = {"name": name, "roles": sorted(set(roles)), "address": address, "discovered": "address" not in node}
    if "balancer" in roles:
        if "priority" not in node:
            raise Invalid(f"{key}:priority", "is required for a balancer (a whole number from 1 to 254, no two"
                                             " balancers alike)")
        entry["priority"] = node["priority"]
    elif "priority" in node:
        raise Invalid(f"{key}:priority", "only balancers have a priority")
    if "backend" in roles or "page" in node:
        # The page a backend serves: by default its name (the minion id).
        entry["page"] = node.get("page", name)
    return entry


def _nodes(config, mine_args, minion_id, ip_addrs, mine_get):
    nodes = {str(name): _node(str(name), node, mine_args, minion_id, ip_addrs, mine_get)
             for name, node in (config.get("nodes") or {}).items()}
    taken = {}
    for entry in nodes.values():
        if entry["address"] is None:
            continue
        other = taken.setdefault(entry["address"], entry["name"])
        if other != entry["name"]:
            raise Invalid(f"nodes:{entry['name']}:address", f"{entry['address']} is also {other}'s")
    return nodes


def _vip_priorities(name, vip, nodes, balancers):
    """Each balancer's priority for one VIP (``priorities`` overrides the
    node's), the balancers from the most to the least preferred, and the
    weight of keepalived:track_backends: one more than the priorities'
    spread, so that a balancer that sees no backend server UP ranks below
    every one that sees one."""
    key = f"vips:{name}:priorities"
    overrides = {str(node): value for node, value in (vip.get("priorities") or {}).items()}
    for node in overrides:
        if node not in balancers:
            raise Invalid(f"{key}:{node}", f"is not a balancer (balancers: {', '.join(balancers)})")
    priorities = {node: overrides.get(node, nodes[node]["priority"]) for node in balancers}
    seen = {}
    for node in balancers:
        other = seen.setdefault(priorities[node], node)
        if other != node:
            where = f"{key}:{node}" if node in overrides else f"nodes:{node}:priority"
            raise Invalid(where, f"{priorities[node]} is also {other}'s priority for VIP {name}: keepalived"
                                 " would break the tie by address; give every balancer its own priority")
    spread = max(priorities.values()) - min(priorities.values()) if priorities else 0
    weight = -(spread + 1)
    if weight < -MAX_WEIGHT:
        raise Invalid(key, f"the balancers' priorities for {name} span {spread}: keepalived:track_backends"
                           f" needs a weight of {weight}, beyond keepalived's -{MAX_WEIGHT}")
    order = sorted(balancers, key=lambda n: _vrrp_rank(nodes[n]["address"], priorities[n]), reverse=True)
    return priorities, order, weight


def _vip(name, vip, nodes, balancers):
    key = f"vips:{name}"
    interface = parse_address(vip["address"], ipaddress.ip_interface)
    entry = {
        "name": name,
        "address": str(interface.ip),
        "cidr": interface.with_prefixlen,
        "family": interface.version,
        "nft_family": NFT_FAMILIES[interface.version],
        "interface": vip["interface"],
        "virtual_router_id": vip["virtual_router_id"],
        "unicast": vip.get("unicast", SPEC["vips"].spec["unicast"].default),
        # keepalived.conf reads auth_pass from the pillar (a secret).
        "authenticated": "auth_pass" in vip,
    }
    entry["priorities"], entry["order"], entry["track_backends_weight"] = _vip_priorities(name, vip, nodes, balancers)
    if entry["unicast"]:
        for node in balancers:
            if ipaddress.ip_address(nodes[node]["address"]).version != entry["family"]:
                raise Invalid(f"{key}:unicast", f"needs IPv{entry['family']} balancer addresses, and {node}'s"
                                                f" is {nodes[node]['address']}")
    return entry


def _vips(config, nodes, balancers):
    vips = config.get("vips") or {}
    if balancers and not vips:
        raise Invalid("vips", f"balancers ({', '.join(balancers)}) need at least one VIP")
    if vips and not balancers:
        raise Invalid("vips", "no node has the role balancer to hold these VIPs")
    checked = {str(name): _vip(str(name), vip, nodes, balancers) for name, vip in vips.items()}
    router_ids, addresses = {}, {node["address"]: f"nodes:{node['name']}" for node in nodes.values()}
    for entry in checked.values():
        rid = (entry["interface"], entry["family"], entry["virtual_router_id"])
        other = router_ids.setdefault(rid, entry["name"])
        if other != entry["name"]:
            raise Invalid(f"vips:{entry['name']}:virtual_router_id",
                          f"{entry['virtual_router_id']} is already used by vips:{other} on {entry['interface']}")
        other = addresses.setdefault(entry["address"], f"vips:{entry['name']}")
        if other != f"vips:{entry['name']}":
            raise Invalid(f"vips:{entry['name']}:address", f"{entry['address']} is also {other}'s address")
    return checked


def _check_keepalived(config, vips):
    keepalived = config["keepalived"]
    version, advert = keepalived["vrrp_version"], keepalived["advert_int"]
    if version == 3 and not (0.01 <= advert <= 40.95 and abs(advert * 100 - round(advert * 100)) < 1e-9):
        raise Invalid("keepalived:advert_int", f"must be 0.01-40.95 s in steps of 0.01 with vrrp_version 3,"
                                               f" got {advert!r}")
    if version == 2 and not (advert == int(advert) and 1 <= advert <= 255):
        raise Invalid("keepalived:advert_int", f"must be whole seconds from 1 to 255 with vrrp_version 2,"
                                               f" got {advert!r}")
    for vip in vips.values():
        if version == 3 and vip["authenticated"]:
            raise Invalid(f"vips:{vip['name']}:auth_pass", "VRRPv3 has no authentication (vrrp_version 3)")
        if version == 2 and vip["family"] == 6:
            raise Invalid(f"vips:{vip['name']}:address", "an IPv6 VIP needs keepalived:vrrp_version 3")
    check = keepalived["check"]
    if not check["answer_timeout"] < check["interval"]:
        raise Invalid("keepalived:check:answer_timeout", "must be a number of seconds from 0 to below"
                      f" keepalived:check:interval, got {check['answer_timeout']!r}")
    longest = check["answer_timeout"] + (check["interval"] - 0.1 if check["watch"] else 0)
    if longest >= check["timeout"]:
        raise Invalid("keepalived:check:timeout",
                      f"must be above the {longest:g} s a check may take (answer_timeout + watch)")


def _link_targets(nodes, me):
    """The nodes keepalived:track_link's check pings from balancer ``me``
    (None: the master's view, pinging from no node): every other balancer,
    and the first LINK_NODES nodes that are not balancers by name, the
    same on every balancer (the first by name even when the mine has not
    given its address yet: then it is not pinged)."""
    balancers = sorted(name for name, node in nodes.items() if "balancer" in node["roles"])
    others = sorted(name for name, node in nodes.items() if "balancer" not in node["roles"])[:LINK_NODES]
    return [name for name in balancers + others if name != me]


def _link_check(check, nodes, vips, me):
    """keepalived:track_link's check (havip/files/check-link.sh.jinja): the
    addresses it pings (:py:func:`_link_targets`' addresses, canonical,
    sorted), how long each run pings (until just before the next run,
    within the check's timeout with the hold), the gap between two pings, the pings
    each address must leave unanswered, and how long the run that first
    sees a loss holds its balancer in FAULT (0 without another balancer to
    take the VIPs); the nftables table where it counts the other balancers'
    VRRP adverts, and the VIPs' virtual router ids by nftables family."""
    me = me["name"] if me else None
    peers = [name for name, node in nodes.items() if "balancer" in node["roles"] and name != me]
    addresses = sorted({nodes[name]["address"] for name in _link_targets(nodes, me)
                        if nodes[name]["address"] is not None},
                       key=lambda address: (ipaddress.ip_address(address).version, ipaddress.ip_address(address)))
    hold = LINK_FAULT_HOLD if peers else 0
    return {"addresses": addresses, "watch": round(min(check["interval"], check["timeout"] - hold) - 0.1, 1),
            "gap": LINK_PING_GAP, "lost": LINK_LOST, "hold": hold, "table": LINK_TABLE,
            "vrids": {family: sorted({vip["virtual_router_id"] for vip in vips.values() if vip["nft_family"] == family})
                      for family in sorted({vip["nft_family"] for vip in vips.values()})}}


def _check_ports(config, nodes, services):
    """No two of a balancer's listeners on one port (two services' ports on
    distinct addresses are havip_services' to check)."""
    ports = havip_firewall.listening_ports(config, services)
    service_ports = {key for service in services for key in service["ports"]}
    seen = {}
    for key, number in ports.items():
        other = seen.setdefault(number, key)
        if other != key and not {key, other} <= service_ports:
            raise Invalid(key, f"{number} is also {other}")
    both = [n["name"] for n in nodes.values() if {"backend", "balancer"} <= set(n["roles"])]
    backend = config["backend"]["port"]
    if both and backend in seen:
        raise Invalid("backend:port", f"{backend} is also {seen[backend]}, and {both[0]} is backend and balancer")
    return ports


def _check_stats(config):
    stats = config["stats"]
    password = stats.get("password")
    if password is None or password == "":
        raise Invalid("stats:password", "is required (there is no default password)")
    if password.lower() in PLACEHOLDERS:
        raise Invalid("stats:password", "is a well-known placeholder: choose a password of your own")
    seen = {}
    for key in ("uri", "monitor_uri", "backends_uri"):
        other = seen.setdefault(stats[key], key)
        if other != key:
            raise Invalid(f"stats:{key}", f"must differ from stats:{other}")


def _check_haproxy(config):
    if stats_socket(config["haproxy"]) is None:
        raise Invalid("haproxy:global", "needs a `stats socket <path> ... level admin` line (in global or"
                                        " global_extra): havip.status, drain and ready use HAProxy's runtime"
                                        " API")


def _frontend_tls(model, legacy):
    """frontend:tls's derived keys (today's frontend): ``enabled``, its
    certificate's ``serial`` and ``not_after``."""
    tls = model["services"][0]["tls"] if legacy else {"enabled": False, "certificates": []}
    return {"enabled": tls["enabled"], **{key: certificate[key] for certificate in tls["certificates"]
                                          for key in ("serial", "not_after")}}


def _check_interfaces(vips, interfaces):
    """A balancer's VIP interfaces must exist on it (``interfaces``: its
    interface names, from grains)."""
    for vip in vips.values():
        if vip["interface"] not in interfaces:
            raise Invalid(f"vips:{vip['name']}:interface", f"{vip['interface']} does not exist on this balancer"
                                                           f" (it has {', '.join(sorted(interfaces))})")


def validate(config, minion_id=None, ip_addrs=None, mine_get=None, interfaces=None):
    """The merged configuration checked, without its secrets (the states
    and havip.config never get them), plus what the states derive from it:
    ``nodes`` and ``vips`` normalised (every backend with its ``page``, every
    VIP with ``priorities``, ``order`` - the balancers from the most to the
    least preferred -, ``track_backends_weight`` and ``nft_family``),
    ``vip_families``, ``backends``/``balancers``, this minion's ``node`` and
    ``roles``, ``mine_function``/``mine_args``, ``arp_sysctls``,
    ``keepalived_restart_sec`` (systemd's RestartSec= of keepalived),
    ``facts_file``/``facts_state``, ``haproxy_backend``, the ``handover``'s
    and the ``standby`` file's facts, where keepalived's ``checks`` ask, what
    this node ``listen``s on and what ``firewalld`` opens, the
    ``services`` and ``pools`` (havip_services' model: today's frontend
    and backend are one service and one pool of it) and the
    ``certificate_files`` havip/haproxy/config.sls tidies.  ``ip_addrs`` and
    ``mine_get`` stand for network.ip_addrs and mine.get (needed with
    havip:mine), ``interfaces`` for this minion's interface names (its
    grains)."""
    walk(SPEC, config)
    config = dict(config)
    mine_args = havip_mine.mine_args(config["mine"])
    nodes = _nodes(config, mine_args, minion_id, ip_addrs, mine_get)
    balancers = sorted(name for name, node in nodes.items() if "balancer" in node["roles"])
    backends = sorted(name for name, node in nodes.items() if "backend" in node["roles"])
    legacy = "services" not in config and "pools" not in config
    if balancers and legacy and not backends:
        raise Invalid("nodes", "balancers need at least one node with the role backend")
    me = nodes.get(str(minion_id)) if minion_id is not None else None
    vips = _vips(config, nodes, balancers)
    model = havip_services.derive(config, nodes, vips)
    if me and "balancer" in me["roles"]:
        for name in havip_services.server_nodes(model):
            if nodes[name]["address"] is None:
                raise Invalid(f"nodes:{name}:address",
                              f"is not in the Salt mine yet ({MINE_FUNCTION}): apply havip on {name} first")
        havip_mine.relays(vips, nodes, balancers, me, mine_get)
        if interfaces is not None:
            _check_interfaces(vips, interfaces)
    ports = _check_ports(config, nodes, model["services"])
    _check_keepalived(config, vips)
    _check_haproxy(config)
    if balancers:
        _check_stats(config)
    config["frontend"] = {**config["frontend"], "bind": [canonical_address(a) for a in config["frontend"]["bind"]],
                          "tls": {**config["frontend"]["tls"], **_frontend_tls(model, legacy)}}
    config.update(model, certificate_files=havip_services.certificate_files(
        config["lookup"]["haproxy"]["certificate"], model["services"]))
    listen = havip_firewall.listen(config, nodes, balancers, me)
    config["firewall"] = {**config["firewall"], "admin_sources": havip_firewall.admin_sources(config)}
    config.update(
        nodes=nodes,
        vips=vips,
        listen=listen,
        firewalld=havip_firewall.firewall(config, vips, ports, nodes, balancers, me),
        vip_families=sorted({vip["family"] for vip in vips.values()}),
        backends=[nodes[name] for name in backends],
        balancers=[nodes[name] for name in balancers],
        node=me,
        roles=me["roles"] if me else [],
        facts_file=FACTS_FILE,
        facts_state=FACTS_STATE,
        haproxy_backend=HAPROXY_BACKEND,
        mine_function=MINE_FUNCTION,
        relay_function=RELAY_FUNCTION,
        # The handover (havip/files/handover.sh.jinja): a VIP's old holder
        # keeps it on ``device`` at most ``release_max`` s for its
        # connections; the tables of its relays and of conntrack.
        handover={"release_max": WAIT_DEFAULT, "device": LINGER_DEVICE,
                  "relay_table_prefix": RELAY_TABLE_PREFIX, "track_table": TRACK_TABLE,
                  "nft_families": sorted(NFT_FAMILIES.items())},
        # keepalived's standby file (havip.standby): its weight and levels.
        standby={"weight": STANDBY_WEIGHT, "in_service": IN_SERVICE, "lowest": STANDBY_LOWEST,
                 "fault": STANDBY_FAULT},
        # Where keepalived's checks ask HAProxy, and how long its check of
        # stats:backends_uri (keepalived:track_backends) waits for an answer.
        checks={"address": CHECK_ADDRESS,
                "backends_answer_timeout": config["keepalived"]["check"]["answer_timeout"] or BACKENDS_ANSWER_TIMEOUT,
                "link": _link_check(config["keepalived"]["check"], nodes, vips, me)},
        mine_args=mine_args,
        arp_sysctls=dict(ARP_SYSCTLS),
        # systemd starts a keepalived that died again after this delay.
        keepalived_restart_sec=havip_timing.keepalived_restart_delay(config["keepalived"]),
    )
    return public(config)


def _major_minor(version):
    """(2, 6) of '2.6.12-1+deb12u4' or '2:2.2.7-1' (an epoch first)."""
    match = re.match(r"(?:\d+:)?(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2])) if match else None


def check_platform(grains, versions):
    """Refuse a platform below the minimums: the distribution release from
    ``grains``, the installed HAProxy and keepalived from ``versions``
    ({package: installed version, '' when not installed})."""
    name = grains.get("os") if grains.get("os") in MINIMUM_RELEASES else grains.get("os_family")
    release = grains.get("osmajorrelease")
    if name in MINIMUM_RELEASES and isinstance(release, int) and release < MINIMUM_RELEASES[name]:
        raise CommandExecutionError(
            f"havip: {grains.get('os')} {grains.get('osrelease', release)} is not supported: havip needs"
            " Debian 12, Ubuntu 22.04, RHEL 9 (or a rebuild of it) or newer"
            f" (HAProxy >= {'.'.join(map(str, MINIMUM_VERSIONS['haproxy']))},"
            f" keepalived >= {'.'.join(map(str, MINIMUM_VERSIONS['keepalived']))})")
    for package, minimum in MINIMUM_VERSIONS.items():
        found = _major_minor(versions.get(package) or "")
        if found and found < minimum:
            raise CommandExecutionError(
                f"havip: {package} {versions[package]} is installed here; havip needs {package}"
                f" >= {'.'.join(map(str, minimum))}")

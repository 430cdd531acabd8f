"""
The havip pillar's validation: the merged configuration (defaults, OS
family, pillar) checked key by key, every mistake refused with a message
that names the pillar key, and returned with the derived data the states
use.  ``havip.validate`` (the execution module) calls :py:func:`validate`
for the formula's ``post-map.jinja``.

Pure helpers: what the validation needs of the minion comes in as
arguments (no Salt dunders).
"""

import ipaddress
import json
import re

from havip_facts import (
    ARP_SYSCTLS,
    FACTS_FILE,
    HAPROXY_BACKEND,
    HAPROXY_TIME,
    MINE_FUNCTION,
    VIP_NAME,
)
from salt.exceptions import CommandExecutionError

ROLES = ("backend", "balancer")
MODES = ("tcp", "http")
TOP_KEYS = {
    "nodes", "vips", "frontend", "backend", "stats", "haproxy", "keepalived",
    "firewall", "selinux", "mine", "lookup",
}
NODE_KEYS = {"roles", "address", "priority", "page"}
VIP_KEYS = {"address", "interface", "virtual_router_id", "auth_pass", "priorities", "unicast"}
ON_ERROR = ("mark-down", "fail-check", "sudden-death", "fastinter", None)


class _Invalid(CommandExecutionError):
    """A pillar value the formula refuses; the message names its key."""

    def __init__(self, key, problem):
        super().__init__(f"havip pillar: havip:{key}: {problem}")


def _mapping(value, key):
    if not isinstance(value, dict):
        raise _Invalid(key, f"must be a mapping, got {value!r}")
    return value


def _unknown_keys(entry, allowed, key):
    extra = sorted(set(entry) - allowed)
    if extra:
        raise _Invalid(f"{key}:{extra[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _integer(value, key, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Invalid(key, f"must be a whole number from {low} to {high}, got {value!r}")
    return value


def _text(value, key):
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(key, "is required and must be a non-empty string")
    return value


def _address(value, key):
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise _Invalid(key, f"{value!r} is not an IP address") from None


def _vip_address(value, key):
    """A VIP is an address with an optional prefix length, e.g. 10.0.0.10/24."""
    if not isinstance(value, str):
        raise _Invalid(key, f"{value!r} is not an IP address")
    try:
        interface = ipaddress.ip_interface(value)
    except ValueError:
        raise _Invalid(key, f"{value!r} is not an IP address (with optional /prefix)") from None
    return interface


def _mine_args(config):
    """network.ip_addrs' arguments for the addresses a backend publishes in
    the Salt mine (havip:mine), or None when the mine is not used."""
    mine = _mapping(config.get("mine"), "mine")
    args = {}
    if mine.get("network") is not None:
        try:
            args["cidr"] = str(ipaddress.ip_network(mine["network"]))
        except (TypeError, ValueError):
            raise _Invalid("mine:network", f"{mine['network']!r} is not a network like 10.0.0.0/24") from None
    if mine.get("interface") is not None:
        args["interface"] = _text(mine["interface"], "mine:interface")
    return args or None


def _discovered_address(name, mine_args, minion_id, ip_addrs, mine_get):
    """A backend's address: this minion's own from its interfaces
    (``ip_addrs``), another's from the Salt mine (``mine_get``); None if it
    has not published one yet."""
    if name == minion_id:
        found = ip_addrs(**mine_args)
        if not found:
            raise _Invalid(f"nodes:{name}:address", f"this minion has no address matching havip:mine {mine_args}")
    else:
        found = (mine_get(name, MINE_FUNCTION) or {}).get(name)
    return found[0] if found else None


def _check_node(name, node, roles_seen, mine_args, minion_id, ip_addrs, mine_get):
    key = f"nodes:{name}"
    node = _mapping(node, key)
    _unknown_keys(node, NODE_KEYS, key)
    roles = node.get("roles")
    if not isinstance(roles, list) or not roles:
        raise _Invalid(f"{key}:roles", f"must be a non-empty list of {' / '.join(ROLES)}")
    for role in roles:
        if role not in ROLES:
            raise _Invalid(f"{key}:roles", f"unknown role {role!r} (known: {', '.join(ROLES)})")
        roles_seen.setdefault(role, []).append(name)
    if "address" in node:
        address = _address(node["address"], f"{key}:address")
    elif mine_args and "balancer" not in roles:
        address = _discovered_address(name, mine_args, minion_id, ip_addrs, mine_get)
    else:
        raise _Invalid(f"{key}:address", "is required" + (
            "" if "balancer" in roles else " (or set havip:mine to take it from the Salt mine)"))
    entry = {"name": name, "roles": sorted(set(roles)), "address": address, "discovered": "address" not in node}
    if "balancer" in roles:
        entry["priority"] = _integer(node.get("priority", 100), f"{key}:priority", 1, 254)
    elif "priority" in node:
        raise _Invalid(f"{key}:priority", "only balancers have a priority")
    if "page" in node:
        entry["page"] = _text(node["page"], f"{key}:page")
    return entry


def _check_vip(name, vip):
    key = f"vips:{name}"
    if not VIP_NAME.match(name):
        raise _Invalid(key, "a VIP name may hold only letters, digits, '_', '.' and '-'")
    vip = _mapping(vip, key)
    _unknown_keys(vip, VIP_KEYS, key)
    for required in ("address", "interface", "virtual_router_id"):
        if required not in vip:
            raise _Invalid(f"{key}:{required}", "is required")
    interface = _vip_address(vip["address"], f"{key}:address")
    entry = {
        "name": name,
        "address": str(interface.ip),
        "cidr": interface.with_prefixlen,
        "family": interface.version,
        "interface": _text(vip["interface"], f"{key}:interface"),
        "virtual_router_id": _integer(
            vip["virtual_router_id"], f"{key}:virtual_router_id", 1, 255
        ),
    }
    if "auth_pass" in vip:
        entry["auth_pass"] = _text(vip["auth_pass"], f"{key}:auth_pass")
    entry["unicast"] = vip.get("unicast", False)
    if not isinstance(entry["unicast"], bool):
        raise _Invalid(f"{key}:unicast", f"must be true or false, got {entry['unicast']!r}")
    return entry


def _vrrp_rank(address, priority):
    """VRRP's order: the higher priority wins, then the higher address."""
    return priority, int(ipaddress.ip_address(address))


def _vip_priorities(name, vip, nodes, balancers):
    """Each balancer's priority for one VIP (``priorities`` overrides the
    node's), and the balancers in VRRP's order of preference."""
    key = f"vips:{name}:priorities"
    overrides = _mapping(vip.get("priorities") or {}, key)
    for node in overrides:
        if str(node) not in balancers:
            raise _Invalid(f"{key}:{node}", f"is not a balancer (balancers: {', '.join(balancers)})")
    priorities = {
        node: _integer(overrides[node], f"{key}:{node}", 1, 254) if node in overrides else nodes[node]["priority"]
        for node in balancers
    }
    order = sorted(balancers, key=lambda n: _vrrp_rank(nodes[n]["address"], priorities[n]), reverse=True)
    return priorities, order


def _check_nodes(config, mine_args, minion_id, ip_addrs, mine_get):
    nodes = _mapping(config.get("nodes") or {}, "nodes")
    roles = {}
    checked = {str(name): _check_node(str(name), node, roles, mine_args, minion_id, ip_addrs, mine_get)
               for name, node in nodes.items()}
    taken = {}
    for entry in checked.values():
        if entry["address"] is None:
            continue
        other = taken.setdefault(entry["address"], entry["name"])
        if other != entry["name"]:
            raise _Invalid(f"nodes:{entry['name']}:address", f"{entry['address']} is also {other}'s")
    return checked, roles


def _check_vips(config, nodes, balancers):
    vips = _mapping(config.get("vips") or {}, "vips")
    if balancers and not vips:
        raise _Invalid("vips", f"balancers ({', '.join(balancers)}) need at least one VIP")
    if vips and not balancers:
        raise _Invalid("vips", "no node has the role balancer to hold these VIPs")
    checked = {}
    for name, vip in vips.items():
        entry = checked[str(name)] = _check_vip(str(name), vip)
        entry["priorities"], entry["order"] = _vip_priorities(str(name), vip, nodes, balancers)
        if entry["unicast"]:
            _check_unicast_peers(entry, nodes, balancers)
    router_ids, addresses = {}, {}
    for entry in checked.values():
        rid = (entry["interface"], entry["family"], entry["virtual_router_id"])
        other = router_ids.setdefault(rid, entry["name"])
        if other != entry["name"]:
            raise _Invalid(
                f"vips:{entry['name']}:virtual_router_id",
                f"{entry['virtual_router_id']} is already used by vips:{other} on {entry['interface']}",
            )
        other = addresses.setdefault(entry["address"], entry["name"])
        if other != entry["name"]:
            raise _Invalid(f"vips:{entry['name']}:address", f"{entry['address']} is also vips:{other}'s")
    return checked


def _check_discovered(nodes):
    """A balancer needs every backend's address."""
    for name, node in sorted(nodes.items()):
        if node["address"] is None:
            raise _Invalid(f"nodes:{name}:address",
                           f"is not in the Salt mine yet ({MINE_FUNCTION}): apply havip on {name} first")


def _check_unicast_peers(vip, nodes, balancers):
    """Unicast VRRP talks between the balancers' addresses, which must be of
    the VIP's family."""
    for name in balancers:
        if ipaddress.ip_address(nodes[name]["address"]).version != vip["family"]:
            raise _Invalid(f"vips:{vip['name']}:unicast",
                           f"needs IPv{vip['family']} balancer addresses, and {name}'s is"
                           f" {nodes[name]['address']}")


def _check_vip_versions(config, vips):
    if config["keepalived"]["vrrp_version"] == 2:
        for vip in vips.values():
            if vip["family"] == 6:
                raise _Invalid(f"vips:{vip['name']}:address", "an IPv6 VIP needs keepalived:vrrp_version 3")


def _check_ports(config, nodes):
    frontend = _mapping(config.get("frontend"), "frontend")
    backend = _mapping(config.get("backend"), "backend")
    stats = _mapping(config.get("stats"), "stats")
    ports = {
        "frontend:port": _integer(frontend.get("port"), "frontend:port", 1, 65535),
        "backend:port": _integer(backend.get("port"), "backend:port", 1, 65535),
        "stats:port": _integer(stats.get("port"), "stats:port", 1, 65535),
    }
    if frontend.get("mode") not in MODES:
        raise _Invalid("frontend:mode", f"must be one of {', '.join(MODES)}, got {frontend.get('mode')!r}")
    if ports["frontend:port"] == ports["stats:port"]:
        raise _Invalid("stats:port", f"{ports['stats:port']} is also frontend:port")
    both = [n["name"] for n in nodes.values() if len(n["roles"]) == 2]
    for key in ("frontend:port", "stats:port"):
        if both and ports[key] == ports["backend:port"]:
            raise _Invalid(
                "backend:port",
                f"{ports['backend:port']} is also {key}, and {both[0]} is backend and balancer",
            )


def _check_stats(config):
    stats = config["stats"]
    _text(stats.get("user"), "stats:user")
    password = stats.get("password")
    if password is None or password == "":
        raise _Invalid("stats:password", "is required (there is no default password)")
    _text(password, "stats:password")
    for key, forbidden in (("user", "':\n"), ("password", "'\n")):
        if any(c in str(stats[key]) for c in forbidden):
            raise _Invalid(f"stats:{key}", f"must not contain any of {forbidden!r}")
    seen = {}
    for key in ("uri", "monitor_uri", "backends_uri"):
        uri = _text(stats.get(key), f"stats:{key}")
        if not uri.startswith("/") or any(c.isspace() for c in uri):
            raise _Invalid(f"stats:{key}", f"must be a path starting with / and without spaces, got {uri!r}")
        if uri in seen:
            raise _Invalid(f"stats:{key}", f"must differ from stats:{seen[uri]}")
        seen[uri] = key


def _check_tuning(config):
    """The optional timers and switches, where a wrong type would only show
    up as a daemon refusing its config."""
    keepalived = _mapping(config.get("keepalived"), "keepalived")
    version = keepalived.get("vrrp_version")
    if version not in (2, 3):
        raise _Invalid("keepalived:vrrp_version", f"must be 2 or 3, got {version!r}")
    advert = keepalived.get("advert_int")
    if isinstance(advert, bool) or not isinstance(advert, (int, float)) or not 0 < advert <= 255:
        raise _Invalid("keepalived:advert_int", f"must be a number of seconds, got {advert!r}")
    if version == 2 and advert != int(advert):
        raise _Invalid("keepalived:advert_int", "must be whole seconds with vrrp_version 2")
    for key in ("preempt", "track_backends"):
        if not isinstance(keepalived.get(key), bool):
            raise _Invalid(f"keepalived:{key}", "must be true or false")
    _integer(keepalived.get("preempt_delay"), "keepalived:preempt_delay", 0, 1000)
    check = _mapping(keepalived.get("check"), "keepalived:check")
    for key in ("interval", "timeout", "fall", "rise"):
        _integer(check.get(key), f"keepalived:check:{key}", 1, 3600)
    if not isinstance(check.get("watch"), bool):
        raise _Invalid("keepalived:check:watch", "must be true or false")
    answer = check.get("answer_timeout")
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not 0 <= answer < check["interval"]:
        raise _Invalid("keepalived:check:answer_timeout",
                       f"must be a number of seconds from 0 to below keepalived:check:interval, got {answer!r}")
    longest = answer + (check["interval"] - 0.1 if check["watch"] else 0)
    if longest >= check["timeout"]:
        raise _Invalid("keepalived:check:timeout",
                       f"must be above the {longest:g} s a check may take (answer_timeout + watch)")
    if version == 3:
        with_auth = sorted(name for name, vip in (config.get("vips") or {}).items()
                           if isinstance(vip, dict) and "auth_pass" in vip)
        if with_auth:
            raise _Invalid(f"vips:{with_auth[0]}:auth_pass", "VRRPv3 has no authentication (vrrp_version 3)")
    backend_check = _mapping(config["backend"].get("check"), "backend:check")
    if not re.fullmatch(HAPROXY_TIME, str(backend_check.get("inter"))):
        raise _Invalid("backend:check:inter",
                       f"must be an HAProxy time such as 1s or 500ms, got {backend_check.get('inter')!r}")
    for key in ("fall", "rise"):
        _integer(backend_check.get(key), f"backend:check:{key}", 1, 1000)
    if backend_check.get("on_error") not in ON_ERROR:
        raise _Invalid("backend:check:on_error",
                       f"must be one of {', '.join(map(str, ON_ERROR))}, got {backend_check.get('on_error')!r}")
    for ip in config["frontend"].get("bind") or []:
        _address(ip, "frontend:bind")




def validate(config, minion_id=None, ip_addrs=None, mine_get=None):
    """
    Check a merged havip configuration and return it with the derived data
    the states use (``havip.validate`` documents them); any mistake raises
    an error whose message names the pillar key.

    ``ip_addrs(**network_ip_addrs_kwargs) -> list`` stands for Salt's
    ``network.ip_addrs`` and ``mine_get(minion_id, function) -> dict`` for
    ``mine.get``: they find the address of a backend that left it to the
    Salt mine (``havip:mine``).
    """
    if isinstance(config, str):
        config = json.loads(config)
    config = dict(_mapping(config, "<top>"))
    _unknown_keys(config, TOP_KEYS, "<top>")
    mine_args = _mine_args(config)
    nodes, roles = _check_nodes(config, mine_args, minion_id, ip_addrs, mine_get)
    balancers = sorted(roles.get("balancer", []))
    if balancers and not roles.get("backend"):
        raise _Invalid("nodes", "balancers need at least one node with the role backend")
    if str(minion_id) in balancers:
        _check_discovered(nodes)
    vips = _check_vips(config, nodes, balancers)
    _check_ports(config, nodes)
    _check_tuning(config)
    _check_vip_versions(config, vips)
    if balancers:
        _check_stats(config)
    me = nodes.get(str(minion_id)) if minion_id is not None else None
    config.update(
        nodes=nodes,
        vips=vips,
        vip_families=sorted({vip["family"] for vip in vips.values()}),
        backends=[nodes[name] for name in sorted(roles.get("backend", []))],
        balancers=[nodes[name] for name in balancers],
        node=me,
        roles=me["roles"] if me else [],
        facts_file=FACTS_FILE,
        haproxy_backend=HAPROXY_BACKEND,
        mine_function=MINE_FUNCTION,
        mine_args=mine_args,
        arp_sysctls=dict(ARP_SYSCTLS),
    )
    return config

"""
havip: highly available load balancing (nginx backends, HAProxy balancers,
keepalived VIPs).

The formula's ``map.jinja`` calls :py:func:`validate` on the merged
configuration before any state runs; operators call :py:func:`status` to see
who holds which VIP.
"""

import ipaddress
import json

from salt.exceptions import CommandExecutionError

__virtualname__ = "havip"

ROLES = ("backend", "balancer")
MODES = ("tcp", "http")
TOP_KEYS = {
    "nodes", "vips", "frontend", "backend", "stats", "haproxy", "keepalived",
    "firewall", "selinux", "lookup",
}
NODE_KEYS = {"roles", "address", "priority", "page"}
VIP_KEYS = {"address", "interface", "virtual_router_id", "auth_pass"}


def __virtual__():
    if __grains__.get("kernel") != "Linux":
        return (False, "havip: only Linux hosts run keepalived VIPs")
    return __virtualname__


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


def _check_node(name, node, roles_seen):
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
    if "address" not in node:
        raise _Invalid(f"{key}:address", "is required")
    address = _address(node["address"], f"{key}:address")
    entry = {"name": name, "roles": sorted(set(roles)), "address": address}
    if "balancer" in roles:
        entry["priority"] = _integer(node.get("priority", 100), f"{key}:priority", 1, 254)
    elif "priority" in node:
        raise _Invalid(f"{key}:priority", "only balancers have a priority")
    if "page" in node:
        entry["page"] = _text(node["page"], f"{key}:page")
    return entry


def _check_vip(name, vip):
    key = f"vips:{name}"
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
    return entry


def _check_nodes(config):
    nodes = _mapping(config.get("nodes") or {}, "nodes")
    roles = {}
    checked = {str(name): _check_node(str(name), node, roles) for name, node in nodes.items()}
    taken = {}
    for entry in checked.values():
        other = taken.setdefault(entry["address"], entry["name"])
        if other != entry["name"]:
            raise _Invalid(f"nodes:{entry['name']}:address", f"{entry['address']} is also {other}'s")
    return checked, roles


def _check_vips(config, balancers):
    vips = _mapping(config.get("vips") or {}, "vips")
    if balancers and not vips:
        raise _Invalid("vips", f"balancers ({', '.join(balancers)}) need at least one VIP")
    if vips and not balancers:
        raise _Invalid("vips", "no node has the role balancer to hold these VIPs")
    checked = {str(name): _check_vip(str(name), vip) for name, vip in vips.items()}
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
    uri = _text(stats.get("uri"), "stats:uri")
    if not uri.startswith("/") or any(c.isspace() for c in uri):
        raise _Invalid("stats:uri", f"must be a path starting with / and without spaces, got {uri!r}")


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
    if not isinstance(keepalived.get("preempt"), bool):
        raise _Invalid("keepalived:preempt", "must be true or false")
    _integer(keepalived.get("preempt_delay"), "keepalived:preempt_delay", 0, 1000)
    check = _mapping(keepalived.get("check"), "keepalived:check")
    for key in ("interval", "timeout", "fall", "rise"):
        _integer(check.get(key), f"keepalived:check:{key}", 1, 3600)
    backend_check = _mapping(config["backend"].get("check"), "backend:check")
    for key in ("fall", "rise"):
        _integer(backend_check.get(key), f"backend:check:{key}", 1, 1000)
    for ip in config["frontend"].get("bind") or []:
        _address(ip, "frontend:bind")


def validate(config, minion_id=None):
    """
    Check a merged havip configuration (defaults, OS family, pillar) and return
    it with the derived data the states use.  Any mistake raises an error whose
    message names the pillar key, before any state has changed anything.

    The returned dict is ``config`` plus:

    - ``nodes``: every node normalised (``name``, ``roles``, ``address``,
      ``priority`` for balancers)
    - ``vips``: every VIP normalised (``address`` without prefix, ``cidr``,
      ``family``, ``interface``, ``virtual_router_id``)
    - ``vip_families``: the IP versions (4, 6) of the VIPs
    - ``backends`` / ``balancers``: the nodes with that role, sorted by name
    - ``roles``: the roles of ``minion_id`` (empty if it is not a node)

    CLI Example:

    .. code-block:: bash

        salt-call havip.validate '{"nodes": {...}, "vips": {...}, ...}' minion_id=lb1
    """
    if isinstance(config, str):
        config = json.loads(config)
    config = dict(_mapping(config, "<top>"))
    _unknown_keys(config, TOP_KEYS, "<top>")
    nodes, roles = _check_nodes(config)
    balancers = sorted(roles.get("balancer", []))
    if balancers and not roles.get("backend"):
        raise _Invalid("nodes", "balancers need at least one node with the role backend")
    vips = _check_vips(config, balancers)
    _check_ports(config, nodes)
    _check_tuning(config)
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
    )
    return config


def _held_addresses():
    """Every address configured on this host, as strings without prefix."""
    out = __salt__["cmd.run_all"](["ip", "-j", "addr", "show"], python_shell=False)
    if out["retcode"] != 0:
        raise CommandExecutionError(f"havip: 'ip -j addr show' failed: {out['stderr']}")
    return {
        str(ipaddress.ip_address(info["local"]))
        for link in json.loads(out["stdout"] or "[]")
        for info in link.get("addr_info", [])
        if "local" in info
    }


def status():
    """
    Report which of the cluster's VIPs this minion holds now.

    Returns ``{"vips": {<instance>: {"address": ..., "interface": ...,
    "held": True/False}}}`` for every entry of the ``havip:vips`` pillar.

    CLI Example:

    .. code-block:: bash

        salt lb1 havip.status
    """
    vips = __pillar__.get("havip", {}).get("vips") or {}
    held = _held_addresses()
    report = {}
    for name, vip in sorted(vips.items()):
        address = str(_vip_address(vip.get("address"), f"vips:{name}:address").ip)
        report[name] = {
            "address": address,
            "interface": vip.get("interface"),
            "held": address in held,
        }
    return {"vips": report}

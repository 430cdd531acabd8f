"""
havip: highly available load balancing (nginx backends, HAProxy balancers,
keepalived VIPs).

The formula's ``map.jinja`` calls :py:func:`validate` on the merged
configuration before any state runs; operators call :py:func:`status` to see
who holds which VIP.
"""

import base64
import concurrent.futures
import csv
import io
import ipaddress
import json
import os
import re
import shutil
import socket
import struct
import time
import urllib.request

from salt.exceptions import CommandExecutionError

__virtualname__ = "havip"

ROLES = ("backend", "balancer")
MODES = ("tcp", "http")
TOP_KEYS = {
    "nodes", "vips", "frontend", "backend", "stats", "haproxy", "keepalived",
    "firewall", "selinux", "mine", "lookup",
}
NODE_KEYS = {"roles", "address", "priority", "page"}
VIP_KEYS = {"address", "interface", "virtual_router_id", "auth_pass", "priorities", "unicast"}
# keepalived instance names double as file names (the notify script's state).
VIP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# Written by the formula (havip/facts.sls): the validated configuration.
FACTS_FILE = "/etc/havip/havip.json"
# The HAProxy backend section that holds the havip backend servers.
HAPROXY_BACKEND = "havip_backends"
# The Salt mine entry where a backend publishes its addresses (havip/mine.sls).
MINE_FUNCTION = "havip_address"
ON_ERROR = ("mark-down", "fail-check", "sudden-death", "fastinter", None)
# An HAProxy time: a number, in milliseconds unless a unit follows.
HAPROXY_TIME = r"\d+(?:us|ms|s|m|h|d)?"
INJECTIONS = ("kill_haproxy", "stop_haproxy", "kill_keepalived", "link_down")
# havip.linger keeps VIPs here; havip.relay's nftables table (ip and ip6).
LINGER_DEVICE = "lo"
RELAY_TABLE = "havip_relay"
# The TCP packets havip.relay passes on: those of connections conntrack did
# not see begin - an ACK it picks up mid-stream (new), a FIN or an RST it
# cannot (invalid).
RELAYED = ("tcp flags & syn == 0 ct state new",
           "tcp flags & (fin | rst) != 0 tcp flags & syn == 0 ct state invalid")
# What keeps a balancer from announcing the VIPs it keeps on lo (the formula
# sets them; havip.linger refuses IPv4 VIPs without them).
ARP_SYSCTLS = {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2}
PROC_NET_TCP = ("/proc/net/tcp", "/proc/net/tcp6")
# TCP states (/proc/net/tcp) that are no connection in use: TIME_WAIT, CLOSE, LISTEN.
IDLE_TCP_STATES = {"06", "07", "0A"}
# havip.release: seconds without a connection on the lingering VIPs.
RELEASE_QUIET = 1.0


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


def _discovered_address(name, mine_args, minion_id):
    """A backend's address: this minion's own from its interfaces, another's
    from the Salt mine; None if it has not published one yet."""
    if name == minion_id:
        found = __salt__["network.ip_addrs"](**mine_args)
        if not found:
            raise _Invalid(f"nodes:{name}:address", f"this minion has no address matching havip:mine {mine_args}")
    else:
        found = (__salt__["mine.get"](name, MINE_FUNCTION) or {}).get(name)
    return found[0] if found else None


def _check_node(name, node, roles_seen, mine_args, minion_id):
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
        address = _discovered_address(name, mine_args, minion_id)
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


def _check_nodes(config, mine_args, minion_id):
    nodes = _mapping(config.get("nodes") or {}, "nodes")
    roles = {}
    checked = {str(name): _check_node(str(name), node, roles, mine_args, minion_id)
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


def validate(config, minion_id=None):
    """
    Check a merged havip configuration (defaults, OS family, pillar) and return
    it with the derived data the states use.  Any mistake raises an error whose
    message names the pillar key, before any state has changed anything.

    The returned dict is ``config`` plus:

    - ``nodes``: every node normalised (``name``, ``roles``, ``address``,
      ``priority`` for balancers, ``discovered``).  With ``mine`` set, a backend may omit
      ``address``: it is taken from the Salt mine (``havip_address``), or
      from this minion's interfaces for itself; a balancer refuses a backend
      that has not published one yet, other minions leave it None.
    - ``vips``: every VIP normalised (``address`` without prefix, ``cidr``,
      ``family``, ``interface``, ``virtual_router_id``, ``unicast``), with
      ``priorities`` (every balancer's priority for it) and ``order`` (the
      balancers from the most to the least preferred holder)
    - ``vip_families``: the IP versions (4, 6) of the VIPs
    - ``backends`` / ``balancers``: the nodes with that role, sorted by name
    - ``roles``: the roles of ``minion_id`` (empty if it is not a node)
    - ``mine_function`` / ``mine_args``: where and how backends publish
      their address (``mine_args`` None without ``mine``)
    - ``arp_sysctls``: what balancers with IPv4 VIPs set so that a VIP kept
      on ``lo`` (:py:func:`linger`) is not announced

    CLI Example:

    .. code-block:: bash

        salt-call havip.validate '{"nodes": {...}, "vips": {...}, ...}' minion_id=lb1
    """
    if isinstance(config, str):
        config = json.loads(config)
    config = dict(_mapping(config, "<top>"))
    _unknown_keys(config, TOP_KEYS, "<top>")
    mine_args = _mine_args(config)
    nodes, roles = _check_nodes(config, mine_args, minion_id)
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


# ---- what is deployed and running on this minion -------------------------


def _facts():
    """The validated configuration the formula deployed here."""
    try:
        with open(FACTS_FILE, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise CommandExecutionError(
            f"havip: nothing is deployed on this minion ({FACTS_FILE} is missing);"
            " run state.apply havip first"
        ) from None


def _balancer_facts(function):
    facts = _facts()
    if "balancer" not in facts["roles"]:
        raise CommandExecutionError(f"havip.{function}: {__grains__['id']} is not a balancer")
    return facts


def config():
    """
    The havip configuration deployed on this minion by the last
    ``state.apply havip`` (defaults, OS family and pillar merged and
    validated), without its secrets.

    CLI Example:

    .. code-block:: bash

        salt '*' havip.config
    """
    facts = _facts()
    facts["stats"] = {k: v for k, v in facts["stats"].items() if k != "password"}
    facts["vips"] = {
        name: {k: v for k, v in vip.items() if k != "auth_pass"}
        for name, vip in facts["vips"].items()
    }
    return facts


def _run(cmd):
    return __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)


def _pids(pidfiles):
    pids = []
    for path in pidfiles:
        try:
            with open(path, encoding="utf-8") as handle:
                pids.extend(int(word) for word in handle.read().split())
        except (OSError, ValueError):
            continue
    return pids


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running(pidfiles):
    """Is a process of any of these pid files alive?"""
    return any(_alive(pid) for pid in _pids(pidfiles))


def _addresses():
    """{interface: {address (no prefix): its `ip -j addr` entry}} of this host."""
    out = _run(["ip", "-j", "addr", "show"])
    if out["retcode"] != 0:
        raise CommandExecutionError(f"havip: 'ip -j addr show' failed: {out['stderr']}")
    return {
        link["ifname"]: {str(ipaddress.ip_address(info["local"])): info
                         for info in link.get("addr_info", []) if "local" in info}
        for link in json.loads(out["stdout"] or "[]")
    }


def _held(vip, addresses):
    """Is ``vip`` on its interface here (where keepalived puts it)?"""
    return vip["address"] in addresses.get(vip["interface"], {})


def _lingering(vip, addresses):
    """Is ``vip`` kept on LINGER_DEVICE here (:py:func:`linger`)?"""
    return vip["address"] in addresses.get(LINGER_DEVICE, {})


def _vrrp_state(state_dir, name):
    """(state, since) of a VRRP instance as keepalived's notify script
    recorded it; since = the time of the change (seconds since the epoch)."""
    path = os.path.join(state_dir, name)
    try:
        with open(path, encoding="utf-8") as handle:
            words = handle.read().split()
        return (words[0] if words else "UNKNOWN"), os.stat(path).st_mtime
    except OSError:
        return "UNKNOWN", None


def _standby_value(lookup):
    try:
        with open(lookup["keepalived"]["standby_file"], encoding="utf-8") as handle:
            return int(handle.read().strip() or 0)
    except FileNotFoundError:
        return 0
    except ValueError:
        raise CommandExecutionError(
            f"havip: {lookup['keepalived']['standby_file']} must hold 0, 1 or 2"
        ) from None


def _write_standby(lookup, value):
    with open(lookup["keepalived"]["standby_file"], "w", encoding="utf-8") as handle:
        handle.write(f"{value}\n")


def _stats_socket(facts):
    """The path of HAProxy's runtime API socket (`stats socket` in global)."""
    for line in facts["haproxy"]["global"]:
        words = line.split()
        if words[:2] == ["stats", "socket"] and len(words) > 2:
            return words[2]
    return None


def _server_rows(stats_csv):
    """{server: its row} of the havip backend servers in HAProxy's CSV stats."""
    rows = csv.DictReader(io.StringIO(stats_csv.lstrip("# ")))
    return {
        row["svname"]: row
        for row in rows
        if row.get("pxname") == HAPROXY_BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
    }


def _servers(stats_csv):
    """{server: status} of the havip backend servers in HAProxy's CSV stats."""
    return {name: row["status"] for name, row in _server_rows(stats_csv).items()}


def _runtime_api(path, command, timeout=2.0):
    """The answer of HAProxy's runtime API (stats socket) to one command."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def _haproxy_status(facts):
    lookup = facts["lookup"]
    report = {
        "running": _running([lookup["haproxy"]["pidfile"]]),
        "config_valid": _run(["haproxy", "-c", "-q", "-f", lookup["haproxy"]["config"]])["retcode"] == 0,
        "backends": None,
    }
    path = _stats_socket(facts)
    if path is None:
        report["error"] = "no `stats socket` line in havip:haproxy:global"
        return report
    try:
        report["backends"] = _servers(_runtime_api(path, "show stat"))
    except OSError as exc:
        report["error"] = f"HAProxy's runtime API ({path}) did not answer: {exc}"
    return report


def _balancer_status(facts):
    lookup = facts["lookup"]
    addresses = _addresses()
    keepalived = _running(lookup["keepalived"]["pidfiles"])
    vips = {}
    for name, vip in sorted(facts["vips"].items()):
        state, since = _vrrp_state(lookup["keepalived"]["state_dir"], name)
        vips[name] = {
            "address": vip["address"],
            "interface": vip["interface"],
            "held": _held(vip, addresses),
            "lingering": _lingering(vip, addresses),
            "state": state if keepalived else "STOPPED",
            "since": None if since is None else round(since, 3),
            "priority": vip["priorities"][facts["node"]["name"]],
        }
    return {
        "vips": vips,
        "standby": _standby_value(lookup) != 0,
        "keepalived": {"running": keepalived},
        "haproxy": _haproxy_status(facts),
        "relay": _relays(),
    }


def _get(url, timeout=2.0, auth=None):
    """(status, body) of an HTTP GET; raises OSError (URLError) on failure."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode(errors="replace")


def _http_ok(url):
    """Does ``url`` answer 200 within 2 s?"""
    try:
        return _get(url)[0] == 200
    except (OSError, ValueError):
        return False


def _url(address, port, path="/"):
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


def _nginx_status(facts):
    url = _url(facts["node"]["address"], facts["backend"]["port"])
    return {
        "running": _running([facts["lookup"]["nginx"]["pidfile"]]),
        "answering": _http_ok(url),
        "url": url,
    }


def status():
    """
    What this minion runs for havip, and how it is doing.

    - ``roles``: this minion's roles
    - ``vips`` (balancers): for every VIP ``address``, ``interface``,
      ``held`` (the address is on its interface now), ``state`` (keepalived's
      MASTER/BACKUP/FAULT as its notify script recorded it; STOPPED when
      keepalived does not run), ``since`` (time of that change, seconds
      since the epoch), ``priority`` and ``lingering`` (kept on ``lo`` by
      :py:func:`linger`)
    - ``standby`` (balancers): True between ``havip.standby`` and
      ``havip.resume``
    - ``keepalived`` (balancers): ``running``
    - ``haproxy`` (balancers): ``running``, ``config_valid`` (``haproxy -c``)
      and ``backends``, each backend server's status from the runtime API
    - ``relay`` (balancers): {VIP: address} of :py:func:`relay`
    - ``nginx`` (backends): ``running``, ``answering`` (HTTP 200 on the
      backend port) and the ``url`` asked

    CLI Example:

    .. code-block:: bash

        salt -C 'I@havip:nodes:*' havip.status
        salt svr1 havip.status
    """
    facts = _facts()
    report = {"roles": facts["roles"], "vips": {}}
    if "balancer" in facts["roles"]:
        report.update(_balancer_status(facts))
    if "backend" in facts["roles"]:
        report["nginx"] = _nginx_status(facts)
    return report


def _balancer_problems(report):
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
    elif haproxy["running"] and not any(s.startswith("UP") for s in haproxy["backends"].values()):
        servers = ", ".join(f"{k} {v}" for k, v in sorted(haproxy["backends"].items()))
        problems.append(f"no backend server is UP in HAProxy ({servers or 'none'})")
    if not report["standby"]:
        problems.extend(
            f"VRRP instance {name} is in FAULT"
            for name, vip in report["vips"].items() if vip["state"] == "FAULT"
        )
    problems.extend(f"VIP {name} is still kept on {LINGER_DEVICE} by havip.linger (havip.release ends it)"
                    for name, vip in report["vips"].items() if vip["lingering"])
    problems.extend(f"packets to VIP {name} are still relayed to {address} (havip.unrelay ends it)"
                    for name, address in sorted(report["relay"].items()))
    return problems


def _backend_problems(nginx):
    if not nginx["running"]:
        return ["nginx is not running"]
    if not nginx["answering"]:
        return [f"nginx does not answer 200 on {nginx['url']}"]
    return []


def check():
    """
    Health verdict of this minion: ``{"healthy": True/False, "reasons":
    [...], "standby": ...}``.  An unhealthy minion also sets the job's
    return code to 1, so the `salt` command and an orchestrate
    ``salt.function`` step fail.

    A balancer is healthy when keepalived and HAProxy run, HAProxy's
    configuration is valid, its runtime API answers with at least one backend
    server UP, no VRRP instance is in FAULT (unless it is on standby), and
    no handover is left half done (a VIP lingering, a relay).
    A backend is healthy when nginx runs and answers 200.

    CLI Example:

    .. code-block:: bash

        salt '*' havip.check
    """
    report = status()
    reasons = []
    if "balancer" in report["roles"]:
        reasons += _balancer_problems(report)
    if "backend" in report["roles"]:
        reasons += _backend_problems(report["nginx"])
    if reasons:
        __context__["retcode"] = 1
    return {"healthy": not reasons, "reasons": reasons, "standby": report.get("standby", False)}


# ---- planned switchover -----------------------------------------------------


def _move_budget(facts):
    """Seconds a VIP move may take: a backup's master-down interval
    (3 adverts + skew < 4 adverts), the preempt delay, and 2 s for the
    transitions."""
    keepalived = facts["keepalived"]
    return 4 * float(keepalived["advert_int"]) + keepalived["preempt_delay"] + 2.0


def _held_vips(facts):
    addresses = _addresses()
    return sorted(name for name, vip in facts["vips"].items() if _held(vip, addresses))


def _wait_until(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def _peer_health(facts, peer):
    """None if ``peer``'s HAProxy serves (its stats page answers and shows a
    backend server UP), else the reason why not."""
    stats = facts["stats"]
    url = _url(peer["address"], stats["port"], stats["uri"].rstrip("/") + ";csv")
    try:
        servers = _servers(_get(url, auth=(stats["user"], stats["password"]))[1])
    except (OSError, ValueError) as exc:
        return f"its stats page {url} did not answer ({exc})"
    if not any(state.startswith("UP") for state in servers.values()):
        return "its HAProxy has no backend server UP"
    return None


def standby(timeout=None):
    """
    Planned maintenance on this balancer: move every VIP it holds to another
    balancer and keep them away - across re-applies, reboots and keepalived
    restarts - until :py:func:`resume`.

    Refuses (and changes nothing) when no other balancer's HAProxy serves.
    With preemption on (the default) the priority drops to 1 and a peer
    takes over while this node still answers, so clients see at most a
    request or so fail; with ``preempt: false`` the instances go to FAULT
    instead.  Returns once the VIPs have left this host, with the time it
    took; if no peer took them within ``timeout`` seconds (default: 4 adverts
    + preempt_delay + 2 s) the standby is undone and an error raised.

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.standby
    """
    facts = _balancer_facts("standby")
    lookup = facts["lookup"]
    if _standby_value(lookup):
        return {"standby": True, "changed": False, "moved": [], "seconds": 0.0}
    peers = [node for node in facts["balancers"] if node["name"] != facts["node"]["name"]]
    problems = {peer["name"]: _peer_health(facts, peer) for peer in peers}
    if not peers or all(problems.values()):
        details = "; ".join(f"{name}: {why}" for name, why in sorted(problems.items()))
        raise CommandExecutionError(
            "havip.standby: refused, no other healthy balancer could take over the VIPs"
            + (f" ({details})" if details else " (this is the only balancer)")
        )
    held = _held_vips(facts)
    budget = float(timeout or _move_budget(facts))
    start = time.monotonic()
    _write_standby(lookup, 1 if facts["keepalived"]["preempt"] else 2)
    if not _wait_until(lambda: not _held_vips(facts), budget):
        _write_standby(lookup, 0)
        raise CommandExecutionError(
            f"havip.standby: no balancer took over {', '.join(held)} within {budget:.1f} s;"
            " standby undone, this balancer is in service again"
        )
    return {"standby": True, "changed": True, "moved": held,
            "seconds": round(time.monotonic() - start, 3)}


def _preferred_vips(facts):
    """The VIPs this balancer should hold when every balancer is in service."""
    return sorted(name for name, vip in facts["vips"].items() if vip["order"][0] == facts["node"]["name"])


def resume(timeout=None):
    """
    End a :py:func:`standby`: this balancer is in service again.  With
    preemption on it takes back the VIPs it is preferred for (the highest
    priority) and this returns once they are here, with the time it took;
    an error is raised if they are not back within ``timeout`` seconds
    (default: 4 adverts + preempt_delay + 2 s).

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.resume
    """
    facts = _balancer_facts("resume")
    lookup = facts["lookup"]
    if not _standby_value(lookup):
        return {"standby": False, "changed": False, "moved": [], "seconds": 0.0}
    start = time.monotonic()
    _write_standby(lookup, 0)
    expected = _preferred_vips(facts) if facts["keepalived"]["preempt"] else []
    budget = float(timeout or _move_budget(facts))
    if not _wait_until(lambda: set(expected) <= set(_held_vips(facts)), budget):
        raise CommandExecutionError(
            f"havip.resume: in service again, but {', '.join(expected)} did not come back"
            f" within {budget:.1f} s"
        )
    return {"standby": False, "changed": True, "moved": expected,
            "seconds": round(time.monotonic() - start, 3)}


# ---- handing VIPs over without losing a connection ---------------------------
#
# When a VIP moves, a client's connection that is in flight at that moment
# sends its first packets to the old holder and its next ones to the new
# holder, which does not know it and resets it (or the old holder has
# already dropped the address and the client times out).  A planned move
# (``salt-run havip.standby``/``havip.resume``, the rolling deploy) avoids
# both: the old holder keeps the VIPs as local addresses (linger), the new
# one passes the packets of connections it does not know back to it (relay),
# and both end once the old holder's connections are done (release, unrelay).


def _sysctl(name):
    with open(f"/proc/sys/{name.replace('.', '/')}", encoding="utf-8") as handle:
        return int(handle.read().split()[0])


def _arp_guard(function, vips):
    """A VIP kept on ``lo`` must not be announced: with arp_ignore 0 this
    balancer would answer ARP for it, with arp_announce 0 it could use it
    as the source of its own ARP requests (the formula sets both)."""
    if not any(vip["family"] == 4 for vip in vips):
        return
    settings = {name: _sysctl(name) for name in ARP_SYSCTLS}
    wrong = [f"{name} = {value}" for name, value in settings.items() if value < ARP_SYSCTLS[name]]
    if wrong:
        raise CommandExecutionError(
            f"havip.{function}: refused, {' and '.join(wrong)}: this balancer would announce the VIPs"
            " it keeps (run state.apply havip, which sets "
            + ", ".join(f"{name} = {value}" for name, value in ARP_SYSCTLS.items()) + ")")


def _named_vips(function, facts, names):
    unknown = sorted(set(names) - set(facts["vips"]))
    if unknown:
        raise CommandExecutionError(
            f"havip.{function}: unknown VIP {unknown[0]!r} (known: {', '.join(sorted(facts['vips']))})")
    return {name: facts["vips"][name] for name in sorted(names)}


def _own_address(vip, addresses, facts):
    """This balancer's address on the VIP's interface and of its family,
    where a peer can send the VIP's packets: a global one before a
    link-local one, never a VIP."""
    vip_addresses = {other["address"] for other in facts["vips"].values()}
    candidates = [(info.get("scope") != "global", info.get("secondary", False), address)
                  for address, info in addresses.get(vip["interface"], {}).items()
                  if address not in vip_addresses and ipaddress.ip_address(address).version == vip["family"]]
    if not candidates:
        raise CommandExecutionError(
            f"havip.linger: no IPv{vip['family']} address of this balancer on {vip['interface']}"
            " for the peers to relay to")
    return min(candidates)[2]


def _host_prefix(vip):
    return f"{vip['address']}/{32 if vip['family'] == 4 else 128}"


def linger(vips=None):
    """
    Before this balancer hands VIPs over (``havip.standby`` here, or
    ``havip.resume`` on a peer): keep serving the connections it has on
    them.  Each VIP of ``vips`` (names; default: every VIP held here) is
    added to ``lo`` as a host address, where keepalived does not remove it
    when the VIP leaves, so the connections in flight go on here - their
    packets that reach the new holder come back through its
    :py:func:`relay` - until :py:func:`release`.  No neighbour is told the
    address is here (arp_ignore and arp_announce, set by the formula).

    Returns ``{"lingering": [names], "relay_to": {name: address}}``, the
    address being this balancer's own on the VIP's interface, for
    :py:func:`relay` on the peers.  Refuses, changing nothing, a VIP that is
    not held here, or an IPv4 VIP while arp_ignore/arp_announce are not set.

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.linger
        salt svr2 havip.linger '[VI_1]'
    """
    facts = _balancer_facts("linger")
    addresses = _addresses()
    chosen = _named_vips("linger", facts, vips if vips is not None else _held_vips(facts))
    not_held = [name for name, vip in chosen.items() if not _held(vip, addresses)]
    if not_held:
        raise CommandExecutionError(f"havip.linger: refused, {', '.join(not_held)} is not held here")
    _arp_guard("linger", chosen.values())
    relay_to = {name: _own_address(vip, addresses, facts) for name, vip in chosen.items()}
    for vip in chosen.values():
        _ip(["addr", "replace", _host_prefix(vip), "dev", LINGER_DEVICE])
    return {"lingering": sorted(chosen), "relay_to": relay_to}


def _ip(args):
    out = _run(["ip", *args])
    if out["retcode"] != 0:
        raise CommandExecutionError(f"havip: `ip {' '.join(args)}` failed: {out['stderr'].strip()}")


def _connections(addresses):
    """How many TCP connections this host has on ``addresses`` (local end),
    from /proc/net/tcp and tcp6: every state but LISTEN, TIME_WAIT and
    CLOSE (a handshake in progress counts)."""
    count = 0
    for path in PROC_NET_TCP:
        try:
            with open(path, encoding="ascii") as handle:
                lines = handle.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] not in IDLE_TCP_STATES and _proc_address(fields[1]) in addresses:
                count += 1
    return count


def _proc_address(field):
    """The address of a /proc/net/tcp{,6} ``HEX:PORT`` field: 32-bit words
    in host byte order."""
    words = field.split(":")[0]
    packed = b"".join(struct.pack("=I", int(words[i:i + 8], 16)) for i in range(0, len(words), 8))
    address = ipaddress.ip_address(packed)
    return str(getattr(address, "ipv4_mapped", None) or address)


def release(timeout=30):
    """
    End :py:func:`linger`: once the lingering VIPs that have left this
    balancer had no TCP connection here for 1 s (their clients are done),
    remove them from ``lo``.  After ``timeout`` seconds they are removed all
    the same and the connections left are cut (``cut`` counts them).  A VIP
    held here again is removed from ``lo`` at once.

    Returns ``{"released": [names], "seconds": ..., "cut": N}``.

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.release
    """
    facts = _balancer_facts("release")
    budget = _wait_limit("release", timeout)
    addresses = _addresses()
    lingering = {name: vip for name, vip in facts["vips"].items() if _lingering(vip, addresses)}
    gone = {vip["address"] for vip in lingering.values() if not _held(vip, addresses)}
    start = time.monotonic()
    cut = _quiet(gone, budget) if gone else 0
    for vip in lingering.values():
        _ip(["addr", "del", _host_prefix(vip), "dev", LINGER_DEVICE])
    return {"released": sorted(lingering), "seconds": round(time.monotonic() - start, 3), "cut": cut}


def _quiet(addresses, budget):
    """Wait until ``addresses`` have had no connection for RELEASE_QUIET s,
    at most ``budget`` s; returns how many connections are left."""
    start = quiet_since = time.monotonic()
    while (now := time.monotonic()) - quiet_since < RELEASE_QUIET and now - start < budget:
        if _connections(addresses):
            quiet_since = now
        time.sleep(0.05)
    return _connections(addresses)


def _nft(script):
    out = __salt__["cmd.run_all"](["nft", "-f", "-"], python_shell=False, ignore_retcode=True, stdin=script)
    if out["retcode"] != 0:
        raise CommandExecutionError(f"havip: nft refused the relay table: {out['stderr'].strip()}")


def _relay_tables(rules):
    """nft script: the relay tables replaced by ``rules`` ({family: [rule]})."""
    lines = []
    for family in ("ip", "ip6"):
        lines += [f"table {family} {RELAY_TABLE}", f"delete table {family} {RELAY_TABLE}"]
        if rules.get(family):
            lines += [f"table {family} {RELAY_TABLE} {{", "    chain prerouting {",
                      "        type filter hook prerouting priority 0; policy accept;",
                      *(f"        {rule}" for rule in rules[family]), "    }", "}"]
    return "\n".join(lines) + "\n"


def relay(to):
    """
    While peers hand VIPs over to this balancer: pass the packets of the
    connections it does not know - those a peer had when the VIP moved -
    back to that peer, which still serves them (:py:func:`linger`), until
    :py:func:`unrelay`.  ``to``: {VIP name: the peer's address}, as
    ``havip.linger`` on the peer returned it; it replaces any relay before.

    nftables (table ``havip_relay``, families ip and ip6) matches, per VIP,
    the TCP packets to its address of connections conntrack has not seen
    begin - an ACK it picks up as new, a FIN or RST it finds invalid -,
    duplicates them to the peer on the VIP's interface and drops the
    original; new connections (a SYN) stay here.  Refuses, changing
    nothing, a VIP held here: its connections would be sent away.

    CLI Example:

    .. code-block:: bash

        salt svr2 havip.relay '{VI_1: 192.168.100.13}'
    """
    facts = _balancer_facts("relay")
    if not isinstance(to, dict):
        raise CommandExecutionError(f"havip.relay: `to` must map VIP names to addresses, got {to!r}")
    chosen = _named_vips("relay", facts, to)
    addresses = _addresses()
    held = [name for name, vip in chosen.items() if _held(vip, addresses)]
    if held:
        raise CommandExecutionError(f"havip.relay: refused, {', '.join(held)} is held here:"
                                    " its connections would be sent away")
    rules = {}
    for name, vip in chosen.items():
        family = "ip" if vip["family"] == 4 else "ip6"
        peer = str(to[name])
        try:
            version = ipaddress.ip_address(peer).version
        except ValueError:
            version = None
        if version != vip["family"]:
            raise CommandExecutionError(f"havip.relay: {peer} is no IPv{vip['family']} address for {name}")
        action = f"dup to {peer} device \"{vip['interface']}\" drop comment \"{name}\""
        rules.setdefault(family, []).extend(
            f"{family} daddr {vip['address']} {match} {action}" for match in RELAYED)
    _nft(_relay_tables(rules))
    return {"relay": {name: str(to[name]) for name in chosen}}


def unrelay():
    """
    End :py:func:`relay`: every packet to a VIP is this balancer's again.

    CLI Example:

    .. code-block:: bash

        salt svr2 havip.unrelay
    """
    _balancer_facts("unrelay")
    _nft(_relay_tables({}))
    return {"relay": {}}


def _relays():
    """{VIP name: address} of the relay rules in place (none without nft)."""
    relays = {}
    for family in ("ip", "ip6") if shutil.which("nft") else ():
        out = _run(["nft", "-j", "list", "table", family, RELAY_TABLE])
        if out["retcode"] != 0:
            continue
        for item in json.loads(out["stdout"] or "{}").get("nftables", []):
            rule = item.get("rule")
            if rule and "comment" in rule:
                dup = next((expr["dup"] for expr in rule["expr"] if "dup" in expr), {})
                relays[rule["comment"]] = dup.get("addr")
    return relays


# ---- rolling deploys: a backend server out of rotation and back ------------


def _server_socket(function, server):
    """The runtime API socket of this balancer's HAProxy, for ``server``, one
    of the havip backend servers."""
    facts = _balancer_facts(function)
    known = [node["name"] for node in facts["backends"]]
    if server not in known:
        raise CommandExecutionError(
            f"havip.{function}: unknown backend server {server!r} (known: {', '.join(known)})")
    path = _stats_socket(facts)
    if path is None:
        raise CommandExecutionError(f"havip.{function}: no `stats socket` line in havip:haproxy:global")
    return path


def _ask_haproxy(path, command):
    try:
        return _runtime_api(path, command)
    except OSError as exc:
        raise CommandExecutionError(f"havip: HAProxy's runtime API ({path}) did not answer: {exc}") from None


def _server_row(path, server):
    """``show stat``'s row of one havip backend server."""
    rows = _server_rows(_ask_haproxy(path, "show stat"))
    if server not in rows:
        raise CommandExecutionError(f"havip: HAProxy has no server {server} in {HAPROXY_BACKEND}")
    return rows[server]


def _sessions(path, server):
    return int(_server_row(path, server)["scur"] or 0)


def _set_server_state(path, server, state):
    command = f"set server {HAPROXY_BACKEND}/{server} state {state}"
    answer = _ask_haproxy(path, command).strip()
    if answer:
        raise CommandExecutionError(f"havip: HAProxy refused `{command}`: {answer}")


def _wait_limit(function, timeout):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise CommandExecutionError(f"havip.{function}: timeout must be above 0 and at most 3600 s,"
                                    f" got {timeout!r}")
    return float(timeout)


def drain(server, timeout=30):
    """
    Take backend server ``server`` out of this balancer's rotation: HAProxy's
    runtime API sets it to ``drain`` (no new connections; its health checks
    go on), and this returns once it has no session left (``scur`` 0 in
    ``show stat``), with the time it took.

    Refuses, changing nothing, when no other backend server is UP in this
    HAProxy: nothing would be left to answer.  Raises an error if sessions
    remain after ``timeout`` seconds; the server then stays drained.  The
    drain lasts until :py:func:`ready`, or until HAProxy reloads or restarts
    (the runtime state is not kept across them).

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.drain nginx1
        salt 'svr*' havip.drain nginx1 timeout=120
    """
    budget = _wait_limit("drain", timeout)
    path = _server_socket("drain", server)
    others = {name: state for name, state in _servers(_ask_haproxy(path, "show stat")).items()
              if name != server}
    if not any(state.startswith("UP") for state in others.values()):
        listing = ", ".join(f"{name} {state}" for name, state in sorted(others.items()))
        raise CommandExecutionError(
            f"havip.drain: refused, no other backend server is UP here ({listing or 'none'});"
            f" draining {server} would leave none to answer")
    start = time.monotonic()
    _set_server_state(path, server, "drain")
    if not _wait_until(lambda: _sessions(path, server) == 0, budget, interval=0.1):
        raise CommandExecutionError(
            f"havip.drain: {server} still has {_sessions(path, server)} sessions after {budget:.1f} s;"
            f" it stays drained (havip.ready {server} puts it back)")
    return {"server": server, "state": "drain", "seconds": round(time.monotonic() - start, 3)}


def ready(server, timeout=30):
    """
    Put backend server ``server`` back into this balancer's rotation after
    :py:func:`drain` (HAProxy's runtime state ``ready``) and return once
    HAProxy sees it UP - its health checks pass - with the time it took.
    Raises an error if it is not UP within ``timeout`` seconds; it is in
    rotation all the same, and gets traffic once its checks pass.

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.ready nginx1
    """
    budget = _wait_limit("ready", timeout)
    path = _server_socket("ready", server)
    start = time.monotonic()
    _set_server_state(path, server, "ready")
    if not _wait_until(lambda: _server_row(path, server)["status"].startswith("UP"), budget, interval=0.1):
        raise CommandExecutionError(
            f"havip.ready: {server} is in rotation again but not UP after {budget:.1f} s"
            f" ({_server_row(path, server)['status']}): its health checks fail")
    return {"server": server, "state": "ready", "seconds": round(time.monotonic() - start, 3)}


# ---- measuring and breaking ---------------------------------------------------


def _fetch_body(url, timeout):
    """The response body (stripped), or None on any failure."""
    try:
        return _get(url, timeout)[1].strip()
    except (OSError, ValueError):
        return None


def summarize(url, started, seconds, requests, timeline=False):
    """What a client saw, from ``requests``: [seconds after the start it was
    sent, response body or None], in the order sent.

    An outage is a run of failed requests; it lasts from the sending of its
    first failed request to the sending of the first answered one after it
    (to the end of the probe if none was), so its resolution is the probing
    period."""
    failures = [sent for sent, body in requests if body is None]
    backends = {}
    longest, outage_started = 0.0, None
    for sent, body in requests:
        if body is None:
            outage_started = sent if outage_started is None else outage_started
            continue
        backends[body] = backends.get(body, 0) + 1
        if outage_started is not None:
            longest = max(longest, sent - outage_started)
            outage_started = None
    if outage_started is not None:
        longest = max(longest, seconds - outage_started)
    report = {
        "url": url,
        "started": round(started, 3),
        "seconds": round(seconds, 3),
        "total": len(requests),
        "failed": len(failures),
        "first_failure": round(failures[0], 3) if failures else None,
        "last_failure": round(failures[-1], 3) if failures else None,
        "longest_outage": round(longest, 3),
        "recovered": outage_started is None,
        "backends": backends,
    }
    if timeline:
        report["timeline"] = [[round(sent, 4), int(body is not None)] for sent, body in requests]
    return report


def measure(url, seconds, rate, timeout, timeline=False, stop=None):
    """Send a request to ``url`` every 1/rate s for ``seconds`` s, each on
    its own (a slow or lost request does not hold up the next), and
    summarize what a client saw (the loop behind :py:func:`probe`); with
    ``timeline`` also every request as [seconds after the start, answered
    (1) or not (0)].  ``stop``, if given, is asked before each request and
    ends the run early when it returns True."""
    period = 1.0 / rate
    count = int(seconds * rate)
    started, start = time.time(), time.monotonic()
    workers = int(rate * timeout) + 4
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for index in range(count):
            time.sleep(max(0.0, start + index * period - time.monotonic()))
            if stop is not None and stop():
                break
            pending.append((time.monotonic() - start, pool.submit(_fetch_body, url, timeout)))
    requests = [[sent, future.result()] for sent, future in pending]
    return summarize(url, started, time.monotonic() - start, requests, timeline)


def _frontend_url(facts):
    vip = facts["vips"][sorted(facts["vips"])[0]]
    return _url(vip["address"], facts["frontend"]["port"])


def probe(url=None, seconds=10, rate=100, timeout=0.2, stop_file=None):
    """
    Request ``url`` from this minion ``rate`` times a second for ``seconds``
    seconds - on a fixed schedule, each request with its own ``timeout`` -
    and report what a client saw: total and failed requests, first/last
    failure (seconds after the start), the longest outage (from the first
    failed request of a run to the next answered one), ``recovered`` (the
    last request got an answer) and how many answers each backend gave (by
    response body).

    ``url`` defaults to the frontend on the first VIP of the havip
    configuration deployed here.  With ``stop_file`` the probe ends early,
    as soon as that file exists on this minion: a caller that cannot know
    how long it needs the probe (the ``havip.deploy`` runner) starts it for
    long and creates the file when done.

    CLI Example:

    .. code-block:: bash

        salt client havip.probe url=http://192.168.100.10:9090/ seconds=30
    """
    if url is None:
        url = _frontend_url(_facts())
    for name, value, low, high in (("seconds", seconds, 0.1, 3600), ("rate", rate, 0.1, 1000),
                                   ("timeout", timeout, 0.01, 60)):
        if not isinstance(value, (int, float)) or not low <= value <= high:
            raise CommandExecutionError(f"havip.probe: {name} must be from {low} to {high}, got {value!r}")
    stop = (lambda: os.path.exists(stop_file)) if stop_file else None
    return measure(url, float(seconds), float(rate), float(timeout), stop=stop)


def _service(facts, name, action):
    """Start/stop a service the way the formula's states do: Salt's service
    module (systemd, the distribution's unit)."""
    service = facts["lookup"]["services"][name]
    if not __salt__[f"service.{action}"](service):
        raise CommandExecutionError(f"havip: service.{action} {service} failed")


def _kill(pids, what):
    if not pids:
        raise CommandExecutionError(f"havip.inject: {what} is not running here")
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            continue


def _routes_via(interface):
    """`ip route replace` arguments of the routes through ``interface`` that
    the kernel does not re-create when the link comes back (gateways)."""
    out = _run(["ip", "-j", "route", "show", "dev", interface])
    routes = json.loads(out["stdout"] or "[]") if out["retcode"] == 0 else []
    commands = []
    for route in routes:
        if route.get("protocol") == "kernel" or "gateway" not in route:
            continue
        command = ["ip", "route", "replace", route["dst"], "via", route["gateway"], "dev", interface]
        if "metric" in route:
            command += ["metric", str(route["metric"])]
        commands.append(command)
    return commands


def _link_down(interfaces, duration):
    """Take the interfaces down for ``duration`` s, then up again with the
    routes through them restored."""
    routes = [command for interface in interfaces for command in _routes_via(interface)]
    for interface in interfaces:
        _run(["ip", "link", "set", "dev", interface, "down"])
    time.sleep(duration)
    for interface in interfaces:
        _run(["ip", "link", "set", "dev", interface, "up"])
    for command in routes:
        _run(command)


def inject(failure="kill_haproxy", duration=5):
    """
    Break this balancer on purpose (for failover tests), and return when:

    - ``kill_haproxy``: every HAProxy process gets SIGKILL
    - ``stop_haproxy``: HAProxy is stopped by its service
    - ``kill_keepalived``: keepalived's processes get SIGKILL (its VIPs stay
      configured here, as after a crash)
    - ``link_down``: the interface of the VIPs goes down for ``duration``
      seconds, then up again with its gateway routes (this call returns
      after that; the minion cannot answer meanwhile)

    Returns ``{"failure": ..., "at": <seconds since the epoch>}``.  Nothing is
    repaired here; ``state.apply havip`` does.

    CLI Example:

    .. code-block:: bash

        salt svr1 havip.inject kill_haproxy
    """
    facts = _balancer_facts("inject")
    lookup = facts["lookup"]
    if failure not in INJECTIONS:
        raise CommandExecutionError(f"havip.inject: unknown failure {failure!r} (known: {', '.join(INJECTIONS)})")
    at = time.time()
    if failure == "kill_haproxy":
        _kill([p for p in _pids([lookup["haproxy"]["pidfile"]]) if _alive(p)], "HAProxy")
    elif failure == "stop_haproxy":
        _service(facts, "haproxy", "stop")
    elif failure == "kill_keepalived":
        _kill([p for p in _pids(lookup["keepalived"]["pidfiles"]) if _alive(p)], "keepalived")
    else:
        if not isinstance(duration, (int, float)) or not 0 < duration <= 600:
            raise CommandExecutionError(f"havip.inject: duration must be 0-600 s, got {duration!r}")
        _link_down(sorted({vip["interface"] for vip in facts["vips"].values()}), duration)
    return {"failure": failure, "at": round(at, 3)}

"""
The havip pillar contract, defined once: every key under ``havip:``, what it
means and what is accepted, and the checks across keys.

``validate`` takes the merged configuration (defaults <- OS family <-
pillar) and returns it with what the states derive from it, or raises
:class:`Invalid` naming the key.  Every string that lands in a config file
or a script is matched in full against what the daemon accepts, or escaped
where it is written (``ESCAPED``); unknown keys are refused at every level,
with the nearest known one; data a minion published in the Salt mine passes
the same checks as the pillar.  Pure: what is known of the minion (its id,
grains, own addresses, the mine) is passed in.
"""

import dataclasses
import difflib
import ipaddress
import re

from salt.exceptions import CommandExecutionError

ROLES = ("backend", "balancer")
# Written by the formula (havip/facts.sls): the validated configuration.
FACTS_FILE = "/etc/havip/havip.json"
# The HAProxy backend section that holds the havip backend servers.
HAPROXY_BACKEND = "havip_backends"
# The Salt mine entry where a backend publishes its addresses (havip/mine.sls).
MINE_FUNCTION = "havip_address"
# What keeps a balancer from announcing the VIPs it keeps on lo (havip.linger).
ARP_SYSCTLS = {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2}
# An HAProxy time: a number, in milliseconds unless a unit follows.
HAPROXY_TIME = r"\d{1,9}(?:us|ms|s|m|h|d)?"
# HAProxy's balance algorithms that take no argument; uri needs http mode.
BALANCE = ("roundrobin", "static-rr", "leastconn", "first", "source", "random", "uri")
ON_ERROR = ("mark-down", "fail-check", "sudden-death", "fastinter")
# Passwords copied from examples and tutorials: refused.
PLACEHOLDERS = {"change-me", "changeme", "change_me", "password", "passw0rd", "admin", "secret",
                "s3cret", "haproxy", "123456", "12345678", "default", "example", "test"}
# keepalived's weight (track_script, track_file) lies within -253..253.
MAX_WEIGHT = 253
# The pillar keys holding secrets: never in the rendered SLS, state output or
# havip.config (see ``public``); templates read them from the pillar.
SECRETS = ("stats:password", "vips:*:auth_pass")


class Invalid(CommandExecutionError):
    """A pillar value the formula refuses; the message names its key."""

    def __init__(self, key, problem):
        super().__init__(f"havip pillar: havip:{key}: {problem}")
        self.key = key


# ---- what each key accepts -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Key:
    """One pillar key: ``doc`` what it means, ``accepts`` what is accepted
    (the reference and the error messages say it), ``test`` the check of a
    value, ``escaped`` characters accepted because they are escaped where
    the value is written, ``secret`` never shown."""

    doc: str
    accepts: str
    test: object
    escaped: str = ""
    secret: bool = False
    nullable: bool = False

    def check(self, value, key):
        if value is None and self.nullable:
            return
        if not self.test(value):
            raise Invalid(key, f"must be {self.accepts}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Each:
    """A mapping whose keys are names (``name`` accepts them) and whose
    values all follow ``spec``."""

    what: str
    name: Key
    spec: object


def _full(pattern):
    compiled = re.compile(pattern)
    return lambda value: isinstance(value, str) and compiled.fullmatch(value) is not None


def _whole(low, high):
    return lambda value: not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _switch(value):
    return isinstance(value, bool)


def _is_address(value):
    try:
        ipaddress.ip_address(value if isinstance(value, str) else "-")
    except ValueError:
        return False
    return True


def _is_interface_address(value):
    try:
        ipaddress.ip_interface(value if isinstance(value, str) else "-")
    except ValueError:
        return False
    return True


def _is_network(value):
    try:
        ipaddress.ip_network(value if isinstance(value, str) else "-")
    except ValueError:
        return False
    return True


def _list_of(test):
    return lambda value: isinstance(value, list) and all(test(item) for item in value)


def _seconds(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0


def whole(doc, low, high):
    return Key(doc, f"a whole number from {low} to {high}", _whole(low, high))


def switch(doc):
    return Key(doc, "true or false", _switch)


def one_of(doc, choices, nullable=False):
    return Key(doc, "one of " + ", ".join(map(str, choices)) + (" or null" if nullable else ""),
               lambda value: any(type(value) is type(c) and value == c for c in choices), nullable=nullable)


def text(doc, pattern, accepts, **kwargs):
    return Key(doc, accepts, _full(pattern), **kwargs)


# Characters allowed in each kind of string (full match).
NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
PATH = r"/[A-Za-z0-9._~/-]{0,254}"
FILE = r"(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)+"
INTERFACE = r"(?!\.{1,2}$)[A-Za-z0-9_.-]{1,15}"
PACKAGE = r"[a-z0-9][a-z0-9+.-]{0,127}"
UNIT = r"[A-Za-z0-9_][A-Za-z0-9@._-]{0,127}"
PORT = whole("", 1, 65535)

URL_PATH = "a path: '/' then letters, digits and . _ ~ / -"


def port(doc):
    return whole(doc, 1, 65535)


def path(doc):
    return text(doc, PATH, URL_PATH)


def file(doc):
    return text(doc, FILE, "an absolute file path of letters, digits and . _ -")


def files(doc):
    return Key(doc, "a list of absolute file paths", _list_of(_full(FILE)))


def packages(doc):
    return Key(doc, "a list of package names", _list_of(_full(PACKAGE)))


def unit(doc):
    return text(doc, UNIT, "a service name (letters, digits and @ . _ -)")


def haproxy_lines(doc):
    return Key(doc, "a list of one-line strings (no control characters)",
               _list_of(_full(r"[^\x00-\x1f\x7f]+")), escaped=" \"'#;$`")


SPEC = {
    "nodes": Each("node", text("", NAME, "a name of letters, digits and _ . - (a minion id)"), {
        "roles": Key("`backend`, `balancer` or both: what the node runs (nginx; HAProxy and keepalived)",
                     "a non-empty list of backend and/or balancer",
                     lambda value: isinstance(value, list) and bool(value) and set(value) <= set(ROLES)),
        "address": Key("its address on the cluster network (a backend may take it from the mine, see "
                       "`mine`)", "an IP address", _is_address),
        "priority": whole("balancers: the VRRP priority; the highest healthy balancer holds the VIPs",
                          1, 254),
        "page": Key("backends: the body of the page nginx serves (default: the minion id)",
                    "a non-empty string", lambda value: isinstance(value, str) and value.strip() != "",
                    escaped=" \"'#;$`\n<>&"),
    }),
    "vips": Each("VIP", text("", NAME, "a name of letters, digits and _ . - (a VRRP instance)"), {
        "address": Key("the virtual IP, with its prefix length (`192.168.100.10/24`, `fd00::10/64`)",
                       "an IP address with an optional /prefix", _is_interface_address),
        "interface": text("the interface keepalived puts the VIP on (it must exist on every balancer)",
                          INTERFACE, "an interface name (1-15 letters, digits and _ . -)"),
        "virtual_router_id": whole("the VRRP router id, unique per network segment", 1, 255),
        "auth_pass": text("VRRPv2 PASS authentication (secret)", r"[A-Za-z0-9._~+=@%^*,:/-]{1,8}",
                          "1 to 8 letters, digits or . _ ~ + = @ % ^ * , : / - (keepalived keeps 8)",
                          secret=True),
        "priorities": Each("balancer", text("", NAME, "a balancer's name"),
                           whole("this balancer's priority for this VIP", 1, 254)),
        "unicast": switch("VRRP adverts to the other balancers' addresses instead of multicast"),
    }),
    "frontend": {
        "port": port("the port HAProxy's frontend listens on, on every VIP"),
        "mode": one_of("`tcp` (layer 4) or `http` (layer 7)", ("tcp", "http")),
        "bind": Key("addresses the frontend binds; empty = every VIP", "a list of IP addresses",
                    _list_of(_is_address)),
    },
    "backend": {
        "port": port("the port nginx listens on, and HAProxy's servers"),
        "balance": one_of("HAProxy's balance algorithm (`uri` in http mode only)", BALANCE),
        "check": {
            "inter": text("time between two health checks of a server", HAPROXY_TIME,
                          "an HAProxy time such as 1s or 500ms"),
            "fall": whole("failed checks before a server is DOWN", 1, 1000),
            "rise": whole("passed checks before a server is UP again", 1, 1000),
            "on_error": one_of("what live traffic errors do to a server (`observe`), null = wait for "
                               "the checks", ON_ERROR, nullable=True),
        },
        "http_check": {
            "path": path("http mode: the path HAProxy's checks ask"),
            "expect_status": whole("http mode: the status a healthy server answers", 100, 599),
        },
    },
    "stats": {
        "port": port("the port of HAProxy's stats page (every address)"),
        "uri": path("the path of the stats page"),
        "user": text("the stats page's user", r"[A-Za-z0-9._-]{1,64}",
                     "1 to 64 letters, digits or . _ -"),
        "password": text("the stats page's password (required for balancers; no default; secret)",
                         r"[ -~]{8,128}", "8 to 128 printable ASCII characters", escaped=" \"'#;$`",
                         secret=True),
        "realm": text("the realm the browser shows at login", r"[A-Za-z0-9._()-]+(?: [A-Za-z0-9._()-]+)*",
                      "words of letters, digits and . _ ( ) - separated by single spaces", escaped=" "),
        "refresh": text("the stats page's refresh interval", HAPROXY_TIME, "an HAProxy time such as 5s"),
        "monitor_uri": path("answers 200 without auth while HAProxy runs (keepalived's check asks it)"),
        "backends_uri": path("answers 200 while a backend server is UP, else 503 "
                             "(keepalived:track_backends asks it)"),
    },
    "haproxy": {
        "global": haproxy_lines("HAProxy's `global` section (replaces the default list: experts only)"),
        "defaults": haproxy_lines("HAProxy's `defaults` section (replaces the default list: experts "
                                  "only)"),
        "global_extra": haproxy_lines("lines added to `global` after the defaults"),
        "defaults_extra": haproxy_lines("lines added to `defaults` after the defaults (a later "
                                        "`timeout connect` wins over the default)"),
    },
    "keepalived": {
        "vrrp_version": one_of("VRRP version: 3 (sub-second adverts) or 2 (whole seconds, PASS auth)",
                               (2, 3)),
        "advert_int": Key("seconds between VRRP adverts", "0.01-40.95 s in steps of 0.01 (VRRPv3) or "
                          "a whole 1-255 s (VRRPv2)", _seconds),
        "preempt": switch("a recovered higher-priority balancer takes its VIPs back"),
        "preempt_delay": whole("seconds a balancer waits before preempting", 0, 1000),
        "check": {
            "interval": whole("seconds between two runs of the HAProxy check", 1, 3600),
            "timeout": whole("seconds a check may take", 1, 3600),
            "fall": whole("failed checks before the balancer gives up its VIPs", 1, 3600),
            "rise": whole("passed checks before it may hold them again", 1, 3600),
            "watch": switch("the check waits on HAProxy's process and fails the moment it exits"),
            "answer_timeout": Key("seconds HAProxy has to answer stats:monitor_uri (0 = do not ask)",
                                  "a number of seconds from 0 to below keepalived:check:interval",
                                  _seconds),
        },
        "track_backends": switch("a balancer whose HAProxy sees no backend UP ranks below those "
                                 "that see one"),
    },
    "mine": {
        "network": Key("backends without `address` publish their address on this network in the mine",
                       "a network such as 10.0.0.0/24, or null", _is_network, nullable=True),
        "interface": text("... or on this interface", INTERFACE, "an interface name, or null",
                          nullable=True),
    },
    "firewall": {
        "manage": switch("open havip's ports and VRRP in firewalld (default on RedHat)"),
        "zone": text("the firewalld zone", r"[A-Za-z0-9_-]{1,17}", "a firewalld zone name"),
    },
    "selinux": {
        "manage": switch("set the SELinux booleans and ports havip needs (default on RedHat)"),
    },
    "lookup": {
        "pkgs": Each("package list", text("", NAME, "a name"),
                     packages("packages per concern (nginx, haproxy, keepalived, repo, firewall, "
                              "selinux)")),
        "services": Each("service", text("", NAME, "a name"),
                         unit("service names per daemon (nginx, haproxy, keepalived, firewall)")),
        "nginx": {
            "site_file": file("the nginx server file havip writes"),
            "pidfile": file("nginx's pid file"),
            "webroot": file("where the backend page goes"),
            "remove": files("distribution sites that would shadow havip's server"),
        },
        "haproxy": {
            "config": file("HAProxy's config file"),
            "group": text("the group HAProxy runs as (reads its config)", r"[a-z_][a-z0-9_-]{0,31}",
                          "a group name"),
            "pidfile": file("HAProxy's pid file (its master)"),
        },
        "keepalived": {
            "config": file("keepalived's config file"),
            "check_script": file("the HAProxy check keepalived runs (root)"),
            "notify_script": file("the script keepalived runs on every VRRP transition (root)"),
            "state_dir": file("where the notify script records each instance's state"),
            "standby_file": file("havip.standby's flag (a keepalived track_file)"),
            "pidfiles": files("keepalived's pid files (main process, VRRP child)"),
        },
        "sysctl_file": file("the sysctl file havip's kernel settings go to"),
        "selinux": {
            "booleans": Key("SELinux booleans set for balancers", "a list of boolean names",
                            _list_of(_full(r"[a-z_]{1,64}"))),
            "http_ports": Key("ports nginx may bind without a port policy",
                              "a list of port numbers", _list_of(PORT.test)),
        },
    },
}


# ---- walking the configuration ---------------------------------------------


def _mapping(value, key):
    if not isinstance(value, dict):
        raise Invalid(key, f"must be a mapping, got {value!r}")
    return value


def _join(key, name):
    return f"{key}:{name}" if key else str(name)


def _unknown(value, known, key):
    extra = sorted(str(name) for name in value if name not in known)
    if extra:
        near = difflib.get_close_matches(extra[0], [str(k) for k in known], n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}? " if near else ""
        raise Invalid(_join(key, extra[0]), f"unknown key ({hint}known: {', '.join(map(str, known))})")


def walk(spec, value, key=""):
    """Check ``value`` against ``spec``: unknown keys, then every value."""
    if isinstance(spec, Key):
        spec.check(value, key)
    elif isinstance(spec, Each):
        for name, item in _mapping(value if value is not None else {}, key).items():
            spec.name.check(str(name), _join(key, name))
            walk(spec.spec, item, _join(key, name))
    else:
        _unknown(_mapping(value, key or "<top>"), spec, key)
        for name, item in value.items():
            walk(spec[name], item, _join(key, name))


def keys(spec=SPEC, key=""):
    """Every (key, Key) of the contract, ``*`` standing for a name."""
    if isinstance(spec, Key):
        yield key, spec
    elif isinstance(spec, Each):
        yield from keys(spec.spec, _join(key, "*"))
    else:
        for name, sub in spec.items():
            yield from keys(sub, _join(key, name))


def public(config):
    """``config`` without its secrets (SECRETS), for the states and
    havip.config."""
    config = dict(config)
    config["stats"] = {k: v for k, v in (config.get("stats") or {}).items() if k != "password"}
    config["vips"] = {name: {k: v for k, v in vip.items() if k != "auth_pass"}
                      for name, vip in (config.get("vips") or {}).items()}
    return config


# ---- the checks across keys, and what the states derive -------------------


def _vrrp_rank(address, priority):
    """VRRP's order: the higher priority wins (ties are refused)."""
    return priority, int(ipaddress.ip_address(address))


def _mine_args(mine):
    """network.ip_addrs' arguments for the addresses a backend publishes in
    the Salt mine (havip:mine), or None when the mine is not used."""
    args = {}
    if mine.get("network") is not None:
        args["cidr"] = str(ipaddress.ip_network(mine["network"], strict=False))
    if mine.get("interface") is not None:
        args["interface"] = mine["interface"]
    return args or None


def _published_address(name, published, mine_args):
    """The address backend ``name`` published in the mine: untrusted, so it
    must be a list of IP addresses inside havip:mine:network (when set)."""
    key = f"nodes:{name}:address (from the mine)"
    if not isinstance(published, list) or not all(_is_address(item) for item in published):
        raise Invalid(key, f"must be a list of IP addresses, got {published!r}")
    network = mine_args.get("cidr")
    outside = [item for item in published if network and ipaddress.ip_address(item) not in
               ipaddress.ip_network(network)]
    if outside:
        raise Invalid(key, f"{outside[0]} is not in havip:mine:network {network}")
    return str(ipaddress.ip_address(published[0])) if published else None


def _discovered_address(name, mine_args, minion_id, ip_addrs, mine_get):
    """A backend's address: this minion's own from its interfaces, another's
    from the Salt mine; None if it has not published one yet."""
    if name == minion_id:
        found = ip_addrs(**mine_args)
        if not found:
            raise Invalid(f"nodes:{name}:address", f"this minion has no address matching havip:mine {mine_args}")
        return str(ipaddress.ip_address(found[0]))
    published = (mine_get(name, MINE_FUNCTION) or {}).get(name)
    return None if published is None else _published_address(name, published, mine_args)


def _node(name, node, mine_args, minion_id, ip_addrs, mine_get):
    key = f"nodes:{name}"
    roles = node.get("roles")
    if roles is None:
        raise Invalid(f"{key}:roles", f"is required: {SPEC['nodes'].spec['roles'].accepts}")
    if "address" in node:
        address = str(ipaddress.ip_address(node["address"]))
    elif mine_args and "balancer" not in roles:
        address = _discovered_address(name, mine_args, minion_id, ip_addrs, mine_get)
    else:
        raise Invalid(f"{key}:address", "is required" + (
            "" if "balancer" in roles else " (or set havip:mine to take it from the Salt mine)"))
    entry = {"name": name, "roles": sorted(set(roles)), "address": address, "discovered": "address" not in node}
    if "balancer" in roles:
        entry["priority"] = node.get("priority", 100)
    elif "priority" in node:
        raise Invalid(f"{key}:priority", "only balancers have a priority")
    if "page" in node:
        entry["page"] = node["page"]
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
    node's), and the balancers from the most to the least preferred."""
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
    if spread + 1 > MAX_WEIGHT:
        raise Invalid(key, f"the balancers' priorities for {name} span {spread}: keepalived:track_backends"
                           f" needs a weight of -{spread + 1}, beyond keepalived's -{MAX_WEIGHT}")
    order = sorted(balancers, key=lambda n: _vrrp_rank(nodes[n]["address"], priorities[n]), reverse=True)
    return priorities, order


def _vip(name, vip, nodes, balancers):
    key = f"vips:{name}"
    for required in ("address", "interface", "virtual_router_id"):
        if required not in vip:
            raise Invalid(f"{key}:{required}", "is required")
    interface = ipaddress.ip_interface(vip["address"])
    entry = {
        "name": name,
        "address": str(interface.ip),
        "cidr": interface.with_prefixlen,
        "family": interface.version,
        "interface": vip["interface"],
        "virtual_router_id": vip["virtual_router_id"],
        "unicast": vip.get("unicast", False),
        # keepalived.conf reads auth_pass from the pillar (a secret).
        "authenticated": "auth_pass" in vip,
    }
    entry["priorities"], entry["order"] = _vip_priorities(name, vip, nodes, balancers)
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
        if version == 3 and "auth_pass" in vip:
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


def _check_ports(config, nodes):
    ports = {key: config[section]["port"] for key, section in
             (("frontend:port", "frontend"), ("backend:port", "backend"), ("stats:port", "stats"))}
    if ports["frontend:port"] == ports["stats:port"]:
        raise Invalid("stats:port", f"{ports['stats:port']} is also frontend:port")
    both = [n["name"] for n in nodes.values() if len(n["roles"]) == 2]
    for key in ("frontend:port", "stats:port"):
        if both and ports[key] == ports["backend:port"]:
            raise Invalid("backend:port", f"{ports['backend:port']} is also {key}, and {both[0]} is backend"
                                          " and balancer")


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


def stats_socket(global_lines):
    """The path of HAProxy's runtime API socket (`stats socket` in global)."""
    for line in global_lines:
        words = line.split()
        if words[:2] == ["stats", "socket"] and len(words) > 2:
            return words[2]
    return None


def _check_haproxy(config):
    global_lines = config["haproxy"]["global"] + config["haproxy"]["global_extra"]
    if not any(line.split()[:2] == ["stats", "socket"] and "level admin" in line for line in global_lines):
        raise Invalid("haproxy:global", "needs a `stats socket <path> ... level admin` line: havip.status,"
                                        " drain and ready use HAProxy's runtime API")
    if config["backend"]["balance"] == "uri" and config["frontend"]["mode"] != "http":
        raise Invalid("backend:balance", "uri needs frontend:mode http")


def _check_interfaces(vips, interfaces):
    """A balancer's VIP interfaces must exist on it (``interfaces``: its
    interface names, from grains)."""
    for vip in vips.values():
        if vip["interface"] not in interfaces:
            raise Invalid(f"vips:{vip['name']}:interface",
                          f"{vip['interface']} does not exist on this balancer (it has {', '.join(sorted(interfaces))})")


def validate(config, minion_id=None, ip_addrs=None, mine_get=None, interfaces=None):
    """The merged configuration checked, without its secrets (the states
    and havip.config never get them), plus what the states derive from it:
    ``nodes`` and ``vips`` normalised (every VIP with ``priorities`` and
    ``order``, the balancers from the most to the least preferred),
    ``vip_families``, ``backends``/``balancers``, this minion's ``node`` and
    ``roles``, ``mine_function``/``mine_args``, ``arp_sysctls``,
    ``facts_file``, ``haproxy_backend``.  ``ip_addrs`` and ``mine_get`` stand
    for network.ip_addrs and mine.get (needed with havip:mine),
    ``interfaces`` for this minion's interface names (its grains)."""
    walk(SPEC, config)
    config = dict(config)
    mine_args = _mine_args(config["mine"])
    nodes = _nodes(config, mine_args, minion_id, ip_addrs, mine_get)
    balancers = sorted(name for name, node in nodes.items() if "balancer" in node["roles"])
    backends = sorted(name for name, node in nodes.items() if "backend" in node["roles"])
    if balancers and not backends:
        raise Invalid("nodes", "balancers need at least one node with the role backend")
    me = nodes.get(str(minion_id)) if minion_id is not None else None
    if me and "balancer" in me["roles"]:
        for name in backends:
            if nodes[name]["address"] is None:
                raise Invalid(f"nodes:{name}:address",
                              f"is not in the Salt mine yet ({MINE_FUNCTION}): apply havip on {name} first")
    vips = _vips(config, nodes, balancers)
    if me and "balancer" in me["roles"] and interfaces is not None:
        _check_interfaces(vips, interfaces)
    _check_ports(config, nodes)
    _check_keepalived(config, vips)
    _check_haproxy(config)
    if balancers:
        _check_stats(config)
    config.update(
        nodes=nodes,
        vips=vips,
        vip_families=sorted({vip["family"] for vip in vips.values()}),
        backends=[nodes[name] for name in backends],
        balancers=[nodes[name] for name in balancers],
        node=me,
        roles=me["roles"] if me else [],
        facts_file=FACTS_FILE,
        haproxy_backend=HAPROXY_BACKEND,
        mine_function=MINE_FUNCTION,
        mine_args=mine_args,
        arp_sysctls=dict(ARP_SYSCTLS),
    )
    return public(config)

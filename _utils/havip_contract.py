"""
The havip pillar contract, defined once: every key under ``havip:``, what it
means and what it accepts (``SPEC``, built of havip_values' ``Key`` and
``Each``).  Every string that lands in a config
file or a script is matched in full against what the daemon accepts, or
escaped where it is written (``Key.escaped``), or is the operator's own
syntax written as is (``Key.as_is``); ``walk`` refuses unknown keys
at every level, naming the nearest known one.  The pillar reference in the
docs is generated from this table and parameters/defaults.yaml.
"""

import difflib

from havip_contract_services import BALANCE, ON_ERROR, POOLS, SERVICES
from havip_facts import LINK_NODES
from havip_timing import HAPROXY_TIME
from havip_values import (
    ALWAYS,
    GRAIN,
    INTERFACE,
    NAME,
    PORT,
    SALT_PATH,
    Each,
    Invalid,
    Items,
    Key,
    file,
    files,
    haproxy_lines,
    in_range,
    is_address,
    is_interface_address,
    is_network,
    is_page,
    is_seconds,
    is_switch,
    kind_of,
    list_of,
    listen_addresses,
    matches,
    one_of,
    packages,
    path,
    port,
    switch,
    text,
    unit,
    whole,
)

# The formula's file.managed states whose template TOFS may override
# (havip_tofs: the ``tofs`` key), each with its template in havip/files/.
TEMPLATES = {
    "havip-haproxy-config-file": "haproxy.cfg.jinja",
    "havip-keepalived-config-file": "keepalived.conf.jinja",
    "havip-keepalived-check-script-file": "check-haproxy.sh.jinja",
    "havip-keepalived-handover-script-file": "handover.sh.jinja",
    "havip-keepalived-link-check-script-file": "check-link.sh.jinja",
    "havip-keepalived-notify-script-file": "notify.sh.jinja",
    "havip-nginx-config-file": "nginx-site.conf.jinja",
}

ROLES = ("app", "backend", "balancer")

SPEC = {
    "nodes": Each("every host of the cluster, by minion id",
                  text("", NAME, "a name of letters, digits and _ . - (a minion id)"), {
        "roles": Key("`backend`, `balancer`, `app`: what the node runs (nginx; HAProxy and keepalived; the"
                     " operator's own service, a pool's server: havip installs nothing for it)",
                     "a non-empty list of app, backend and/or balancer",
                     lambda value: isinstance(value, list) and bool(value) and set(value) <= set(ROLES),
                     required=ALWAYS),
        "address": Key("its address on the cluster network (a backend or app node may take it from the mine,"
                       " see `mine`)", "an IP address (no IPv6 zone)", is_address,
                       required="yes, but a backend or app node may take it from the mine (`mine`)"),
        "priority": whole("the VRRP priority; the highest healthy balancer holds the VIPs (no two"
                          " balancers alike)", 1, 254, required="for balancers"),
        "page": Key("backends: the page nginx serves (its index.html, HTML)",
                    "a non-empty string of characters up to U+FFFF (write an emoji as an HTML entity,"
                    " `&#x1F600;`: the SLS carries strings ASCII-escaped, and YAML takes no escaped"
                    " surrogate pair)", is_page, as_is=True, default="the minion id"),
    }, required="on every minion that applies havip", placeholder="<id>"),
    "vips": Each("the virtual IPs, a VRRP instance each",
                 text("", NAME, "a name of letters, digits and _ . - (a VRRP instance)"), {
        "address": Key("the virtual IP, with its prefix length (`192.168.100.10/24`, `fd00::10/64`)",
                       "an IP address (no IPv6 zone) with an optional /prefix", is_interface_address, required=ALWAYS),
        "interface": text("the interface keepalived puts the VIP on (it must exist on every balancer)",
                          INTERFACE, "an interface name (1-15 letters, digits and _ . -)", required=ALWAYS),
        "virtual_router_id": whole("the VRRP router id, unique per network segment", 1, 255, required=ALWAYS),
        "auth_pass": text("VRRPv2 PASS authentication (secret)", r"[A-Za-z0-9._~+=@%^*,:/-]{1,8}",
                          "1 to 8 letters, digits or . _ ~ + = @ % ^ * , : / - (keepalived keeps 8)",
                          secret=True),
        "priorities": Each("per-balancer priorities for this VIP (they override `nodes:<id>:priority`)",
                           text("", NAME, "a balancer's name"),
                           whole("this balancer's priority for this VIP", 1, 254), placeholder="<balancer>"),
        "unicast": Key("VRRP adverts to the other balancers' addresses instead of multicast",
                       "true or false", is_switch, default=False),
    }, required="with balancers"),
    "frontend": {
        "port": port("the port HAProxy's frontend listens on, on every VIP"),
        "mode": one_of("`tcp` (layer 4) or `http` (layer 7)", ("tcp", "http")),
        "bind": Key("addresses the frontend binds; empty = every VIP", "a list of IP addresses (no IPv6 zone)",
                    list_of(is_address)),
        "tls": {
            "port": port("TLS is served on this port of every VIP, beside frontend:port"),
            "certificate": Key("PEM: the certificate (and its chain), then its private key; null = no TLS."
                               " It must match its key and be valid now", "a PEM certificate chain and key,"
                               " or null", lambda value: isinstance(value, str), nullable=True, secret=True),
            "redirect": switch("http mode: plain requests on frontend:port get a 301 to https"),
        },
    },
    "services": SERVICES,
    "pools": POOLS,
    "metrics": {
        "port": Key("HAProxy's Prometheus exporter answers /metrics on this port of every balancer, and"
                    " the VRRP state is published for prometheus-node-exporter; null = no metrics",
                    "a whole number from 1 to 65535, or null", in_range(1, 65535), nullable=True),
        "bind": listen_addresses("addresses HAProxy's exporter and prometheus-node-exporter listen on; empty ="
                                 " the balancer's own address (`nodes:<id>:address`). A listed address that"
                                 " is another balancer's is left to it"),
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
        "port": port("the port of HAProxy's stats page (on stats:bind and 127.0.0.1)"),
        "bind": listen_addresses("addresses the stats page listens on, beside 127.0.0.1 (keepalived's checks);"
                                 " empty = the balancer's own address (`nodes:<id>:address`). Given, it must"
                                 " cover every balancer's own address (listed, or 0.0.0.0 / :: of its family):"
                                 " the other balancers ask stats:backends_uri there. A listed address that"
                                 " is another balancer's is left to it"),
        "uri": path("the path of the stats page"),
        "user": text("the stats page's user", r"[A-Za-z0-9._-]{1,64}",
                     "1 to 64 letters, digits or . _ -"),
        "password": text("the stats page's password (required for balancers; no default; secret)",
                         r"[ -~]{8,128}", "8 to 128 printable ASCII characters", escaped=" \"'#;$`",
                         secret=True, required="with balancers"),
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
                          "a whole 1-255 s (VRRPv2)", is_seconds),
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
                                  is_seconds),
        },
        "track_backends": switch("a balancer whose HAProxy sees no backend UP ranks below those "
                                 "that see one"),
        "track_link": switch("a balancer whose pings to the other balancers and to at most"
                             f" {LINK_NODES} other nodes (the first by name) all go unanswered (loss on its own"
                             " link) ranks below those whose pings are answered"),
        "garp_master_refresh": whole("seconds between the gratuitous ARP / unsolicited NA a VIP's holder"
                                     " repeats, so that a stale neighbour entry recovers (0 = never)", 0, 3600),
    },
    "mine": {
        "network": Key("backends without `address` publish their address on this network in the mine",
                       "a network such as 10.0.0.0/24 (no IPv6 zone), or null", is_network, nullable=True),
        "interface": text("... or on this interface", INTERFACE, "an interface name, or null",
                          nullable=True),
    },
    "firewall": {
        "manage": switch("open havip's ports and VRRP in firewalld (default on RedHat)"),
        "zone": text("the firewalld zone", r"[A-Za-z0-9_-]{1,17}", "a firewalld zone name"),
        "admin_sources": Key("networks that may reach the stats page, HAProxy's metrics and the node exporter"
                             " (firewalld rich rules); empty = those ports are opened to no one but the other"
                             " balancers (stats:backends_uri): reach them from the balancer itself, e.g."
                             " `ssh -L 1080:<address>:1080`", "a list of networks such as 10.0.0.0/24 (no IPv6 zone)",
                             list_of(is_network)),
    },
    "selinux": {
        "manage": switch("set the SELinux booleans and ports havip needs (default on RedHat)"),
    },
    "tofs": {
        "files_switch": Key("grains whose values name folders searched first for each template, in this order:"
                            " `<path_prefix>/files/<value>/<template>` (docs/tofs.md)",
                            "a list of grain names (letters, digits and _; `a:b` for a nested key)",
                            list_of(matches(GRAIN))),
        "path_prefix": text("the salt:// folder searched before the formula's own (`havip`): its"
                            " `files/<grain value>/` folders, then its `files/`", SALT_PATH,
                            "a path below salt:// (segments of letters, digits and . _ -, none starting"
                            " with .), or null", nullable=True),
        "source_files": Each("template names searched before the formula's own, per state",
                             one_of("", tuple(TEMPLATES)),
                             Key("names searched, in this order, before the state's own template",
                                 "a list of paths below the files folder (segments of letters, digits and"
                                 " . _ -, none starting with .)", list_of(matches(SALT_PATH))),
                             placeholder="<state id>"),
    },
    "lookup": {
        "pkgs": Each("packages per concern", text("", NAME, "a name"),
                     packages("packages per concern (nginx, haproxy, keepalived, repo, firewall, "
                              "selinux)"), placeholder="<concern>"),
        "services": Each("service names per daemon", text("", NAME, "a name"),
                         unit("service names per daemon (nginx, haproxy, keepalived, firewall)"),
                         placeholder="<daemon>"),
        "nginx": {
            "site_file": file("the nginx server file havip writes"),
            "pidfile": file("nginx's pid file"),
            "webroot": file("where the backend page goes"),
            "remove": files("distribution sites that would shadow havip's server"),
        },
        "haproxy": {
            "config": file("HAProxy's config file"),
            "certificate": file("where frontend:tls:certificate goes (root only)"),
            "group": text("the group HAProxy runs as (reads its config)", r"[a-z_][a-z0-9_-]{0,31}",
                          "a group name"),
            "pidfile": file("HAProxy's pid file (its master)"),
            "server_state_file": file("the servers havip.drain took out of rotation, which HAProxy loads at"
                                      " every start and reload (root only)"),
        },
        "keepalived": {
            "config": file("keepalived's config file"),
            "check_script": file("the HAProxy check keepalived runs (root)"),
            "link_check_script": file("the check of this balancer's link keepalived runs (root;"
                                      " keepalived:track_link)"),
            "link_fault_file": file("where the link check holds its balancer in FAULT on a new loss"
                                    " (a keepalived track_file; <file>.seen beside it)"),
            "notify_script": file("the script keepalived runs on every VRRP transition (root)"),
            "handover_script": file("the handover the notify script runs (root)"),
            "dropin": file("the systemd drop-in that orders keepalived after HAProxy"),
            "state_dir": file("where the notify script records each instance's state"),
            "events_dir": file("where the notify script queues transitions for the havip beacon"),
            "standby_file": file("havip.standby's flag (a keepalived track_file)"),
            "pidfiles": files("keepalived's pid files (main process, VRRP child)"),
        },
        "sysctl_file": file("the sysctl file havip's kernel settings go to"),
        "metrics": {
            "textfile_dir": file("where prometheus-node-exporter's textfile collector reads *.prom"),
            "node_exporter_port": port("where prometheus-node-exporter serves (on metrics:bind; opened in"
                                       " firewalld to firewall:admin_sources)"),
            "node_exporter_defaults": file("prometheus-node-exporter's environment file (its unit reads"
                                           " `ARGS` there): havip writes its listen addresses"),
        },
        "selinux": {
            "booleans": Key("SELinux booleans set for balancers", "a list of boolean names",
                            list_of(matches(r"[a-z_]{1,64}"))),
            "http_ports": Key("ports nginx may bind without a port policy",
                              "a list of port numbers", list_of(PORT.test)),
        },
    },
}


# ---- walking the configuration ---------------------------------------------


def _mapping(value, key):
    if not isinstance(value, dict):
        # Only its kind: it may be a secret put one level too high.
        raise Invalid(key, f"must be a mapping, got {kind_of(value)}")
    return value


def _join(key, name):
    return f"{key}:{name}" if key else str(name)


def _holds_secret(spec):
    """Whether the mapping ``spec`` holds a secret key itself."""
    return any(getattr(sub, "secret", False) for sub in spec.values())


def unknown_key(names, known):
    """(the first of ``names`` not in ``known``, why: "unknown key (did you
    mean <the nearest known one>? known: ...)"), or None if all are known."""
    extra = sorted(str(name) for name in names if name not in known)
    if not extra:
        return None
    near = difflib.get_close_matches(extra[0], [str(k) for k in known], n=1, cutoff=0.6)
    hint = f"did you mean {near[0]}? " if near else ""
    return extra[0], f"unknown key ({hint}known: {', '.join(map(str, known))})"


def _unknown(value, known, key):
    found = unknown_key(value, known)
    if not found:
        return
    if _holds_secret(known):
        # Not its name: a secret written without its space after the colon
        # (`password:s3cret`, `{auth_pass:s3cret}`) is an unknown key here.
        raise Invalid(key, f"has a key not shown, as it may hold a secret (`password:x` without its space"
                           f" is one): {found[1]}")
    raise Invalid(_join(key, found[0]), found[1])


def _list(value, key):
    if not isinstance(value, list):
        raise Invalid(key, f"must be a list, got {kind_of(value)}")
    return value


def walk(spec, value, key="", defaults=True):
    """Check ``value`` against ``spec``: unknown keys, then every value.
    ``defaults``: ``value`` is merged over the formula's defaults, so every
    mapping of ``spec`` is there (inside a named entry, which defaults.yaml
    cannot hold, one may be absent)."""
    if isinstance(spec, Key):
        spec.check(value, key)
    elif isinstance(spec, Each):
        for name, item in _mapping(value if value is not None else {}, key).items():
            spec.name.check(str(name), _join(key, name))
            walk(spec.spec, item, _join(key, name), defaults=False)
    elif isinstance(spec, Items):
        for index, item in enumerate(_list(value, key)):
            walk(spec.spec, item, _join(key, index), defaults=False)
    else:
        _unknown(_mapping(value, key or "<top>"), spec, key)
        for name, sub in spec.items():
            if getattr(sub, "required", "") == ALWAYS and name not in value:
                raise Invalid(_join(key, name), f"is required: {getattr(sub, 'accepts', 'a mapping by name')}")
            if isinstance(sub, dict) and name not in value and defaults:
                raise Invalid(_join(key, name), "is missing: the configuration to check is the pillar merged"
                                                " over the formula's defaults (as map.jinja does)")
        for name, item in value.items():
            walk(spec[name], item, _join(key, name), defaults)


def keys(spec=SPEC, key=""):
    """Every (key, Key or Each) of the contract, ``<name>`` standing for
    any name of an Each."""
    if isinstance(spec, Key):
        yield key, spec
    elif isinstance(spec, (Each, Items)):
        yield key, spec
        yield from keys(spec.spec, _join(key, spec.placeholder))
    else:
        for name, sub in spec.items():
            yield from keys(sub, _join(key, name))


def _without(value, parts):
    """``value`` without the key at ``parts`` (a placeholder: every name)."""
    if not isinstance(value, dict) or not parts:
        return value
    first, rest = parts[0], parts[1:]
    if first.startswith("<"):
        return {name: _without(item, rest) for name, item in value.items()}
    if not rest:
        return {name: item for name, item in value.items() if name != first}
    return {**value, first: _without(value[first], rest)} if first in value else value


def public(config):
    """``config`` without the keys the contract calls secret."""
    for key, spec in keys():
        if getattr(spec, "secret", False):
            config = _without(config, key.split(":"))
    return config

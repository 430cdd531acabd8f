"""
The havip pillar contract's services and pools (issue 23): the keys of
``havip:services`` (HAProxy's frontends: a port on VIPs, TLS, routes by
host and path) and ``havip:pools`` (its backends: servers that are havip's
nodes or any address), as havip_contract's table takes them.  What the
keys mean together (a route's pool exists, no two services on one VIP and
port, ...) is havip_services'.
"""

from havip_timing import HAPROXY_TIME
from havip_values import (
    ALWAYS,
    NAME,
    SERVICE_NAME,
    Each,
    Items,
    Key,
    is_address,
    is_host,
    is_switch,
    list_of,
    matches,
    one_of,
    path,
    port,
    switch,
    text,
    whole,
)

# HAProxy's balance algorithms that take no argument; uri needs http mode.
BALANCE = ("roundrobin", "static-rr", "leastconn", "first", "source", "random", "uri")
ON_ERROR = ("mark-down", "fail-check", "sudden-death", "fastinter")
MODES = ("tcp", "http")
# The names HAProxy's sections of havip take already.
RESERVED = ("havip_metrics", "stats")


def service_name(what):
    return Key("", f"a lower-case letter, then up to 31 lower-case letters, digits, _ and - ({what}), not"
                   f" {' or '.join(RESERVED)}",
               lambda value: matches(SERVICE_NAME)(value) and value not in RESERVED)


def check(doc_of):
    """A pool's server checks (HAProxy's ``default-server``); ``doc_of``:
    where each default comes from."""
    return {
        "inter": text(f"time between two health checks of a server (default: {doc_of}:inter)", HAPROXY_TIME,
                      "an HAProxy time such as 1s or 500ms"),
        "fall": whole(f"failed checks before a server is DOWN (default: {doc_of}:fall)", 1, 1000),
        "rise": whole(f"passed checks before a server is UP again (default: {doc_of}:rise)", 1, 1000),
        "on_error": one_of(f"what live traffic errors do to a server (`observe`), null = wait for the checks"
                           f" (default: {doc_of}:on_error)", ON_ERROR, nullable=True),
    }


SERVICES = Each("several frontends on the VIPs; absent = today's `frontend` with `backend`'s servers (a"
                " pillar with `services` gives its own TLS to each, `frontend:bind` and `frontend:tls` unset)",
                service_name("HAProxy's frontend"), {
    "port": whole("the port the service listens on, on each of its VIPs", 1, 65535, required=ALWAYS),
    "mode": Key("`tcp` (layer 4) or `http` (layer 7)", "one of tcp, http",
                one_of("", MODES).test, default="tcp"),
    "vips": Key("the VIPs (names of `vips`) the service listens on; absent = every VIP",
                "a non-empty list of VIP names", lambda value: list_of(matches(NAME))(value) and bool(value)),
    "tls": {
        "port": port("TLS is served on this port of the service's VIPs (default: frontend:tls:port)"),
        "certificates": Key("PEMs: each a certificate (and its chain), then its private key; SNI picks the"
                            " one for the name asked, the first is the default. Each must match its key and"
                            " be valid now", "a non-empty list of PEM certificate chains and keys",
                            lambda value: isinstance(value, list) and bool(value)
                            and all(isinstance(item, str) for item in value),
                            secret=True, required=ALWAYS),
        "redirect": switch("http mode: plain requests on the service's port get a 301 to https (default:"
                           " false)"),
    },
    "routes": Items("http mode: requests routed by host and path, the first route that matches wins", {
        "host": Key("the host asked (the Host header, without its port): exact, or `*.` and a domain for"
                    " any name below it, as nginx's `server_name` (matched in any case)",
                    "a host name (RFC 1123: labels of letters, digits and -, none starting or ending with -)"
                    ", optionally after `*.`", is_host),
        "path_prefix": path("the start of the path asked"),
        "pool": Key("the pool these requests go to (a name of `pools`)", "a pool's name",
                    matches(SERVICE_NAME), required=ALWAYS),
    }),
    "pool": Key("the pool (a name of `pools`) every request no route takes goes to", "a pool's name",
                matches(SERVICE_NAME), required=ALWAYS),
}, placeholder="<service>")

POOLS = Each("HAProxy's backends: the servers a service's requests go to (with `services`; every pool must"
             " serve one)", service_name("HAProxy's backend"), {
    "balance": one_of("HAProxy's balance algorithm (`uri` for http services only; default: backend:balance)",
                      BALANCE),
    "port": port("the servers' port unless a server gives its own (default: backend:port)"),
    "check": check("backend:check"),
    "http_check": {
        "path": path("http pools: the path HAProxy's checks ask (default: backend:http_check:path)"),
        "expect_status": whole("http pools: the status a healthy server answers (default:"
                               " backend:http_check:expect_status)", 100, 599),
        "host": Key("http pools: the Host header of the checks (default: none)", "a host name (RFC 1123)",
                    lambda value: is_host(value) and not value.startswith("*.")),
    },
    "servers": Each("the pool's servers, by the name HAProxy shows", Key("", "a name of letters, digits and"
                                                                          " _ . -", matches(NAME)), {
        "node": Key("a node of `nodes` with the role backend or app: its address (or the mine's)",
                    "a node's name", matches(NAME)),
        "address": Key("... or the address of a server that is not a node", "an IP address (no IPv6 zone)",
                       is_address),
        "port": port("its port (default: the pool's port)"),
        "weight": whole("its share of the requests against the other servers' (0: none but its sessions)",
                        0, 256, default=1),
        "maxconn": whole("connections HAProxy opens to it at most (the rest wait in its queue)", 1,
                         2**31 - 1),
        "backup": Key("takes requests only while no other server is UP", "true or false", is_switch,
                      default=False),
    }, required=ALWAYS, placeholder="<server>"),
}, placeholder="<pool>")

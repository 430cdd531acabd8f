"""
What a havip node listens on and what firewalld opens, to whom: derived
from the validated pillar for the templates and states (``listen``,
``firewall``); a listed address that cannot serve is ``Invalid`` naming
its key.  Pure helpers.
"""

import ipaddress

from havip_facts import CHECK_ADDRESS
from havip_values import Invalid, canonical_address, parse_address

# The ports firewalld opens to firewall:admin_sources only.
ADMIN_PORTS = ("stats:port", "metrics:port", "lookup:metrics:node_exporter_port")
# VRRP's multicast groups (RFC 5798).
VRRP_GROUPS = {4: "224.0.0.18", 6: "ff02::12"}
# What havip up to 0.4.1 opened in firewalld and no longer does (removed on
# an upgrade): IPv6 VRRP from every link-local source.
LEGACY_RICH_RULES = ('rule family="ipv6" source address="fe80::/10" protocol value="vrrp" accept',)


def _covers(addresses, own):
    """Does a listener on ``addresses`` take connections to ``own``?"""
    own = ipaddress.ip_address(own)
    return any(address == own or (address.is_unspecified and address.version == own.version)
               for address in map(ipaddress.ip_address, addresses))


def _binds(config, key, nodes, balancers):
    """{balancer: the addresses it listens on for ``key`` (stats or
    metrics)}: the listed ones (canonical, each once) but the other
    balancers' own, or its own address when none is listed."""
    listed = list(dict.fromkeys(canonical_address(a) for a in config[key]["bind"]))
    binds = {}
    for name in balancers:
        own = nodes[name]["address"]
        others = {nodes[other]["address"] for other in balancers if other != name}
        binds[name] = [a for a in listed if a not in others] if listed else [own]
        if not binds[name]:
            raise Invalid(f"{key}:bind", f"holds no address for balancer {name} (its own is {own})")
        if key == "stats" and not _covers(binds[name], own):
            anywhere = "0.0.0.0" if ":" not in own else "::"
            raise Invalid("stats:bind", f"must hold {name}'s address {own} (or {anywhere}): the other balancers"
                                        " ask stats:backends_uri there")
    return binds


def listen(config, nodes, balancers, me):
    """What this balancer's daemons listen on: ``stats`` (stats:bind and
    127.0.0.1, where keepalived's checks ask), ``metrics`` (HAProxy's
    exporter and the node exporter)."""
    stats, metrics = (_binds(config, key, nodes, balancers) for key in ("stats", "metrics"))
    if not me or "balancer" not in me["roles"]:
        return {}
    bound = stats[me["name"]]
    local = bound if _covers(bound, CHECK_ADDRESS) else [*bound, CHECK_ADDRESS]
    return {"stats": local, "metrics": metrics[me["name"]]}


def listening_ports(config, services):
    """{pillar key: port} of every port a balancer listens on: each of the
    model's ``services``' (havip_services; their TLS ports after
    stats:port, as before services came), stats, metrics."""
    ports = {key: number for service in services for key, number in service["ports"].items()
             if not key.endswith(":tls:port")}
    ports["stats:port"] = config["stats"]["port"]
    ports.update((key, number) for service in services for key, number in service["ports"].items()
                 if key.endswith(":tls:port"))
    if config["metrics"]["port"] is not None:
        ports["lookup:metrics:node_exporter_port"] = config["lookup"]["metrics"]["node_exporter_port"]
        ports["metrics:port"] = config["metrics"]["port"]
    return ports


def admin_sources(config):
    """firewall:admin_sources, canonical."""
    return [str(parse_address(n, ipaddress.ip_network)) for n in config["firewall"]["admin_sources"]]


def _rule(family, what):
    return f'rule family="ipv{family}" {what} accept'


def _vrrp_sources(vip, peers):
    """Where a VIP's VRRP adverts come from: a unicast VIP's from the other
    balancers' addresses; a multicast one's to its group, IPv4 from the
    peers' addresses (their interfaces' own; unknown when those are IPv6),
    IPv6 from link-local sources (RFC 5798 sends from the interface's
    link-local address, which havip does not know).  keepalived takes only
    adverts with TTL / hop limit 255, so never from off the link."""
    if vip["unicast"]:
        return [f'source address="{peer}"' for peer in peers]
    group = f'destination address="{VRRP_GROUPS[vip["family"]]}"'
    if vip["family"] == 6:
        return [f'source address="fe80::/10" {group}']
    ipv4_peers = [peer for peer in peers if ipaddress.ip_address(peer).version == 4]
    return [f'source address="{peer}" {group}' for peer in ipv4_peers] or [group]


def _vrrp_rules(vips, nodes, balancers, me):
    """VRRP in firewalld, each VIP's from its sources (``_vrrp_sources``)."""
    peers = [nodes[name]["address"] for name in balancers if name != me["name"]]
    return [_rule(vip["family"], f'{source} protocol value="vrrp"')
            for vip in sorted(vips.values(), key=lambda v: v["name"]) for source in _vrrp_sources(vip, peers)]


def _admin_rules(config, ports, nodes, balancers, me):
    """The rich rules of a balancer's admin ports: the stats page, the
    metrics and the node exporter to firewall:admin_sources (canonical by
    now), the stats page to the other balancers too (they ask
    stats:backends_uri)."""
    admin = [number for key, number in ports.items() if key in ADMIN_PORTS]
    rules = []
    for source in config["firewall"]["admin_sources"]:
        family = ipaddress.ip_network(source).version
        rules += [_rule(family, f'source address="{source}" port port="{number}" protocol="tcp"') for number in admin]
    for peer in (nodes[name]["address"] for name in balancers if name != me["name"]):
        rules.append(_rule(ipaddress.ip_address(peer).version,
                           f'source address="{peer}" port port="{ports["stats:port"]}" protocol="tcp"'))
    return rules


def firewall(config, vips, ports, nodes, balancers, me):
    """What firewalld gets on this node: ``ports`` for everyone (a backend's
    port, a balancer's services' ports of ``listening_ports``),
    ``rich_rules`` (a balancer's admin ports and VRRP), and ``closed``:
    what havip up to 0.4.1 opened and this release does not (the admin
    ports zone-wide, IPv6 VRRP from fe80::/10), removed where it is."""
    public, rules, closed = [], [], {"ports": [], "rich_rules": []}
    if me and "backend" in me["roles"]:
        public.append(config["backend"]["port"])
    if me and "balancer" in me["roles"]:
        public += [number for key, number in ports.items() if key not in ADMIN_PORTS]
        rules = _admin_rules(config, ports, nodes, balancers, me) + _vrrp_rules(vips, nodes, balancers, me)
        closed = {"ports": [f"{number}/tcp" for key, number in ports.items() if key in ADMIN_PORTS],
                  "rich_rules": list(LEGACY_RICH_RULES)}
    return {"ports": [f"{number}/tcp" for number in dict.fromkeys(public)], "rich_rules": list(dict.fromkeys(rules)),
            "closed": closed}


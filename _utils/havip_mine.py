"""
The Salt mine's data in the havip pillar: untrusted, as any minion may
publish there.  A backend without ``address`` publishes its own
(havip:mine), a balancer its own interfaces' addresses (the handover's
relays: ``own_addresses``); every address read is parsed by
``parse_address``, inside havip:mine:network when that is set, else
``Invalid`` naming the key, and no VIP is ever taken for a balancer's
address.  Pure: the minion's own addresses and the mine are passed in
(network.ip_addrs, grains, mine.get).
"""

import ipaddress

from havip_facts import LINGER_DEVICE, MINE_FUNCTION, RELAY_FUNCTION
from havip_values import Invalid, parse_address


def mine_args(mine):
    """network.ip_addrs' arguments for the addresses a backend publishes in
    the Salt mine (havip:mine), or None when the mine is not used."""
    args = {}
    if mine.get("network") is not None:
        args["cidr"] = str(parse_address(mine["network"], ipaddress.ip_network))
    if mine.get("interface") is not None:
        args["interface"] = mine["interface"]
    return args or None


def _reported_addresses(values, key, what="a list of IP addresses"):
    """``values``, addresses a minion reports (in the mine: untrusted;
    network.ip_addrs), parsed: a list of IP addresses as ``parse_address``
    takes them, else Invalid naming ``key`` (the value shown escaped, on
    one line)."""
    try:
        if not isinstance(values, list):
            raise ValueError(values)
        return [parse_address(value) for value in values]
    except ValueError:
        raise Invalid(key, f"must be {what} (no IPv6 zone), got {values!a}") from None


def _published_address(name, published, mine_args):
    """The address backend ``name`` published in the mine: untrusted, so it
    must be a list of IP addresses inside havip:mine:network (when set)."""
    key = f"nodes:{name}:address (from the mine)"
    addresses = _reported_addresses(published, key)
    network = mine_args.get("cidr")
    outside = [address for address in addresses if network and address not in ipaddress.ip_network(network)]
    if outside:
        raise Invalid(key, f"{outside[0]} is not in havip:mine:network {network}")
    return str(addresses[0]) if addresses else None


def discovered_address(name, mine_args, minion_id, ip_addrs, mine_get):
    """A backend's address: this minion's own from its interfaces, another's
    from the Salt mine; None if it has not published one yet."""
    if name == minion_id:
        found = ip_addrs(**mine_args)
        if not found:
            raise Invalid(f"nodes:{name}:address", f"this minion has no address matching havip:mine {mine_args}")
        return str(_reported_addresses(found, f"nodes:{name}:address (network.ip_addrs)")[0])
    published = (mine_get(name, MINE_FUNCTION) or {}).get(name)
    return None if published is None else _published_address(name, published, mine_args)


# What a balancer publishes as RELAY_FUNCTION: the shape of ``grains.item
# ip4_interfaces ip6_interfaces``, which releases up to 0.6.0 published
# whole (VIPs and lo included).
RELAY_GRAINS = ("ip4_interfaces", "ip6_interfaces")


def own_addresses(grains, vips):
    """What a balancer publishes as RELAY_FUNCTION (``havip.relay_addresses``):
    its own addresses by interface from its ``grains`` (RELAY_GRAINS), in
    their shape, without LINGER_DEVICE (where the handover keeps a VIP),
    loopback addresses and the cluster's VIPs (``vips``, ipaddress
    objects); each list sorted, an interface left without one left out.
    The same whichever balancer holds a VIP, so a second apply changes
    nothing."""
    published = {}
    for grain in RELAY_GRAINS:
        published[grain] = {}
        for interface, addresses in sorted(grains.get(grain, {}).items()):
            own = {parse_address(a) for a in addresses} - vips
            own = {address for address in own if not address.is_loopback}
            if own and interface != LINGER_DEVICE:
                published[grain][interface] = [str(address) for address in sorted(own)]
    return published


def _interface_addresses(published, key):
    """A balancer's published RELAY_FUNCTION (untrusted: ``own_addresses``'
    shape, or an older release's whole grains), parsed: {interface:
    [addresses]}."""
    found = {}
    for grain in RELAY_GRAINS:
        table = published.get(grain, {}) if isinstance(published, dict) else None
        if not isinstance(table, dict):
            raise Invalid(key, f"{grain} must map interfaces to lists of IP addresses, got {table!a}")
        for interface, addresses in table.items():
            found.setdefault(str(interface), []).extend(_reported_addresses(
                addresses, key, f"a list of IP addresses in {grain}"))
    return found


def _relay_address(vip, node, vip_addresses, mine_get):
    """Where the handover relays ``vip``'s packets for balancer ``node``: its
    address on the VIP's interface and of the VIP's family, as it published
    it in the mine (a global one first; never one of ``vip_addresses``, the
    cluster's VIPs, which an older release published while holding them),
    else its node address if of that family; None if neither is known."""
    published = (mine_get(node["name"], RELAY_FUNCTION) or {}).get(node["name"]) if mine_get else None
    if published is not None:
        key = f"nodes:{node['name']}:address (from the mine, {RELAY_FUNCTION})"
        candidates = _interface_addresses(published, key).get(vip["interface"], [])
        candidates = [a for a in candidates if a.version == vip["family"] and a not in vip_addresses]
        if candidates:
            return str(min(candidates, key=lambda a: (a.is_link_local, int(a))))
    if ipaddress.ip_address(node["address"]).version == vip["family"]:
        return node["address"]
    return None


def relays(vips, nodes, balancers, me, mine_get):
    """Each VIP's ``relay_to`` on this balancer: the other balancers'
    addresses the handover relays to."""
    vip_addresses = {ipaddress.ip_address(vip["address"]) for vip in vips.values()}
    for vip in vips.values():
        relay_to = (_relay_address(vip, nodes[name], vip_addresses, mine_get)
                    for name in balancers if name != me["name"])
        vip["relay_to"] = [address for address in relay_to if address]


"""
The handover as ``havip.status`` reads it back: the relay tables that
havip-handover (havip/files/handover.sh.jinja) loads on a balancer that gave
a VIP up - one nftables table per VIP, whose rules dup the packets of
connections it has not seen begin to the other balancers - and the table
that keeps conntrack on.

Pure helpers: nft runs through ``run(cmd, **kwargs)``, Salt's
``cmd.run_all`` without a shell, which the caller passes in.
"""

import json
import shutil

from havip_facts import NFT_FAMILIES, RELAY_TABLE_PREFIX, TRACK_TABLE


def _table(run, family, name):
    """``nft -j list table``'s items of one table; None if it is not there."""
    out = run(["nft", "-j", "list", "table", family, name])
    if out["retcode"] != 0:
        return None
    return json.loads(out["stdout"] or "{}").get("nftables", [])


def relays(run, vips):
    """{VIP name: [the addresses its packets are relayed to]} of the VIPs
    of ``vips`` ({name: VIP}) whose relay table is loaded (none without
    nft)."""
    found = {}
    for name, vip in sorted(vips.items()) if shutil.which("nft") else ():
        items = _table(run, NFT_FAMILIES[vip["family"]], RELAY_TABLE_PREFIX + name)
        if items is not None:
            found[name] = _dup_addresses(items)
    return found


def _dup_addresses(items):
    """The addresses the rules among ``items`` dup packets to, in order."""
    addresses = []
    for item in items:
        for expr in item.get("rule", {}).get("expr", []):
            address = expr.get("dup", {}).get("addr") if isinstance(expr, dict) else None
            if address and address not in addresses:
                addresses.append(address)
    return addresses


def tracking(run):
    """Is conntrack kept on for the handover (table inet TRACK_TABLE)?"""
    return bool(shutil.which("nft")) and _table(run, "inet", TRACK_TABLE) is not None

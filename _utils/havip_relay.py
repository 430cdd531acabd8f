"""
havip.relay's nftables tables: while peers hand VIPs over to a balancer,
the TCP packets to a VIP of connections conntrack did not see begin are
passed on to the peer that still serves them (``havip.linger``).

Pure helpers: nft runs through ``run(cmd, **kwargs)``, Salt's
``cmd.run_all`` without a shell, which the caller passes in.
"""

import ipaddress
import json
import shutil

from salt.exceptions import CommandExecutionError

# The nftables table of the relay rules (families ip and ip6).
RELAY_TABLE = "havip_relay"
FAMILIES = ("ip", "ip6")
# The TCP packets havip.relay passes on: those of connections conntrack did
# not see begin - an ACK it picks up mid-stream (new), a FIN or an RST it
# cannot (invalid).
RELAYED = ("tcp flags & syn == 0 ct state new",
           "tcp flags & (fin | rst) != 0 tcp flags & syn == 0 ct state invalid")


def own_address(vip, found, facts):
    """This balancer's address on the VIP's interface and of its family,
    where a peer can send the VIP's packets: a global one before a
    link-local one, never a VIP.  ``found``: ``havip_host.addresses``."""
    vip_addresses = {other["address"] for other in facts["vips"].values()}
    candidates = [(info.get("scope") != "global", info.get("secondary", False), address)
                  for address, info in found.get(vip["interface"], {}).items()
                  if address not in vip_addresses and ipaddress.ip_address(address).version == vip["family"]]
    if not candidates:
        raise CommandExecutionError(
            f"havip.linger: no IPv{vip['family']} address of this balancer on {vip['interface']}"
            " for the peers to relay to")
    return min(candidates)[2]


def rules(chosen, to):
    """{family: [nft rule]} relaying each VIP of ``chosen`` ({name: VIP})
    to its peer's address in ``to`` ({name: address}), which must be of the
    VIP's family."""
    found = {}
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
        found.setdefault(family, []).extend(
            f"{family} daddr {vip['address']} {match} {action}" for match in RELAYED)
    return found


def tables(by_family):
    """nft script: the relay tables replaced by ``by_family`` ({family: [rule]})."""
    lines = []
    for family in FAMILIES:
        lines += [f"table {family} {RELAY_TABLE}", f"delete table {family} {RELAY_TABLE}"]
        if by_family.get(family):
            lines += [f"table {family} {RELAY_TABLE} {{", "    chain prerouting {",
                      "        type filter hook prerouting priority 0; policy accept;",
                      *(f"        {rule}" for rule in by_family[family]), "    }", "}"]
    return "\n".join(lines) + "\n"


def load(run, by_family):
    """Replace the relay tables by ``by_family`` (none: no relay)."""
    out = run(["nft", "-f", "-"], stdin=tables(by_family))
    if out["retcode"] != 0:
        raise CommandExecutionError(f"havip: nft refused the relay table: {out['stderr'].strip()}")


def relays(run):
    """{VIP name: address} of the relay rules in place (none without nft)."""
    found = {}
    for family in FAMILIES if shutil.which("nft") else ():
        out = run(["nft", "-j", "list", "table", family, RELAY_TABLE])
        if out["retcode"] != 0:
            continue
        for item in json.loads(out["stdout"] or "{}").get("nftables", []):
            rule = item.get("rule")
            if rule and "comment" in rule:
                dup = next((expr["dup"] for expr in rule["expr"] if "dup" in expr), {})
                found[rule["comment"]] = dup.get("addr")
    return found

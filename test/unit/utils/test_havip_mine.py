"""
Unit tests of ``_utils/havip_mine.py`` (through ``havip_pillar.validate``):
what minions publish in the Salt mine is untrusted: a backend's address, a
balancer's interface addresses (the handover's relays).
"""

import copy
import ipaddress

import havip_mine
import havip_values
import pytest

from test.formula import validated
from test.saltcall import seed_pillar

SEED = seed_pillar()["havip"]


def validate(havip, minion_id="svr1", **kwargs):
    kwargs.setdefault("interfaces", ["lo", "ens32"])
    return validated(havip, minion_id, **kwargs)


def mine(published):
    """A mine holding ``published`` as nginx2's havip_address."""
    return lambda name, function: {name: published} if name == "nginx2" else {}


def discovered(**mine_section):
    havip = copy.deepcopy(SEED)
    del havip["nodes"]["nginx2"]["address"]
    havip["mine"] = mine_section
    return havip


@pytest.mark.parametrize("published", [
    ["192.168.100.12:80\nglobal\n    daemon"],
    "192.168.100.12",
    [["192.168.100.12"]],
    ["10.9.9.9"],                       # outside havip:mine:network
    ["192.168.100.12", "10.9.9.9"],
])
def test_a_backend_address_from_the_mine_is_untrusted(published):
    with pytest.raises(havip_values.Invalid) as refused:
        validate(discovered(network="192.168.100.0/24"), mine_get=mine(published))
    assert refused.value.key == "nodes:nginx2:address (from the mine)"


ZONED_BACKEND = "fd00::50%lo]:80 init-addr none\nglobal\n    stats socket ipv4@0.0.0.0:9999 level admin\n#"
ZONED_BALANCER = "fd00::14%x'; touch \"$(printf '\\057tmp\\057pwned')\"; : '"


@pytest.mark.parametrize("mine_section", [{"interface": "ens32"}, {"network": "fd00::/64"}])
def test_a_backend_address_from_the_mine_with_a_zone_is_refused_shown_escaped(mine_section):
    with pytest.raises(havip_values.Invalid) as refused:
        validate(discovered(**mine_section), mine_get=mine([ZONED_BACKEND]))
    assert refused.value.key == "nodes:nginx2:address (from the mine)"
    assert "\n" not in str(refused.value) and ascii(ZONED_BACKEND) in str(refused.value)


def test_a_backend_address_from_the_mine_outside_the_network_is_shown_canonical():
    with pytest.raises(havip_values.Invalid, match=r"^havip pillar: havip:nodes:nginx2:address \(from the mine\): "
                                                     r"fd01::9 is not in havip:mine:network fd00::/64$"):
        validate(discovered(network="fd00::/64"), mine_get=mine(["FD01:0::0:9"]))


def test_a_backend_address_from_the_mine_that_passes_is_used():
    config = validate(discovered(network="192.168.100.0/24"), mine_get=mine(["192.168.100.12"]))
    assert config["nodes"]["nginx2"]["address"] == "192.168.100.12"


def test_a_backend_that_published_nothing_yet_stops_the_balancer():
    with pytest.raises(havip_values.Invalid, match="is not in the Salt mine yet"):
        validate(discovered(network="192.168.100.0/24"), mine_get=mine(None))


def test_a_backend_publishes_its_own_address_from_its_interfaces():
    havip = discovered(network="192.168.100.0/24")
    config = validate(havip, minion_id="nginx2", ip_addrs=lambda **kw: ["192.168.100.12"], mine_get=mine(None))
    assert config["node"]["address"] == "192.168.100.12"
    assert config["mine_args"] == {"cidr": "192.168.100.0/24"}


def test_a_balancer_relays_to_the_others_address_on_the_vips_interface_and_family():
    havip = copy.deepcopy(SEED)
    havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    published = {"svr2": {"ip4_interfaces": {"ens32": ["192.168.100.14"]},
                          "ip6_interfaces": {"ens32": ["fe80::2", "fd00:100::14"], "lo": ["::1"]}}}
    config = validate(havip, mine_get=lambda name, function: {name: published.get(name)})
    assert config["vips"]["VI_1"]["relay_to"] == ["192.168.100.14"]
    assert config["vips"]["VI_6"]["relay_to"] == ["fd00:100::14"]
    # Not published (yet): the node address if it is of the VIP's family.
    config = validate(havip, mine_get=lambda name, function: {})
    assert config["vips"]["VI_1"]["relay_to"] == ["192.168.100.14"]
    assert config["vips"]["VI_6"]["relay_to"] == []


def test_a_balancers_published_interface_addresses_are_untrusted():
    havip = copy.deepcopy(SEED)
    published = {"ip4_interfaces": {"ens32": ["192.168.100.14\nip daddr"]}, "ip6_interfaces": {}}
    with pytest.raises(havip_values.Invalid) as refused:
        validate(havip, mine_get=lambda name, function: {name: published})
    assert refused.value.key == "nodes:svr2:address (from the mine, havip_relay_addresses)"


@pytest.mark.parametrize("grain,addresses", [
    ("ip6_interfaces", [ZONED_BALANCER]),
    ("ip6_interfaces", ["fd00:100::14", "fe80::2%ens32"]),
    ("ip4_interfaces", ["192.168.100.14\u0085"]),
])
def test_a_balancers_published_interface_address_with_a_zone_is_refused_shown_escaped(grain, addresses):
    havip = copy.deepcopy(SEED)
    havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    published = {"ip4_interfaces": {"ens32": ["192.168.100.14"]}, "ip6_interfaces": {"ens32": ["fd00:100::14"]}}
    published[grain] = {"lo": [], "ens32": addresses}
    with pytest.raises(havip_values.Invalid) as refused:
        validate(havip, mine_get=lambda name, function: {name: published})
    assert refused.value.key == "nodes:svr2:address (from the mine, havip_relay_addresses)"
    assert f"in {grain}" in str(refused.value) and ascii(addresses) in str(refused.value)
    assert "\n" not in str(refused.value) and "\u0085" not in str(refused.value)


def test_a_balancers_relay_address_is_its_canonical_form():
    havip = copy.deepcopy(SEED)
    havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    published = {"ip4_interfaces": {}, "ip6_interfaces": {"ens32": ["FD00:100:0::0:14"]}}
    config = validate(havip, mine_get=lambda name, function: {name: published})
    assert config["vips"]["VI_6"]["relay_to"] == ["fd00:100::14"]


# ---- what a balancer publishes for the relays (havip.relay_addresses) ----------

VIPS = {ipaddress.ip_address(address) for address in ("192.168.100.10", "fd00:100::10")}
# svr2's grains while it holds both VIPs, with their lingering copies on lo.
HOLDING = {
    "ip4_interfaces": {"lo": ["127.0.0.1", "192.168.100.10"], "ens32": ["192.168.100.14", "192.168.100.10"],
                       "ens33": ["10.0.0.14"], "dummy0": []},
    "ip6_interfaces": {"lo": ["::1", "fd00:100::10"], "ens32": ["fe80::2", "FD00:100:0::10", "fd00:100::14"],
                       "ens33": ["::1"]},
}
OWN = {"ip4_interfaces": {"ens32": ["192.168.100.14"], "ens33": ["10.0.0.14"]},
       "ip6_interfaces": {"ens32": ["fd00:100::14", "fe80::2"]}}


def test_a_balancer_publishes_its_own_addresses_no_vip_no_loopback_sorted():
    assert havip_mine.own_addresses(HOLDING, VIPS) == OWN


def test_what_a_balancer_publishes_stays_the_same_whoever_holds_the_vips():
    backup = {"ip4_interfaces": {"ens33": ["10.0.0.14"], "ens32": ["192.168.100.14"], "lo": ["127.0.0.1"]},
              "ip6_interfaces": {"ens32": ["fd00:100::14", "fe80::2"], "lo": ["::1"]}}
    assert havip_mine.own_addresses(backup, VIPS) == havip_mine.own_addresses(HOLDING, VIPS) == OWN
    assert list(havip_mine.own_addresses(backup, VIPS)["ip4_interfaces"]) == ["ens32", "ens33"]


def test_what_a_balancer_publishes_is_what_the_others_relay_to():
    havip = copy.deepcopy(SEED)
    havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    published = havip_mine.own_addresses(HOLDING, VIPS)
    config = validate(havip, mine_get=lambda name, function: {name: published})
    assert config["vips"]["VI_1"]["relay_to"] == ["192.168.100.14"]
    assert config["vips"]["VI_6"]["relay_to"] == ["fd00:100::14"]
    # Link-local only: that one (a global address first, as before).
    published = havip_mine.own_addresses({"ip6_interfaces": {"ens32": ["fe80::2"]}}, VIPS)
    assert validate(havip, mine_get=lambda name, function: {name: published})["vips"]["VI_6"]["relay_to"] == [
        "fe80::2"]


def test_an_older_balancer_publishing_its_grains_is_never_relayed_to_at_a_vip():
    """Releases up to 0.6.0 published the grains whole: a VIP it holds (any
    of the cluster's, not only the one relayed) is not its address."""
    havip = copy.deepcopy(SEED)
    havip["vips"]["VI_2"] = {"address": "192.168.100.9/24", "interface": "ens32", "virtual_router_id": 52}
    grains = {"ip4_interfaces": {"ens32": ["192.168.100.9", "192.168.100.10", "192.168.100.14"],
                                 "lo": ["127.0.0.1", "192.168.100.9"]},
              "ip6_interfaces": {"ens32": ["fe80::2"], "lo": ["::1"]}}
    config = validate(havip, mine_get=lambda name, function: {name: grains})
    assert config["vips"]["VI_1"]["relay_to"] == config["vips"]["VI_2"]["relay_to"] == ["192.168.100.14"]

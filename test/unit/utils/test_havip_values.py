"""
Unit tests of ``_utils/havip_values.py``: what a value accepts (interface
names, IP addresses: the one parser, no zone, canonical text).
"""

import ipaddress

import havip_values
import pytest


@pytest.mark.parametrize("name, accepted", [
    ("ens32", True), ("br-lan.10", True), ("a" * 15, True),
    # What the kernel refuses (dev_valid_name): too long, . and .., a slash, a colon, a space.
    ("a" * 16, False), (".", False), ("..", False), ("en/s", False), ("ens32:1", False), ("en s", False), ("", False),
    (None, False)])
def test_an_interface_name_is_what_the_kernel_accepts(name, accepted):
    assert havip_values.is_interface(name) is accepted


# ---- addresses -----------------------------------------------------------------

# What a compromised minion or a slip puts after an IPv6 address's '%': a
# zone id that Python's ipaddress takes, and str() gives back whole.
ZONED = [
    "fd00::14%x'; touch \"$(printf '\\057tmp\\057pwned')\"; : '",
    "fd00::50%lo]:80 init-addr none\nglobal\n    stats socket ipv4@0.0.0.0:9999 level admin\n#",
    "fe80::1%eth0",
    "fe80::1%1",
]


@pytest.mark.parametrize("value,canonical", [
    ("192.168.100.10", "192.168.100.10"),
    ("fd00:0:0::0:1", "fd00::1"),
    ("FD00::A", "fd00::a"),
    ("fe80::1", "fe80::1"),
    ("::ffff:192.168.100.10", "::ffff:c0a8:640a"),
])
def test_an_address_is_taken_in_its_canonical_form(value, canonical):
    assert havip_values.canonical_address(value) == canonical
    assert havip_values.is_address(value)


@pytest.mark.parametrize("value", ZONED + [
    "192.168.100.10 ", " 192.168.100.10", "192.168.100.10\n", "fd00::1\t",
    "fd00::\uff11",                    # a full-width digit
    "192.168.100.\u0661\u0660",        # Arabic-Indic digits
    "fd00::1/64", "192.168.100.300", "", "localhost", None, 3232261130, b"192.168.100.10", ["fd00::1"],
])
def test_an_address_with_a_zone_or_anything_but_its_own_characters_is_refused(value):
    assert not havip_values.is_address(value)
    with pytest.raises(ValueError) as refused:
        havip_values.canonical_address(value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("value,kind", [(value, kind) for value in ZONED for kind in (
    ipaddress.ip_address, ipaddress.ip_interface, ipaddress.ip_network)] + [
    ("fd00::%x/64", ipaddress.ip_network), ("fd00::1%x/64", ipaddress.ip_interface),
    ("192.168.100.0/24\n", ipaddress.ip_network), ("192.168.100.10/\uff12\uff14", ipaddress.ip_interface),
])
def test_no_kind_of_address_takes_a_zone(value, kind):
    with pytest.raises(ValueError):
        havip_values.parse_address(value, kind)


def test_interfaces_and_networks_parse_as_their_kind():
    assert str(havip_values.parse_address("fd00:0::10/64", ipaddress.ip_interface)) == "fd00::10/64"
    assert str(havip_values.parse_address("192.168.100.0/24", ipaddress.ip_network)) == "192.168.100.0/24"
    with pytest.raises(ValueError):
        havip_values.parse_address("192.168.100.1/24", ipaddress.ip_network)  # host bits set

"""
Unit tests of ``_utils/havip_contract.py``: the key table knows every
default and documents every key (docs/pillar.md is generated from it).
"""

import copy
import ipaddress

import havip_contract
import pytest

from test.formula import DEFAULTS, REPO
from test.pillar_reference import reference


def test_every_default_is_a_key_of_the_contract_and_passes_its_check():
    havip_contract.walk(havip_contract.SPEC, DEFAULTS)


def test_an_unknown_key_names_the_nearest_known_one():
    config = copy.deepcopy(DEFAULTS)
    config["keepalived"]["advert_interval"] = 1
    with pytest.raises(havip_contract.Invalid, match=r"did you mean advert_int\?") as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key == "keepalived:advert_interval"


def test_unknown_key_names_the_nearest_known_one():
    assert havip_contract.unknown_key(["failur", "rate"], ["failure", "rate"]) == (
        "failur", "unknown key (did you mean failure? known: failure, rate)")
    assert havip_contract.unknown_key(["zzz"], ["failure"]) == ("zzz", "unknown key (known: failure)")
    assert havip_contract.unknown_key(["rate"], ["failure", "rate"]) is None


@pytest.mark.parametrize("name, accepted", [
    ("ens32", True), ("br-lan.10", True), ("a" * 15, True),
    # What the kernel refuses (dev_valid_name): too long, . and .., a slash, a colon, a space.
    ("a" * 16, False), (".", False), ("..", False), ("en/s", False), ("ens32:1", False), ("en s", False), ("", False),
    (None, False)])
def test_an_interface_name_is_what_the_kernel_accepts(name, accepted):
    assert havip_contract.is_interface(name) is accepted


def test_public_drops_every_key_the_table_calls_secret():
    config = {"stats": {"password": "x", "user": "admin"}, "vips": {"VI_1": {"auth_pass": "y", "address": "z"}},
              "frontend": {"tls": {"certificate": "PEM", "port": 443}}}
    assert havip_contract.public(config) == {"stats": {"user": "admin"}, "vips": {"VI_1": {"address": "z"}},
                                             "frontend": {"tls": {"port": 443}}}


def test_the_pillar_reference_documents_every_key_as_the_contract_says():
    assert (REPO / "docs" / "pillar.md").read_text() == reference(), "run `make docs`"


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
    assert havip_contract.canonical_address(value) == canonical
    assert havip_contract.is_address(value)


@pytest.mark.parametrize("value", ZONED + [
    "192.168.100.10 ", " 192.168.100.10", "192.168.100.10\n", "fd00::1\t",
    "fd00::\uff11",                    # a full-width digit
    "192.168.100.\u0661\u0660",        # Arabic-Indic digits
    "fd00::1/64", "192.168.100.300", "", "localhost", None, 3232261130, b"192.168.100.10", ["fd00::1"],
])
def test_an_address_with_a_zone_or_anything_but_its_own_characters_is_refused(value):
    assert not havip_contract.is_address(value)
    with pytest.raises(ValueError) as refused:
        havip_contract.canonical_address(value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("value,kind", [(value, kind) for value in ZONED for kind in (
    ipaddress.ip_address, ipaddress.ip_interface, ipaddress.ip_network)] + [
    ("fd00::%x/64", ipaddress.ip_network), ("fd00::1%x/64", ipaddress.ip_interface),
    ("192.168.100.0/24\n", ipaddress.ip_network), ("192.168.100.10/\uff12\uff14", ipaddress.ip_interface),
])
def test_no_kind_of_address_takes_a_zone(value, kind):
    with pytest.raises(ValueError):
        havip_contract.parse_address(value, kind)


def test_interfaces_and_networks_parse_as_their_kind():
    assert str(havip_contract.parse_address("fd00:0::10/64", ipaddress.ip_interface)) == "fd00::10/64"
    assert str(havip_contract.parse_address("192.168.100.0/24", ipaddress.ip_network)) == "192.168.100.0/24"
    with pytest.raises(ValueError):
        havip_contract.parse_address("192.168.100.1/24", ipaddress.ip_network)  # host bits set


# ---- ASCII where the daemons take ASCII ---------------------------------------------


@pytest.mark.parametrize("line", ["log stdout\u0085global", "log stdout\u009b", "log stdout\u2028",
                                  "log \u00e9", "log\x7f", "log\tstdout"])
def test_an_haproxy_line_with_anything_but_printable_ascii_is_refused(line):
    config = copy.deepcopy(DEFAULTS)
    config["haproxy"]["global_extra"] = [line]
    with pytest.raises(havip_contract.Invalid) as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key == "haproxy:global_extra"


@pytest.mark.parametrize("key", ["backend:check:inter", "stats:refresh"])
@pytest.mark.parametrize("time", ["\uff11s", "\u0661\u0660ms", "1\u00b2"])
def test_an_haproxy_time_with_digits_not_ascii_is_refused(key, time):
    config = copy.deepcopy(DEFAULTS)
    section, *middle, last = key.split(":")
    node = config[section]
    for part in middle:
        node = node[part]
    node[last] = time
    with pytest.raises(havip_contract.Invalid) as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key == key


@pytest.mark.parametrize("page,taken", [("caf\u00e9 \u0085 \u2028 <b>&#x1F600;</b>", True),
                                        ("smile \U0001F600", False), ("lone \ud800", False), (" \n", False)])
def test_a_page_takes_what_the_sls_can_carry(page, taken):
    """The SLS carries strings ASCII-escaped (tojson): a character above
    U+FFFF would be a surrogate pair, which YAML refuses, breaking every
    state of the node; refused naming the key (an HTML entity serves it)."""
    config = copy.deepcopy(DEFAULTS)
    config["nodes"] = {"nginx1": {"roles": ["backend"], "address": "192.168.100.11", "page": page}}
    if taken:
        havip_contract.walk(havip_contract.SPEC, config)
        return
    with pytest.raises(havip_contract.Invalid) as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key == "nodes:nginx1:page"

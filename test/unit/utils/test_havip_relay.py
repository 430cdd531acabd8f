"""
Unit tests of ``_utils/havip_relay.py``: the nftables script of the relay
(its effect on a fake host through ``havip.relay``: test/unit/test_module.py).
"""

import havip_relay
import pytest
from salt.exceptions import CommandExecutionError

VI_1 = {"address": "192.168.100.10", "family": 4, "interface": "ens32"}
VI_6 = {"address": "fd00::10", "family": 6, "interface": "ens32"}


def test_no_rules_remove_the_tables_of_both_families():
    assert havip_relay.tables({}) == ("table ip havip_relay\ndelete table ip havip_relay\n"
                                      "table ip6 havip_relay\ndelete table ip6 havip_relay\n")


def test_each_vip_gets_a_rule_per_relayed_packet_kind_in_its_familys_table():
    rules = havip_relay.rules({"VI_1": VI_1, "VI_6": VI_6}, {"VI_1": "192.168.100.13", "VI_6": "fd00::13"})
    assert sorted(rules) == ["ip", "ip6"]
    assert [len(rules[family]) for family in ("ip", "ip6")] == [2, 2]
    assert rules["ip6"][0] == ('ip6 daddr fd00::10 tcp flags & syn == 0 ct state new'
                               ' dup to fd00::13 device "ens32" drop comment "VI_6"')
    script = havip_relay.tables(rules)
    assert script.count("type filter hook prerouting priority 0; policy accept;") == 2


def test_a_peer_of_another_family_is_refused():
    with pytest.raises(CommandExecutionError, match="havip.relay: 192.168.100.13 is no IPv6 address for VI_6"):
        havip_relay.rules({"VI_6": VI_6}, {"VI_6": "192.168.100.13"})


def test_own_address_prefers_a_global_address_and_never_takes_a_vip():
    found = {"ens32": {"fe80::13": {"scope": "link"}, "fd00::10": {"scope": "global"},
                       "fd00::13": {"scope": "global"}, "192.168.100.13": {"scope": "global"}}}
    facts = {"vips": {"VI_6": VI_6}}
    assert havip_relay.own_address(VI_6, found, facts) == "fd00::13"
    del found["ens32"]["fd00::13"]
    assert havip_relay.own_address(VI_6, found, facts) == "fe80::13"

"""
Unit tests of ``_utils/havip_firewall.py`` (through ``havip_pillar.validate``):
what a node listens on and what firewalld opens, to whom.
"""

import copy

from test.formula import validated
from test.saltcall import seed_pillar

SEED = seed_pillar()["havip"]


def validate(havip, minion_id="svr1", **kwargs):
    kwargs.setdefault("interfaces", ["lo", "ens32"])
    return validated(havip, minion_id, **kwargs)


def test_the_stats_page_and_metrics_listen_on_the_balancers_own_address_by_default():
    havip = copy.deepcopy(SEED)
    havip["metrics"] = {"port": 9101}
    assert validate(havip)["listen"] == {"stats": ["192.168.100.13", "127.0.0.1"], "metrics": ["192.168.100.13"]}
    assert validate(havip, "svr2")["listen"]["metrics"] == ["192.168.100.14"]
    assert validate(havip, "nginx1")["listen"] == {}


def test_listen_addresses_are_canonical_and_each_balancer_leaves_the_others_own():
    havip = copy.deepcopy(SEED)
    havip["stats"]["bind"] = ["192.168.100.13", "192.168.100.14", "FD00::0:5", "fd00::5", "127.0.0.1"]
    havip["metrics"] = {"port": 9101, "bind": ["::", "192.168.100.14"]}
    listen = validate(havip)["listen"]
    assert listen == {"stats": ["192.168.100.13", "fd00::5", "127.0.0.1"], "metrics": ["::"]}


def test_firewalld_opens_the_admin_ports_to_the_admin_sources_and_vrrp_to_the_peers():
    havip = copy.deepcopy(SEED)
    havip["metrics"] = {"port": 9101}
    havip["firewall"] = {"admin_sources": ["10.9.0.0/16"]}
    havip["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32", "virtual_router_id": 52,
                             "unicast": True}
    firewalld = validate(havip)["firewalld"]
    assert firewalld["ports"] == ["9090/tcp"]
    assert firewalld["rich_rules"] == [
        f'rule family="ipv4" source address="10.9.0.0/16" port port="{port}" protocol="tcp" accept'
        for port in (1080, 9100, 9101)] + [
        'rule family="ipv4" source address="192.168.100.14" port port="1080" protocol="tcp" accept',
        'rule family="ipv4" source address="192.168.100.14" destination address="224.0.0.18" protocol value="vrrp"'
        ' accept',
        'rule family="ipv4" source address="192.168.100.14" protocol value="vrrp" accept']
    assert validate(havip, "nginx1")["firewalld"] == {"ports": ["80/tcp"], "rich_rules": [],
                                                      "closed": {"ports": [], "rich_rules": []}}
    assert firewalld["closed"] == {"ports": ["1080/tcp", "9100/tcp", "9101/tcp"], "rich_rules": [
        'rule family="ipv6" source address="fe80::/10" protocol value="vrrp" accept']}


def test_multicast_vrrp_over_ipv6_is_admitted_to_its_group_from_link_local_sources_only():
    havip = copy.deepcopy(SEED)
    havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    vrrp = [rule for rule in validate(havip)["firewalld"]["rich_rules"] if "vrrp" in rule]
    assert vrrp[1] == ('rule family="ipv6" source address="fe80::/10" destination address="ff02::12"'
                       ' protocol value="vrrp" accept')


def test_balancers_of_ipv6_addresses_admit_ipv4_vrrp_to_its_group():
    """Their IPv4 sources are unknown (not nodes:<id>:address): the group
    alone, not no rule at all."""
    havip = copy.deepcopy(SEED)
    for name, number in (("nginx1", 11), ("nginx2", 12), ("svr1", 13), ("svr2", 14)):
        havip["nodes"][name]["address"] = f"fd00:100::{number}"
    havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52,
                             "unicast": True}
    vrrp = [rule for rule in validate(havip)["firewalld"]["rich_rules"] if "vrrp" in rule]
    assert vrrp == ['rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept',
                    'rule family="ipv6" source address="fd00:100::14" protocol value="vrrp" accept']


def test_a_balancer_opens_every_services_port_and_tls_port_once_from_the_model():
    havip = copy.deepcopy(SEED)
    havip["nodes"]["app1"] = {"roles": ["app"], "address": "192.168.100.21"}
    havip["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32", "virtual_router_id": 52}
    havip["services"] = {"web": {"port": 80, "vips": ["VI_1"], "pool": "app"},
                         "api": {"port": 80, "vips": ["VI_2"], "pool": "app"},
                         "db": {"port": 5432, "pool": "app"}}
    havip["pools"] = {"app": {"servers": {"app1": {"node": "app1"}}}}
    config = validate(havip)
    assert config["firewalld"]["ports"] == ["80/tcp", "5432/tcp"]
    assert validate(havip, "app1")["firewalld"]["ports"] == []
    assert validate(havip, "nginx1")["firewalld"]["ports"] == ["80/tcp"]

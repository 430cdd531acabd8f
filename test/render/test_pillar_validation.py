"""
Fast tier: every bad pillar is refused while the formula renders, before any
state runs, with a message that names the pillar key.
"""

import copy

import pytest

from test.saltcall import DEBIAN_GRAINS, RenderError, seed_pillar


def changed(edit):
    pillar = seed_pillar()
    edit(pillar["havip"])
    return pillar


def set_key(path, value):
    def edit(havip):
        *parents, last = path.split(":")
        node = havip
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return edit


def delete_key(path):
    def edit(havip):
        *parents, last = path.split(":")
        node = havip
        for key in parents:
            node = node[key]
        del node[last]
    return edit


def second_vip(**overrides):
    def edit(havip):
        havip["vips"]["VI_2"] = {"address": "192.168.100.9/24", "interface": "ens32",
                                 "virtual_router_id": 52, **overrides}
    return edit


def vip_named(name):
    def edit(havip):
        havip["vips"][name] = havip["vips"].pop("VI_1")
    return edit


BAD_PILLARS = {
    "vip name with a slash": (vip_named("VI/1"), "havip:vips:VI/1"),
    "priority above 254": (set_key("nodes:svr1:priority", 255), "havip:nodes:svr1:priority"),
    "priority 0": (set_key("nodes:svr2:priority", 0), "havip:nodes:svr2:priority"),
    "priority not a number": (set_key("nodes:svr1:priority", "high"), "havip:nodes:svr1:priority"),
    "vip not an address": (set_key("vips:VI_1:address", "192.168.100.300/24"), "havip:vips:VI_1:address"),
    "vip a hostname": (set_key("vips:VI_1:address", "vip.example"), "havip:vips:VI_1:address"),
    "router id 0": (set_key("vips:VI_1:virtual_router_id", 0), "havip:vips:VI_1:virtual_router_id"),
    "router id 256": (set_key("vips:VI_1:virtual_router_id", 256), "havip:vips:VI_1:virtual_router_id"),
    "unknown role": (set_key("nodes:nginx1:roles", ["web"]), "havip:nodes:nginx1:roles"),
    "no roles": (set_key("nodes:nginx1:roles", []), "havip:nodes:nginx1:roles"),
    "missing stats password": (delete_key("stats:password"), "havip:stats:password"),
    "empty stats password": (set_key("stats:password", ""), "havip:stats:password"),
    "node without address": (delete_key("nodes:nginx2:address"), "havip:nodes:nginx2:address"),
    "node address not an IP": (set_key("nodes:nginx2:address", "nginx2"), "havip:nodes:nginx2:address"),
    "two nodes, one address": (set_key("nodes:nginx2:address", "192.168.100.11"), "havip:nodes:nginx2:address"),
    "duplicate router id": (second_vip(virtual_router_id=51), "havip:vips:VI_2:virtual_router_id"),
    "duplicate vip address": (second_vip(address="192.168.100.10/24"), "havip:vips:VI_2:address"),
    "balancers without vip": (set_key("vips", {}), "havip:vips"),
    "vip without interface": (delete_key("vips:VI_1:interface"), "havip:vips:VI_1:interface"),
    "typo in a vip key": (set_key("vips:VI_1:virtual_router", 5), "havip:vips:VI_1:virtual_router"),
    "typo at the top": (set_key("frontent", {"port": 1}), "havip:<top>:frontent"),
    "frontend mode": (set_key("frontend:mode", "udp"), "havip:frontend:mode"),
    "frontend port": (set_key("frontend:port", 70000), "havip:frontend:port"),
    "stats on the frontend port": (set_key("stats:port", 9090), "havip:stats:port"),
    "stats uri": (set_key("stats:uri", "status"), "havip:stats:uri"),
    "quote in password": (set_key("stats:password", "it's"), "havip:stats:password"),
    "vrrp version": (set_key("keepalived:vrrp_version", 4), "havip:keepalived:vrrp_version"),
    "server check interval not an HAProxy time": (set_key("backend:check:inter", "1 s"), "havip:backend:check:inter"),
    "sub-second advert with VRRPv2": (
        lambda havip: havip["keepalived"].update(vrrp_version=2, advert_int=0.5), "havip:keepalived:advert_int"),
    "mine network not a network": (set_key("mine:network", "eth0"), "havip:mine:network"),
    "vip priority for a backend": (set_key("vips:VI_1:priorities", {"nginx1": 150}), "havip:vips:VI_1:priorities:nginx1"),
    "vip priority 255": (set_key("vips:VI_1:priorities", {"svr2": 255}), "havip:vips:VI_1:priorities:svr2"),
    "unicast not a switch": (set_key("vips:VI_1:unicast", "yes"), "havip:vips:VI_1:unicast"),
    "unicast IPv6 VIP between IPv4 balancers": (
        second_vip(address="fd00:100::10/64", unicast=True), "havip:vips:VI_2:unicast"),
    "IPv6 VIP with VRRPv2": (
        lambda havip: (havip["keepalived"].update(vrrp_version=2, advert_int=1),
                       havip["vips"].update(VI_2={"address": "fd00:100::10/64", "interface": "ens32",
                                                  "virtual_router_id": 52})),
        "havip:vips:VI_2:address"),
    "auth with VRRPv3": (set_key("vips:VI_1:auth_pass", "s3cret"), "havip:vips:VI_1:auth_pass"),
    "check watch not a switch": (set_key("keepalived:check:watch", "yes"), "havip:keepalived:check:watch"),
    "answer timeout not below the interval": (
        set_key("keepalived:check:answer_timeout", 1), "havip:keepalived:check:answer_timeout"),
    "check timeout shorter than a check": (set_key("keepalived:check:timeout", 1), "havip:keepalived:check:timeout"),
    "monitor uri the stats uri": (set_key("stats:monitor_uri", "/status"), "havip:stats:monitor_uri"),
    "backends uri the monitor uri": (
        set_key("stats:backends_uri", "/havip-health"), "havip:stats:backends_uri"),
    "backends uri without a slash": (set_key("stats:backends_uri", "up"), "havip:stats:backends_uri"),
    "track backends not a switch": (set_key("keepalived:track_backends", "yes"), "havip:keepalived:track_backends"),
    "check interval": (set_key("keepalived:check:interval", 0), "havip:keepalived:check:interval"),
    "priority on a backend": (set_key("nodes:nginx1:priority", 10), "havip:nodes:nginx1:priority"),
    "balancers without backends": (
        lambda havip: [havip["nodes"].pop(n) for n in ("nginx1", "nginx2")], "havip:nodes"),
}


@pytest.mark.parametrize("case", sorted(BAD_PILLARS))
def test_bad_pillar_fails_the_render_naming_the_key(salt_call, case):
    edit, key = BAD_PILLARS[case]
    minion = salt_call("svr1", DEBIAN_GRAINS)
    with pytest.raises(RenderError) as refused:
        minion.show_sls(changed(edit))
    assert key in str(refused.value)


def test_seed_pillar_renders(salt_call):
    assert salt_call("svr1", DEBIAN_GRAINS).show_sls(seed_pillar())


def test_the_seed_tutorials_timers_render_with_vrrpv2_and_auth(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["keepalived"] = {"vrrp_version": 2, "advert_int": 1,
                                     "check": {"watch": False, "answer_timeout": 0}}
    pillar["havip"]["vips"]["VI_1"]["auth_pass"] = "s3cret"
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(pillar)
    keepalived = states["havip-keepalived-config-file"]["context"]["havip"]["keepalived"]
    assert (keepalived["vrrp_version"], keepalived["advert_int"]) == (2, 1)


def test_bad_pillar_is_refused_on_every_minion_not_only_the_broken_node(salt_call):
    broken = changed(set_key("nodes:svr2:priority", 999))
    with pytest.raises(RenderError) as refused:
        salt_call("nginx1", DEBIAN_GRAINS).show_sls(copy.deepcopy(broken))
    assert "havip:nodes:svr2:priority" in str(refused.value)

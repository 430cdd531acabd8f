"""
Fast tier: the templates take each shared fact (_utils/havip_facts.py) from
the validated configuration, never from a literal of their own: a fact
changed at its one source shows up in what they render.
"""

import havip_firewall
import havip_pillar
import pytest

from test.formula import render, set_key, validated
from test.saltcall import seed_pillar


def rendered(template, *edits, minion="svr1"):
    havip = seed_pillar()["havip"]
    for edit in edits:
        edit(havip)
    return render(template, validated(havip, minion), havip)


def test_keepalived_takes_the_standby_weight_and_levels(monkeypatch):
    monkeypatch.setattr(havip_pillar, "STANDBY_WEIGHT", -200)
    monkeypatch.setattr(havip_pillar, "STANDBY_LOWEST", 7)
    monkeypatch.setattr(havip_pillar, "STANDBY_FAULT", 8)
    monkeypatch.setattr(havip_pillar, "IN_SERVICE", 9)
    conf = rendered("keepalived.conf.jinja")
    assert "# `havip.standby` writes 7 (priority drops to 1" in conf
    assert "or 8 (FAULT, where peers do not preempt); 9 = in service." in conf
    assert "track_file havip_standby {\n    file \"/var/lib/havip/standby\"\n    weight -200\n}" in conf


def test_keepalived_weighs_track_backends_by_each_vips_priorities():
    def spread(havip):
        havip["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32", "virtual_router_id": 52,
                                 "priorities": {"svr2": 3}}
    conf = rendered("keepalived.conf.jinja", spread)
    assert [line.strip() for line in conf.splitlines() if "havip_check_backends weight" in line] == [
        "havip_check_backends weight -51", "havip_check_backends weight -148"]


@pytest.mark.parametrize("answer_timeout, asked", [(0.3, "0.3"), (0, "0.25")])
def test_keepalived_asks_backends_uri_within_the_checks_answer_timeout_else_the_default(monkeypatch, answer_timeout,
                                                                                         asked):
    monkeypatch.setattr(havip_pillar, "BACKENDS_ANSWER_TIMEOUT", 0.25)
    conf = rendered("keepalived.conf.jinja", set_key("keepalived:check:answer_timeout", answer_timeout))
    assert f"curl -fs -o /dev/null -m {asked} http://127.0.0.1:1080/havip-backends" in conf


def test_keepalived_and_its_haproxy_check_ask_haproxy_where_it_listens_for_them(monkeypatch):
    monkeypatch.setattr(havip_pillar, "CHECK_ADDRESS", "::1")
    monkeypatch.setattr(havip_firewall, "CHECK_ADDRESS", "::1")
    conf = rendered("keepalived.conf.jinja")
    assert "-m 0.5 http://[::1]:1080/havip-backends" in conf
    assert "-m '0.5' 'http://[::1]:1080/havip-health' || exit 1" in rendered("check-haproxy.sh.jinja")
    assert validated(seed_pillar()["havip"], "svr1")["listen"]["stats"] == ["192.168.100.13", "::1"]


def test_the_handover_takes_the_nftables_families(monkeypatch):
    monkeypatch.setattr(havip_pillar, "NFT_FAMILIES", {4: "ipx", 6: "ip6x"})
    def v6(havip):
        havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    script = rendered("handover.sh.jinja", v6)
    assert "'VI_1') address='192.168.100.10' family=ipx host=32 " in script
    assert "'VI_6') address='fd00:100::10' family=ip6x host=128 " in script
    assert "protocol tcp; l3proto ipx;" in script and "protocol tcp; l3proto ip6x;" in script
    assert '        ipx daddr { 192.168.100.10 } ct state new ct timeout set "ended4"' in script
    assert '        ip6x daddr { fd00:100::10 } ct state new ct timeout set "ended6"' in script

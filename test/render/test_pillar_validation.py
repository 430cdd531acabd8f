"""
Fast tier: every bad pillar is refused while the formula renders, before any
state runs, with a message that names the pillar key.
"""

import copy

import pytest

from test.formula import delete_key, second_vip, set_key, vip_named
from test.saltcall import DEBIAN_GRAINS, RenderError, seed_pillar


def changed(edit):
    pillar = seed_pillar()
    edit(pillar["havip"])
    return pillar




# One of each kind: every bad value is refused by the pillar contract
# (test/unit/utils/test_havip_pillar.py has them all); these prove the
# formula's render goes through it, on any minion.
BAD_PILLARS = {
    "priority above 254": (set_key("nodes:svr1:priority", 255), "havip:nodes:svr1:priority"),
    # (the message shows the newline escaped)
    "vip name with a trailing newline": (vip_named("VI_1\n"), "havip:vips:VI_1\\n"),
    "missing stats password": (delete_key("stats:password"), "havip:stats:password"),
    "duplicate router id": (second_vip(virtual_router_id=51), "havip:vips:VI_2:virtual_router_id"),
    "typo at the top": (set_key("frontent", {"port": 1}), "havip:frontent"),
    "typo deep down": (set_key("keepalived:check:intervall", 1), "havip:keepalived:check:intervall"),
    "monitor uri with a command": (set_key("stats:monitor_uri", "/h;reboot"), "havip:stats:monitor_uri"),
    "interface missing on this balancer": (set_key("vips:VI_1:interface", "eth9"), "havip:vips:VI_1:interface"),
}


@pytest.mark.parametrize("case", sorted(BAD_PILLARS))
def test_bad_pillar_fails_the_render_naming_the_key(salt_call, case):
    edit, key = BAD_PILLARS[case]
    minion = salt_call("svr1", DEBIAN_GRAINS)
    with pytest.raises(RenderError) as refused:
        minion.show_sls(changed(edit))
    assert key in str(refused.value)


@pytest.mark.parametrize("key,value", [
    ("stats:password", "Qz7mark-of-a-password\x01"),
    ("frontend:tls:certificate", ["-----BEGIN CERTIFICATE-----", "Qz7mark", "-----END CERTIFICATE-----"]),
])
def test_a_bad_secret_fails_the_render_naming_its_key_without_its_value(salt_call, key, value):
    with pytest.raises(RenderError) as refused:
        salt_call("svr1", DEBIAN_GRAINS).show_sls(changed(set_key(key, value)))
    assert f"havip:{key}" in str(refused.value)
    assert "Qz7mark" not in str(refused.value) and "BEGIN" not in str(refused.value)


def test_seed_pillar_renders(salt_call):
    assert salt_call("svr1", DEBIAN_GRAINS).show_sls(seed_pillar())


def test_the_seed_tutorials_timers_render_with_vrrpv2_and_auth_which_stays_out_of_the_states(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["keepalived"] = {"vrrp_version": 2, "advert_int": 1,
                                     "check": {"watch": False, "answer_timeout": 0}}
    pillar["havip"]["vips"]["VI_1"]["auth_pass"] = "s3cr3t"
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(pillar)
    keepalived = states["havip-keepalived-config-file"]["context"]["havip"]["keepalived"]
    assert (keepalived["vrrp_version"], keepalived["advert_int"]) == (2, 1)
    assert states["havip-keepalived-config-file"]["show_changes"] is False
    assert "s3cr3t" not in repr(states) and pillar["havip"]["stats"]["password"] not in repr(states)


def test_bad_pillar_is_refused_on_every_minion_not_only_the_broken_node(salt_call):
    broken = changed(set_key("nodes:svr2:priority", 999))
    with pytest.raises(RenderError) as refused:
        salt_call("nginx1", DEBIAN_GRAINS).show_sls(copy.deepcopy(broken))
    assert "havip:nodes:svr2:priority" in str(refused.value)

"""
Unit tests of ``_utils/havip_pillar.py`` (with the contract's key table,
``_utils/havip_contract.py``): every bad pillar refused naming its key,
secrets never passed on, the platform's minimums (the mine's data:
test_havip_mine.py; what a node listens on: test_havip_firewall.py).
The formula's render refuses them the same way:
test/render/test_pillar_validation.py.
"""

import copy

import havip_facts
import havip_haproxy
import havip_pillar
import havip_values
import pytest
from salt.exceptions import CommandExecutionError

from test.formula import DEFAULTS, both, delete_key, merged, second_vip, set_key, vip_named
from test.saltcall import seed_pillar

SEED = seed_pillar()["havip"]


def validate(havip, minion_id="svr1", **kwargs):
    kwargs.setdefault("interfaces", ["lo", "ens32"])
    return havip_pillar.validate(merged(havip), minion_id, **kwargs)


V2 = set_key("keepalived", {"vrrp_version": 2, "advert_int": 1})

BAD_PILLARS = {
    # ---- names, types, ranges
    "vip name with a slash": (vip_named("VI/1"), "vips:VI/1"),
    "vip name with a trailing newline": (vip_named("VI_1\n"), "vips:VI_1\n"),
    "node name with a space": (lambda h: h["nodes"].update({"bad node": {"roles": ["backend"],
                                                                          "address": "192.168.100.30"}}),
                               "nodes:bad node"),
    "priority above 254": (set_key("nodes:svr1:priority", 255), "nodes:svr1:priority"),
    "priority 0": (set_key("nodes:svr2:priority", 0), "nodes:svr2:priority"),
    "priority not a number": (set_key("nodes:svr1:priority", "high"), "nodes:svr1:priority"),
    "vip not an address": (set_key("vips:VI_1:address", "192.168.100.300/24"), "vips:VI_1:address"),
    "vip a hostname": (set_key("vips:VI_1:address", "vip.example"), "vips:VI_1:address"),
    "vip with a newline": (set_key("vips:VI_1:address", "192.168.100.10/24\nglobal"), "vips:VI_1:address"),
    "router id 0": (set_key("vips:VI_1:virtual_router_id", 0), "vips:VI_1:virtual_router_id"),
    "router id 256": (set_key("vips:VI_1:virtual_router_id", 256), "vips:VI_1:virtual_router_id"),
    "unknown role": (set_key("nodes:nginx1:roles", ["web"]), "nodes:nginx1:roles"),
    "no roles": (set_key("nodes:nginx1:roles", []), "nodes:nginx1:roles"),
    "node without roles": (delete_key("nodes:nginx1:roles"), "nodes:nginx1:roles"),
    "node address with a port": (set_key("nodes:nginx2:address", "192.168.100.12:80"), "nodes:nginx2:address"),
    # ---- required keys and references
    "missing stats password": (delete_key("stats:password"), "stats:password"),
    "empty stats password": (set_key("stats:password", ""), "stats:password"),
    "placeholder stats password": (set_key("stats:password", "change-me"), "stats:password"),
    "placeholder in capitals": (set_key("stats:password", "ChangeMe"), "stats:password"),
    "short stats password": (set_key("stats:password", "abc123"), "stats:password"),
    "stats password with a newline": (set_key("stats:password", "long enough\npassword"), "stats:password"),
    "node without address": (delete_key("nodes:nginx2:address"), "nodes:nginx2:address"),
    "node address not an IP": (set_key("nodes:nginx2:address", "nginx2"), "nodes:nginx2:address"),
    "two nodes, one address": (set_key("nodes:nginx2:address", "192.168.100.11"), "nodes:nginx2:address"),
    "duplicate router id": (second_vip(virtual_router_id=51), "vips:VI_2:virtual_router_id"),
    "duplicate vip address": (second_vip(address="192.168.100.10/24"), "vips:VI_2:address"),
    "vip on a node's own address": (second_vip(address="192.168.100.13/24"), "vips:VI_2:address"),
    "balancers without vip": (set_key("vips", {}), "vips"),
    "vip without interface": (delete_key("vips:VI_1:interface"), "vips:VI_1:interface"),
    "balancers without backends": (lambda h: [h["nodes"].pop(n) for n in ("nginx1", "nginx2")], "nodes"),
    "priority on a backend": (set_key("nodes:nginx1:priority", 10), "nodes:nginx1:priority"),
    "vip priority for a backend": (set_key("vips:VI_1:priorities", {"nginx1": 150}), "vips:VI_1:priorities:nginx1"),
    "vip priority 255": (set_key("vips:VI_1:priorities", {"svr2": 255}), "vips:VI_1:priorities:svr2"),
    "equal priorities": (set_key("nodes:svr2:priority", 150), "nodes:svr2:priority"),
    "equal priorities by a vip's override": (set_key("vips:VI_1:priorities", {"svr2": 150}),
                                            "vips:VI_1:priorities:svr2"),
    "balancer without priority": (delete_key("nodes:svr1:priority"), "nodes:svr1:priority"),
    "priorities beyond keepalived's weight": (
        both(set_key("nodes:svr1:priority", 254), set_key("nodes:svr2:priority", 1)), "vips:VI_1:priorities"),
    # ---- unknown keys at every level
    "typo in a vip key (beside auth_pass: not named)": (set_key("vips:VI_1:virtual_router", 5), "vips:VI_1"),
    "typo at the top": (set_key("frontent", {"port": 1}), "frontent"),
    "typo in keepalived": (set_key("keepalived:advert_interval", 1), "keepalived:advert_interval"),
    "typo in stats (beside the password: not named)": (set_key("stats:pasword", "x"), "stats"),
    "typo in a check": (set_key("keepalived:check:intervall", 1), "keepalived:check:intervall"),
    "typo in lookup": (set_key("lookup:haproxy:pid_file", "/run/x"), "lookup:haproxy:pid_file"),
    "typo in a node": (set_key("nodes:svr1:prority", 1), "nodes:svr1:prority"),
    # ---- every string whitelisted
    "frontend mode": (set_key("frontend:mode", "udp"), "frontend:mode"),
    "frontend port": (set_key("frontend:port", 70000), "frontend:port"),
    "frontend bind not an address": (set_key("frontend:bind", ["*"]), "frontend:bind"),
    "stats on the frontend port": (set_key("stats:port", 9090), "stats:port"),
    "stats uri": (set_key("stats:uri", "status"), "stats:uri"),
    "monitor uri with a query": (set_key("stats:monitor_uri", "/health?a=1&b=2"), "stats:monitor_uri"),
    "monitor uri with a command": (set_key("stats:monitor_uri", "/h;reboot"), "stats:monitor_uri"),
    "backends uri with a space": (set_key("stats:backends_uri", "/a b"), "stats:backends_uri"),
    "stats user with a colon": (set_key("stats:user", "ad:min"), "stats:user"),
    "stats user with a quote": (set_key("stats:user", "ad'min"), "stats:user"),
    "stats realm with a quote": (set_key("stats:realm", 'say "hi"'), "stats:realm"),
    "stats realm with a newline": (set_key("stats:realm", "a\nstats auth x:y"), "stats:realm"),
    "stats refresh not a time": (set_key("stats:refresh", "5 s"), "stats:refresh"),
    "vip interface with a newline": (set_key("vips:VI_1:interface", "ens32\n    nopreempt"), "vips:VI_1:interface"),
    "vip interface too long": (set_key("vips:VI_1:interface", "a" * 16), "vips:VI_1:interface"),
    "vip interface missing on this balancer": (set_key("vips:VI_1:interface", "eth9"), "vips:VI_1:interface"),
    "haproxy global not a list": (set_key("haproxy:global", "daemon"), "haproxy:global"),
    "haproxy defaults line with a newline": (set_key("haproxy:defaults_extra", ["retries 3\nlisten x"]),
                                             "haproxy:defaults_extra"),
    "haproxy global without the stats socket": (set_key("haproxy:global", ["daemon"]), "haproxy:global"),
    "haproxy stats socket below level admin": (
        set_key("haproxy:global", ["stats socket /run/haproxy/admin.sock level operator # level admin"]),
        "haproxy:global"),
    "haproxy stats socket on TCP": (set_key("haproxy:global", ["stats socket 127.0.0.1:9999 level admin"]),
                                    "haproxy:global"),
    "balance not an algorithm": (set_key("backend:balance", "roundrobin; rm"), "backend:balance"),
    "balance uri in tcp mode": (set_key("backend:balance", "uri"), "backend:balance"),
    "http check path": (set_key("backend:http_check:path", "/ HTTP/1.0"), "backend:http_check:path"),
    "expect status": (set_key("backend:http_check:expect_status", 700), "backend:http_check:expect_status"),
    "server check interval not an HAProxy time": (set_key("backend:check:inter", "1 s"), "backend:check:inter"),
    "on_error unknown": (set_key("backend:check:on_error", "reboot"), "backend:check:on_error"),
    "auth_pass too long": (both(V2, set_key("vips:VI_1:auth_pass", "123456789")), "vips:VI_1:auth_pass"),
    "auth_pass with a space": (both(V2, set_key("vips:VI_1:auth_pass", "a b")), "vips:VI_1:auth_pass"),
    "auth with VRRPv3": (set_key("vips:VI_1:auth_pass", "s3cret"), "vips:VI_1:auth_pass"),
    "mine network not a network": (set_key("mine:network", "eth0"), "mine:network"),
    "mine interface with a space": (set_key("mine:interface", "eth0 eth1"), "mine:interface"),
    # ---- no IPv6 zone: ipaddress takes any text after the '%' and gives it back whole
    "node address with a zone": (set_key("nodes:nginx2:address", "fd00::12%x';reboot;'"), "nodes:nginx2:address"),
    "balancer address with a zone": (set_key("nodes:svr2:address", "fe80::14%eth0"), "nodes:svr2:address"),
    "vip with a zone": (second_vip(address="fd00:100::10%lo\n    nopreempt/64"), "vips:VI_2:address"),
    "frontend bind with a zone": (set_key("frontend:bind", ["fd00:100::10%lo]:80\nlisten x"]), "frontend:bind"),
    "mine network with a zone": (set_key("mine:network", "fd00:100::%$(id)/64"), "mine:network"),
    "node address of full-width digits": (set_key("nodes:nginx2:address", "fd00::\uff11"), "nodes:nginx2:address"),
    "haproxy line with a C1 line break": (set_key("haproxy:global_extra", ["log stdout\u0085global"]),
                                          "haproxy:global_extra"),
    "server check interval of full-width digits": (set_key("backend:check:inter", "\uff12s"), "backend:check:inter"),
    "firewall zone": (set_key("firewall:zone", "public;"), "firewall:zone"),
    "admin source not a network": (set_key("firewall:admin_sources", ["10.0.0.0/33"]), "firewall:admin_sources"),
    "admin source with host bits": (set_key("firewall:admin_sources", ["10.0.0.1/24"]), "firewall:admin_sources"),
    "admin source with a zone id": (set_key("firewall:admin_sources", ["fe80::%eth0/64"]), "firewall:admin_sources"),
    "admin sources not a list": (set_key("firewall:admin_sources", "10.0.0.0/24"), "firewall:admin_sources"),
    # ---- what listens where
    "stats bind a hostname": (set_key("stats:bind", ["localhost"]), "stats:bind"),
    "stats bind with a zone id": (set_key("stats:bind", ["fe80::1%eth0", "0.0.0.0"]), "stats:bind"),
    "stats bind with a port": (set_key("stats:bind", ["0.0.0.0:1080"]), "stats:bind"),
    "stats bind without a balancer's address": (set_key("stats:bind", ["192.168.100.13"]), "stats:bind"),
    "stats bind on loopback only": (set_key("stats:bind", ["127.0.0.1"]), "stats:bind"),
    "stats bind on IPv6 everywhere, IPv4 balancers": (set_key("stats:bind", ["::"]), "stats:bind"),
    "metrics bind with a zone id": (set_key("metrics:bind", ["fe80::1%eth0"]), "metrics:bind"),
    "metrics bind with the other balancer's address only": (set_key("metrics:bind", ["192.168.100.14"]),
                                                            "metrics:bind"),
    "metrics on the node exporter's port": (set_key("metrics:port", 9100), "metrics:port"),
    "lookup path relative": (set_key("lookup:haproxy:pidfile", "run/haproxy.pid"), "lookup:haproxy:pidfile"),
    "lookup path with a command": (set_key("lookup:haproxy:pidfile", "/run/x;reboot"), "lookup:haproxy:pidfile"),
    "lookup package with a space": (set_key("lookup:pkgs:nginx", ["nginx extras"]), "lookup:pkgs:nginx"),
    "lookup service": (set_key("lookup:services:haproxy", "haproxy$(id)"), "lookup:services:haproxy"),
    # ---- VRRP
    "vrrp version": (set_key("keepalived:vrrp_version", 4), "keepalived:vrrp_version"),
    "sub-second advert with VRRPv2": (set_key("keepalived", {"vrrp_version": 2, "advert_int": 0.5}),
                                      "keepalived:advert_int"),
    "advert above 255 with VRRPv2": (set_key("keepalived", {"vrrp_version": 2, "advert_int": 256}),
                                     "keepalived:advert_int"),
    "advert below 0.01 with VRRPv3": (set_key("keepalived:advert_int", 0.005), "keepalived:advert_int"),
    "advert not in 0.01 steps": (set_key("keepalived:advert_int", 0.055), "keepalived:advert_int"),
    "advert above 40.95 with VRRPv3": (set_key("keepalived:advert_int", 41), "keepalived:advert_int"),
    "unicast not a switch": (set_key("vips:VI_1:unicast", "yes"), "vips:VI_1:unicast"),
    "unicast IPv6 VIP between IPv4 balancers": (second_vip(address="fd00:100::10/64", unicast=True),
                                                "vips:VI_2:unicast"),
    "IPv6 VIP with VRRPv2": (both(V2, second_vip(address="fd00:100::10/64")), "vips:VI_2:address"),
    "check watch not a switch": (set_key("keepalived:check:watch", "yes"), "keepalived:check:watch"),
    "answer timeout not below the interval": (set_key("keepalived:check:answer_timeout", 1),
                                              "keepalived:check:answer_timeout"),
    "check timeout shorter than a check": (set_key("keepalived:check:timeout", 1), "keepalived:check:timeout"),
    "monitor uri the stats uri": (set_key("stats:monitor_uri", "/status"), "stats:monitor_uri"),
    "backends uri the monitor uri": (set_key("stats:backends_uri", "/havip-health"), "stats:backends_uri"),
    "track backends not a switch": (set_key("keepalived:track_backends", "yes"), "keepalived:track_backends"),
    "track link not a switch": (set_key("keepalived:track_link", "yes"), "keepalived:track_link"),
    "check interval": (set_key("keepalived:check:interval", 0), "keepalived:check:interval"),
}


@pytest.mark.parametrize("case", sorted(BAD_PILLARS))
def test_a_bad_pillar_is_refused_naming_the_key(case):
    edit, key = BAD_PILLARS[case]
    havip = copy.deepcopy(SEED)
    edit(havip)
    with pytest.raises(havip_values.Invalid) as refused:
        validate(havip)
    assert refused.value.key == key
    assert f"havip pillar: havip:{key}: " in str(refused.value)


def test_an_unknown_key_names_the_nearest_known_one():
    havip = copy.deepcopy(SEED)
    havip["keepalived"] = {"advert_interval": 1}
    with pytest.raises(havip_values.Invalid, match=r"did you mean advert_int\?"):
        validate(havip)


def test_the_seed_pillar_passes_and_the_states_get_no_secret():
    havip = copy.deepcopy(SEED)
    config = validate(havip)
    assert config["node"]["name"] == "svr1" and config["roles"] == ["balancer"]
    assert "password" not in config["stats"]
    assert "a-long-random-one" not in repr(config)


def test_a_vrrpv2_auth_pass_is_checked_but_not_passed_on():
    havip = copy.deepcopy(SEED)
    havip["keepalived"] = {"vrrp_version": 2, "advert_int": 1}
    havip["vips"]["VI_1"]["auth_pass"] = "s3cr3t"
    config = validate(havip)
    assert "auth_pass" not in config["vips"]["VI_1"]
    assert "s3cr3t" not in repr(config)


def test_extra_haproxy_lines_keep_the_defaults():
    havip = copy.deepcopy(SEED)
    havip["haproxy"] = {"defaults_extra": ["timeout connect 2s"]}
    config = validate(havip)
    assert config["haproxy"]["defaults"] == DEFAULTS["haproxy"]["defaults"]
    assert config["haproxy"]["defaults_extra"] == ["timeout connect 2s"]


def test_the_stats_socket_line_may_be_in_global_extra_and_is_the_one_the_module_uses():
    havip = copy.deepcopy(SEED)
    havip["haproxy"] = {"global": ["daemon"], "global_extra": ["stats socket /run/x.sock mode 600 level admin"]}
    assert havip_haproxy.stats_socket(validate(havip)["haproxy"]) == "/run/x.sock"


@pytest.mark.parametrize("grains,versions", [
    ({"os_family": "RedHat", "os": "CentOS", "osmajorrelease": 7, "osrelease": "7.9"}, {}),
    ({"os_family": "RedHat", "os": "Rocky", "osmajorrelease": 8, "osrelease": "8.9"}, {}),
    ({"os_family": "Debian", "os": "Ubuntu", "osmajorrelease": 20, "osrelease": "20.04"}, {}),
    ({"os_family": "Debian", "os": "Debian", "osmajorrelease": 11, "osrelease": "11"}, {}),
    ({"os_family": "Debian", "os": "Debian", "osmajorrelease": 12}, {"haproxy": "2.2.9-2+deb11u6"}),
    ({"os_family": "RedHat", "os": "AlmaLinux", "osmajorrelease": 9}, {"keepalived": "2.1.5-9.el9"}),
])
def test_a_platform_below_the_minimums_is_refused(grains, versions):
    with pytest.raises(CommandExecutionError, match=r"havip: .* (is not supported|is installed here)"):
        havip_pillar.check_platform(grains, versions)


@pytest.mark.parametrize("grains,versions", [
    ({"os_family": "Debian", "os": "Debian", "osmajorrelease": 12}, {"haproxy": "2.6.12-1+deb12u4",
                                                                     "keepalived": "1:2.2.7-1+b2"}),
    ({"os_family": "Debian", "os": "Ubuntu", "osmajorrelease": 22}, {"haproxy": "", "keepalived": ""}),
    ({"os_family": "RedHat", "os": "Rocky", "osmajorrelease": 9}, {"haproxy": "2.4.22-3.el9_3"}),
    ({"os_family": "Suse", "os": "SUSE", "osmajorrelease": 15}, {}),
])
def test_a_supported_platform_passes(grains, versions):
    havip_pillar.check_platform(grains, versions)


def test_validate_derives_roles_backends_and_balancers():
    config = validate(SEED)
    assert config["roles"] == ["balancer"]
    assert config["node"]["priority"] == 150
    assert [n["name"] for n in config["backends"]] == ["nginx1", "nginx2"]
    assert [n["name"] for n in config["balancers"]] == ["svr1", "svr2"]
    assert config["vips"]["VI_1"]["address"] == "192.168.100.10"
    assert config["vips"]["VI_1"]["cidr"] == "192.168.100.10/24"


def test_validate_ranks_the_balancers_of_each_vip_by_its_own_priorities():
    havip = copy.deepcopy(SEED)
    havip["nodes"]["svr3"] = {"roles": ["balancer"], "address": "192.168.100.15", "priority": 120}
    havip["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32",
                             "virtual_router_id": 52, "priorities": {"svr2": 200}}
    vips = validate(havip)["vips"]
    assert vips["VI_1"]["priorities"] == {"svr1": 150, "svr2": 100, "svr3": 120}
    assert vips["VI_1"]["order"] == ["svr1", "svr3", "svr2"]
    assert vips["VI_2"]["priorities"] == {"svr1": 150, "svr2": 200, "svr3": 120}
    assert vips["VI_2"]["order"] == ["svr2", "svr1", "svr3"]
    assert vips["VI_2"]["unicast"] is False


def test_a_backends_page_is_its_own_or_its_name():
    havip = copy.deepcopy(SEED)
    havip["nodes"]["nginx1"]["page"] = "nginx--1"
    nodes = validate(havip, "nginx2")["nodes"]
    assert (nodes["nginx1"]["page"], nodes["nginx2"]["page"]) == ("nginx--1", "nginx2")
    assert "page" not in nodes["svr1"]


def test_track_backends_weighs_one_more_than_the_spread_of_each_vips_priorities():
    havip = copy.deepcopy(SEED)
    havip["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32",
                             "virtual_router_id": 52, "priorities": {"svr2": 3}}
    vips = validate(havip)["vips"]
    assert (vips["VI_1"]["track_backends_weight"], vips["VI_2"]["track_backends_weight"]) == (-51, -148)


def test_a_spread_beyond_keepaliveds_weight_is_refused():
    havip = copy.deepcopy(SEED)
    havip["nodes"]["svr1"]["priority"], havip["nodes"]["svr2"]["priority"] = 254, 1
    with pytest.raises(havip_values.Invalid, match="needs a weight of -254, beyond keepalived's -253") as refused:
        validate(havip)
    assert refused.value.key == "vips:VI_1:priorities"


def test_validate_hands_the_shared_facts_to_the_states():
    havip = copy.deepcopy(SEED)
    havip["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    config = validate(havip)
    assert (config["facts_file"], config["facts_state"]) == (havip_facts.FACTS_FILE, havip_facts.FACTS_STATE)
    assert config["standby"] == {"weight": havip_facts.STANDBY_WEIGHT, "in_service": havip_facts.IN_SERVICE,
                                 "lowest": havip_facts.STANDBY_LOWEST, "fault": havip_facts.STANDBY_FAULT}
    assert config["handover"]["nft_families"] == [(4, "ip"), (6, "ip6")]
    assert {name: vip["nft_family"] for name, vip in config["vips"].items()} == {"VI_1": "ip", "VI_6": "ip6"}


@pytest.mark.parametrize("answer_timeout, asked", [(0.3, 0.3), (0, havip_facts.BACKENDS_ANSWER_TIMEOUT)])
def test_the_backends_checks_answer_timeout_is_the_checks_own_else_the_default(answer_timeout, asked):
    havip = copy.deepcopy(SEED)
    set_key("keepalived:check:answer_timeout", answer_timeout)(havip)
    checks = validate(havip)["checks"]
    assert (checks["address"], checks["backends_answer_timeout"]) == (havip_facts.CHECK_ADDRESS, asked)


def test_the_link_check_pings_every_other_nodes_canonical_address():
    havip = copy.deepcopy(SEED)
    havip["nodes"]["app1"] = {"roles": ["app"], "address": "FD00:100:0::0:21"}
    havip["nodes"]["nginx1"]["address"] = "192.168.100.9"
    assert validate(havip, "svr1")["checks"]["link"]["addresses"] == [
        "192.168.100.9", "192.168.100.12", "192.168.100.14", "fd00:100::21"]
    assert "192.168.100.13" in validate(havip, "svr2")["checks"]["link"]["addresses"]


def more_backends(count):
    """An edit of the seed: ``count`` backends, nginx1 to nginx<count>, at
    192.168.100.101 and up (the seed's two keep theirs)."""
    def edit(havip):
        for number in range(3, count + 1):
            havip["nodes"][f"nginx{number}"] = {"roles": ["backend"], "address": f"192.168.100.{100 + number}"}
    return edit


def test_the_link_check_pings_every_other_balancer_and_the_same_three_other_nodes_on_every_balancer():
    """At 16 backends, every node pinged every 20 ms would be 850 pings/s
    from each balancer: the other balancers and the first LINK_NODES other
    nodes by name (the same on every balancer; the master's view too)."""
    havip = copy.deepcopy(SEED)
    more_backends(16)(havip)
    havip["nodes"]["svr3"] = {"roles": ["balancer"], "address": "192.168.100.15", "priority": 50}
    havip["nodes"]["both"] = {"roles": ["backend", "balancer"], "address": "192.168.100.16", "priority": 60}
    # nginx1, nginx10, nginx11 (by name), then the other balancers; by address.
    assert validate(havip, "svr1")["checks"]["link"]["addresses"] == [
        "192.168.100.11", "192.168.100.14", "192.168.100.15", "192.168.100.16", "192.168.100.110", "192.168.100.111"]
    assert validate(havip, "both")["checks"]["link"]["addresses"] == [
        "192.168.100.11", "192.168.100.13", "192.168.100.14", "192.168.100.15", "192.168.100.110", "192.168.100.111"]
    assert havip_facts.LINK_NODES == 3


@pytest.mark.parametrize("interval, timeout, watch", [(1, 2, 0.9), (1, 1, 0.6), (3, 2, 1.6), (5, 10, 4.9)])
def test_the_link_check_pings_until_shortly_before_its_next_run_within_its_timeout_and_hold(interval, timeout,
                                                                                            watch):
    """The run that first sees a loss holds its balancer in FAULT after its
    watch: both end within keepalived's timeout."""
    havip = copy.deepcopy(SEED)
    set_key("keepalived:check", {"interval": interval, "timeout": timeout, "watch": False,
                                 "answer_timeout": 0})(havip)
    assert validate(havip)["checks"]["link"] == {
        "addresses": ["192.168.100.11", "192.168.100.12", "192.168.100.14"], "watch": watch,
        "gap": havip_facts.LINK_PING_GAP, "lost": havip_facts.LINK_LOST, "hold": havip_facts.LINK_FAULT_HOLD,
        "table": havip_facts.LINK_TABLE, "vrids": {"ip": [51]}}


def test_validate_gives_an_unlisted_minion_no_roles():
    assert validate(SEED, "elsewhere")["roles"] == []


def test_validate_errors_are_command_execution_errors():
    havip = copy.deepcopy(SEED)
    havip["nodes"]["svr1"]["priority"] = 300
    with pytest.raises(CommandExecutionError, match="havip:nodes:svr1:priority"):
        validate(havip)


def test_every_address_the_states_get_is_its_canonical_form():
    havip = copy.deepcopy(SEED)
    havip["nodes"]["svr2"]["address"] = "192.168.100.14"
    havip["nodes"]["nginx1"]["address"] = "FD00:100:0::11"
    havip["vips"]["VI_6"] = {"address": "FD00:100::0:10/64", "interface": "ens32", "virtual_router_id": 52}
    havip["frontend"] = {"bind": ["FD00:100::0:10", "192.168.100.10"]}
    havip["mine"] = {"network": "FD00:100::/64"}
    config = validate(havip)
    assert config["nodes"]["nginx1"]["address"] == "fd00:100::11"
    assert (config["vips"]["VI_6"]["address"], config["vips"]["VI_6"]["cidr"]) == ("fd00:100::10", "fd00:100::10/64")
    assert config["frontend"]["bind"] == ["fd00:100::10", "192.168.100.10"]
    assert config["mine_args"] == {"cidr": "fd00:100::/64"}

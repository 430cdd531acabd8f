"""
Unit tests of ``_utils/havip_pillar.py`` (with the contract's key table,
``_utils/havip_contract.py``): every bad pillar refused naming its key, data
from the mine untrusted, secrets never passed on, the platform's minimums.
The formula's render refuses them the same way:
test/render/test_pillar_validation.py.
"""

import copy

import havip_contract
import havip_facts
import havip_haproxy
import havip_pillar
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
    "check interval": (set_key("keepalived:check:interval", 0), "keepalived:check:interval"),
}


@pytest.mark.parametrize("case", sorted(BAD_PILLARS))
def test_a_bad_pillar_is_refused_naming_the_key(case):
    edit, key = BAD_PILLARS[case]
    havip = copy.deepcopy(SEED)
    edit(havip)
    with pytest.raises(havip_contract.Invalid) as refused:
        validate(havip)
    assert refused.value.key == key
    assert f"havip pillar: havip:{key}: " in str(refused.value)


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


def test_an_unknown_key_names_the_nearest_known_one():
    havip = copy.deepcopy(SEED)
    havip["keepalived"] = {"advert_interval": 1}
    with pytest.raises(havip_contract.Invalid, match=r"did you mean advert_int\?"):
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
    with pytest.raises(havip_contract.Invalid) as refused:
        validate(discovered(network="192.168.100.0/24"), mine_get=mine(published))
    assert refused.value.key == "nodes:nginx2:address (from the mine)"


ZONED_BACKEND = "fd00::50%lo]:80 init-addr none\nglobal\n    stats socket ipv4@0.0.0.0:9999 level admin\n#"
ZONED_BALANCER = "fd00::14%x'; touch \"$(printf '\\057tmp\\057pwned')\"; : '"


@pytest.mark.parametrize("mine_section", [{"interface": "ens32"}, {"network": "fd00::/64"}])
def test_a_backend_address_from_the_mine_with_a_zone_is_refused_shown_escaped(mine_section):
    with pytest.raises(havip_contract.Invalid) as refused:
        validate(discovered(**mine_section), mine_get=mine([ZONED_BACKEND]))
    assert refused.value.key == "nodes:nginx2:address (from the mine)"
    assert "\n" not in str(refused.value) and ascii(ZONED_BACKEND) in str(refused.value)


def test_a_backend_address_from_the_mine_outside_the_network_is_shown_canonical():
    with pytest.raises(havip_contract.Invalid, match=r"^havip pillar: havip:nodes:nginx2:address \(from the mine\): "
                                                     r"fd01::9 is not in havip:mine:network fd00::/64$"):
        validate(discovered(network="fd00::/64"), mine_get=mine(["FD01:0::0:9"]))


def test_a_backend_address_from_the_mine_that_passes_is_used():
    config = validate(discovered(network="192.168.100.0/24"), mine_get=mine(["192.168.100.12"]))
    assert config["nodes"]["nginx2"]["address"] == "192.168.100.12"


def test_a_backend_that_published_nothing_yet_stops_the_balancer():
    with pytest.raises(havip_contract.Invalid, match="is not in the Salt mine yet"):
        validate(discovered(network="192.168.100.0/24"), mine_get=mine(None))


def test_a_backend_publishes_its_own_address_from_its_interfaces():
    havip = discovered(network="192.168.100.0/24")
    config = validate(havip, minion_id="nginx2", ip_addrs=lambda **kw: ["192.168.100.12"], mine_get=mine(None))
    assert config["node"]["address"] == "192.168.100.12"
    assert config["mine_args"] == {"cidr": "192.168.100.0/24"}




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
    with pytest.raises(havip_contract.Invalid, match="needs a weight of -254, beyond keepalived's -253") as refused:
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
    assert validate(havip)["checks"] == {"address": havip_facts.CHECK_ADDRESS, "backends_answer_timeout": asked}


def test_validate_gives_an_unlisted_minion_no_roles():
    assert validate(SEED, "elsewhere")["roles"] == []


def test_validate_errors_are_command_execution_errors():
    havip = copy.deepcopy(SEED)
    havip["nodes"]["svr1"]["priority"] = 300
    with pytest.raises(CommandExecutionError, match="havip:nodes:svr1:priority"):
        validate(havip)


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
    with pytest.raises(havip_contract.Invalid) as refused:
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
    with pytest.raises(havip_contract.Invalid) as refused:
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


def test_the_master_derives_the_public_configuration_from_a_minions_pillar():
    """As map.jinja on a minion (the same merge, the same checks), but
    without the minion's own data: the runner's view of the cluster."""
    derived = havip_pillar.master_config(copy.deepcopy(SEED), copy.deepcopy(DEFAULTS))
    assert derived == {**validate(SEED), "node": None, "roles": [], "listen": {},
                       "firewalld": {"ports": [], "rich_rules": [], "closed": {"ports": [], "rich_rules": []}},
                       "vips": {name: {key: value for key, value in vip.items() if key != "relay_to"}
                                for name, vip in validate(SEED)["vips"].items()}}
    assert "password" not in derived["stats"]
    assert havip_pillar.master_config(None, DEFAULTS) is None
    assert havip_pillar.master_config({"nodes": {}}, DEFAULTS) is None
    with pytest.raises(CommandExecutionError, match=r"^havip pillar: havip: must be a dictionary, got str$"):
        havip_pillar.master_config("nodes", DEFAULTS)
    with pytest.raises(havip_contract.Invalid, match=r"havip:stats:password: is a well-known placeholder"):
        havip_pillar.master_config({**SEED, "stats": {**SEED["stats"], "password": "Passw0rd"}}, DEFAULTS)


def test_a_backend_whose_address_is_in_the_mine_has_none_on_the_master():
    pillar = copy.deepcopy(SEED)
    pillar["mine"] = {"network": "192.168.100.0/24"}
    del pillar["nodes"]["nginx1"]["address"]
    derived = havip_pillar.master_config(pillar, DEFAULTS)
    assert derived["nodes"]["nginx1"]["address"] is None and derived["nodes"]["nginx1"]["discovered"] is True

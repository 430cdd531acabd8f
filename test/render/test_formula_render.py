"""
Fast tier: the formula rendered by a real masterless salt-call for Debian and
RedHat grains; rendered configs go through the same file.managed + check_cmd
(haproxy -c, keepalived -t, nginx -t) that guards them on a minion, then
through the daemons of Debian 12 and 13 (test/daemons.py).
"""

import copy
import os
import subprocess
import time

import havip_facts
import pytest

from test import daemons
from test.certs import pem
from test.saltcall import DEBIAN_GRAINS, REDHAT_GRAINS, TEST_PASSWORD, seed_pillar

CONFIG_STATES = {
    "havip-haproxy-config-file": "haproxy.cfg",
    "havip-keepalived-config-file": "keepalived.conf",
    "havip-nginx-config-file": "nginx-site.conf",
}
# The daemon whose check guards each config state.
CONFIG_DAEMONS = {"havip-haproxy-config-file": "haproxy", "havip-keepalived-config-file": "keepalived",
                  "havip-nginx-config-file": "nginx"}


def funs(states):
    return {state_id: args["fun"] for state_id, args in states.items()}


def test_debian_balancer_gets_haproxy_and_keepalived_through_salts_service_module(salt_call):
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(seed_pillar())
    assert states["havip-haproxy-pkg"]["pkgs"] == ["haproxy"]
    assert states["havip-keepalived-pkg"]["pkgs"] == ["keepalived"]
    assert states["havip-keepalived-tools-pkg"]["pkgs"] == ["curl", "nftables", "iputils-ping"]
    assert states["havip-haproxy-config-file"]["name"] == "/etc/haproxy/haproxy.cfg"
    assert states["havip-haproxy-config-file"]["check_cmd"] == "haproxy -c -q -f"
    assert states["havip-keepalived-config-file"]["check_cmd"] == "keepalived -t -f"
    assert states["havip-haproxy-sysctl-nonlocal-bind-ipv4"]["name"] == "net.ipv4.ip_nonlocal_bind"
    # A VIP kept on lo for a handover (havip-handover) is not announced by ARP.
    sysctls = {states[f"havip-keepalived-sysctl-{name}"]["name"]: states[f"havip-keepalived-sysctl-{name}"]["value"]
               for name in ("arp-ignore", "arp-announce")}
    assert sysctls == {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2}
    assert states["havip-keepalived-sysctl-arp-ignore"]["config"] == "/etc/sysctl.d/60-havip.conf"
    for service in ("haproxy", "keepalived"):
        running = states[f"havip-{service}-service-running"]
        assert running["fun"] == "service.running" and running["name"] == service
        assert running["enable"] is True and running["reload"] is True
        # systemd's module and Debian's units as shipped: no provider, no
        # process-list signature.
        assert "provider" not in running and "sig" not in running
    assert not any(s.startswith("havip-nginx") for s in states)
    assert not any(f.startswith(("firewalld.", "selinux.")) for f in funs(states).values())
    # What havip.status and friends read: root only (the states get no secret).
    facts = states[havip_facts.FACTS_STATE]
    assert (facts["name"], facts["mode"], facts["user"]) == (havip_facts.FACTS_FILE, "0600", "root")
    assert facts["dataset"]["node"]["name"] == "svr1"
    # Created in service, never replaced (havip.standby writes it).
    standby = states["havip-keepalived-standby-file"]
    assert (standby["contents"], standby["replace"]) == (str(havip_facts.IN_SERVICE), False)


def test_systemd_starts_a_dead_keepalived_again_once_a_peer_has_taken_its_vips(salt_call):
    """kill -9 of keepalived (chaos seed 324): Debian's unit has no
    Restart=; havip's drop-in adds one, after a peer's master-down interval
    (4 adverts) and 1 s; a stop stays a stop (on-failure)."""
    pillar = seed_pillar()
    pillar["havip"]["keepalived"] = {"advert_int": 0.5}
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(pillar)
    dropin = states["havip-keepalived-dropin-file"]
    assert dropin["name"] == "/etc/systemd/system/keepalived.service.d/havip.conf"
    assert dropin["contents"].splitlines()[1:] == [
        "[Unit]", "After=haproxy.service", "", "[Service]", "Restart=on-failure", "RestartSec=3000ms"]
    # systemd reloaded when it changed (its `systemctl status` does not ask
    # for it after a new drop-in: the lab's keepalived ran without it)
    loaded = states["havip-keepalived-dropin-loaded"]
    assert (loaded["fun"], loaded["service.systemctl_reload"]) == ("module.run", [])
    assert loaded["onchanges"] == [{"file": "havip-keepalived-dropin-file"}]
    assert {"service": "havip-keepalived-service-running"} in loaded["require_in"]


def test_haproxy_loads_the_servers_havip_drain_took_out_of_rotation_at_every_start(salt_call):
    """Chaos seed 4445: a drain did not survive HAProxy's restart.  The
    server state file is there (no server in it) before HAProxy ever reads
    the config, root only, never replaced by an apply; a new config saves
    the servers out of rotation (havip.save_server_state) before the
    reload."""
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(seed_pillar())
    created = states["havip-haproxy-server-state-file"]
    assert {key: created[key] for key in ("fun", "name", "contents", "replace", "user", "group", "mode")} == {
        "fun": "file.managed", "name": "/var/lib/havip/haproxy-server-state", "contents": "1", "replace": False,
        "user": "root", "group": "root", "mode": "0600"}
    assert {"file": "havip-haproxy-server-state-file"} in states["havip-haproxy-config-file"]["require"]
    saved = states["havip-haproxy-server-state-saved"]
    assert (saved["fun"], saved["havip.save_server_state"]) == ("module.run", [])
    assert saved["onchanges"] == [{"file": "havip-haproxy-config-file"}]
    assert {"module": "havip-haproxy-server-state-saved"} in states["havip-haproxy-service-running"]["require"]


def test_debian_backend_gets_nginx_and_its_page_only(salt_call):
    states = salt_call("nginx1", DEBIAN_GRAINS).show_sls(seed_pillar())
    assert states["havip-nginx-pkg"]["pkgs"] == ["nginx"]
    assert states["havip-nginx-page-file"]["name"] == "/var/www/html/index.html"
    assert states["havip-nginx-page-file"]["contents"] == "nginx1"
    assert funs(states)["havip-nginx-config-remove-/etc/nginx/sites-enabled/default"] == "file.absent"
    assert not any(s.startswith(("havip-haproxy", "havip-keepalived")) for s in states)
    assert states["havip-facts-file"]["dataset"]["roles"] == ["backend"]


def test_a_backend_without_an_address_publishes_its_own_in_the_salt_mine(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["mine"] = {"network": "0.0.0.0/0"}  # any address this test machine has
    del pillar["havip"]["nodes"]["nginx2"]["address"]
    states = salt_call("nginx2", DEBIAN_GRAINS).show_sls(pillar)
    send = states["havip-mine-havip-address"]
    assert send["fun"] == "module.run"
    assert send["mine.send"] == ["havip_address", {"mine_function": "network.ip_addrs"}, {"cidr": "0.0.0.0/0"}]
    assert "havip-mine-havip-address" not in salt_call("nginx1", DEBIAN_GRAINS).show_sls(pillar)


def test_a_balancer_publishes_its_interface_addresses_for_the_handovers_relays(salt_call):
    send = salt_call("svr1", DEBIAN_GRAINS).show_sls(seed_pillar())["havip-mine-havip-relay-addresses"]
    assert send["fun"] == "module.run"
    assert send["mine.send"] == ["havip_relay_addresses", {"mine_function": "havip.relay_addresses"}]


def add_addresses(netns, device, *addresses):
    for address in addresses:
        nodad = ["nodad"] if ":" in address else []
        subprocess.run(["ip", "-n", netns, "addr", "add", address, "dev", device, *nodad], check=True)


def test_a_balancer_that_took_a_vip_has_nothing_new_to_publish(salt_call, netns_with, tmp_path):
    """What a balancer publishes for the relays is the same whichever holds
    the VIP: svr1 publishes its own addresses, then takes the VIP (on its
    interface, and on lo as a handover keeps it): a second apply, and
    test=True, would send nothing (issue 24: it sent its grains, VIPs and
    lo included, again after every move and grains refresh)."""
    pillar = lab_pillar("tcp", tmp_path)
    netns = netns_with("hvtvip0")
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    add_addresses(netns, "hvtvip0", "192.168.100.13/24", "fd00:100::13/64")
    minion = salt_call("svr1", DEBIAN_GRAINS, netns=netns)
    code, applied = minion.run("state.sls", "havip.mine", pillar=pillar)
    assert code == 0, applied

    add_addresses(netns, "hvtvip0", "192.168.100.10/24")
    add_addresses(netns, "lo", "192.168.100.10/32")
    send = minion.show_sls(pillar, sls="havip.mine")["havip-mine-havip-relay-addresses"]
    assert send["fun"] == "test.succeed_without_changes"
    # Its own addresses only: no VIP, no lo, no interface without one.
    _, published = minion.run("mine.get", "svr1", "havip_relay_addresses")
    own = published["svr1"]
    assert own["ip4_interfaces"] == {"hvtvip0": ["192.168.100.13"]}
    assert list(own["ip6_interfaces"]) == ["hvtvip0"] and "fd00:100::13" in own["ip6_interfaces"]["hvtvip0"]
    minion.set_pillar(pillar)
    assert minion.run("havip.relay_addresses") == (0, own)


def test_page_can_be_overridden_per_node(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["nodes"]["nginx1"]["page"] = "nginx--1"
    states = salt_call("nginx1", DEBIAN_GRAINS).show_sls(pillar)
    assert states["havip-nginx-page-file"]["contents"] == "nginx--1"


def test_minion_not_in_nodes_gets_no_state_that_changes_anything(salt_call):
    states = salt_call("bystander", DEBIAN_GRAINS).show_sls(seed_pillar())
    assert funs(states) == {"havip-not-a-node": "test.nop"}


def test_minion_without_havip_pillar_fails_saying_the_pillar_top_file_misses_it(salt_call):
    states = salt_call("bystander", DEBIAN_GRAINS).show_sls({})
    assert funs(states) == {"havip-no-pillar": "test.fail_without_changes"}
    assert "assign the cluster's pillar to it in the pillar top file" in states["havip-no-pillar"]["name"]


def test_node_with_both_roles_gets_the_whole_stack(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["nodes"]["svr1"]["roles"] = ["backend", "balancer"]
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(pillar)
    for prefix in ("havip-nginx", "havip-haproxy", "havip-keepalived"):
        assert f"{prefix}-service-running" in states


def test_an_os_family_without_a_parameters_file_renders_with_the_defaults(salt_call):
    grains = {**DEBIAN_GRAINS, "os_family": "Suse", "os": "SUSE"}
    states = salt_call("svr1", grains).show_sls(seed_pillar())
    # parameters/defaults.yaml alone: firewall managed, the distributions' package names
    assert states["havip-firewall-zone"]["fun"] == "firewalld.present"
    assert states["havip-haproxy-pkg"]["pkgs"] == ["haproxy"]


def test_redhat_balancer_opens_firewalld_and_keeps_selinux_enforcing(salt_call):
    states = salt_call("svr1", REDHAT_GRAINS).show_sls(seed_pillar())
    # ping is iputils' there (keepalived:track_link's check).
    assert states["havip-keepalived-tools-pkg"]["pkgs"] == ["curl", "nftables", "iputils"]
    zone = states["havip-firewall-zone"]
    assert zone["fun"] == "firewalld.present" and zone["name"] == "public"
    # The frontend to everyone; the stats page to the peer balancer only
    # (stats:backends_uri); VRRP to its multicast group.
    assert zone["ports"] == ["9090/tcp"]
    assert zone["rich_rules"] == [
        'rule family="ipv4" source address="192.168.100.14" port port="1080" protocol="tcp" accept',
        'rule family="ipv4" source address="192.168.100.14" destination address="224.0.0.18" protocol value="vrrp"'
        ' accept']
    assert zone["prune_ports"] is False
    # What havip up to 0.4.1 opened and no longer does is removed where it is.
    closed = states["havip-firewall-closed-port-1080/tcp"]
    assert closed["name"] == "firewall-cmd --permanent --zone=public --remove-port=1080/tcp && firewall-cmd --reload"
    assert closed["onlyif"] == "firewall-cmd --permanent --zone=public --query-port=1080/tcp"
    assert states["havip-firewall-closed-rule-1"]["onlyif"] == (
        "firewall-cmd --permanent --zone=public --query-rich-rule="
        "'rule family=\"ipv6\" source address=\"fe80::/10\" protocol value=\"vrrp\" accept'")
    assert states["havip-firewall-service-running"]["name"] == "firewalld"
    boolean = states["havip-selinux-boolean-haproxy_connect_any"]
    assert boolean["fun"] == "selinux.boolean" and boolean["value"] is True and boolean["persist"] is True
    assert not any(f == "selinux.mode" or "setenforce" in str(a) for f, a in
                   ((args["fun"], args) for args in states.values()))
    assert "provider" not in states["havip-haproxy-service-running"]


def test_redhat_balancer_opens_the_stats_and_metrics_ports_to_the_admin_sources_only(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["metrics"] = {"port": 9101}
    pillar["havip"]["firewall"] = {"admin_sources": ["10.9.0.0/16", "fd00:9::/64"]}
    zone = salt_call("svr1", REDHAT_GRAINS).show_sls(pillar)["havip-firewall-zone"]
    assert zone["ports"] == ["9090/tcp"]
    admin = [f'rule family="ipv{family}" source address="{source}" port port="{port}" protocol="tcp" accept'
             for family, source in ((4, "10.9.0.0/16"), (6, "fd00:9::/64")) for port in (1080, 9100, 9101)]
    assert zone["rich_rules"][:len(admin)] == admin


def test_redhat_balancer_takes_ipv6_vrrp_adverts_to_their_group_only(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 51}
    zone = salt_call("svr1", REDHAT_GRAINS).show_sls(pillar)["havip-firewall-zone"]
    # Link-local sources (fe80::/10), to the adverts' group (ff02::12) only.
    assert [rule for rule in zone["rich_rules"] if "vrrp" in rule] == [
        'rule family="ipv4" source address="192.168.100.14" destination address="224.0.0.18" protocol value="vrrp"'
        ' accept',
        'rule family="ipv6" source address="fe80::/10" destination address="ff02::12" protocol value="vrrp" accept']


def test_redhat_balancers_of_ipv6_addresses_take_ipv4_vrrp_too(salt_call):
    """A cluster whose nodes have IPv6 addresses and whose VIPs are of both
    families: VRRP of either family is admitted, unicast from the peers."""
    pillar = seed_pillar()
    for name, number in (("nginx1", 11), ("nginx2", 12), ("svr1", 13), ("svr2", 14)):
        pillar["havip"]["nodes"][name]["address"] = f"fd00:100::{number}"
    pillar["havip"]["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52,
                                       "unicast": True}
    zone = salt_call("svr1", REDHAT_GRAINS).show_sls(pillar)["havip-firewall-zone"]
    assert [rule for rule in zone["rich_rules"] if "vrrp" in rule] == [
        'rule family="ipv4" destination address="224.0.0.18" protocol value="vrrp" accept',
        'rule family="ipv6" source address="fd00:100::14" protocol value="vrrp" accept']


def test_a_balancer_of_ipv6_vips_only_leaves_the_arp_sysctls_alone(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["vips"] = {"VI_6": {"address": "fd00:100::10/64", "interface": "ens32",
                                        "virtual_router_id": 51}}
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(pillar)
    assert states["havip-haproxy-sysctl-nonlocal-bind-ipv6"]["name"] == "net.ipv6.ip_nonlocal_bind"
    assert not any(state.startswith("havip-keepalived-sysctl") for state in states)


def test_redhat_backend_gets_epel_first_and_its_port_opened(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["backend"] = {"port": 8081}
    states = salt_call("nginx1", REDHAT_GRAINS).show_sls(pillar)
    assert states["havip-nginx-repo-pkgs"]["pkgs"] == ["epel-release"]
    assert {"pkg": "havip-nginx-pkg"} in states["havip-nginx-repo-pkgs"]["require_in"]
    assert states["havip-nginx-page-file"]["name"] == "/usr/share/nginx/html/index.html"
    assert states["havip-firewall-zone"]["ports"] == ["8081/tcp"]
    assert states["havip-firewall-zone"]["rich_rules"] == []
    assert states["havip-selinux-port-nginx"]["name"] == "tcp/8081"
    assert states["havip-selinux-port-nginx"]["sel_type"] == "http_port_t"
    assert "provider" not in states["havip-nginx-service-running"]


def render_config(minion, states, state_id, target, pillar):
    """Apply one config file.managed state of the formula to ``target``,
    check_cmd included, with ``pillar`` (templates read secrets from it);
    return (state result, file text).  A daemon's config the state wrote
    is checked by that daemon of every release too (test/daemons.py, in
    the minion's network namespace; a warning is a refusal): when one
    refuses it, the result is False and its comment what they said."""
    args = {k: v for k, v in states[state_id].items()
            if k not in ("fun", "require", "require_in", "watch", "watch_in", "user", "group")}
    args["name"] = str(target)
    minion.set_pillar(pillar)
    _, ret = minion.run("state.single", "file.managed", **args)
    result = next(iter(ret.values())) if isinstance(ret, dict) else {"result": False, "comment": ret}
    daemon = CONFIG_DAEMONS.get(state_id)
    if result["result"] is True and daemon:
        config = daemons.nginx_main(target) if daemon == "nginx" else target
        refused = daemons.refusals(daemon, config, netns=minion.netns)
        if refused:
            result = {**result, "result": False, "comment": refused}
    return result, target.read_text() if target.exists() else None


KEEPALIVED_SCRIPTS = {"check_script": "havip-keepalived-check-script-file",
                      "link_check_script": "havip-keepalived-link-check-script-file",
                      "notify_script": "havip-keepalived-notify-script-file"}


def lab_pillar(mode, tmp_path):
    """The seed pillar on the throwaway netns's interface, with keepalived's
    scripts and standby file under ``tmp_path``."""
    pillar = seed_pillar()
    pillar["havip"]["vips"]["VI_1"]["interface"] = "hvtvip0"
    pillar["havip"]["frontend"] = {"mode": mode}
    pillar["havip"]["lookup"] = {"keepalived": {
        **{key: str(tmp_path / key) for key in KEEPALIVED_SCRIPTS},
        "standby_file": str(tmp_path / "standby"),
        "link_fault_file": str(tmp_path / "link-fault"),
    }}
    return pillar


def install_keepalived_scripts(minion, states, tmp_path, pillar):
    """keepalived -t insists that the scripts it runs exist."""
    for key, state_id in KEEPALIVED_SCRIPTS.items():
        script, _ = render_config(minion, states, state_id, tmp_path / key, pillar)
        assert script["result"] is True, script


@pytest.mark.parametrize("mode", ["tcp", "http"])
def test_rendered_configs_pass_the_daemons_own_checks(salt_call, netns_with, tmp_path, mode):
    pillar = lab_pillar(mode, tmp_path)
    pillar["havip"]["nodes"]["svr1"]["roles"] = ["backend", "balancer"]
    pillar["havip"]["backend"] = {"port": 8080}
    minion = salt_call("svr1", DEBIAN_GRAINS, netns=netns_with("hvtvip0"))
    states = minion.show_sls(pillar)
    install_keepalived_scripts(minion, states, tmp_path, pillar)
    texts = {}
    for state_id, filename in CONFIG_STATES.items():
        result, texts[filename] = render_config(minion, states, state_id, tmp_path / filename, pillar)
        assert result["result"] is True, (state_id, result)

    haproxy = texts["haproxy.cfg"]
    assert "bind 192.168.100.10:9090" in haproxy
    assert "balance roundrobin" in haproxy
    for name, address in (("nginx1", "192.168.100.11"), ("nginx2", "192.168.100.12"),
                          ("svr1", "192.168.100.13")):
        assert f"server {name} {address}:8080" in haproxy
    assert "default-server check" in haproxy
    assert f"mode {mode}" in haproxy
    assert ("option httpchk GET /" in haproxy) == (mode == "http")
    assert f"stats auth 'admin:{TEST_PASSWORD}'" in haproxy
    for line in ("stats uri /status", "stats refresh 5s", "stats realm 'HAProxy Statistics'",
                 "bind 192.168.100.13:1080", "bind 127.0.0.1:1080", "timeout connect 100ms",
                 "http-request return status 200 if { path /havip-backends } { nbsrv(havip_backends) ge 1 }"):
        assert line in haproxy
    assert "*:" not in haproxy  # nothing on every address

    keepalived = texts["keepalived.conf"]
    for line in ("state BACKUP", "priority 150", "virtual_router_id 51", "interface hvtvip0",
                 "192.168.100.10/24 dev hvtvip0", "enable_script_security",
                 f'script "{tmp_path / "check_script"}"', f'notify "{tmp_path / "notify_script"}"',
                 f'file "{tmp_path / "standby"}"', "havip_standby",
                 # Priorities 150 and 100: without a backend UP, 150 ranks below 100.
                 "/usr/bin/curl -fs -o /dev/null -m 0.5 http://127.0.0.1:1080/havip-backends",
                 "        havip_check_backends weight -51\n"):
        assert line in keepalived
    assert "state MASTER" not in keepalived
    assert "listen 8080;" in texts["nginx-site.conf"]


def test_haproxy_takes_ipv6_addresses_in_brackets(salt_call, tmp_path):
    pillar = seed_pillar()
    pillar["havip"]["vips"]["VI_6"] = {"address": "fd00:100::10/64", "interface": "ens32", "virtual_router_id": 52}
    pillar["havip"]["nodes"]["nginx2"]["address"] = "fd00:100::12"
    minion = salt_call("svr1", DEBIAN_GRAINS)
    states = minion.show_sls(pillar)
    result, haproxy = render_config(minion, states, "havip-haproxy-config-file", tmp_path / "haproxy.cfg", pillar)
    assert result["result"] is True, result  # haproxy -c accepts it
    for line in ("bind 192.168.100.10:9090", "bind [fd00:100::10]:9090", "server nginx2 [fd00:100::12]:80"):
        assert line in haproxy


def test_every_address_lands_in_the_configs_in_its_canonical_form_never_as_given(salt_call, tmp_path):
    pillar = seed_pillar()
    given = {"vip": "FD00:100:0::10", "nginx2": "FD00:100::0:12"}
    pillar["havip"]["vips"]["VI_6"] = {"address": f"{given['vip']}/64", "interface": "ens32", "virtual_router_id": 52}
    pillar["havip"]["nodes"]["nginx2"]["address"] = given["nginx2"]
    pillar["havip"]["frontend"] = {"bind": [given["vip"]]}
    minion = salt_call("svr1", DEBIAN_GRAINS)
    states = minion.show_sls(pillar)
    texts = {}
    for state_id, filename in (("havip-haproxy-config-file", "haproxy.cfg"),
                               ("havip-keepalived-handover-script-file", "handover")):
        result, texts[filename] = render_config(minion, states, state_id, tmp_path / filename, pillar)
        assert result["result"] is True, result  # haproxy -c accepts it
    assert "bind [fd00:100::10]:9090" in texts["haproxy.cfg"]
    assert "server nginx2 [fd00:100::12]:80" in texts["haproxy.cfg"]
    assert "'VI_6') address='fd00:100::10'" in texts["handover"]
    for text in texts.values():
        assert not any(address in text for address in given.values())


def test_a_page_reaches_nginx_as_written_whatever_its_characters(salt_call):
    """The SLS carries every string ASCII-escaped (tojson): Salt's json
    filter writes U+0085 as is, which YAML reads as a line break, and
    U+009B, which YAML refuses."""
    pillar = seed_pillar()
    page = "caf\u00e9 \u0085 \u009b \u2028 <b>'&'</b>\n"
    pillar["havip"]["nodes"]["nginx1"]["page"] = page
    assert salt_call("nginx1", DEBIAN_GRAINS).show_sls(pillar)["havip-nginx-page-file"]["contents"] == page
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(pillar)
    assert states["havip-haproxy-config-file"]["context"]["havip"]["nodes"]["nginx1"]["page"] == page


def test_stats_and_metrics_listen_on_the_given_addresses_in_canonical_form(salt_call, tmp_path):
    pillar = seed_pillar()
    pillar["havip"]["stats"]["bind"] = ["0.0.0.0", "FD00:0:0::5"]
    # Each balancer's own address is left to it.
    pillar["havip"]["metrics"] = {"port": 9101, "bind": ["192.168.100.13", "192.168.100.14", "fd00::0:13"]}
    minion = salt_call("svr1", DEBIAN_GRAINS)
    states = minion.show_sls(pillar)
    result, haproxy = render_config(minion, states, "havip-haproxy-config-file", tmp_path / "haproxy.cfg", pillar)
    assert result["result"] is True, result  # haproxy -c accepts it
    stats = haproxy.split("listen stats")[1]
    assert [line.strip() for line in stats.splitlines() if "bind" in line] == [
        "bind 0.0.0.0:1080", "bind [fd00::5]:1080"]  # 0.0.0.0 takes keepalived's checks on 127.0.0.1
    metrics = haproxy.split("frontend havip_metrics")[1].split("listen stats")[0]
    assert [line.strip() for line in metrics.splitlines() if "bind" in line] == [
        "bind 192.168.100.13:9101", "bind [fd00::13]:9101"]
    defaults = states["havip-metrics-defaults-file"]
    assert defaults["name"] == "/etc/default/prometheus-node-exporter"
    assert 'ARGS="--collector.textfile.directory=/var/lib/prometheus/node-exporter' \
           ' --web.listen-address=192.168.100.13:9100 --web.listen-address=[fd00::13]:9100"' in defaults["contents"]


def test_the_node_exporter_listens_on_the_balancers_own_address_by_default(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["metrics"] = {"port": 9101}
    states = salt_call("svr2", DEBIAN_GRAINS).show_sls(pillar)
    assert "--web.listen-address=192.168.100.14:9100\"" in states["havip-metrics-defaults-file"]["contents"]
    assert {"file": "havip-metrics-defaults-file"} in states["havip-metrics-service-running"]["watch"]


def test_the_vrrp_state_is_published_again_when_missing_or_older_than_the_notify_script(salt_call, tmp_path):
    """A new notify script may publish more (havip_vrrp_preferred came so):
    the apply publishes with it at once, not at the next transition."""
    pillar = seed_pillar()
    pillar["havip"]["metrics"] = {"port": 9101}
    prom, script = tmp_path / "havip.prom", tmp_path / "notify"
    pillar["havip"]["lookup"] = {"keepalived": {"notify_script": str(script)},
                                 "metrics": {"textfile_dir": str(tmp_path)}}
    published = salt_call("svr1", DEBIAN_GRAINS).show_sls(pillar)["havip-metrics-vrrp-published"]
    assert published["name"] == f"{script} METRICS"

    def publishes():  # cmd.run runs it unless this succeeds
        return subprocess.run(["sh", "-c", published["unless"]], check=False).returncode != 0
    script.write_text("")
    assert publishes()  # no havip.prom yet
    prom.write_text("")
    os.utime(script, (time.time(), prom.stat().st_mtime + 1))
    assert publishes()  # the script changed since
    os.utime(prom, (time.time(), script.stat().st_mtime + 1))
    assert not publishes()


def instances(keepalived_conf):
    """{instance name: its block's text} of a keepalived.conf."""
    blocks = keepalived_conf.split("vrrp_instance ")[1:]
    return {block.split()[0]: block for block in blocks}


def test_each_vip_gets_its_own_priority_and_unicast_peers_where_asked(salt_call, netns_with, tmp_path):
    pillar = lab_pillar("tcp", tmp_path)
    pillar["havip"]["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "hvtvip0",
                                       "virtual_router_id": 52, "priorities": {"svr2": 200}, "unicast": True}
    minion = salt_call("svr1", DEBIAN_GRAINS, netns=netns_with("hvtvip0"))
    states = minion.show_sls(pillar)
    install_keepalived_scripts(minion, states, tmp_path, pillar)
    result, text = render_config(minion, states, "havip-keepalived-config-file", tmp_path / "keepalived.conf", pillar)
    assert result["result"] is True, result  # keepalived -t accepts it
    vi_1, vi_2 = instances(text)["VI_1"], instances(text)["VI_2"]
    assert "priority 150" in vi_1 and "unicast" not in vi_1
    assert "priority 150" in vi_2
    assert "unicast_src_ip 192.168.100.13" in vi_2
    assert "unicast_peer {\n        192.168.100.14\n    }" in vi_2
    assert "check_unicast_src" in vi_2 and "check_unicast_src" not in vi_1
    # svr1 without backends must rank below svr2 (200) on VI_2, and below svr2 (100) on VI_1.
    assert "havip_check_backends weight -51" in vi_1 and "havip_check_backends weight -51" in vi_2
    _, haproxy = render_config(minion, states, "havip-haproxy-config-file", tmp_path / "haproxy.cfg", pillar)
    assert "bind 192.168.100.10:9090" in haproxy and "bind 192.168.100.20:9090" in haproxy


def check_script(salt_call, tmp_path, answer_timeout=0):
    """keepalived's HAProxy check rendered for a pid file in ``tmp_path``;
    returns (script path, pid file path)."""
    pillar = seed_pillar()
    pillar["havip"]["keepalived"] = {"check": {"answer_timeout": answer_timeout}}
    pillar["havip"]["lookup"] = {"haproxy": {"pidfile": str(tmp_path / "haproxy.pid")}}
    script = render_root_script(salt_call, pillar, "havip-keepalived-check-script-file", tmp_path / "check")
    return script, tmp_path / "haproxy.pid"


def render_root_script(salt_call, pillar, state_id, target):
    """A script keepalived runs, rendered to ``target``: root's, 0755."""
    minion = salt_call("svr1", DEBIAN_GRAINS)
    states = minion.show_sls(pillar)
    assert (states[state_id]["user"], states[state_id]["mode"]) == ("root", "0755")
    script, _ = render_config(minion, states, state_id, target, pillar)
    assert script["result"] is True
    return target


def test_check_script_never_stops_keepalived_and_asks_haproxys_monitor_uri(salt_call, tmp_path):
    script, _ = check_script(salt_call, tmp_path, answer_timeout=0.5)
    code = "".join(line for line in script.read_text().splitlines() if not line.lstrip().startswith("#"))
    assert "keepalived" not in code
    assert "curl -fs -o /dev/null -m '0.5' 'http://127.0.0.1:1080/havip-health'" in code


def test_check_script_fails_without_a_live_haproxy(salt_call, tmp_path):
    script, pidfile = check_script(salt_call, tmp_path)
    assert subprocess.run(["sh", str(script)]).returncode == 1
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile.write_text(f"{gone.pid}\n")
    assert subprocess.run(["sh", str(script)]).returncode == 1


def test_check_script_passes_while_haproxy_lives_and_fails_as_soon_as_it_exits(salt_call, tmp_path):
    script, pidfile = check_script(salt_call, tmp_path)
    haproxy = subprocess.Popen(["sleep", "60"])
    pidfile.write_text(f"{haproxy.pid}\n")
    try:
        assert subprocess.run(["sh", str(script)]).returncode == 0  # watched it, it lived
        check = subprocess.Popen(["sh", str(script)])
        time.sleep(0.2)
        haproxy.kill()
        haproxy.wait()
        # The check ends on the exit, not at the end of its watch.
        assert check.wait(timeout=0.5) == 1
    finally:
        haproxy.kill()
        haproxy.wait()


def test_check_script_passes_when_a_reload_replaces_the_process(salt_call, tmp_path):
    script, pidfile = check_script(salt_call, tmp_path)
    old, new = subprocess.Popen(["sleep", "60"]), subprocess.Popen(["sleep", "60"])
    pidfile.write_text(f"{old.pid}\n")
    try:
        check = subprocess.Popen(["sh", str(script)])
        time.sleep(0.2)
        pidfile.write_text(f"{new.pid}\n")  # the new HAProxy writes the pid file first
        old.kill()
        old.wait()
        assert check.wait(timeout=2) == 0
    finally:
        for process in (old, new):
            process.kill()
            process.wait()


def test_standby_file_is_created_in_service_and_never_reset_by_an_apply(salt_call):
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(seed_pillar())
    standby = states["havip-keepalived-standby-file"]
    assert standby["name"] == "/var/lib/havip/standby"
    assert standby["contents"] == "0" and standby["replace"] is False


@pytest.mark.parametrize("state_id,pillar_change", [
    ("havip-haproxy-config-file", {"haproxy": {"defaults": ["timeout client fifty"]}}),
    ("havip-keepalived-config-file", {"vips": {"VI_1": {
        "address": "192.168.100.10/24", "interface": "hvtmissing", "virtual_router_id": 51}}}),
])
def test_config_that_fails_its_check_never_replaces_the_working_one(
        salt_call, netns_with, tmp_path, state_id, pillar_change):
    pillar = lab_pillar("tcp", tmp_path)
    minion = salt_call("svr1", DEBIAN_GRAINS, netns=netns_with("hvtvip0"))
    states = minion.show_sls(pillar)
    install_keepalived_scripts(minion, states, tmp_path, pillar)
    target = tmp_path / "live.conf"
    good, before = render_config(minion, states, state_id, target, pillar)
    assert good["result"] is True

    broken = copy.deepcopy(pillar)
    broken["havip"].update(pillar_change)
    bad, after = render_config(minion, minion.show_sls(broken), state_id, target, broken)
    assert bad["result"] is False
    assert after == before


def test_no_file_that_can_hold_a_secret_ever_shows_its_diff_even_without_the_secret(salt_call):
    # VRRPv3 has no auth_pass: keepalived.conf holds no secret now, but a
    # diff from a VRRPv2 one would show the old auth_pass.
    pillar = seed_pillar()
    pillar["havip"]["frontend"] = {"mode": "http", "tls": {"certificate": pem()}}
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(pillar)
    assert states["havip-keepalived-config-file"]["show_changes"] is False
    assert states["havip-haproxy-config-file"]["show_changes"] is False
    assert states["havip-haproxy-certificate-file"]["show_changes"] is False

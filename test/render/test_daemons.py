"""
The daemons' checks of every release (test/daemons.py) themselves: a
config each release's HAProxy, keepalived and nginx accept passes; a
warning is a refusal as much as an error; trixie's daemons are the ones
of Debian 13's root file system; without that root the check fails,
saying how to build it.
"""

import subprocess

import pytest

from test import daemons
from test.platforms import PLATFORMS, major_minor

HAPROXY = """global
    maxconn 100
defaults
    mode tcp
{timeouts}frontend f
    bind 127.0.0.1:19999
    default_backend b
backend b
    server s 127.0.0.1:18080
"""
TIMEOUTS = "    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
KEEPALIVED = """vrrp_instance VI_1 {{
    state BACKUP
    interface {interface}
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {{
        192.168.100.10/24
    }}
}}
"""


def test_a_haproxy_config_without_a_warning_passes_every_release(tmp_path):
    (tmp_path / "haproxy.cfg").write_text(HAPROXY.format(timeouts=TIMEOUTS))
    assert daemons.refusals("haproxy", tmp_path / "haproxy.cfg") == {}


def test_a_haproxy_warning_is_a_refusal_of_every_release(tmp_path):
    # Missing timeouts: a warning only, `haproxy -c` exits 0.
    (tmp_path / "haproxy.cfg").write_text(HAPROXY.format(timeouts=""))
    refused = daemons.refusals("haproxy", tmp_path / "haproxy.cfg")
    assert sorted(refused) == list(daemons.RELEASES)
    assert all("exit 0" in said and "missing timeouts" in said for said in refused.values()), refused


def test_keepalived_checks_in_the_given_network_namespace_and_refuses_an_unknown_interface(netns_with, tmp_path):
    netns = netns_with("hvtvip0")
    (tmp_path / "good.conf").write_text(KEEPALIVED.format(interface="hvtvip0"))
    (tmp_path / "bad.conf").write_text(KEEPALIVED.format(interface="hvtmissing"))
    assert daemons.refusals("keepalived", tmp_path / "good.conf", netns=netns) == {}
    assert sorted(daemons.refusals("keepalived", tmp_path / "bad.conf", netns=netns)) == list(daemons.RELEASES)


def test_nginx_checks_a_site_file_in_a_main_config_of_its_own(tmp_path):
    (tmp_path / "site.conf").write_text("server { listen 127.0.0.1:18081; }\n")
    assert daemons.refusals("nginx", daemons.nginx_main(tmp_path / "site.conf")) == {}
    (tmp_path / "site.conf").write_text("server { listen 127.0.0.1:18081; bogus on; }\n")
    refused = daemons.refusals("nginx", daemons.nginx_main(tmp_path / "site.conf"))
    assert sorted(refused) == list(daemons.RELEASES)
    assert all('unknown directive "bogus"' in said for said in refused.values()), refused


def test_a_config_is_checked_at_its_own_path_with_the_files_it_names(tmp_path):
    """Trixie's chroot shows the config's directory and the others named,
    at their own paths: a certificate elsewhere is found."""
    certificates = tmp_path / "certificates"
    certificates.mkdir()
    (certificates / "missing.pem").write_text("not a certificate\n")
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "haproxy.cfg").write_text(HAPROXY.format(timeouts=TIMEOUTS).replace(
        "bind 127.0.0.1:19999", f"bind 127.0.0.1:19999 ssl crt {certificates}/missing.pem"))
    refused = daemons.refusals("haproxy", configs / "haproxy.cfg", shown=[certificates])
    # Read, and refused for what it holds, by both releases.
    assert sorted(refused) == list(daemons.RELEASES)
    assert all("No such file" not in said for said in refused.values()), refused


def test_trixies_daemons_are_debian_13s():
    debian_13 = PLATFORMS["debian-13"].versions
    for package in ("haproxy", "keepalived", "nginx"):
        version = subprocess.run(
            ["chroot", str(daemons.TRIXIE_ROOT), "dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True, text=True, check=True).stdout
        assert major_minor(version) == major_minor(debian_13[package]), (package, version)


def test_without_the_trixie_root_a_check_fails_saying_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setattr(daemons, "TRIXIE_ROOT", tmp_path / "absent")
    (tmp_path / "haproxy.cfg").write_text(HAPROXY.format(timeouts=TIMEOUTS))
    with pytest.raises(pytest.fail.Exception, match=r"test/bootstrap-debian\.sh"):
        daemons.refusals("haproxy", tmp_path / "haproxy.cfg")


# HAProxy's server state file (havip.save_server_state): the fields of
# `show servers state` (version 1, HAProxy 2.6 and 3.0).
STATE_FIELDS = ("be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight"
                " srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state"
                " srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl"
                " srv_check_port srv_check_addr srv_agent_addr srv_agent_port")


def drained(backend, server, address="127.0.0.1", port=18080):
    """A server state line of a drained server (srv_admin_state 8)."""
    return f"3 {backend} 1 {server} {address} 2 8 1 1 0 1 0 2 0 0 0 0 - {port} - 0 0 - - 0\n"


@pytest.mark.parametrize("release", daemons.RELEASES)
def test_haproxy_loads_its_server_state_by_name_and_a_stale_one_starts_without_a_word(tmp_path, release):
    """What a drain leaves in the server state file after the config
    changed (a server renamed or removed, a pool gone): HAProxy matches the
    lines by backend and server names and skips those it does not have,
    silently.  It does read the file: a line that is not a server's state
    is reported (the lab proves that a drain is kept)."""
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY.format(timeouts=TIMEOUTS + "    load-server-state-from-file global\n").replace(
        "global\n", "global\n    server-state-file /var/lib/havip/haproxy-server-state\n", 1))
    header = f"1\n# {STATE_FIELDS}\n"
    assert daemons.refusal("haproxy", config, release) is None
    stale = header + drained("b", "renamed") + drained("gone", "s")
    assert daemons.refusal("haproxy", config, release, server_state=stale) is None
    said = daemons.refusal("haproxy", config, release, server_state=header + "3 b 1 s\n")
    assert "corrupted global server state file '/var/lib/havip/haproxy-server-state'" in said, said

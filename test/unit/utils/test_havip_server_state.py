"""
HAProxy's server state file as havip keeps it (havip_server_state): what
`show servers state` says, checked field by field, and only the servers out
of rotation that the deployed model has at the same address and port.
"""

import os
import stat

import havip_server_state
import pytest

# `show servers state`'s header (HAProxy 2.6 and 3.0, version 1).
FIELDS = ("be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight"
          " srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state"
          " srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl"
          " srv_check_port srv_check_addr srv_agent_addr srv_agent_port")
HEADER = f"1\n# {FIELDS}\n"
POOLS = [{"name": "havip_backends", "servers": [
    {"name": "nginx1", "address": "192.168.100.11", "port": 80},
    {"name": "nginx2", "address": "fd00:100::12", "port": 80}]}]


def line(server, admin=0, address="192.168.100.11", port=80, pool="havip_backends"):
    """A server's line as HAProxy 2.6 shows it (srv_admin_state ``admin``)."""
    return f"3 {pool} 1 {server} {address} 2 {admin} 1 1 12 6 3 4 6 0 0 0 - {port} - 0 0 - - 0\n"


def state(*lines):
    """`show servers state`'s answer: the header, ``lines``, a blank line."""
    return HEADER + "".join(lines) + "\n"


def kept(text, pools=POOLS):
    names, rows = havip_server_state.parse(text)
    return havip_server_state.render(names, havip_server_state.out_of_rotation(rows, pools))


def test_only_the_servers_out_of_rotation_are_kept():
    shown = state(line("nginx1", admin=8), line("nginx2", address="fd00:100::12"))
    assert kept(shown) == HEADER + line("nginx1", admin=8)


def test_a_server_in_maintenance_is_kept_and_only_the_operators_bits_of_its_admin_state():
    # 0x04: disabled in the config (HAProxy's own), 0x10: drain inherited.
    shown = state(line("nginx1", admin=1 | 4), line("nginx2", admin=8 | 16, address="fd00:100::12"))
    assert kept(shown) == HEADER + line("nginx1", admin=1) + line("nginx2", admin=8, address="fd00:100::12")


def test_an_ipv6_address_is_matched_as_an_address_not_as_text():
    shown = state(line("nginx2", admin=8, address="fd00:100:0:0::12"))
    assert kept(shown) == HEADER + line("nginx2", admin=8, address="fd00:100:0:0::12")


@pytest.mark.parametrize("stale", [
    line("nginx3", admin=8),                          # renamed or removed
    line("nginx1", admin=8, pool="old_pool"),         # its pool renamed or gone
    line("nginx1", admin=8, port=8080),               # another port: HAProxy would take the file's
    line("nginx1", admin=8, address="192.168.100.99"),
])
def test_a_server_the_model_no_longer_has_at_that_address_and_port_is_left_out(stale):
    assert kept(state(stale, line("nginx2", admin=8, address="fd00:100::12"))) == (
        HEADER + line("nginx2", admin=8, address="fd00:100::12"))


def test_the_file_as_the_formula_creates_it_stays_as_it_is():
    assert havip_server_state.parse("1\n") == (None, [])
    assert kept("1\n") == "1\n"


@pytest.mark.parametrize("text, error", [
    ("", "is not of version 1"),
    ("2\n# be_id\n", "is not of version 1"),
    ("1\nbe_id be_name\n", "has no header line naming its fields"),
    ("1\n# be_id be_name srv_id srv_name\n", "has no header line naming its fields"),
    (HEADER.replace("srv_port", "srv_addr"), "has no header line naming its fields"),
    (HEADER + "3 havip_backends 1 nginx1\n", "line 3 is not a server's state"),
    (HEADER + line("nginx1").replace("nginx1", "nginx1;reload"), "line 3 is not a server's state"),
    (HEADER + line("nginx1").replace(" 80 ", " 8\x1b0 "), "line 3 is not a server's state"),
])
def test_anything_but_a_server_state_of_version_1_is_refused(text, error):
    with pytest.raises(ValueError, match=error):
        havip_server_state.parse(text)


def test_the_file_is_replaced_at_once_root_only(tmp_path):
    path = tmp_path / "server-state"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    havip_server_state.write(str(path), HEADER)
    assert path.read_text() == HEADER
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["server-state"]

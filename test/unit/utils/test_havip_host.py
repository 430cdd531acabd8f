"""
Unit tests of ``_utils/havip_host.py``: what a minion reads of its host.
"""

import builtins
import json
import os

import havip_host
import pytest
from salt.exceptions import CommandExecutionError

VIP = "192.168.100.10"

def test_addresses_maps_each_interface_to_its_addresses_without_prefix():
    links = [{"ifname": "lo", "addr_info": [{"local": "127.0.0.1", "prefixlen": 8}]},
             {"ifname": "ens32", "addr_info": [{"local": VIP, "prefixlen": 24},
                                               {"local": "FD00::0010", "prefixlen": 64}]}]
    found = havip_host.addresses(lambda cmd: {"retcode": 0, "stdout": json.dumps(links), "stderr": ""})
    assert {name: sorted(entries) for name, entries in found.items()} == {
        "lo": ["127.0.0.1"], "ens32": [VIP, "fd00::10"]}
    vip = {"address": VIP, "interface": "ens32"}
    assert havip_host.held(vip, found) and not havip_host.lingering(vip, found)


def test_a_vip_is_lingering_while_kept_on_lo_after_it_left_its_interface():
    vip = {"address": VIP, "interface": "ens32"}
    holder = {"lo": {"127.0.0.1": {}, VIP: {}}, "ens32": {VIP: {}}}
    assert havip_host.held(vip, holder) and not havip_host.lingering(vip, holder)
    gone = {"lo": {"127.0.0.1": {}, VIP: {}}, "ens32": {}}
    assert not havip_host.held(vip, gone) and havip_host.lingering(vip, gone)


def test_addresses_names_the_failing_command():
    with pytest.raises(CommandExecutionError, match="'ip -j addr show' failed: boom"):
        havip_host.addresses(lambda cmd: {"retcode": 1, "stdout": "", "stderr": "boom"})


def test_pids_skip_missing_and_garbled_pid_files(tmp_path, dead_pid):
    (tmp_path / "a.pid").write_text(f"{dead_pid}\n")
    (tmp_path / "b.pid").write_text("not a pid\n")
    files = [str(tmp_path / name) for name in ("a.pid", "b.pid", "missing.pid")]
    assert havip_host.pids(files) == [dead_pid]
    assert havip_host.running(files) is False


def test_vrrp_state_pairs_the_state_with_the_time_of_the_file_it_read(tmp_path, monkeypatch):
    """keepalived's notify script replaces the state file by a rename: one
    landing while it is read must not lend its time to the old state."""
    (tmp_path / "VI_1").write_text("MASTER 150\n")
    os.utime(tmp_path / "VI_1", (1000, 1000))

    def open_then_replaced(path, *args, **kwargs):
        handle = builtins.open(path, *args, **kwargs)  # noqa: SIM115 (the fake open hands it to the code under test)
        (tmp_path / ".VI_1.new").write_text("FAULT 150\n")
        os.replace(tmp_path / ".VI_1.new", tmp_path / "VI_1")
        return handle
    monkeypatch.setattr(havip_host, "open", open_then_replaced, raising=False)
    assert havip_host.vrrp_state(str(tmp_path), "VI_1") == ("MASTER", 1000)


def test_vrrp_state_of_an_instance_never_recorded_is_unknown(tmp_path):
    assert havip_host.vrrp_state(str(tmp_path), "VI_1") == ("UNKNOWN", None)

"""
Unit tests of ``_utils/havip_host.py``: what a minion reads of its host.
"""

import json

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

"""
Unit tests of ``_utils/havip_host.py``: what a minion reads of its host.
"""

import json

import havip_host
import pytest
from salt.exceptions import CommandExecutionError

VIP = "192.168.100.10"

# /proc/net/tcp rows of 192.168.100.10 (0A64A8C0, host byte order) port 9090.
PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0A64A8C0:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0A64A8C0:2382 1464A8C0:C22E 01 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0A64A8C0:2382 1464A8C0:C230 03 00000000:00000000 00:00000000 00000000     0        0 0 1
   3: 0A64A8C0:2382 1464A8C0:C232 06 00000000:00000000 00:00000000 00000000     0        0 0 1
   4: 0D64A8C0:9C40 0B64A8C0:0050 01 00000000:00000000 00:00000000 00000000     0        0 3 1
"""
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 0000000000000000FFFF00000A64A8C0:2382 0000000000000000FFFF00001464A8C0:C234 01 00000000:00000000
   1: 000080FE00000000FF76D81A1F4A35FE:2382 000080FE00000000FF76D81A1F4A35FF:C236 04 00000000:00000000
"""


def test_connections_counts_every_state_but_listen_time_wait_and_close(tmp_path, monkeypatch):
    (tmp_path / "tcp").write_text(PROC_TCP)
    (tmp_path / "tcp6").write_text(PROC_TCP6)
    monkeypatch.setattr(havip_host, "PROC_NET_TCP", (str(tmp_path / "tcp"), str(tmp_path / "tcp6")))
    # established and SYN_RECV in tcp, an IPv4-mapped established one in tcp6
    assert havip_host.connections({VIP}) == 3
    assert havip_host.connections({"fe80::1ad8:76ff:fe35:4a1f"}) == 1  # FIN_WAIT1
    assert havip_host.connections({"192.168.100.99"}) == 0


@pytest.mark.parametrize("field, address", [
    ("0A64A8C0:2382", "192.168.100.10"),
    ("0000000000000000FFFF00000A64A8C0:2382", "192.168.100.10"),
    ("000080FE00000000FF76D81A1F4A35FE:2382", "fe80::1ad8:76ff:fe35:4a1f"),
])
def test_proc_address_reads_host_byte_order_words_and_unmaps_ipv4(field, address):
    assert havip_host.proc_address(field) == address


def test_addresses_maps_each_interface_to_its_addresses_without_prefix():
    links = [{"ifname": "lo", "addr_info": [{"local": "127.0.0.1", "prefixlen": 8}]},
             {"ifname": "ens32", "addr_info": [{"local": VIP, "prefixlen": 24},
                                               {"local": "FD00::0010", "prefixlen": 64}]}]
    found = havip_host.addresses(lambda cmd: {"retcode": 0, "stdout": json.dumps(links), "stderr": ""})
    assert {name: sorted(entries) for name, entries in found.items()} == {
        "lo": ["127.0.0.1"], "ens32": [VIP, "fd00::10"]}
    vip = {"address": VIP, "interface": "ens32"}
    assert havip_host.held(vip, found) and not havip_host.lingering(vip, found)


def test_addresses_names_the_failing_command():
    with pytest.raises(CommandExecutionError, match="'ip -j addr show' failed: boom"):
        havip_host.addresses(lambda cmd: {"retcode": 1, "stdout": "", "stderr": "boom"})


def test_pids_skip_missing_and_garbled_pid_files(tmp_path, dead_pid):
    (tmp_path / "a.pid").write_text(f"{dead_pid}\n")
    (tmp_path / "b.pid").write_text("not a pid\n")
    files = [str(tmp_path / name) for name in ("a.pid", "b.pid", "missing.pid")]
    assert havip_host.pids(files) == [dead_pid]
    assert havip_host.running(files) is False

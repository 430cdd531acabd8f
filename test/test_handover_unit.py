"""
Fast tier: handovers, the planned VIP moves that lose no connection - the
module's ``havip.linger``/``release``/``relay``/``unrelay`` on a fake host
(``ip``, ``nft`` and /proc/net/tcp faked) and the runner's
``havip.standby``/``resume`` with every salt call faked.
"""

import pytest
from salt.exceptions import CommandExecutionError

# Fixtures and fakes of the module's, the runner's and the deploy's own tests.
from test.test_deploy_unit import DeployCluster, handover
from test.test_module_unit import SVR1, SVR2, VIP, dead_pid, deploy, havip, in_service, lb, peer_serves  # noqa: F401
from test.test_runner_unit import FakeTime, facts, runner  # noqa: F401

VIP6 = "fd00::10"
RELAY_RULES = (
    'ip daddr 192.168.100.10 tcp flags & syn == 0 ct state new'
    ' dup to 192.168.100.13 device "ens32" drop comment "VI_1"',
    'ip daddr 192.168.100.10 tcp flags & (fin | rst) != 0 tcp flags & syn == 0 ct state invalid'
    ' dup to 192.168.100.13 device "ens32" drop comment "VI_1"',
)
NO_RELAY = ("table ip havip_relay\ndelete table ip havip_relay\n"
            "table ip6 havip_relay\ndelete table ip6 havip_relay\n")


@pytest.fixture
def arp_set(havip, monkeypatch):
    """The ARP sysctls as the formula sets them."""
    values = {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2}
    monkeypatch.setattr(havip, "_sysctl", values.__getitem__)


@pytest.fixture
def svr2(deploy):
    """svr2, the backup: in service, not holding the VIP."""
    rig = in_service(deploy("svr2"), "BACKUP 100\n")
    rig.host.addresses = [[SVR2]]
    return rig


def with_vip6(config):
    config["vips"]["VI_6"] = {"address": f"{VIP6}/64", "interface": "ens32", "virtual_router_id": 53}


# ---- havip.linger ---------------------------------------------------------------


def test_linger_keeps_each_held_vip_on_lo_and_names_the_address_peers_relay_to(havip, lb, arp_set):
    assert havip.linger() == {"lingering": ["VI_1"], "relay_to": {"VI_1": SVR1}}
    assert lb.host.commands("ip", "addr", "replace") == [["ip", "addr", "replace", f"{VIP}/32", "dev", "lo"]]
    assert lb.host.lo == {VIP}


def test_linger_refuses_a_vip_that_is_not_held_here_and_changes_nothing(havip, lb, arp_set):
    lb.host.addresses = [[SVR1]]
    with pytest.raises(CommandExecutionError, match=r"^havip.linger: refused, VI_1 is not held here$"):
        havip.linger(["VI_1"])
    assert lb.host.lo == set()


def test_linger_refuses_an_unknown_vip(havip, lb, arp_set):
    with pytest.raises(CommandExecutionError, match=r"havip.linger: unknown VIP 'VI_9' \(known: VI_1\)"):
        havip.linger(["VI_9"])


def test_linger_refuses_while_the_balancer_would_answer_arp_for_a_vip_on_lo(havip, lb, monkeypatch):
    monkeypatch.setattr(havip, "_sysctl", lambda name: 0)
    with pytest.raises(CommandExecutionError, match=(
            r"havip.linger: refused, net.ipv4.conf.all.arp_ignore = 0 and net.ipv4.conf.all.arp_announce = 0:"
            r" this balancer would announce the VIPs it keeps \(run state.apply havip")):
        havip.linger()
    assert lb.host.lo == set()


def test_linger_of_an_ipv6_vip_relays_to_a_global_address_before_a_link_local_one(havip, deploy, monkeypatch):
    rig = deploy("svr1", with_vip6)
    rig.host.addresses = [[SVR1, VIP, "fe80::13", "fd00::13", VIP6]]
    monkeypatch.setattr(havip, "_sysctl", lambda name: pytest.fail("no ARP for an IPv6 VIP"))
    assert havip.linger(["VI_6"]) == {"lingering": ["VI_6"], "relay_to": {"VI_6": "fd00::13"}}
    assert rig.host.lo == {VIP6}
    assert rig.host.commands("ip", "addr", "replace") == [["ip", "addr", "replace", f"{VIP6}/128", "dev", "lo"]]


def test_linger_needs_an_address_of_the_vips_family_on_its_interface(havip, deploy):
    rig = deploy("svr1", with_vip6)
    rig.host.addresses = [[SVR1, VIP, VIP6]]
    with pytest.raises(CommandExecutionError, match="no IPv6 address of this balancer on ens32 for the peers"):
        havip.linger(["VI_6"])
    assert rig.host.lo == set()


def test_a_vip_kept_on_lo_is_lingering_not_held_and_the_check_calls_it_left_over(havip, lb):
    lb.host.addresses = [[SVR1]]
    lb.host.lo = {VIP}
    lb.vrrp("BACKUP 150\n")
    vip = havip.status()["vips"]["VI_1"]
    assert (vip["held"], vip["lingering"]) == (False, True)
    assert havip.check()["reasons"] == ["VIP VI_1 is still kept on lo by havip.linger (havip.release ends it)"]


def test_standby_waits_for_the_vip_to_leave_its_interface_whatever_lo_keeps(havip, lb):
    peer_serves(lb)
    lb.host.lo = {VIP}
    lb.host.addresses = [[SVR1, VIP], [SVR1]]
    assert havip.standby(timeout=2)["moved"] == ["VI_1"]


# ---- havip.release --------------------------------------------------------------


def counting(*counts):
    """A fake _connections answering ``counts`` in turn (the last repeats)."""
    answers = list(counts)

    def connections(addresses):
        assert addresses == {VIP}
        return answers.pop(0) if len(answers) > 1 else answers[0]
    return connections


def test_release_waits_until_the_vip_had_no_connection_for_a_second_then_drops_it(havip, lb, monkeypatch):
    lb.host.addresses = [[SVR1]]
    lb.host.lo = {VIP}
    monkeypatch.setattr(havip, "time", FakeTime())
    monkeypatch.setattr(havip, "_connections", counting(2, 2, 1, 0))
    result = havip.release()
    assert result["released"] == ["VI_1"] and result["cut"] == 0
    assert 1.0 < result["seconds"] < 1.3  # connections for 0.15 s, then 1 s without
    assert lb.host.lo == set()
    assert lb.host.commands("ip", "addr", "del") == [["ip", "addr", "del", f"{VIP}/32", "dev", "lo"]]


def test_release_cuts_the_connections_left_after_the_timeout(havip, lb, monkeypatch):
    lb.host.addresses = [[SVR1]]
    lb.host.lo = {VIP}
    monkeypatch.setattr(havip, "time", FakeTime())
    monkeypatch.setattr(havip, "_connections", counting(3))
    result = havip.release(timeout=5)
    assert result["cut"] == 3 and 5 <= result["seconds"] < 5.2
    assert lb.host.lo == set()


def test_release_drops_a_vip_held_here_again_at_once(havip, lb, monkeypatch):
    lb.host.lo = {VIP}  # the move did not happen: the VIP is still on ens32
    monkeypatch.setattr(havip, "_connections", lambda addresses: pytest.fail("nothing to wait for"))
    assert havip.release() == {"released": ["VI_1"], "seconds": 0.0, "cut": 0}
    assert lb.host.lo == set()


def test_release_without_a_lingering_vip_does_nothing(havip, lb):
    assert havip.release() == {"released": [], "seconds": 0.0, "cut": 0}
    assert lb.host.commands("ip", "addr", "del") == []


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


def test_connections_counts_every_state_but_listen_time_wait_and_close(havip, tmp_path, monkeypatch):
    (tmp_path / "tcp").write_text(PROC_TCP)
    (tmp_path / "tcp6").write_text(PROC_TCP6)
    monkeypatch.setattr(havip, "PROC_NET_TCP", (str(tmp_path / "tcp"), str(tmp_path / "tcp6")))
    # established and SYN_RECV in tcp, an IPv4-mapped established one in tcp6
    assert havip._connections({VIP}) == 3
    assert havip._connections({"fe80::1ad8:76ff:fe35:4a1f"}) == 1  # FIN_WAIT1
    assert havip._connections({"192.168.100.99"}) == 0


# ---- havip.relay / havip.unrelay ------------------------------------------------


def test_relay_passes_packets_of_connections_it_does_not_know_to_the_peer(havip, svr2):
    assert havip.relay({"VI_1": SVR1}) == {"relay": {"VI_1": SVR1}}
    (script,) = svr2.host.nft_scripts
    lines = [line.strip() for line in script.splitlines()]
    assert lines[:2] == ["table ip havip_relay", "delete table ip havip_relay"]
    assert "type filter hook prerouting priority 0; policy accept;" in lines
    assert [line for line in lines if line.startswith("ip daddr")] == list(RELAY_RULES)
    # no IPv6 VIP: the ip6 table is gone
    assert lines[-2:] == ["table ip6 havip_relay", "delete table ip6 havip_relay"]


def test_relay_refuses_a_vip_held_here_and_changes_nothing(havip, lb):
    with pytest.raises(CommandExecutionError, match=r"havip.relay: refused, VI_1 is held here:"
                                                    r" its connections would be sent away"):
        havip.relay({"VI_1": SVR2})
    assert lb.host.nft_scripts == []


@pytest.mark.parametrize("to, problem", [
    ({"VI_1": "fd00::13"}, r"fd00::13 is no IPv4 address for VI_1"),
    ({"VI_1": "svr1"}, r"svr1 is no IPv4 address for VI_1"),
    ({"VI_9": SVR1}, r"unknown VIP 'VI_9' \(known: VI_1\)"),
    (["VI_1"], r"`to` must map VIP names to addresses, got \['VI_1'\]"),
])
def test_relay_refuses_a_bad_target_and_changes_nothing(havip, svr2, to, problem):
    with pytest.raises(CommandExecutionError, match=problem):
        havip.relay(to)
    assert svr2.host.nft_scripts == []


def test_relay_names_nfts_complaint(havip, svr2):
    svr2.host.nft_retcode = 1
    with pytest.raises(CommandExecutionError, match=r"havip: nft refused the relay table: Error: syntax error"):
        havip.relay({"VI_1": SVR1})


def test_unrelay_removes_the_relay_tables_of_both_families(havip, svr2):
    assert havip.unrelay() == {"relay": {}}
    assert svr2.host.nft_scripts == [NO_RELAY]


def relay_table(vip, address):
    """`nft -j list table ip havip_relay` with one relay rule (nft 1.0.6)."""
    return {"nftables": [
        {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
        {"table": {"family": "ip", "name": "havip_relay", "handle": 1}},
        {"chain": {"family": "ip", "table": "havip_relay", "name": "prerouting", "handle": 1}},
        {"rule": {"family": "ip", "table": "havip_relay", "chain": "prerouting", "handle": 2, "comment": vip,
                  "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                                      "right": VIP}},
                           {"dup": {"addr": address, "dev": "ens32"}}, {"drop": None}]}}]}


def test_status_shows_a_relay_in_place_and_the_check_calls_it_left_over(havip, svr2):
    svr2.host.nft_tables["ip"] = relay_table("VI_1", SVR1)
    assert havip.status()["relay"] == {"VI_1": SVR1}
    assert havip.check()["reasons"] == [
        "packets to VIP VI_1 are still relayed to 192.168.100.13 (havip.unrelay ends it)"]


def test_status_without_nft_shows_no_relay_and_runs_no_nft(havip, svr2, monkeypatch):
    monkeypatch.setattr(havip.shutil, "which", lambda name: None)
    assert havip.status()["relay"] == {}
    assert svr2.host.commands("nft") == []


# ---- the runner: havip.standby / havip.resume -----------------------------------


@pytest.fixture
def cluster(runner, monkeypatch):
    monkeypatch.setattr(runner, "time", FakeTime())
    return DeployCluster(runner)


def test_runner_standby_hands_the_holders_vips_over_to_the_other_balancers(runner, cluster):
    report = runner.standby("svr1")
    assert report["result"] is True, report["comment"]
    assert report["comment"] == "standby svr1 done: no connection lost in the move"
    assert report["handover"] == ["svr1 served its connections on VI_1 1.0 s more"]
    assert cluster.rollout == handover("havip.standby", "svr1", "svr1", ["svr2"])
    assert cluster.holders == {"VI_1": ["svr2"]}


def test_runner_resume_takes_the_vips_back_from_their_holder_as_a_handover(runner, cluster):
    runner.standby("svr1")
    cluster.rollout.clear()
    report = runner.resume("svr1")
    assert report["result"] is True, report["comment"]
    assert cluster.rollout == handover("havip.resume", "svr1", "svr2", ["svr1"])
    assert report["handover"] == ["svr2 served its connections on VI_1 1.0 s more"]
    assert cluster.holders == {"VI_1": ["svr1"]}


def test_runner_standby_of_a_balancer_holding_nothing_is_a_plain_standby(runner, cluster):
    report = runner.standby("svr2")
    assert report["result"] is True
    assert report["comment"] == "standby svr2 done: no VIP had to move"
    assert cluster.rollout == [(["svr2"], "havip.standby", [])]


def test_runner_resume_without_preemption_moves_nothing_and_hands_nothing_over(runner, monkeypatch):
    def no_preempt(config):
        config["keepalived"]["preempt"] = False
    monkeypatch.setattr(runner, "time", FakeTime())
    cluster = DeployCluster(runner, facts(no_preempt))
    cluster.holders = {"VI_1": ["svr2"]}
    cluster.standby.add("svr1")
    assert runner.resume("svr1")["result"] is True
    assert cluster.rollout == [(["svr1"], "havip.resume", [])]


def test_a_refused_linger_stops_the_handover_before_anything_moves(runner, cluster):
    cluster.errors[("havip.linger", "svr1")] = (
        "ERROR executing 'havip.linger': havip.linger: refused, net.ipv4.conf.all.arp_ignore = 0")
    report = runner.standby("svr1")
    assert report["result"] is False and runner.__context__["retcode"] == 1
    assert report["comment"] == ("standby svr1 FAILED: havip.linger: svr1: ERROR executing 'havip.linger':"
                                 " havip.linger: refused, net.ipv4.conf.all.arp_ignore = 0")
    assert cluster.rollout == [(["svr1"], "havip.linger", [["VI_1"]])]
    assert cluster.holders == {"VI_1": ["svr1"]}


def test_a_failed_move_still_releases_the_vips_and_ends_the_relays(runner, cluster):
    cluster.errors[("havip.standby", "svr1")] = (
        "ERROR executing 'havip.standby': havip.standby: no balancer took over VI_1 within 2.2 s;"
        " standby undone, this balancer is in service again")
    report = runner.standby("svr1")
    assert report["result"] is False
    assert report["comment"].startswith("standby svr1 FAILED: svr1: ERROR executing 'havip.standby'")
    assert cluster.rollout == handover("havip.standby", "svr1", "svr1", ["svr2"])


def test_a_relay_that_fails_on_a_peer_ends_it_everywhere_and_moves_nothing(runner, cluster):
    cluster.errors[("havip.relay", "svr2")] = "ERROR executing 'havip.relay': havip: nft refused the relay table"
    report = runner.standby("svr1")
    assert "havip.relay: svr2: ERROR executing 'havip.relay'" in report["comment"]
    assert [fun for _, fun, _ in cluster.rollout] == ["havip.linger", "havip.relay", "havip.release",
                                                      "havip.unrelay"]
    assert cluster.holders == {"VI_1": ["svr1"]}


def test_connections_cut_after_the_linger_timeout_are_reported(runner, cluster):
    cluster.cut["svr1"] = 2
    report = runner.standby("svr1")
    assert report["result"] is True
    assert report["handover"] == ["svr1 served its connections on VI_1 1.0 s more, then cut 2"]


def test_runner_standby_refuses_a_node_that_is_no_balancer(runner, cluster):
    report = runner.standby("nginx1")
    assert report["result"] is False
    assert report["comment"] == "'nginx1' is not a balancer (balancers: svr1, svr2)"
    assert cluster.rollout == []


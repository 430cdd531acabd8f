"""
Lab tier: operating a deployed cluster - `havip.status`/`havip.check` on the
minions, the cluster view `salt-run havip.status`, planned switchover with
`havip.standby`/`havip.resume` (on a minion and by `salt-run`, each move a
handover by keepalived's notify path that keeps connections, after which a
second apply changes nothing), and the live
failover test
`salt-run state.orchestrate havip.failover_test` passing on a healthy
cluster and failing loudly on a broken one.  The seed's topology, one
cluster for the whole file; every test leaves it as it found it.  And what
an attacker or a slip cannot do: a stats password change shows neither
password in any output; a malicious address in the Salt mine is refused
with every config byte-identical and traffic flowing; an address with an
IPv6 zone, from a backend or a balancer, too.
"""

import copy
import json
import time

import pytest

from test.lab.cluster import GATEWAY, LOOKUP, NETWORK, SEED, VRRP_CUT, VRRP_CUT_TABLE, wait_until
from test.lab.secrets import shown_secrets, where_salt_shows

pytestmark = pytest.mark.lab

PRIMARY, BACKUP = SEED.preferred_balancer, SEED.standby_balancers[0]


def test_status_agrees_with_ip_addr_and_every_daemon_is_seen(healthy):
    statuses = healthy.salt("*", "havip.status").data
    holders = healthy.vip_holders()
    for name in SEED.with_role("balancer"):
        vip = statuses[name]["vips"]["VI_1"]
        assert vip["address"] == SEED.vip
        assert vip["held"] == (name in holders)
        assert vip["state"] == ("MASTER" if name in holders else "BACKUP")
        assert vip["priority"] == SEED.nodes[name]["priority"]
        assert statuses[name]["keepalived"] == {"running": True}
        haproxy = statuses[name]["haproxy"]
        assert haproxy["running"] and haproxy["config_valid"]
        assert haproxy["backends"] == {"nginx1": "UP", "nginx2": "UP"}
        assert statuses[name]["standby"] is False
    for name in SEED.with_role("backend"):
        assert statuses[name]["nginx"]["running"] and statuses[name]["nginx"]["answering"]
        assert statuses[name]["vips"] == {}
    checks = healthy.salt("*", "havip.check")
    assert all(checks.data[n]["healthy"] for n in SEED.nodes), checks.data
    view = healthy.run("havip.status")
    assert view.returncode == 0
    assert view.data["vips"]["VI_1"]["holders"] == [PRIMARY]


def test_check_fails_the_call_and_names_the_reason_when_haproxy_dies(healthy):
    # Stopped: a killed HAProxy is running again 0.1 s later (Restart=always).
    healthy.systemctl(PRIMARY, "stop", "haproxy")
    check = healthy.salt(PRIMARY, "havip.check")
    assert check.returncode != 0
    assert check.data["healthy"] is False
    assert "HAProxy is not running" in check.data["reasons"]


@pytest.mark.parametrize("failure", ["kill_haproxy", "stop_haproxy", "kill_keepalived", "link_down"])
def test_failover_test_passes_on_a_healthy_cluster_and_reports_figures(healthy, failure):
    # A route through the VIP interface that only the link_down restore brings back.
    route = ["10.99.0.0/16", "via", GATEWAY, "dev", "eth0"]
    healthy.host(PRIMARY).run(["ip", "route", "replace", *route])
    result, steps = healthy.orchestrate("failover_test", failure=failure, client=SEED.client)
    report = steps["havip-failover-test-run"]
    print(f"\nfailover_test {failure}: {report}")
    assert result.returncode == 0, result.stdout
    assert report["result"] is True
    assert report["holders_before"] == report["holders_after"] == {"VI_1": [PRIMARY]}
    assert (report["holder"], report["new_holder"]) == (PRIMARY, BACKUP)
    budget = report["move_budget_s"]
    assert 0 < report["vip_moved_after_s"] <= budget
    assert report["client_visible_outage_s"] <= budget + 1
    failed, total = report["failed_requests"], report["requests"]
    assert total > 300 and failed < total / 2
    assert f"10.99.0.0/16 via {GATEWAY}" in healthy.host(PRIMARY).run(["ip", "route"]).stdout
    # Restored means every backend server is UP again on every balancer (a
    # link that came back needs HAProxy's rise checks first).
    statuses = healthy.salt("svr*", "havip.status").data
    assert {name: statuses[name]["haproxy"]["backends"] for name in SEED.with_role("balancer")} == {
        name: {"nginx1": "UP", "nginx2": "UP"} for name in SEED.with_role("balancer")}


def test_a_backend_without_an_address_is_found_through_the_salt_mine(healthy):
    """Adding a backend: the new minion with the role applies (and publishes
    its address), then the balancers apply."""
    pillar = copy.deepcopy(SEED.pillar)
    pillar["havip"]["mine"] = {"network": str(NETWORK)}
    del pillar["havip"]["nodes"]["nginx2"]["address"]
    assert healthy.salt("nginx2", "mine.flush").returncode == 0
    healthy.set_pillar(pillar)
    try:
        before = healthy.config_digests()
        early = healthy.apply(PRIMARY)
        assert early.returncode != 0
        assert "havip:nodes:nginx2:address: is not in the Salt mine yet" in early.stdout
        assert healthy.config_digests() == before
        assert healthy.apply("nginx2").returncode == 0
        assert healthy.apply("svr*").returncode == 0
        config = healthy.host(PRIMARY).run(["cat", "/etc/haproxy/haproxy.cfg"]).stdout
        assert f"server nginx2 {SEED.nodes['nginx2']['address']}:80" in config
        # (within HAProxy's rise checks, should the new server start DOWN)
        answers, deadline = set(), time.monotonic() + 10
        while answers != {"nginx1", "nginx2"} and time.monotonic() < deadline:
            answers.add(healthy.client_get(SEED.frontend_url)[1])
        assert answers == {"nginx1", "nginx2"}, healthy.salt(PRIMARY, "havip.status").data
        again = healthy.apply("nginx2")
        assert not [s for s in again.data.values() if s.get("changes")], again.stdout
    finally:
        healthy.set_pillar(SEED.pillar)


def test_failover_test_fails_when_keepalived_is_stopped_on_the_only_backup(healthy):
    healthy.systemctl(BACKUP, "stop", "keepalived")
    result, steps = healthy.orchestrate("failover_test")
    assert result.returncode != 0
    problems = steps["havip-failover-test-precheck"]["problems"]
    assert f"{BACKUP}: keepalived is not running" in problems
    assert f"no other healthy balancer could take over VIP VI_1 from {PRIMARY}" in problems
    assert steps["havip-failover-test-run"] is None  # never ran: nothing was broken
    assert healthy.vip_holders() == [PRIMARY]


def test_failover_test_reports_split_brain_when_vrrp_is_cut_and_the_cluster_heals(healthy):
    healthy.cut_vrrp(BACKUP)
    try:
        assert healthy.wait_for_holders([PRIMARY, BACKUP]) == [PRIMARY, BACKUP]
        result, steps = healthy.orchestrate("failover_test")
        assert result.returncode != 0
        assert f"split brain: VIP VI_1 ({SEED.vip}) is held by svr1 and svr2" in \
            steps["havip-failover-test-precheck"]["problems"]
    finally:
        healthy.uncut_vrrp(BACKUP)
    assert healthy.wait_for_holders([PRIMARY]) == [PRIMARY]
    assert healthy.run("havip.status").returncode == 0


# On the backup: VRRP cut until keepalived there takes the VIP (it adds it to
# eth0), and at once not: the holder's next advert (50 ms) sends it back to
# BACKUP, so keepalived runs the notify script for MASTER and for BACKUP
# within milliseconds of each other.
FLAP = """nft -f - <<'EOF'
{cut}EOF
tries=0
until ip -o addr show dev eth0 | grep -q ' {vip}/' || [ "$tries" -gt 5000 ]; do tries=$((tries + 1)); done
nft delete table inet {table}
"""
FLAPS = 10


def test_short_vrrp_flaps_on_the_backup_leave_it_backup_with_nothing_kept_on_lo(healthy):
    backup = healthy.host(BACKUP)
    started = time.time()
    for _ in range(FLAPS):
        backup.run(["sh", "-c", FLAP.format(cut=VRRP_CUT, table=VRRP_CUT_TABLE, vip=SEED.vip)])
        assert healthy.wait_for_holders([PRIMARY]) == [PRIMARY]
        time.sleep(0.5)
    flapped = ["MASTER", "BACKUP"] * FLAPS
    # (keepalived's lines reach the journal through journald, a moment later)
    states = wait_until(lambda: [state for _, vip, state in healthy.vrrp_transitions(BACKUP, started) if vip == "VI_1"],
                        flapped.__eq__, 5)
    assert states == flapped, states  # every flap happened
    assert not lingering(healthy, BACKUP, 10), handover_view(healthy, BACKUP, PRIMARY)
    assert healthy.salt(BACKUP, "havip.status").data["vips"]["VI_1"]["state"] == "BACKUP"
    assert healthy.run("havip.status").returncode == 0


def test_standby_and_resume_move_the_vip_both_ways_losing_at_most_one_request(healthy):
    with healthy.probe(seconds=9) as away:
        moved = healthy.salt(PRIMARY, "havip.standby")
    assert moved.returncode == 0, moved.stdout
    assert moved.data["moved"] == ["VI_1"] and moved.data["took_s"] > 0
    assert healthy.vip_holders() == [BACKUP]
    assert away["failed"] <= 1 and away["total"] > 500, away

    # Standby holds across a keepalived restart (stopped, then started by a
    # re-apply).
    healthy.systemctl(PRIMARY, "stop", "keepalived")
    assert healthy.apply(PRIMARY).returncode == 0
    assert healthy.wait_for_holders([PRIMARY], timeout=6) == [BACKUP]
    assert healthy.salt(PRIMARY, "havip.status").data["standby"] is True

    with healthy.probe(seconds=9) as back:
        resumed = healthy.salt(PRIMARY, "havip.resume")
    assert resumed.returncode == 0, resumed.stdout
    assert resumed.data["moved"] == ["VI_1"]
    assert healthy.vip_holders() == [PRIMARY]
    assert back["failed"] <= 1 and back["total"] > 500, back
    print(f"\nstandby: {moved.data['took_s']} s, {away['failed']}/{away['total']} failed; "
          f"resume: {resumed.data['took_s']} s, {back['failed']}/{back['total']} failed")


def lingering(cluster, name, seconds):
    """Whether ``name`` still keeps VI_1 on lo after up to ``seconds`` s."""
    deadline = time.monotonic() + seconds
    while (kept := cluster.salt(name, "havip.status").data["vips"]["VI_1"]["lingering"]) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    return kept


def pending(cluster):
    """What `state.apply havip test=True` would change on each node: {node:
    {state id: comment}} of the states whose result is not True or that
    show changes (a node that fails to render: its error)."""
    planned = cluster.salt("*", "state.apply", "havip", "test=True", _timeout=600).data
    return {name: {state.get("__id__", key): state.get("comment") for key, state in states.items()
                   if state.get("result") is not True or state.get("changes")}
            if isinstance(states, dict) else {"render": states}
            for name, states in planned.items()}


def test_a_second_apply_changes_nothing_after_the_vip_moved_and_back(healthy):
    """Issue 24: what a balancer published for the others' relays was its
    grains, the VIP included (on its interface while it holds it, on lo
    while a handover lingers): after a move and a grains refresh (a minion's
    restart or a reboot does one), test=True on a holder showed a pending
    mine.send of havip_relay_addresses until a real apply."""
    unchanged = {name: {} for name in SEED.hosts}  # the client too (not a node: a test.nop)
    for giver, taker, move in ((PRIMARY, BACKUP, "havip.standby"), (BACKUP, PRIMARY, "havip.resume")):
        moved = healthy.salt(PRIMARY, move)
        assert moved.returncode == 0, moved.stdout
        assert healthy.wait_for_holders([taker]) == [taker]
        assert lingering(healthy, giver, 30) is False
        assert healthy.salt("*", "saltutil.refresh_grains").returncode == 0
        assert pending(healthy) == unchanged, f"after {move}"


def handover_view(cluster, giver, taker):
    """What a failed handover left, for the failure's message: the relays
    (nft tables) on both sides and the giver's lo."""
    return {name: cluster.host(name).run("nft list tables; ip -br addr show dev lo; ls /run/havip/vrrp",
                                          check=False).stdout for name in (giver, taker)}


def test_a_connection_open_across_a_move_goes_on_whoever_moves_the_vip(healthy):
    """Every move is a handover (keepalived's notify script runs
    havip-handover): the old holder keeps the VIP on lo and serves the
    connections it had, the new holder relays their packets to it, until
    they end - for `salt-run havip.standby` and for `salt svr1
    havip.resume` alike."""
    moves = ((lambda: healthy.run("havip.standby", PRIMARY), "havip.standby", PRIMARY, BACKUP),
             (lambda: healthy.salt(PRIMARY, "havip.resume"), "havip.resume", BACKUP, PRIMARY))
    for move, fun, giver, taker in moves:
        with healthy.connection() as request:
            first = request()
            assert "answer" in first, first
            moved = move()
            assert moved.returncode == 0, moved.stdout
            assert moved.data["moved"] == ["VI_1"], moved.data
            assert healthy.wait_for_holders([taker]) == [taker]
            assert healthy.salt(giver, "havip.status").data["vips"]["VI_1"]["lingering"] is True
            time.sleep(0.5)
            again = request()
            assert again.get("port") == first["port"] and again["answer"] in SEED.with_role("backend"), (
                again, handover_view(healthy, giver, taker))
        print(f"\n{fun}: {moved.data}")
        # The connection is over: the old holder lets the VIP go from lo
        # after 1 s without one; the new holder keeps its relay to it.
        assert lingering(healthy, giver, 5) is False
        assert healthy.salt(taker, "havip.status").data["relay"] == {"VI_1": [SEED.nodes[giver]["address"]]}
        assert healthy.salt(giver, "havip.check").data["healthy"] is True


def time_waiting(cluster, name, port):
    """Does ``name`` keep a TIME_WAIT socket for a connection from the client's ``port``?"""
    return bool(cluster.host(name).run(
        ["ss", "-Htn", "state", "time-wait", f"( sport = :9090 and dport = :{port} )"]).stdout.strip())


def test_a_client_port_used_again_for_a_connection_to_the_other_balancer_stays_with_it(healthy):
    """A client reuses a local port as soon as its side of the old
    connection is closed, while the server's side stays in TIME_WAIT
    (60 s).  The old connection's holder must not take the packets of the
    new connection, on the other balancer, for it when the VIP comes back:
    conntrack forgets a VIP's ended connection after 1 s, so they are
    relayed to the balancer the connection is on."""
    port = 61001  # outside the client's ephemeral range: only this test uses it
    old = healthy.request_the_server_closes(port)
    assert old["answer"] in SEED.with_role("backend"), old
    assert time_waiting(healthy, PRIMARY, port)
    assert healthy.run("havip.standby", PRIMARY).returncode == 0
    assert healthy.wait_for_holders([BACKUP]) == [BACKUP]
    with healthy.connection(port=port) as request:
        first = request()
        assert first.get("port") == port, first
        assert healthy.salt(PRIMARY, "havip.resume").returncode == 0
        assert healthy.wait_for_holders([PRIMARY]) == [PRIMARY]
        assert time_waiting(healthy, PRIMARY, port), "the old connection's TIME_WAIT is gone: nothing proved"
        time.sleep(0.5)
        again = request()
        assert again.get("port") == port and again["answer"] in SEED.with_role("backend"), (
            again, handover_view(healthy, BACKUP, PRIMARY))


def relayed(cluster):
    """Packets the relays of VI_1 on both balancers have passed on."""
    total = 0
    for name in (PRIMARY, BACKUP):
        table = cluster.host(name).run(["nft", "-j", "list", "table", "ip", "havip_relay_VI_1"]).stdout
        total += sum(expr["counter"]["packets"] for item in json.loads(table)["nftables"]
                     for expr in item.get("rule", {}).get("expr", []) if "counter" in expr)
    return total


def test_a_packet_of_a_connection_no_balancer_has_is_relayed_once(healthy):
    """The holder relays a packet it cannot place to the other balancer;
    the copy arrives with TTL 0 and nobody passes it on again (no ping-pong
    between the balancers)."""
    assert healthy.run("havip.standby", PRIMARY).returncode == 0  # so that both have a relay
    assert healthy.salt(PRIMARY, "havip.resume").returncode == 0
    assert healthy.wait_for_holders([PRIMARY]) == [PRIMARY]
    assert lingering(healthy, BACKUP, 5) is False
    before = relayed(healthy)
    healthy.send_stray_ack()
    time.sleep(1)
    assert relayed(healthy) - before == 1


def test_standby_refuses_when_no_other_balancer_serves(healthy):
    healthy.systemctl(BACKUP, "stop", "haproxy")
    refused = healthy.salt(PRIMARY, "havip.standby")
    assert refused.returncode != 0
    assert "refused, no other healthy balancer could take over" in refused.stdout
    assert healthy.salt(PRIMARY, "havip.status").data["standby"] is False
    assert healthy.vip_holders() == [PRIMARY]


# ---- what an attacker or a slip cannot do (issue 12) ----------------------------


def with_password(password):
    pillar = json.loads(json.dumps(SEED.pillar))
    pillar["havip"]["stats"]["password"] = password
    return pillar


def test_a_stats_password_change_shows_neither_password_anywhere(healthy, event_listener):
    cluster = healthy
    old = SEED.pillar["havip"]["stats"]["password"]
    new = "n3w 'stats' #pass$word"
    started = time.time()
    cluster.set_pillar(with_password(new))
    outputs = {
        "state.apply test=True": cluster.salt("*", "state.apply", "havip", "test=True").stdout,
        "state.apply": cluster.apply().stdout,
        "state.show_sls": cluster.salt(PRIMARY, "state.show_sls", "havip").stdout,
        "havip.config": cluster.salt("*", "havip.config").stdout,
    }
    shown = where_salt_shows(cluster, event_listener, outputs, started)
    assert len(shown) > 5, shown.keys()
    assert not shown_secrets(shown, [old, new])
    # The apply did change the password: it logs in, the old one does not
    # (once HAProxy's new worker serves: systemctl reload returns before).
    url = SEED.stats_url(SEED.hosts[PRIMARY])
    logins = wait_until(lambda: [cluster.client_get(url, user=f"admin:{password}")[0] for password in (new, old)],
                        [200, 401].__eq__, 10)
    assert logins == [200, 401], logins
    for name in SEED.with_role("balancer"):
        host = cluster.host(name)
        modes = host.run(["stat", "-c", "%a %U %G", LOOKUP["haproxy"]["config"],
                          LOOKUP["keepalived"]["config"]]).stdout.split("\n")
        assert modes[:2] == ["640 root haproxy", "600 root root"], (name, modes)


def test_a_malicious_address_in_the_mine_is_refused_and_changes_nothing(healthy):
    cluster = healthy
    # nginx2 takes its address from the mine ...
    pillar = json.loads(json.dumps(SEED.pillar))
    pillar["havip"]["mine"] = {"network": str(NETWORK)}
    del pillar["havip"]["nodes"]["nginx2"]["address"]
    cluster.set_pillar(pillar)
    assert cluster.apply("nginx2").returncode == 0
    before = cluster.config_digests()
    # ... and publishes a config injection instead (as a compromised host could).
    evil = json.dumps([f"{SEED.nodes['nginx2']['address']}:80\nglobal\n    daemon\nlisten evil"])
    assert cluster.salt("nginx2", "grains.setval", "havip_evil", evil).returncode == 0
    try:
        sent = cluster.salt("nginx2", "mine.send", "havip_address", "mine_function=grains.get", "havip_evil")
        assert sent.returncode == 0, sent.stdout
        with cluster.probe(seconds=8) as report:
            time.sleep(1)
            for name in SEED.with_role("balancer"):
                refused = cluster.apply(name)
                assert refused.returncode != 0
                assert "havip:nodes:nginx2:address (from the mine)" in refused.stdout, refused.stdout
        assert cluster.config_digests() == before
        assert report["failed"] == 0, report
    finally:
        # The grain holds a list; the next apply publishes the real address again.
        assert cluster.salt("nginx2", "grains.delkey", "havip_evil", "force=True").returncode == 0
        assert cluster.apply("nginx2").returncode == 0


# What a compromised minion publishes behind an IPv6 zone (Python's ipaddress
# takes any text after the '%'): a balancer, into the others' handover
# script (root); a backend, into every balancer's haproxy.cfg.
ZONED_RELAY = ["fd00::14%x'; touch \"$(printf '\\057tmp\\057pwned')\"; : '"]
ZONED_SERVER = ["fd00::50%lo]:80 init-addr none\nglobal\n    stats socket ipv4@0.0.0.0:9999 level admin\n#"]
ZONED = {
    # publisher: (mine function, its value, the list the refusal shows, the
    # minions that read it, the key their refusal names)
    BACKUP: ("havip_relay_addresses", {"ip4_interfaces": {"eth0": [SEED.nodes[BACKUP]["address"]]},
                                       "ip6_interfaces": {"eth0": ZONED_RELAY}}, ZONED_RELAY,
             [PRIMARY], f"havip:nodes:{BACKUP}:address (from the mine, havip_relay_addresses)"),
    "nginx2": ("havip_address", ZONED_SERVER, ZONED_SERVER, [*SEED.with_role("balancer"), "nginx1"],
               "havip:nodes:nginx2:address (from the mine)"),
}


def texts(data):
    """Every string in a salt command's output."""
    if isinstance(data, dict):
        data = list(data.values())
    if isinstance(data, list):
        return "\n".join(texts(item) for item in data)
    return data if isinstance(data, str) else ""


@pytest.mark.parametrize("publisher", sorted(ZONED))
def test_an_address_with_a_zone_in_the_mine_is_refused_and_changes_nothing(healthy, publisher):
    """Published through a grain (grains.setval, then mine.send of
    grains.get), as a compromised host could: every apply that reads it is
    refused naming it (the value escaped, on one line), no file changes, no
    command runs."""
    cluster = healthy
    function, evil, shown, readers, key = ZONED[publisher]
    # nginx2 takes its address from the mine, by its interface (no network
    # for an address to be outside of) ...
    pillar = json.loads(json.dumps(SEED.pillar))
    pillar["havip"]["mine"] = {"interface": "eth0"}
    del pillar["havip"]["nodes"]["nginx2"]["address"]
    cluster.set_pillar(pillar)
    assert cluster.apply("nginx2").returncode == 0
    before = cluster.config_digests()
    assert cluster.salt(publisher, "grains.setval", "havip_evil", json.dumps(evil)).returncode == 0
    try:
        sent = cluster.salt(publisher, "mine.send", function, "mine_function=grains.get", "havip_evil")
        assert sent.returncode == 0, sent.stdout
        for name in readers:
            refused = cluster.apply(name)
            assert refused.returncode != 0, (name, refused.stdout)
            assert key in refused.stdout, (name, refused.stdout)
            assert ascii(shown) in texts(refused.data) and "none\nglobal" not in texts(refused.data), refused.stdout
        assert cluster.config_digests() == before
        for name in SEED.nodes:
            host = cluster.host(name)
            assert host.run(["test", "-e", "/tmp/pwned"], check=False).returncode != 0, name
            assert host.run(["ss", "-Hltn", "sport = :9999"]).stdout == "", name
    finally:
        # The grain holds the value; the next apply publishes the real one again.
        assert cluster.salt(publisher, "grains.delkey", "havip_evil", "force=True").returncode == 0
        assert cluster.apply("nginx2").returncode == 0
        assert cluster.apply(publisher).returncode == 0


def test_a_handover_cut_off_halfway_is_put_right_by_the_next_apply(healthy):
    """What a handover leaves when it is cut off (a relay gone, the VIP left
    on lo): havip.check names it, `state.apply havip` puts it right."""
    backup = healthy.host(BACKUP)
    backup.run(["nft", "delete", "table", "ip", "havip_relay_VI_1"])
    backup.run(["ip", "addr", "add", f"{SEED.vip}/32", "dev", "lo"])
    check = healthy.salt(BACKUP, "havip.check")
    assert check.returncode != 0
    assert "no handover relay for VIP VI_1 here" in " ".join(check.data["reasons"]), check.data
    # (a VIP on lo is a problem only once its handover had its time to end)
    assert healthy.salt(BACKUP, "havip.status").data["vips"]["VI_1"]["lingering"] is True
    assert healthy.apply(BACKUP).returncode == 0
    deadline = time.monotonic() + 10  # the release job drops the lo copy once quiet
    while (check := healthy.salt(BACKUP, "havip.check")).returncode != 0:
        assert time.monotonic() < deadline, check.data
        time.sleep(0.5)
    status = healthy.salt(BACKUP, "havip.status").data
    assert status["relay"] == {"VI_1": [SEED.nodes[PRIMARY]["address"]]}
    assert status["vips"]["VI_1"]["lingering"] is False

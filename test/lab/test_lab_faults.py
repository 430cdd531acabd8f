"""
Lab tier: the fault matrix on the seed's topology with the formula's default
pillar (no timing overrides).  Each fault is made by hand on the lab host
(signals, `ip link`, init scripts), watched by a client probing the VIP at
100 requests/s, and after each one the cluster must have exactly one VIP
holder, the preferred one, and serve traffic.  Figures (outage medians and
maxima over many trials) are `make bench`'s business; these tests assert
behaviour.
"""

import copy
import datetime
import re
import time

import pytest
from havip_facts import LINK_TABLE

from test.lab.cluster import HAPROXY_PIDFILE, LOOKUP, SEED, outages, wait_until

pytestmark = pytest.mark.lab

PRIMARY, BACKUP = SEED.preferred_balancer, SEED.standby_balancers[0]
BACKENDS = SEED.with_role("backend")
# The longest outage a client may see after an unplanned fault on the holder (issue 24).
UNPLANNED_BUDGET_S = 0.25


def with_frontend_mode(cluster, mode):
    pillar = copy.deepcopy(SEED.pillar)
    pillar["havip"]["frontend"]["mode"] = mode
    cluster.set_pillar(pillar)
    assert cluster.apply().returncode == 0


def served_after(report, moment):
    """Every request sent later than ``moment`` s into the probe was answered."""
    return report["recovered"] and (report["last_failure_s"] or 0) < moment


@pytest.mark.trixie
@pytest.mark.parametrize("process", ["master", "worker"])
def test_haproxy_killed_on_the_holder_costs_one_short_outage_and_its_return_none(healthy, process):
    """kill -9 of HAProxy's master (its worker exits with it) or of its
    worker (the master then exits): the VIP moves at once.  Debian's unit
    (Restart=always, 100 ms) starts HAProxy again, and once keepalived's
    check has risen the preferred holder takes the VIP back, no re-apply -
    a move like any other, handed over: the return loses no request."""
    restarts = healthy.restarts(PRIMARY)
    with healthy.probe(seconds=10, timeline=True) as report:
        time.sleep(1.5)
        killed = healthy.kill_haproxy(PRIMARY, process)
        assert healthy.wait_for_holders([BACKUP], timeout=5) == [BACKUP]
        # (keepalived adds the VIP, then runs the notify script that records the state)
        state, since = wait_until(lambda: healthy.vrrp_state(BACKUP),
                                  lambda seen: seen[0] == "MASTER" and seen[1] > killed, 2, 0.1)
        assert state == "MASTER" and since > killed
        assert healthy.wait_for_holders([PRIMARY], timeout=8) == [PRIMARY]
    assert healthy.restarts(PRIMARY) == restarts + 1
    moved = killed - report["started_s"]
    runs = outages(report)
    print(f"\nHAProxy's {process} killed: {report['failed']}/{report['total']} failed, longest outage "
          f"{report['longest_outage_s']:.3f} s, outages {[(round(a - moved, 3), round(b - moved, 3)) for a, b in runs]}"
          " (s after the kill)")
    # One outage, right after the kill (the requests HAProxy had in flight,
    # and those sent until the backup took the VIP); nothing at the return.
    assert len(runs) <= 1, runs
    assert all(moved - 0.1 < first and last < moved + 1.0 for first, last in runs), (moved, runs)
    assert report["recovered"], report


@pytest.mark.parametrize("service", ["haproxy", "keepalived"])
def test_a_stopped_service_on_the_holder_moves_the_vip_at_once_and_a_reapply_restores(healthy, service):
    """`systemctl stop haproxy` (the seed's own failover test) or `systemctl
    stop keepalived` on the holder: one short outage, and `state.apply`
    starts it again (the `healthy` fixture's re-apply checks the holder after)."""
    with healthy.probe(seconds=5, timeline=True) as report:
        time.sleep(1)
        stopped = time.time()
        healthy.systemctl(PRIMARY, "stop", service)
        assert healthy.wait_for_holders([BACKUP], timeout=5) == [BACKUP]
    moved = stopped - report["started_s"]
    runs = outages(report)
    assert len(runs) <= 1 and all(last < moved + 1.0 for _, last in runs), (moved, runs)
    assert report["recovered"], report
    assert healthy.systemctl(PRIMARY, "is-active", service, check=False).stdout.strip() == "inactive"


@pytest.mark.trixie
def test_reloading_keepalived_moves_no_vip_and_loses_no_request(healthy):
    """A keepalived config change reaches it by SIGHUP (systemctl reload)."""
    before = {name: healthy.vrrp_state(name) for name in (PRIMARY, BACKUP)}
    with healthy.probe(seconds=5) as report:
        time.sleep(1)
        for name in (PRIMARY, BACKUP):
            healthy.systemctl(name, "reload", "keepalived")
        time.sleep(2)
    print(f"\nkeepalived reloaded on both balancers: {report['failed']}/{report['total']} failed")
    assert report["failed"] == 0, report
    assert {name: healthy.vrrp_state(name) for name in (PRIMARY, BACKUP)} == before


@pytest.mark.trixie
def test_a_rebooted_balancer_gives_the_vip_up_at_once_and_takes_it_back_losing_nothing(healthy):
    """Power off (keepalived stops before HAProxy, by the formula's drop-in:
    the VIP leaves while HAProxy still serves), boot again on the same disk:
    the enabled units start, and the preferred holder takes the VIP back, a
    handover."""
    with healthy.probe(seconds=20, timeline=True) as report:
        time.sleep(1)
        off = time.time()
        healthy.power_off(PRIMARY)
        assert healthy.wait_for_holders([BACKUP], timeout=5) == [BACKUP]
        time.sleep(1)
        on = time.time()
        healthy.boot(PRIMARY)
        assert healthy.wait_for_holders([PRIMARY], timeout=10) == [PRIMARY]
        time.sleep(1)
    runs = outages(report)
    leaving = [(first, last) for first, last in runs if first < on - report["started_s"]]
    returning = [(first, last) for first, last in runs if first >= on - report["started_s"]]
    print(f"\nreboot of {PRIMARY}: {report['failed']}/{report['total']} failed, longest outage "
          f"{report['longest_outage_s']:.3f} s; leaving {leaving}, returning {returning} (s into the probe)")
    assert returning == [], runs
    assert all(last - first <= 0.05 for first, last in leaving), (off - report["started_s"], runs)
    for unit in ("haproxy", "keepalived"):
        assert healthy.systemctl(PRIMARY, "is-active", unit).stdout.strip() == "active"


def test_with_the_salt_master_down_a_dead_haproxy_still_fails_over(healthy):
    """keepalived needs no master: it fails over, and the cluster is as
    before once the master is back."""
    healthy.master.terminate()
    try:
        with healthy.probe(seconds=6, timeline=True) as report:
            time.sleep(1)
            killed = healthy.kill_haproxy(PRIMARY)
            assert healthy.wait_for_holders([BACKUP], timeout=5) == [BACKUP]
            assert healthy.wait_for_holders([PRIMARY], timeout=8) == [PRIMARY]
        moved = killed - report["started_s"]
        assert all(last < moved + 1.0 for _, last in outages(report)), outages(report)
    finally:
        healthy.master.start(start_timeout=60)
    deadline = time.monotonic() + 60
    while (view := healthy.run("havip.status")).returncode != 0:
        assert time.monotonic() < deadline, view.stdout
        time.sleep(2)


def test_a_rebooted_backend_costs_no_request_and_is_taken_back(healthy):
    """nginx stops gracefully at the poweroff (HAProxy sends the next
    requests to the other backend) and is UP again after the boot."""
    def in_haproxy():
        return healthy.salt(PRIMARY, "havip.status").data["haproxy"]["backends"].get(BACKENDS[0], "")

    with healthy.probe(seconds=12) as report:
        time.sleep(1)
        healthy.reboot(BACKENDS[0])
        deadline = time.monotonic() + 10
        while not in_haproxy().startswith("UP"):
            assert time.monotonic() < deadline, in_haproxy()
            time.sleep(0.5)
    assert report["failed"] == 0, report
    assert report["backends"].get(BACKENDS[0]), report  # back in rotation before the probe ended


def test_hung_haproxy_is_noticed_and_the_vip_comes_back_when_it_wakes(healthy):
    """SIGSTOP of HAProxy's worker (the process that serves; the master only
    supervises it): alive but not answering - keepalived's check asks
    HAProxy's monitor URI, so a hung HAProxy is a failure too."""
    workers = healthy.haproxy_workers(PRIMARY)
    stopped = healthy.signal_pids(PRIMARY, "STOP", workers)
    try:
        assert healthy.wait_for_holders([BACKUP], timeout=5) == [BACKUP]
        # (keepalived adds the VIP, then runs the notify script that records the state)
        state, since = wait_until(lambda: healthy.vrrp_state(BACKUP), lambda seen: seen[0] == "MASTER", 2, 0.1)
        check = healthy.topology.pillar["havip"].get("keepalived", {}).get("check", {})
        assert state == "MASTER" and since - stopped < check.get("interval", 1) + 1.0
        assert healthy.client_get(SEED.frontend_url)[0] == 200
    finally:
        healthy.signal_pids(PRIMARY, "CONT", workers)
    # Nothing to repair: once it answers again it takes the VIP back.
    assert healthy.wait_for_holders([PRIMARY], timeout=10) == [PRIMARY]


def restart_delay(healthy, name):
    """The delay (s) after which systemd starts a keepalived that died
    again: RestartSec= of havip's drop-in (``<n>ms``)."""
    dropin = healthy.host(name).run(["cat", LOOKUP["keepalived"]["dropin"]]).stdout
    return int(re.search(r"^RestartSec=([0-9]+)ms$", dropin, re.M)[1]) / 1000


def started_at(healthy, name, unit):
    """When (s since the epoch) systemd last started ``unit`` on a host (the
    lab's hosts share the machine's clock)."""
    shown = healthy.systemctl(name, "show", unit, "-p", "ExecMainStartTimestamp", "--value", "--timestamp=us+utc")
    return datetime.datetime.strptime(shown.stdout.strip(), "%a %Y-%m-%d %H:%M:%S.%f UTC").replace(
        tzinfo=datetime.UTC).timestamp()


def test_keepalived_killed_on_the_holder_is_started_again_by_systemd_without_an_apply(healthy):
    """kill -9 of keepalived on the holder (chaos seed 324): its VIP stays on
    eth0 while the backup takes it (two holders).  havip's drop-in has
    systemd start it again - no apply - after RestartSec (a peer's
    master-down interval and 1 s): it removes the stale copy as it starts,
    so one balancer holds the VIP again within RestartSec and 1 s of the
    kill, and the preferred one takes it back once its checks rise (a
    handover).  The client's outage stays within the unplanned budget."""
    delay = restart_delay(healthy, PRIMARY)
    restarts = healthy.restarts(PRIMARY, "keepalived")
    with healthy.probe(seconds=12, timeline=True) as report:
        time.sleep(1)
        killed = healthy.kill_keepalived(PRIMARY)
        seen = holders_after(healthy, killed, until=[PRIMARY], timeout=10)
    journal = healthy.host(PRIMARY).run(["journalctl", "-q", "--no-pager", "-o", "short-precise", "-u", "keepalived",
                                         "--since", f"@{int(killed) - 1}"], check=False).stdout
    started = started_at(healthy, PRIMARY, "keepalived") - killed
    print(f"\nkeepalived killed: RestartSec {delay} s, running again after {started:.2f} s, longest outage"
          f" {report['longest_outage_s']} s ({report['failed']} failed); the VIP's holders (s after the kill):"
          f" {seen}\n{journal[-3000:]}")
    doubled = [at for at, held in seen if len(held) == 2]
    assert doubled, seen  # the backup took the VIP while the dead one's stayed
    alone = next((at for at, held in seen if at > doubled[0] and len(held) == 1), None)
    assert alone is not None and alone <= delay + 1.0, seen
    assert seen[-1][1] == [PRIMARY], seen
    assert delay <= started < delay + 1.0
    assert healthy.restarts(PRIMARY, "keepalived") == restarts + 1
    assert healthy.systemctl(PRIMARY, "is-active", "keepalived").stdout.strip() == "active"
    assert report["longest_outage_s"] <= UNPLANNED_BUDGET_S, report
    assert report["recovered"], report


def holders_after(healthy, since, until, timeout):
    """[(s after ``since``, the VIP's holders)] at every change, read every
    ~0.05 s until the holders are ``until`` after two held it, or for
    ``timeout`` s."""
    seen = []
    while time.time() < since + timeout:
        held = healthy.vip_holders()
        if not seen or seen[-1][1] != held:
            seen.append((round(time.time() - since, 2), held))
        if held == until and any(len(other) > 1 for _, other in seen):
            break
        time.sleep(0.05)
    return seen


def test_holder_link_down_moves_the_vip_and_it_comes_back(healthy):
    primary = healthy.host(PRIMARY)
    with healthy.probe(seconds=6) as report:
        time.sleep(1)
        primary.run(["ip", "link", "set", "eth0", "down"])
        try:
            assert healthy.wait_for_holders([BACKUP], timeout=5)[-1:] == [BACKUP]
            # (keepalived adds the VIP, then runs the notify script that records the state)
            state = wait_until(lambda: healthy.vrrp_state(BACKUP), lambda seen: seen[0] == "MASTER", 2, 0.1)
            assert state[0] == "MASTER", state
        finally:
            primary.run(["ip", "link", "set", "eth0", "up"])
    assert served_after(report, 3), report
    assert healthy.wait_for_holders([PRIMARY], timeout=10) == [PRIMARY]


def test_a_holder_back_from_a_long_link_loss_returns_only_once_it_sees_its_backends(healthy):
    primary = healthy.host(PRIMARY)
    with healthy.probe(seconds=10, timeline=True) as report:
        time.sleep(1)
        primary.run(["ip", "link", "set", "eth0", "down"])
        try:
            # Long enough for its HAProxy's checks to mark every backend DOWN.
            time.sleep(3.5)
        finally:
            primary.run(["ip", "link", "set", "eth0", "up"])
            link_up = time.time()
        assert healthy.wait_for_holders([PRIMARY], timeout=8) == [PRIMARY]
    # Had it preempted at once, it would have answered without backends
    # until its checks rose again (about a second of failed requests).
    back = link_up - report["started_s"]
    failed_after_return = [sent for sent, answered in report["timeline"] if sent > back and not answered]
    assert len(failed_after_return) <= 1, failed_after_return
    assert report["recovered"], report


def test_a_lossy_holder_gives_its_vip_up_until_its_link_is_sound_again(healthy):
    """30 % of what the holder sends and receives dropped (a gray failure:
    most VRRP adverts still arrive, and without keepalived:track_link about
    90 % of the requests fail for as long as it lasts): its link check fails,
    the backup takes the VIP within a second and serves while the loss lasts;
    the lossy balancer stays out of the election (FAULT) while the backup's
    adverts come in, and so never takes the VIP for a moment (before, it did
    whenever three of the holder's adverts were lost: 1-3 times in 5 s);
    once the loss ends the preferred holder takes the VIP back, handed
    over."""
    with healthy.probe(seconds=14, timeline=True) as report:
        time.sleep(1)
        healthy.make_lossy(PRIMARY)
        lossy = time.time()
        try:
            assert healthy.wait_for_holders([BACKUP], timeout=5) == [BACKUP]
            moved = time.time()
            time.sleep(5)
        finally:
            healthy.make_sound(PRIMARY)
            sound = time.time()
        assert healthy.wait_for_holders([PRIMARY], timeout=8) == [PRIMARY]
    started = report["started_s"]
    assert moved - lossy < 1
    while_lossy = healthy.vrrp_transitions(PRIMARY, moved, sound)
    assert not [change for change in while_lossy if change[2] == "MASTER"], while_lossy
    assert "FAULT" in [state for _, _, state in healthy.vrrp_transitions(PRIMARY, lossy, sound)]
    while_lossy = [answered for sent, answered in report["timeline"] if lossy - started + 1 < sent < sound - started]
    assert while_lossy.count(0) < len(while_lossy) / 2, (while_lossy.count(0), len(while_lossy))
    assert served_after(report, sound - started), report


def test_a_loss_on_every_balancers_link_still_leaves_the_vip_a_holder(healthy):
    """Both balancers' links lossy (the switch, say): each link check fails,
    but a balancer stays out of the election only while another holds the
    VIP, so one of them holds it for all but a moment of the loss."""
    for balancer in (PRIMARY, BACKUP):
        healthy.make_lossy(balancer)
    try:
        time.sleep(3)  # the link checks see the loss; the first holds ends
        held = []
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            held.append(healthy.vip_holders())
            time.sleep(0.2)
    finally:
        for balancer in (PRIMARY, BACKUP):
            healthy.make_sound(balancer)
    assert all(len(holders) <= 1 for holders in held), held
    assert held.count([]) <= 2, held


def adverts_counted(cluster, name):
    """How many VRRP adverts of the cluster's VIPs from other hosts the link
    check's counter on ``name`` has counted (None: no counter)."""
    listed = cluster.host(name).run(["nft", "list", "counter", "inet", LINK_TABLE, "adverts"], check=False)
    counted = re.search(r"packets (\d+)", listed.stdout)
    return counted and int(counted[1])


def test_a_new_virtual_router_id_is_what_the_link_checks_count(healthy):
    """The VIP's virtual_router_id changed by an apply: the link check's
    advert counter (loaded by its first run, so that a lossy balancer stays
    out of the election while another holds a VIP) counts the holder's
    adverts under the new id (before, it kept counting the old one until a
    reboot, so a lossy balancer no longer knew that another held the VIP)."""
    assert adverts_counted(healthy, BACKUP) is not None
    pillar = copy.deepcopy(SEED.pillar)
    pillar["havip"]["vips"]["VI_1"]["virtual_router_id"] += 1
    healthy.set_pillar(pillar)
    assert healthy.apply().returncode == 0
    assert healthy.wait_for_holders([PRIMARY]) == [PRIMARY]
    before = wait_until(lambda: adverts_counted(healthy, BACKUP), lambda counted: counted is not None, 10)
    time.sleep(1)  # 20 adverts
    assert adverts_counted(healthy, BACKUP) > before


@pytest.mark.parametrize("mode", ["tcp", "http"])
def test_a_backend_killed_under_load_costs_no_request(healthy, mode):
    with_frontend_mode(healthy, mode)
    with healthy.probe(seconds=6) as report:
        time.sleep(1.5)
        healthy.kill_nginx(BACKENDS[0])
    # Connections refused by the dead server are redispatched at once (option
    # redispatch 1), also the one that races the server's mark-down (timeout
    # connect 100ms bounds HAProxy's turn-around).
    assert report["failed"] == 0, report
    assert report["total"] > 500
    assert report["backends"].get(BACKENDS[1], 0) > report["backends"].get(BACKENDS[0], 0)


def test_both_backends_down_fail_fast_and_recover_by_themselves(healthy):
    with_frontend_mode(healthy, "http")
    for backend in BACKENDS:
        healthy.kill_nginx(backend)
    # HAProxy's checks (inter 1s, fall 2) mark both DOWN on the holder.
    seen = wait_until(lambda: [backend_status(healthy, PRIMARY, backend) for backend in BACKENDS],
                      lambda states: all((state or "").startswith("DOWN") for state in states), 10)
    assert all((state or "").startswith("DOWN") for state in seen), seen
    started = time.monotonic()
    assert healthy.client_get(SEED.frontend_url, timeout=2)[0] == 503
    assert time.monotonic() - started < 1.5
    for backend in BACKENDS:
        healthy.start_nginx(backend)
    deadline = time.monotonic() + 10
    while healthy.client_get(SEED.frontend_url)[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert healthy.client_get(SEED.frontend_url)[0] == 200
    assert healthy.vip_holders() == [PRIMARY]  # the balancers never gave up the VIP


@pytest.mark.trixie
def test_a_pool_change_applied_under_load_costs_no_request(healthy):
    """A backend out of the pool and back in, each by `state.apply` (HAProxy reloads)."""
    smaller = copy.deepcopy(SEED.pillar)
    smaller["havip"]["nodes"].pop(BACKENDS[1])
    with healthy.probe(seconds=25) as report:
        for pillar in (smaller, SEED.pillar):
            healthy.set_pillar(pillar)
            for balancer in (PRIMARY, BACKUP):
                applied = healthy.apply(balancer)
                assert applied.returncode == 0, applied.stdout
                reload = [s for s in applied.data.values() if s["__id__"] == "havip-haproxy-service-running"]
                assert reload[0]["changes"], reload  # HAProxy did reload
    print(f"\npool change, 4 HAProxy reloads: {report['failed']}/{report['total']} failed")
    assert report["failed"] == 0, report
    assert sorted(report["backends"]) == BACKENDS


def stop_keepalived(healthy, name):
    healthy.systemctl(name, "stop", "keepalived")
    assert healthy.keepalived_gone(name), f"keepalived on {name} did not stop"


def test_backup_booted_before_the_master_ends_on_the_preferred_holder(healthy):
    for name in (PRIMARY, BACKUP):
        stop_keepalived(healthy, name)
    assert healthy.vip_holders() == []
    assert healthy.apply(BACKUP).returncode == 0  # starts keepalived on the backup
    assert healthy.wait_for_holders([BACKUP], timeout=5) == [BACKUP]
    assert healthy.apply(PRIMARY).returncode == 0
    assert healthy.wait_for_holders([PRIMARY], timeout=10) == [PRIMARY]


def test_saturated_cpus_move_no_vip(healthy):
    client = healthy.host(SEED.client)
    before = {name: healthy.vrrp_state(name) for name in (PRIMARY, BACKUP)}
    burners = [client.popen(["timeout", "30", "sh", "-c", "while :; do :; done"]) for _ in range(4)]
    try:
        for burner in burners:
            burner.wait(timeout=60)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert {name: healthy.vrrp_state(name) for name in (PRIMARY, BACKUP)} == before


def test_a_flapping_haproxy_does_not_ping_pong_the_vip_faster_than_rise(healthy):
    """HAProxy killed every 0.5 s for 10 s - systemd starts it again 100 ms
    after each kill (Restart=always), until its start limit (5 starts in
    10 s) leaves the unit failed: the holder may only take the VIP back
    after `rise` good checks in a row."""
    primary = healthy.host(PRIMARY)
    seen = {PRIMARY: set(), BACKUP: set()}
    started = time.time()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        primary.run(f"kill -9 $(cat {HAPROXY_PIDFILE})", check=False)  # none while systemd restarts it
        for name, states in seen.items():
            states.add(healthy.vrrp_state(name))
        time.sleep(0.5)
    # One move to the backup, none back: HAProxy never stayed up for the
    # 2 good checks in a row (rise) the holder needs.
    # (Only changes after the first kill count: a state read at once after
    # it can still be the one from before.)
    assert len({since for state, since in seen[BACKUP] if state == "MASTER" and since > started}) == 1, seen
    assert not any(state == "MASTER" and since > started for state, since in seen[PRIMARY]), seen
    unit = healthy.systemctl(PRIMARY, "show", "haproxy", "-p", "ActiveState", "-p", "Result").stdout.split()
    print(f"\nhaproxy.service after 10 s of kills: {unit}, restarted {healthy.restarts(PRIMARY)} times")


def backend_status(healthy, balancer, server):
    """A backend server's status in a balancer's HAProxy (havip.status),
    None while its runtime API does not answer."""
    view = healthy.salt(balancer, "havip.status")
    backends = view.data["haproxy"]["backends"] if isinstance(view.data, dict) else None
    return (backends or {}).get(server)


def haproxy_master(healthy, name):
    """The pid of HAProxy's master on a host (systemd's MainPID; 0: none)."""
    return int(healthy.systemctl(name, "show", "haproxy", "-p", "MainPID", "--value").stdout)


def status_after(healthy, server, restart):
    """``restart()`` HAProxy on the preferred balancer; ``server``'s status
    once systemd runs another master and its runtime API answers."""
    before = haproxy_master(healthy, PRIMARY)
    restart()
    assert wait_until(lambda: haproxy_master(healthy, PRIMARY) not in (0, before), bool, 10, 0.1), \
        "HAProxy was not started again"
    return wait_until(lambda: backend_status(healthy, PRIMARY, server), bool, 10, 0.2)


def test_a_drain_survives_haproxys_restarts_and_reloads_until_havip_ready(healthy):
    """Chaos seed 4445: `havip.drain nginx2`, then a kill -9 of HAProxy's
    master (systemd restarts it) brought nginx2 back UP on that balancer.
    havip.drain saves it to HAProxy's server state file, which every start
    and reload loads: still DRAIN after systemd's restart, a reload, and an
    apply that changes the config; `havip.ready` puts it back UP, and that
    survives a restart too."""
    changed = copy.deepcopy(SEED.pillar)
    changed["havip"].setdefault("stats", {})["realm"] = "HAProxy Statistics (drained)"
    try:
        assert healthy.salt(PRIMARY, "havip.drain", "nginx2").returncode == 0
        restarts = healthy.restarts(PRIMARY)
        assert status_after(healthy, "nginx2", lambda: healthy.kill_haproxy(PRIMARY)) == "DRAIN"
        assert healthy.restarts(PRIMARY) == restarts + 1  # systemd's restart, no apply
        healthy.systemctl(PRIMARY, "reload", "haproxy")
        time.sleep(1)  # (the old worker no longer answers the runtime API)
        assert wait_until(lambda: backend_status(healthy, PRIMARY, "nginx2"), bool, 10, 0.2) == "DRAIN"
        healthy.set_pillar(changed)
        applied = healthy.apply(PRIMARY)
        assert applied.returncode == 0, applied.stdout
        saved = [s for s in applied.data.values() if s["__id__"] == "havip-haproxy-server-state-saved"]
        assert saved[0]["changes"], saved  # the config changed: saved before the reload
        assert wait_until(lambda: backend_status(healthy, PRIMARY, "nginx2"), bool, 10, 0.2) == "DRAIN"
        assert healthy.salt(PRIMARY, "havip.ready", "nginx2").returncode == 0
        back = status_after(healthy, "nginx2", lambda: healthy.systemctl(PRIMARY, "restart", "haproxy"))
        assert back.startswith("UP"), back
    finally:
        healthy.salt(PRIMARY, "havip.ready", "nginx2")

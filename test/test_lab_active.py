"""
Lab tier: active-active on the ACTIVE topology - three VIPs on one frontend,
each preferring a balancer of its own (per-VIP ``priorities``): VI_A and the
IPv6 VI_6 prefer lb1, VI_B prefers lb2 and speaks unicast VRRP.  A failed
balancer's VIPs move to the other one and come back when it returns; with
VRRP multicast dropped by nft, the unicast VIP still fails over.
"""

import contextlib

import pytest

from test.lab.cluster import ACTIVE, deployed_cluster

pytestmark = pytest.mark.lab

PREFERRED = {"VI_A": "lb1", "VI_B": "lb2", "VI_6": "lb1"}
BACKENDS = ACTIVE.with_role("backend")
DROP_MULTICAST = """table inet havip_lab_multicast {
    chain output { type filter hook output priority -300; ip daddr 224.0.0.18 drop; ip6 daddr ff02::12 drop; }
    chain input { type filter hook input priority -300; ip daddr 224.0.0.18 drop; ip6 daddr ff02::12 drop; }
}
"""


def url(vip):
    return ACTIVE.url_of(ACTIVE.vip_address(vip))


def holders(cluster, expected, timeout=20):
    """{vip: its holders}, once every VIP has the ``expected`` holder (or at
    the timeout)."""
    return {vip: cluster.wait_for_holders([holder], timeout=timeout, vip=vip)
            for vip, holder in expected.items()}


def held_by(expected):
    return {vip: [holder] for vip, holder in expected.items()}


@pytest.fixture(scope="module")
def cluster(salt_factories, tmp_path_factory):
    with deployed_cluster(salt_factories, ACTIVE, tmp_path_factory) as c:
        yield c


@pytest.fixture
def lab(cluster):
    """Starts with every VIP on its preferred balancer; afterwards a re-apply
    must bring that back."""
    assert holders(cluster, PREFERRED) == held_by(PREFERRED)
    yield cluster
    assert cluster.apply().returncode == 0
    assert holders(cluster, PREFERRED, timeout=30) == held_by(PREFERRED)


def test_each_vip_is_held_by_its_own_preferred_balancer(lab):
    status = lab.run("havip.status")
    assert status.returncode == 0, status.stdout
    assert {vip: entry["preferred"] for vip, entry in status.data["vips"].items()} == PREFERRED
    assert {vip: entry["holders"] for vip, entry in status.data["vips"].items()} == held_by(PREFERRED)


@pytest.mark.parametrize("vip", sorted(PREFERRED))
def test_every_vip_serves_the_frontend_over_every_backend(lab, vip):
    answers = [lab.client_get(url(vip)) for _ in range(2 * len(BACKENDS))]
    assert {status for status, _ in answers} == {200}, answers
    assert sorted({body for _, body in answers}) == BACKENDS


def test_a_failed_balancers_vips_move_to_the_other_and_come_back(lab):
    with lab.probe(seconds=5, url=url("VI_A")) as on_a, lab.probe(seconds=5, url=url("VI_B")) as on_b:
        lab.kill_haproxy("lb1")
        everything_on_lb2 = {vip: "lb2" for vip in PREFERRED}
        assert holders(lab, everything_on_lb2, timeout=5) == held_by(everything_on_lb2)
        assert lab.client_get(url("VI_6"))[0] == 200
    assert on_a["recovered"] and on_a["longest_outage"] < 1, on_a
    assert on_b["failed"] == 0, on_b  # lb2 kept its own VIP throughout
    assert lab.apply("lb1").returncode == 0
    assert holders(lab, PREFERRED, timeout=15) == held_by(PREFERRED)


@contextlib.contextmanager
def multicast_vrrp_dropped(cluster):
    """VRRP multicast dropped by nft on both balancers while the block runs."""
    balancers = [cluster.host(name) for name in ("lb1", "lb2")]
    for host in balancers:
        host.run(["nft", "-f", "-"], input=DROP_MULTICAST)
    try:
        yield
    finally:
        for host in balancers:
            host.run(["nft", "delete", "table", "inet", "havip_lab_multicast"], check=False)


def test_with_vrrp_multicast_dropped_the_unicast_vip_still_fails_over(lab):
    with multicast_vrrp_dropped(lab):
        # The multicast VIPs lose their adverts: each balancer takes them (the
        # drop is real); the unicast one keeps a single holder.
        assert lab.wait_for_holders(["lb1", "lb2"], vip="VI_A") == ["lb1", "lb2"]
        assert lab.vip_holders("VI_B") == ["lb2"]
        with lab.probe(seconds=4, url=url("VI_B")) as report:
            lab.kill_haproxy("lb2")
            assert lab.wait_for_holders(["lb1"], timeout=5, vip="VI_B") == ["lb1"]
        assert report["recovered"] and report["longest_outage"] < 1, report
        assert lab.apply("lb2").returncode == 0
        assert lab.wait_for_holders(["lb2"], timeout=15, vip="VI_B") == ["lb2"]


def test_when_a_vrrp_cut_heals_clients_that_followed_the_yielding_balancer_come_back_at_once(lab):
    """While VRRP is cut both balancers hold the multicast VIPs, and the
    client follows lb2's gratuitous ARP / NA.  When the cut heals lb2 yields;
    lb1, which never stopped holding them, must announce them again or the
    client keeps sending to lb2 until its neighbour entry times out (seconds).
    Which advert crosses first is a race, so the cut heals five times."""
    multicast = {"VI_A": "lb1", "VI_6": "lb1"}
    for _ in range(5):
        with multicast_vrrp_dropped(lab):
            for vip in multicast:
                assert lab.wait_for_holders(["lb1", "lb2"], vip=vip) == ["lb1", "lb2"]
        assert holders(lab, multicast, timeout=5) == held_by(multicast)
        with lab.probe(seconds=1.5, url=url("VI_A")) as on_a, lab.probe(seconds=1.5, url=url("VI_6")) as on_6:
            pass
        assert on_a["failed"] == 0 and on_6["failed"] == 0, (on_a, on_6)


@pytest.mark.parametrize("balancer", ["lb1", "lb2"])
def test_handovers_of_a_balancers_vips_lose_no_request_on_any_vip(lab, balancer):
    """`salt-run havip.standby`, then `havip.resume` (each move a handover by
    keepalived's notify path): the IPv6 and the unicast VIP included, and
    the VIPs that do not move lose nothing either."""
    mine = sorted(vip for vip, holder in PREFERRED.items() if holder == balancer)
    other = next(name for name in ("lb1", "lb2") if name != balancer)
    with contextlib.ExitStack() as stack:
        probes = {vip: stack.enter_context(lab.probe(seconds=12, url=url(vip))) for vip in sorted(PREFERRED)}
        away = lab.run("havip.standby", balancer)
        assert away.returncode == 0, away.stdout
        moved = {vip: other for vip in mine}
        assert holders(lab, moved, timeout=1) == held_by(moved)
        back = lab.run("havip.resume", balancer)
        assert back.returncode == 0, back.stdout
    for report in (away, back):
        assert report.data["moved"] == mine, report.data
    for vip, report in probes.items():
        assert report["failed"] == 0 and report["total"] > 1000, (vip, report)
    assert holders(lab, PREFERRED, timeout=1) == held_by(PREFERRED)

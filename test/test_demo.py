"""
`make demo`: the seed tutorial's stack built from pillar and failed over, in
the namespace lab, with a printed report.  A walk-through, not a test: it
runs only with `-m demo`.
"""

import time

import pytest

from test.lab.cluster import GATEWAY, SEED, running_cluster

pytestmark = pytest.mark.demo


def say(text):
    print(f"\n== {text}", flush=True)


def test_demo(salt_factories, tmp_path):
    topology = SEED
    say(f"lab up: {', '.join(f'{n} {a}' for n, a in topology.hosts.items())}, salt-master on {GATEWAY}")
    with running_cluster(salt_factories, topology, tmp_path / "pillar") as cluster:
        say("salt '*' state.apply havip")
        started = time.monotonic()
        result = cluster.apply()
        states = sum(len(ret) for ret in result.data.values() if isinstance(ret, dict))
        print(f"   exit {result.returncode}: {states} states on {len(result.data)} minions "
              f"in {time.monotonic() - started:.1f} s")
        assert result.returncode == 0, result.stdout
        holder = cluster.wait_for_holders([topology.preferred_balancer])
        say(f"VIP {topology.vip} held by {holder} (ip addr on each balancer)")
        say(f"client -> {topology.frontend_url}, 6 requests")
        for _ in range(6):
            print("  ", cluster.client_get(topology.frontend_url)[1])
        say(f"failover: kill -9 haproxy on {holder[0]} while the client probes at 100 requests/s")
        (standby,) = topology.standby_balancers
        with cluster.probe(seconds=8) as report:
            time.sleep(2)
            killed = time.monotonic()
            cluster.kill_haproxy(holder[0])
            after = cluster.wait_for_holders([standby], timeout=10)
            moved = time.monotonic() - killed
        say("report")
        print(f"   VIP holder before: {holder[0]}   after: {', '.join(after) or 'nobody'}")
        print(f"   VIP moved within:  {moved:.2f} s (polled with ip addr every 0.1 s)")
        print(f"   client requests:   {report['failed']} failed of {report['total']} "
              f"({report['seconds']:.1f} s at 100/s)")
        print(f"   longest outage:    {report['longest_outage']:.3f} s")
        print(f"   answers by backend: {report['backends']}")
        say(f"systemd starts haproxy on {holder[0]} again (Debian's unit: Restart=always); "
            "the preferred balancer takes the VIP back once keepalived's check rises")
        print(f"   haproxy.service restarts on {holder[0]}: {cluster.restarts(holder[0])}")
        print(f"   VIP held by {cluster.wait_for_holders([topology.preferred_balancer], timeout=30)}")
        say("salt '*' state.apply havip  (nothing left to repair)")
        result = cluster.apply()
        changed = sum(1 for ret in result.data.values() if isinstance(ret, dict)
                      for state in ret.values() if state["changes"])
        print(f"   exit {result.returncode}: {changed} states changed")
        say("lab down")

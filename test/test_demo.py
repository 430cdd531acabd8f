"""
`make demo`: the seed tutorial's stack built from pillar and failed over, in
the namespace lab of systemd hosts, with a printed report: the apply, the
cluster view, the round robin, HAProxy killed on the holder and brought back
by systemd, a planned move and back, and the failover test.  A walk-through,
not a test: it runs only with `-m demo`.  What it prints is what README
shows.
"""

import time

import pytest
import yaml

from test.lab.cluster import GATEWAY, SEED, running_cluster

pytestmark = pytest.mark.demo


def say(text):
    print(f"\n== {text}", flush=True)


def show(data):
    print("   " + yaml.safe_dump(data, sort_keys=True, default_flow_style=False).replace("\n", "\n   "))


def outages(report):
    """The runs of failed requests (seconds into the probe): [(first, last)]."""
    runs, current = [], None
    for sent, answered in report["timeline"]:
        if not answered:
            current = (current[0], sent) if current else (sent, sent)
        elif current:
            runs.append(current)
            current = None
    return runs + ([current] if current else [])


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
        say("salt-run havip.status")
        time.sleep(3)  # every check risen
        show(cluster.run("havip.status").data)
        say(f"client -> {topology.frontend_url}, 6 requests")
        for _ in range(6):
            print("  ", cluster.client_get(topology.frontend_url)[1])

        (standby,) = topology.standby_balancers
        say(f"kill -9 of haproxy's master on {holder[0]} while the client probes at 100 requests/s")
        restarts = cluster.restarts(holder[0])
        with cluster.probe(seconds=10, timeline=True) as report:
            time.sleep(2)
            killed = time.time()
            cluster.kill_haproxy(holder[0])
            away = cluster.wait_for_holders([standby], timeout=10)
            moved = time.time() - killed
            back = cluster.wait_for_holders([holder[0]], timeout=10)
            returned = time.time() - killed
        print(f"   VIP holder before: {holder[0]}   after the kill: {', '.join(away) or 'nobody'}"
              f" (within {moved:.2f} s)   then: {', '.join(back) or 'nobody'} (after {returned:.1f} s)")
        print(f"   haproxy.service on {holder[0]}: restarted by systemd {cluster.restarts(holder[0]) - restarts}"
              " time (Restart=always)")
        print(f"   client requests: {report['failed']} failed of {report['total']}; outages: "
              + (", ".join(f"{last - first + 0.01:.2f} s at {first - (killed - report['started']):+.2f} s"
                           for first, last in outages(report)) or "none")
              + " (from the kill)")
        print(f"   answers by backend: {report['backends']}")

        say(f"salt {holder[0]} havip.standby, then havip.resume, while the client probes")
        with cluster.probe(seconds=6) as report:
            time.sleep(1)
            show({"standby": cluster.salt(holder[0], "havip.standby").data})
            show({"resume": cluster.salt(holder[0], "havip.resume").data})
        print(f"   client requests: {report['failed']} failed of {report['total']}")

        say("salt-run state.orchestrate havip.failover_test")
        time.sleep(3)
        result, steps = cluster.orchestrate("failover_test", timeout=300, client=topology.client)
        show(steps["havip-failover-test-run"])
        say("salt '*' state.apply havip  (nothing to repair)")
        result = cluster.apply()
        changed = sum(1 for ret in result.data.values() if isinstance(ret, dict)
                      for state in ret.values() if state["changes"])
        print(f"   exit {result.returncode}: {changed} states changed")
        say("lab down")

"""
`make demo`: the seed tutorial's stack built from pillar and failed over, in
the namespace lab of systemd hosts, with a printed report: the apply, the
cluster view, the round robin, HAProxy killed on the holder and brought back
by systemd, a planned move and back, and the failover test.  A walk-through,
not a test: it runs only with `-m demo`.  What it prints is what
docs/examples.md shows (and README's quick start, in part).
"""

import copy
import time

import pytest
import yaml

from test.lab.cluster import GATEWAY, SEED, outages, running_cluster

pytestmark = pytest.mark.demo


def say(text):
    print(f"\n== {text}", flush=True)


def show(data):
    print("   " + yaml.safe_dump(data, sort_keys=True, default_flow_style=False).replace("\n", "\n   "))


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
              + (", ".join(f"{last - first + 0.01:.2f} s at {first - (killed - report['started_s']):+.2f} s"
                           for first, last in outages(report)) or "none")
              + " (from the kill)")
        print(f"   answers by backend: {report['backends']}")

        say(f"salt {holder[0]} havip.standby, then havip.resume, while the client probes")
        with cluster.probe(seconds=6) as report:
            time.sleep(1)
            show({"standby": cluster.salt(holder[0], "havip.standby").data})
            show({"resume": cluster.salt(holder[0], "havip.resume").data})
        print(f"   client requests: {report['failed']} failed of {report['total']}")

        say(f"salt {standby} havip.status; salt nginx1 havip.status")
        show(cluster.salt(standby, "havip.status").data)
        show(cluster.salt("nginx1", "havip.status").data)
        say(f"systemctl stop haproxy on {holder[0]}; salt {holder[0]} havip.check; state.apply havip restores it")
        cluster.systemctl(holder[0], "stop", "haproxy")
        check = cluster.salt(holder[0], "havip.check")
        show(check.data)
        print(f"   exit status {check.returncode}")
        assert cluster.apply(holder[0]).returncode == 0
        cluster.wait_for_holders([holder[0]], timeout=15)

        say(f"salt-run havip.standby {holder[0]}; salt-run havip.status; salt-run havip.resume {holder[0]}"
            " (the client probes meanwhile)")
        time.sleep(3)
        with cluster.probe(seconds=10) as report:
            time.sleep(1)
            show(cluster.run("havip.standby", holder[0]).data)
            view = cluster.run("havip.status")
            show(view.data)
            print(f"   exit status {view.returncode}")
            show(cluster.run("havip.resume", holder[0]).data)
        print(f"   client requests: {report['failed']} failed of {report['total']}")

        say("salt-run state.orchestrate havip.failover_test pillar='{\"failover_test\": {\"client\": \"client\"}}'")
        time.sleep(3)
        result, steps = cluster.orchestrate("failover_test", timeout=300, client=topology.client)
        show(steps["havip-failover-test-run"])

        say("a new page on every backend; salt-run state.orchestrate havip.deploy "
            "pillar='{\"deploy\": {\"client\": \"client\"}}'")
        pillar = copy.deepcopy(topology.pillar)
        for name in topology.with_role("backend"):
            pillar["havip"]["nodes"][name]["page"] = f"{name} v2"
        cluster.set_pillar(pillar)
        result, steps = cluster.orchestrate("deploy", timeout=900, client=topology.client)
        show(steps["havip-deploy-run"])
        say("salt '*' state.apply havip  (nothing to repair)")
        result = cluster.apply()
        changed = sum(1 for ret in result.data.values() if isinstance(ret, dict)
                      for state in ret.values() if state["changes"])
        print(f"   exit {result.returncode}: {changed} states changed")
        say("lab down")

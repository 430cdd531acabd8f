"""
Lab tier: what an attacker or a slip cannot do (issue 12), on the seed's
topology on systemd hosts.

- A stats password change, with test=True and for real, shows the old or
  the new password nowhere: not in state.apply's output, the job cache
  (jobs.lookup_jid), the event bus, state.show_sls or havip.config; the
  files that hold it keep their modes; the new password logs in.
- A backend that publishes a malicious address in the Salt mine gets the
  balancers' apply refused, naming the key, with every config
  byte-identical and traffic flowing.
"""

import json
import time

import pytest

from test.lab.cluster import LOOKUP, SEED, deployed_cluster

pytestmark = pytest.mark.lab

PRIMARY = SEED.preferred_balancer
BALANCERS = SEED.with_role("balancer")


@pytest.fixture(scope="module")
def cluster(salt_factories, tmp_path_factory):
    with deployed_cluster(salt_factories, SEED, tmp_path_factory) as c:
        yield c


@pytest.fixture
def seed_pillar_after(cluster):
    """The seed's pillar, applied everywhere, after the test."""
    yield cluster
    cluster.set_pillar(SEED.pillar)
    assert cluster.apply().returncode == 0
    assert cluster.wait_for_holders([PRIMARY], timeout=30) == [PRIMARY]


def with_password(password):
    pillar = json.loads(json.dumps(SEED.pillar))
    pillar["havip"]["stats"]["password"] = password
    return pillar


def job_records(cluster, events):
    """The job cache's record (jobs.lookup_jid) of every job in ``events``."""
    jids = {event.tag.split("/")[2] for event in events if event.tag.startswith("salt/job/")
            and event.tag.endswith("/new")}
    return {jid: cluster.run("jobs.lookup_jid", jid).stdout for jid in sorted(jids)}


def test_a_stats_password_change_shows_neither_password_anywhere(cluster, seed_pillar_after, event_listener):
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
    events = event_listener.get_events([(cluster.master.id, "*")], after_time=started)
    outputs.update({f"job {jid}": text for jid, text in job_records(cluster, events).items()})
    outputs["event bus"] = json.dumps([[event.tag, event.data] for event in events], default=str)
    assert len(outputs) > 5 and events, outputs.keys()
    for where, text in outputs.items():
        for secret in (old, new):
            assert secret not in text, f"{secret!r} shows in {where}"
    # The apply did change the password: it logs in, the old one does not.
    url = f"http://{SEED.vip}:1080/status"
    assert cluster.client_get(url, user=f"admin:{new}")[0] == 200
    assert cluster.client_get(url, user=f"admin:{old}")[0] == 401
    for name in BALANCERS:
        host = cluster.host(name)
        modes = host.run(["stat", "-c", "%a %U %G", LOOKUP["haproxy"]["config"],
                          LOOKUP["keepalived"]["config"]]).stdout.split("\n")
        assert modes[:2] == ["640 root haproxy", "600 root root"], (name, modes)


def test_a_malicious_address_in_the_mine_is_refused_and_changes_nothing(cluster, seed_pillar_after):
    # nginx2 takes its address from the mine ...
    pillar = json.loads(json.dumps(SEED.pillar))
    pillar["havip"]["mine"] = {"network": "192.168.100.0/24"}
    del pillar["havip"]["nodes"]["nginx2"]["address"]
    cluster.set_pillar(pillar)
    assert cluster.apply("nginx2").returncode == 0
    before = cluster.config_digests()
    # ... and publishes a config injection instead (as a compromised host could).
    evil = '["192.168.100.12:80\\nglobal\\n    daemon\\nlisten evil"]'
    assert cluster.salt("nginx2", "grains.setval", "havip_evil", evil).returncode == 0
    sent = cluster.salt("nginx2", "mine.send", "havip_address", "mine_function=grains.get", "havip_evil")
    assert sent.returncode == 0, sent.stdout
    with cluster.probe(seconds=8) as report:
        time.sleep(1)
        for name in BALANCERS:
            refused = cluster.apply(name)
            assert refused.returncode != 0
            assert "havip:nodes:nginx2:address (from the mine)" in refused.stdout, refused.stdout
    assert cluster.config_digests() == before
    assert report["failed"] == 0, report
    assert cluster.salt("nginx2", "grains.delkey", "havip_evil").returncode == 0

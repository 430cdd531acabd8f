"""
Lab tier: the havip states in an operator's orchestrate file.  ``salt-run
state.orchestrate`` runs ``salt.state`` on the balancers with an SLS of
``havip.drained`` (then ``havip.serving``) for a backend server: HAProxy's
runtime API on every balancer shows it DRAIN and the frontend answers from
the other server only, then it is UP and answering again.  ``test=True``
changes nothing; a second run reports no change.  The seed's topology.
"""

import pathlib

import pytest

from test.lab.cluster import SEED, wait_until

pytestmark = pytest.mark.lab

PRIMARY = SEED.preferred_balancer
BALANCERS = SEED.with_role("balancer")
SERVER, OTHER = SEED.with_role("backend")
ON_BALANCERS = "svr*"  # the seed's balancers (a glob: the salt CLI's target)
# The operator's files, in a folder of the master's file root beside the formula.
FOLDER = "havip_lab_states"
ORCHESTRATE = """\
{server}-{state}:
  salt.state:
    - tgt: {balancers}
    - tgt_type: list
    - sls: {folder}.{server}_{state}
"""
STATE = """\
{server}:
  havip.{state}:
    - timeout: 20
"""


@pytest.fixture
def operators_files(cluster):
    """The orchestrate files ``<folder>.drained`` and ``<folder>.serving``
    and the SLS they apply on the balancers, on the master's file server;
    the backend server back in rotation after the test."""
    folder = pathlib.Path(cluster.master.config["file_roots"]["base"][0]) / FOLDER
    folder.mkdir(exist_ok=True)
    for state in ("drained", "serving"):
        (folder / f"{state}.sls").write_text(ORCHESTRATE.format(
            server=SERVER, state=state, balancers=",".join(BALANCERS), folder=FOLDER))
        (folder / f"{SERVER}_{state}.sls").write_text(STATE.format(server=SERVER, state=state))
    assert cluster.run("fileserver.update").returncode == 0
    yield cluster
    cluster.salt(ON_BALANCERS, "havip.ready", SERVER)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def orchestrate(cluster, name, *args):
    """`salt-run state.orchestrate <folder>.<name>`: (its exit status, the
    salt.state step's return, {balancer: the havip state's return there}
    for the balancers where it changed or would change something)."""
    result = cluster.run("state.orchestrate", f"{FOLDER}.{name}", *args, _timeout=300)
    (steps,) = result.data["data"].values()
    (step,) = steps.values()
    minions = step["changes"].get("ret", {})
    return result.returncode, step, {minion: next(iter(states.values())) for minion, states in minions.items()}


def servers(cluster):
    """{balancer: {server: status}} from HAProxy's runtime API (havip.status)."""
    statuses = cluster.salt(ON_BALANCERS, "havip.status").data
    assert sorted(statuses) == BALANCERS
    return {name: statuses[name]["haproxy"]["backends"] for name in BALANCERS}


def answers(cluster, count=20):
    """Which backends answered ``count`` requests on the frontend."""
    return {cluster.client_get(SEED.frontend_url)[1] for _ in range(count)}


def test_an_orchestrate_drains_a_backend_server_on_every_balancer_and_serves_it_again(operators_files):
    cluster = operators_files
    everyone_up = {name: {SERVER: "UP", OTHER: "UP"} for name in BALANCERS}
    assert servers(cluster) == everyone_up

    code, _, planned = orchestrate(cluster, "drained", "test=True")
    assert code == 0, planned
    assert {name: (ret["result"], ret["changes"]) for name, ret in planned.items()} == {
        name: (None, {"status": {"old": "UP", "new": "DRAIN"}}) for name in BALANCERS}
    assert servers(cluster) == everyone_up

    code, _, drained = orchestrate(cluster, "drained")
    assert code == 0, drained
    assert {name: ret["changes"]["status"] for name, ret in drained.items()} == {
        name: {"old": "UP", "new": "DRAIN"} for name in BALANCERS}
    assert servers(cluster) == {name: {SERVER: "DRAIN", OTHER: "UP"} for name in BALANCERS}
    assert answers(cluster) == {OTHER}

    # Already drained: the step succeeds and no balancer reports a change.
    code, step, again = orchestrate(cluster, "drained")
    assert code == 0, step
    assert (step["result"], step["changes"], again) == (True, {}, {})

    code, _, served = orchestrate(cluster, "serving")
    assert code == 0, served
    assert {name: ret["changes"]["status"] for name, ret in served.items()} == {
        name: {"old": "DRAIN", "new": "UP"} for name in BALANCERS}
    assert servers(cluster) == everyone_up
    assert wait_until(lambda: answers(cluster), lambda seen: seen == {SERVER, OTHER}, 10) == {SERVER, OTHER}

"""
Salt's loader brings the formula's helpers (``_utils/havip_*.py``) to the
execution module and to the runner, which import them by their plain
names: a masterless minion after ``saltutil.sync_all`` (with the state
module, over the execution module), and a master after
``salt-run saltutil.sync_all``; the runner takes the cluster from the
pillar the master compiles.  No lab: one salt-call, one salt-master on
127.0.0.1 with the formula as its file root.
"""

import pathlib

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from test.saltcall import DEBIAN_GRAINS, REPO, formula_root, seed_pillar

HELPERS = sorted(f"utils.{path.stem}" for path in (REPO / "_utils").glob("havip_*.py"))


def test_a_minion_never_synced_gets_module_and_helpers_on_its_first_apply(salt_call):
    minion = salt_call("svr1", DEBIAN_GRAINS, synced=True)
    code, refused = minion.run("state.show_sls", "havip", pillar=seed_pillar())
    assert code != 0
    assert "it has been synced now; run `saltutil.sync_all` before state.apply" in str(refused)
    states = minion.show_sls(seed_pillar())
    assert states["havip-facts-file"]["dataset"]["roles"] == ["balancer"]


def test_a_synced_minion_validates_with_the_helpers(salt_call):
    minion = salt_call("svr1", DEBIAN_GRAINS, synced=True)
    code, synced = minion.run("saltutil.sync_all")
    assert code == 0, synced
    assert sorted(name for name in synced["utils"] if name.startswith("utils.havip_")) == HELPERS
    assert "modules.havip" in synced["modules"] and "states.havip" in synced["states"]
    # The pillar's checks (havip_pillar) answer, naming the key.
    code, refused = minion.run("havip.validate", '{"nodes": {}}', minion_id="svr1")
    assert code != 0 and "havip pillar: havip:" in str(refused)
    code, refused = minion.run("havip.config")
    assert code != 0 and "nothing is deployed on this minion" in str(refused)
    # The states, over the synced module: its refusal is the state's comment.
    code, states = minion.run("state.single", "havip.drained", "nginx1")
    (drained,) = states.values()
    assert code != 0 and drained["result"] is False
    assert drained["comment"].startswith("havip: nothing is deployed on this minion")


@pytest.fixture
def master(salt_factories, tmp_path):
    """A salt-master serving the formula, the seed's pillar for every
    minion (no minion runs)."""
    pillar = tmp_path / "pillar"
    pillar.mkdir()
    (pillar / "top.sls").write_text("base:\n  '*':\n    - havip\n")
    (pillar / "havip.sls").write_text(yaml.safe_dump(seed_pillar()))
    daemon = salt_factories.salt_master_daemon(
        "havip-loader-master",
        overrides={"file_roots": {"base": [str(formula_root(tmp_path / "formula"))]},
                   "pillar_roots": {"base": [str(pillar)]}, "enable_fqdns_grains": False},
    )
    with daemon.started(start_timeout=60):
        yield daemon


def test_a_master_runs_the_runner_over_its_helpers_after_sync_all(master):
    salt_run = master.salt_run_cli(timeout=60)
    synced = salt_run.run("saltutil.sync_all")
    assert synced.returncode == 0, synced
    assert sorted(name for name in synced.data["utils"] if name.startswith("utils.havip_")) == HELPERS
    assert "runners.havip" in synced.data["runners"]
    # It answers (no minion has havip deployed): loaded, helpers and all;
    # salt-run's exit status is the report's retcode.
    report = salt_run.run("havip.status")
    assert report.data == {"result": False, "retcode": 1, "comment": (
        "no minion matching '*' has a havip pillar on this master (salt-run pillar.show_pillar <minion> shows what"
        " it compiles)")}
    assert report.returncode == 1
    # A keyword the runner does not know reaches it (Salt passes its own
    # __pub_* ones too) and is refused, naming the nearest known one.
    typo = salt_run.run("havip.failover_test", "failur=link_down")
    assert typo.returncode == 1
    assert typo.data["comment"].startswith("failover_test:failur: unknown key (did you mean failure?")


def test_the_runner_takes_the_cluster_from_the_pillar_the_master_compiles(master):
    """svr1's key accepted, no minion running: the master compiles svr1's
    pillar and every node's, merges them over the formula's parameters
    from its file server and validates them; no minion is asked."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    accepted = pathlib.Path(master.config["pki_dir"]) / "minions" / "svr1"
    accepted.write_bytes(key.public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    salt_run = master.salt_run_cli(timeout=60)
    assert salt_run.run("saltutil.sync_all").returncode == 0
    report = salt_run.run("havip.standby", "nginx1", "tgt=svr1")
    assert report.data == {"balancer": "nginx1", "result": False, "retcode": 1,
                           "comment": "'nginx1' is not a balancer (balancers: svr1, svr2)"}
    refused = salt_run.run("havip.deploy", "max_failed=two")
    assert refused.data["comment"] == "deploy:max_failed: must be a whole number from 0 up, got 'two'"

"""
Salt's loader brings the formula's helpers (``_utils/havip_*.py``) to the
execution module and to the runner, which import them by their plain
names: a masterless minion after ``saltutil.sync_all``, and a master after
``salt-run saltutil.sync_all``.  No lab: one salt-call, one salt-master on
127.0.0.1 with the formula as its file root.
"""

import pytest

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
    assert "modules.havip" in synced["modules"]
    # The pillar's checks (havip_pillar) answer, naming the key.
    code, refused = minion.run("havip.validate", '{"nodes": {}}', minion_id="svr1")
    assert code != 0 and "havip pillar: havip:" in str(refused)
    code, refused = minion.run("havip.config")
    assert code != 0 and "nothing is deployed on this minion" in str(refused)


@pytest.fixture
def master(salt_factories, tmp_path):
    """A salt-master serving the formula (no minion)."""
    daemon = salt_factories.salt_master_daemon(
        "havip-loader-master",
        overrides={"file_roots": {"base": [str(formula_root(tmp_path / "formula"))]},
                   "enable_fqdns_grains": False},
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
    assert report.data == {"result": False, "retcode": 1,
                           "comment": "no minion matching '*' has havip deployed (run state.apply havip)"}
    assert report.returncode == 1
    # A keyword the runner does not know reaches it (Salt passes its own
    # __pub_* ones too) and is refused, naming the nearest known one.
    typo = salt_run.run("havip.failover_test", "failur=link_down")
    assert typo.returncode == 1
    assert typo.data["comment"].startswith("failover_test:failur: unknown key (did you mean failure?")

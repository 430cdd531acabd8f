"""
Render tests of the orchestrate files: what ``salt-run state.orchestrate
havip.deploy`` runs, compiled by a real masterless salt-call.
"""

from test.saltcall import DEBIAN_GRAINS


def test_the_orchestrate_runs_the_deploy_after_the_status_pre_check_with_the_deploy_pillar(salt_call):
    pillar = {"deploy": {"client": "client1", "rate": 50, "unknown": 1}}
    states = salt_call("master", DEBIAN_GRAINS).show_sls(pillar, sls="havip.deploy")
    assert states["havip-deploy-precheck"] == {"fun": "salt.runner", "name": "havip.status", "order": 10000}
    run = states["havip-deploy-run"]
    assert {key: run[key] for key in ("fun", "name", "client", "rate", "require")} == {
        "fun": "salt.runner", "name": "havip.deploy", "client": "client1", "rate": 50,
        "require": [{"salt": "havip-deploy-precheck"}]}
    assert "unknown" not in run

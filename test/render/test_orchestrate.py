"""
Render tests of the orchestrate files: what ``salt-run state.orchestrate
havip.deploy`` and ``havip.failover_test`` run, compiled by a real
masterless salt-call; and what the deploy reads of a balancer's
``state.show_sls havip.facts``.
"""

import havip_rollout
import pytest

from test.saltcall import DEBIAN_GRAINS, RenderError, seed_pillar


@pytest.mark.parametrize("name", ["deploy", "failover_test"])
def test_the_orchestrate_passes_its_whole_pillar_to_the_runner_after_the_status_pre_check(salt_call, name):
    """Every key goes through, a typo too: the runner refuses it, naming the
    nearest known key (test_runner.py); the pre-check looks at the cluster
    the target names."""
    options = {"client": "client1", "rate": 50, "tgt": "lb*", "tgt_type": "glob", "failur": "link_down"}
    states = salt_call("master", DEBIAN_GRAINS).show_sls({name: options}, sls=f"havip.{name}")
    prefix = f"havip-{name.replace('_', '-')}"
    assert states[f"{prefix}-precheck"] == {"fun": "salt.runner", "name": "havip.status", "tgt": "lb*",
                                            "tgt_type": "glob", "order": 10000}
    run = states[f"{prefix}-run"]
    assert {key: run[key] for key in ("fun", "name", "kwarg", "require")} == {
        "fun": "salt.runner", "name": f"havip.{name}", "kwarg": options,
        "require": [{"salt": f"{prefix}-precheck"}]}


def test_the_deploy_orchestrate_passes_the_applications_state_and_pools_to_the_runner(salt_call):
    options = {"state": "shop.app", "pools": ["api", "web"], "client": "client1"}
    states = salt_call("master", DEBIAN_GRAINS).show_sls({"deploy": options}, sls="havip.deploy")
    assert states["havip-deploy-run"]["kwarg"] == options
    assert (states["havip-deploy-precheck"]["name"], states["havip-deploy-precheck"]["tgt"]) == ("havip.status", "*")


def test_two_clusters_on_one_master_the_orchestrate_targets_one(salt_call):
    states = salt_call("master", DEBIAN_GRAINS).show_sls({}, sls="havip.failover_test")
    assert (states["havip-failover-test-precheck"]["tgt"], states["havip-failover-test-run"]["kwarg"]) == ("*", {})
    states = salt_call("master", DEBIAN_GRAINS).show_sls({"failover_test": {"tgt": "L@lb1,web1",
                                                                            "tgt_type": "compound"}},
                                                         sls="havip.failover_test")
    assert states["havip-failover-test-precheck"]["tgt"] == "L@lb1,web1"
    assert states["havip-failover-test-run"]["kwarg"] == {"tgt": "L@lb1,web1", "tgt_type": "compound"}


def test_an_orchestrate_pillar_that_is_not_a_mapping_fails_the_render(salt_call):
    with pytest.raises(RenderError, match="the deploy pillar must be a mapping of options"):
        salt_call("master", DEBIAN_GRAINS).show_sls({"deploy": "client1"}, sls="havip.deploy")


def test_the_deploy_reads_the_vrrp_version_the_new_pillar_gives_from_show_sls(salt_call):
    pillar = seed_pillar()
    pillar["havip"]["keepalived"] = {"vrrp_version": 2, "advert_int": 1}
    code, answer = salt_call("svr1", DEBIAN_GRAINS).run("state.show_sls", "havip.facts", pillar=pillar)
    assert code == 0, answer
    assert havip_rollout.pending_config(answer)["keepalived"]["vrrp_version"] == 2

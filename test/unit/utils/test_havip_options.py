"""
Unit tests of ``_utils/havip_options.py``: the runner's options checked
before anything runs (through the runner: test/unit/test_runner.py).
"""

import havip_options
import pytest


@pytest.mark.parametrize("values, problem", [
    ({"rate": 100, "tgt": "lb*", "tgt_type": "glob"}, None),
    ({"rate": True}, "deploy:rate: must be a number of requests per second from 0.1 to 1000, got True"),
    ({"max_failed": 1.5}, "deploy:max_failed: must be a whole number from 0 up, got 1.5"),
    ({"tgt": []}, "deploy:tgt: must be a Salt target (a string, or a list of minion ids), got []"),
    ({"client": "a b"}, "deploy:client: must be a minion id (letters, digits and _ . -), got 'a b'"),
])
def test_an_option_is_checked_against_what_it_accepts(values, problem):
    assert havip_options.invalid_option("deploy", values) == problem


def test_an_unknown_keyword_is_named_with_the_nearest_known_one_and_salts_own_are_not_options():
    def command(client=None, rate=100, **options):
        """A runner function."""
    assert havip_options.unknown_options(command, {"__pub_fun": "x"}) is None
    assert havip_options.unknown_options(command, {"rte": 5}) == (
        "command:rte: unknown key (did you mean rate? known: client, rate)")


@pytest.mark.parametrize("name", ["shop", "shop.app", "my_app.v-2", "app.init", "_private", "2fa", "havip_app",
                                  "myhavip.x"])
def test_a_deploys_state_is_an_sls_name_of_the_operators(name):
    assert havip_options.invalid_option("deploy", {"state": name}) is None


@pytest.mark.parametrize("name", ["", ".shop", "shop.", "shop..app", "../etc", "shop/app", "shop app", "shop\n",
                                  "shop;id", "-shop", "salt://shop", "havip", "havip.nginx", "havip.", 5, ["shop"]])
def test_a_deploys_state_that_is_no_sls_name_or_the_formulas_own_is_refused(name):
    assert havip_options.invalid_option("deploy", {"state": name}).startswith(
        "deploy:state: must be an SLS name (words of letters, digits, _ and - joined by single dots) that is not"
        " the formula's own")


@pytest.mark.parametrize("pools", [["api"], ["api", "web_2"], None])
def test_a_deploys_pools_are_pool_names(pools):
    assert havip_options.invalid_option("deploy", {"state": "shop", "pools": pools}) is None


@pytest.mark.parametrize("pools", ["api", [], ["API"], ["api", None], ["a" * 33], ("api",)])
def test_a_deploys_pools_that_are_no_list_of_pool_names_are_refused(pools):
    assert havip_options.invalid_option("deploy", {"state": "shop", "pools": pools}) == (
        f"deploy:pools: must be a list of pool names (names of havip:pools, at least one), got {pools!r}")


def test_a_deploys_pools_need_its_state():
    assert havip_options.invalid_option("deploy", {"state": None, "pools": ["api"]}) == (
        "deploy:pools: needs deploy:state (the SLS to apply on the pools' servers)")


def model(**pools):
    """A configuration's model of ``pools``: {pool: {server: its node, or None for an address}}."""
    return {"pools": [{"name": name, "servers": [{"name": server, "node": node} for server, node in servers.items()]}
                      for name, servers in pools.items()]}


def test_a_deploy_without_pools_rolls_every_pool_with_a_node_server_and_given_pools_once_each():
    config = model(api={"app1": "app1", "old": None}, ext={"old": None}, web={"nginx1": "nginx1"})
    assert havip_options.deploy_pools(config, None) == ["api", "web"]
    assert havip_options.deploy_pools(config, ["web", "api", "web"]) == ["web", "api"]


@pytest.mark.parametrize("pools, problem", [
    (["api", "nope"], "deploy:pools: nope is not a pool (pools: api, ext)"),
    (["ext"], "deploy:pools: ext has no server that is a node (every one is given by address): nothing to deploy"
              " there"),
])
def test_a_deploys_pools_the_model_cannot_deploy_are_refused_naming_the_option(pools, problem):
    with pytest.raises(ValueError) as refused:
        havip_options.deploy_pools(model(api={"app1": "app1"}, ext={"old": None}), pools)
    assert str(refused.value) == problem


def test_a_deploy_of_a_state_on_a_model_with_no_node_server_is_refused_naming_the_option():
    with pytest.raises(ValueError, match=r"^deploy:state: no pool has a server that is a node .*nothing to deploy$"):
        havip_options.deploy_pools(model(ext={"old": None}), None)

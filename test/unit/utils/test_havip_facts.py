"""
Unit tests of ``_utils/havip_facts.py``: the cluster facts the module, the
runner and the validation share.
"""

import havip_facts
import pytest
from salt.exceptions import CommandExecutionError


@pytest.mark.parametrize("failure, move", [
    # detection (interval 1 x fall 1 + timeout 2) for HAProxy failures, then
    # 4 adverts of 0.05 s + 1 s
    ("kill_haproxy", 4.2),
    ("stop_haproxy", 4.2),
    ("kill_keepalived", 1.2),
    ("link_down", 1.2),
])
def test_budgets_with_the_default_timers(facts, failure, move):
    # restore: interval 1 x rise 2 + timeout 2 + preempt_delay 0 + 4 adverts
    # + 2 s, + HAProxy's server checks inter 1s x rise 2
    assert havip_facts.failover_budgets(facts(), failure) == pytest.approx((move, 8.2))


def test_budgets_follow_the_configured_timers(facts):
    def slow(config):
        config["keepalived"].update(advert_int=2, preempt_delay=5)
        config["keepalived"]["check"].update(interval=2, fall=3, timeout=3, rise=4)
        config["backend"]["check"].update(inter="1500ms", rise=3)
    config = facts(slow)
    # move: 2 x 3 + 3 + 4 x 2 + 1; restore: 2 x 4 + 3 + 5 + 4 x 2 + 2 + 1.5 x 3
    assert havip_facts.failover_budgets(config, "kill_haproxy") == (18.0, 30.5)
    assert havip_facts.failover_budgets(config, "kill_keepalived") == (9.0, 30.5)


@pytest.mark.parametrize("value, seconds", [("1s", 1), ("500ms", 0.5), ("2000", 2), ("2m", 120), ("100us", 1e-4)])
def test_haproxy_seconds_reads_haproxys_time_syntax(value, seconds):
    assert havip_facts.haproxy_seconds(value) == pytest.approx(seconds)


def test_move_budget_is_the_master_down_interval_the_preempt_delay_and_2_s():
    assert havip_facts.move_budget({"advert_int": 0.05, "preempt_delay": 0}) == pytest.approx(2.2)
    assert havip_facts.move_budget({"advert_int": 1, "preempt_delay": 5}) == 11.0


@pytest.mark.parametrize("address, url", [
    ("192.168.100.10", "http://192.168.100.10:9090/"), ("fd00::10", "http://[fd00::10]:9090/")])
def test_url_brackets_an_ipv6_address(address, url):
    assert havip_facts.url(address, 9090) == url
    assert havip_facts.url(address, 1080, "/status;csv") == url.replace(":9090/", ":1080/status;csv")


def test_frontend_url_defaults_to_the_first_vip(facts):
    assert havip_facts.frontend_url(facts()) == "http://192.168.100.10:9090/"


def two_vips_one_per_balancer(config):
    config["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32", "virtual_router_id": 52,
                              "priorities": {"svr2": 200}}


def test_preferred_vips_and_holders_follow_each_vips_order(facts):
    config = facts(two_vips_one_per_balancer)
    assert (havip_facts.preferred_vips(config, "svr1"), havip_facts.preferred_vips(config, "svr2")) == (
        ["VI_1"], ["VI_2"])
    assert havip_facts.preferred_holders(config, ["svr1", "svr2"]) == {"VI_1": "svr1", "VI_2": "svr2"}
    assert havip_facts.preferred_holders(config, ["svr2"]) == {"VI_1": "svr2", "VI_2": "svr2"}
    assert havip_facts.preferred_holders(config, []) == {"VI_1": None, "VI_2": None}


@pytest.mark.parametrize("timeout, seconds", [(None, 30.0), (0.5, 0.5), (3600, 3600.0)])
def test_wait_limit_takes_seconds_up_to_the_limit(timeout, seconds):
    assert havip_facts.wait_limit("drain", timeout) == seconds


def test_wait_limit_names_the_function_and_the_limit():
    with pytest.raises(CommandExecutionError,
                       match=r"^havip.drain: timeout must be above 0 and at most 3600 s, got 3601$"):
        havip_facts.wait_limit("drain", 3601)


def test_probing_client_is_the_one_named_or_the_first_node_that_is_not_a_balancer(facts):
    assert havip_facts.probing_client(facts(), None, "failover_test:client") == "nginx1"
    assert havip_facts.probing_client(facts(), "client1", "failover_test:client") == "client1"


def test_probing_client_names_the_pillar_key_when_every_node_is_a_balancer(facts):
    def all_balancers(config):
        for name in ("nginx1", "nginx2"):
            config["nodes"][name].update(roles=["backend", "balancer"], priority={"nginx1": 120, "nginx2": 110}[name])
        config["backend"]["port"] = 8080
    with pytest.raises(ValueError, match=r"pillar failover_test:client"):
        havip_facts.probing_client(facts(all_balancers), None, "failover_test:client")


def master_view(config):
    """A configuration as the runner derives it on the master: no minion's own node."""
    return {**config, "node": None, "roles": []}


def test_cluster_config_needs_a_minion_with_havip_nodes(facts):
    config = master_view(facts())
    assert havip_facts.cluster_config({"client": None, "svr1": config}, "*") is config
    with pytest.raises(ValueError, match=r"^no minion matching 'lb\*' has a havip pillar on this master \(salt-run"
                                         r" pillar.show_pillar <minion> shows what it compiles\)$"):
        havip_facts.cluster_config({"lb1": None}, "lb*")


def test_cluster_config_refuses_minions_of_two_clusters_naming_both(facts, staging):
    configs = {"svr1": facts(), "nginx1": facts(minion="nginx1"), "lb1": facts(staging, minion="lb1"),
               "web1": facts(staging, minion="web1")}
    with pytest.raises(ValueError, match=(
            r"^the minions matching '\*' belong to 2 havip clusters: \{lb1, web1\} and"
            r" \{nginx1, nginx2, svr1, svr2\}; target one with tgt \(e.g. tgt='lb1,web1' tgt_type=list\)$")):
        havip_facts.cluster_config(configs, "*")
    assert havip_facts.cluster_config({"lb1": configs["lb1"], "web1": configs["web1"]}, "lb*") is configs["lb1"]


def test_the_nodes_of_a_cluster_need_one_pillar_but_for_their_os_family(facts):
    config = master_view(facts())
    configs = {name: master_view(facts()) for name in config["nodes"]}
    configs["nginx2"]["lookup"] = {**configs["nginx2"]["lookup"], "nginx": {"webroot": "/usr/share/nginx/html"}}
    configs["nginx2"]["firewall"] = {**configs["nginx2"]["firewall"], "manage": True}
    assert havip_facts.disagreement(config, configs) is None
    configs["svr2"]["keepalived"] = {**configs["svr2"]["keepalived"], "preempt": False}
    assert havip_facts.disagreement(config, configs) == (
        "the master compiles another havip pillar for svr2 (havip:keepalived differs): every node of a cluster"
        " needs the same one")
    configs["nginx1"] = None
    assert havip_facts.disagreement(config, configs) == (
        "nginx1 is a node of the cluster but the master compiles no havip pillar for it")


def test_unknown_key_names_the_nearest_known_one():
    assert havip_facts.unknown_key(["failur", "rate"], ["failure", "rate"]) == (
        "failur", "unknown key (did you mean failure? known: failure, rate)")
    assert havip_facts.unknown_key(["zzz"], ["failure"]) == ("zzz", "unknown key (known: failure)")
    assert havip_facts.unknown_key(["rate"], ["failure", "rate"]) is None


def test_every_failure_says_what_it_leaves_when_the_restore_fails():
    assert set(havip_facts.FAILURE_LEFT) == set(havip_facts.FAILURES)
    assert havip_facts.FAILURE_LEFT["stop_haproxy"].format(holder="svr1") == "HAProxy stays stopped on svr1"

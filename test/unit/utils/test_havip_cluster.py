"""
Unit tests of ``_utils/havip_cluster.py``: which configurations make one
cluster, whether its nodes agree, its frontend's URL, the probing minion and
the preferred holders of its VIPs.
"""

import havip_cluster
import pytest


def test_frontend_url_defaults_to_the_first_vip(facts):
    assert havip_cluster.frontend_url(facts()) == "http://192.168.100.10:9090/"


def two_vips_one_per_balancer(config):
    config["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32", "virtual_router_id": 52,
                              "priorities": {"svr2": 200}}


def test_preferred_vips_and_holders_follow_each_vips_order(facts):
    config = facts(two_vips_one_per_balancer)
    assert (havip_cluster.preferred_vips(config, "svr1"), havip_cluster.preferred_vips(config, "svr2")) == (
        ["VI_1"], ["VI_2"])
    assert havip_cluster.preferred_holders(config, ["svr1", "svr2"]) == {"VI_1": "svr1", "VI_2": "svr2"}
    assert havip_cluster.preferred_holders(config, ["svr2"]) == {"VI_1": "svr2", "VI_2": "svr2"}
    assert havip_cluster.preferred_holders(config, []) == {"VI_1": None, "VI_2": None}


def test_probing_client_is_the_one_named_or_the_first_node_that_is_not_a_balancer(facts):
    assert havip_cluster.probing_client(facts(), None, "failover_test:client") == "nginx1"
    assert havip_cluster.probing_client(facts(), "client1", "failover_test:client") == "client1"


def test_probing_client_names_the_pillar_key_when_every_node_is_a_balancer(facts):
    def all_balancers(config):
        for name in ("nginx1", "nginx2"):
            config["nodes"][name].update(roles=["backend", "balancer"], priority={"nginx1": 120, "nginx2": 110}[name])
        config["backend"]["port"] = 8080
    with pytest.raises(ValueError, match=r"pillar failover_test:client"):
        havip_cluster.probing_client(facts(all_balancers), None, "failover_test:client")


def master_view(config):
    """A configuration as the runner derives it on the master: no minion's own node."""
    return {**config, "node": None, "roles": []}


def test_cluster_config_needs_a_minion_with_havip_nodes(facts):
    config = master_view(facts())
    assert havip_cluster.cluster_config({"client": None, "svr1": config}, "*") is config
    with pytest.raises(ValueError, match=r"^no minion matching 'lb\*' has a havip pillar on this master \(salt-run"
                                         r" pillar.show_pillar <minion> shows what it compiles\)$"):
        havip_cluster.cluster_config({"lb1": None}, "lb*")


def test_cluster_config_refuses_minions_of_two_clusters_naming_both(facts, staging):
    configs = {"svr1": facts(), "nginx1": facts(minion="nginx1"), "lb1": facts(staging, minion="lb1"),
               "web1": facts(staging, minion="web1")}
    with pytest.raises(ValueError, match=(
            r"^the minions matching '\*' belong to 2 havip clusters: \{lb1, web1\} and"
            r" \{nginx1, nginx2, svr1, svr2\}; target one with tgt \(e.g. tgt='lb1,web1' tgt_type=list\)$")):
        havip_cluster.cluster_config(configs, "*")
    assert havip_cluster.cluster_config({"lb1": configs["lb1"], "web1": configs["web1"]}, "lb*") is configs["lb1"]


def test_the_nodes_of_a_cluster_need_one_pillar_but_for_their_os_family(facts):
    config = master_view(facts())
    configs = {name: master_view(facts()) for name in config["nodes"]}
    configs["nginx2"]["lookup"] = {**configs["nginx2"]["lookup"], "nginx": {"webroot": "/usr/share/nginx/html"}}
    configs["nginx2"]["firewall"] = {**configs["nginx2"]["firewall"], "manage": True}
    assert havip_cluster.disagreement(config, configs) is None
    configs["svr2"]["keepalived"] = {**configs["svr2"]["keepalived"], "preempt": False}
    assert havip_cluster.disagreement(config, configs) == (
        "the master compiles another havip pillar for svr2 (havip:keepalived differs): every node of a cluster"
        " needs the same one")
    configs["nginx1"] = None
    assert havip_cluster.disagreement(config, configs) == (
        "nginx1 is a node of the cluster but the master compiles no havip pillar for it")

"""
Unit tests of ``_utils/havip_pillar.py``: the merged configuration
validated and derived (every bad pillar refused at render time:
test/render/test_pillar_validation.py).
"""

import havip_pillar
import pytest
from salt.exceptions import CommandExecutionError


def test_validate_derives_roles_backends_and_balancers(merged_seed):
    config = havip_pillar.validate(merged_seed(), "svr1")
    assert config["roles"] == ["balancer"]
    assert config["node"]["priority"] == 150
    assert [n["name"] for n in config["backends"]] == ["nginx1", "nginx2"]
    assert [n["name"] for n in config["balancers"]] == ["svr1", "svr2"]
    assert config["vips"]["VI_1"]["address"] == "192.168.100.10"
    assert config["vips"]["VI_1"]["cidr"] == "192.168.100.10/24"


def test_validate_ranks_the_balancers_of_each_vip_by_its_own_priorities(merged_seed):
    config = merged_seed()
    config["nodes"]["svr3"] = {"roles": ["balancer"], "address": "192.168.100.15"}  # priority 100
    config["vips"]["VI_2"] = {"address": "192.168.100.20/24", "interface": "ens32",
                              "virtual_router_id": 52, "priorities": {"svr2": 200}}
    vips = havip_pillar.validate(config, "svr1")["vips"]
    assert vips["VI_1"]["priorities"] == {"svr1": 150, "svr2": 100, "svr3": 100}
    # Equal priorities: the higher address wins, as in VRRP.
    assert vips["VI_1"]["order"] == ["svr1", "svr3", "svr2"]
    assert vips["VI_2"]["priorities"] == {"svr1": 150, "svr2": 200, "svr3": 100}
    assert vips["VI_2"]["order"] == ["svr2", "svr1", "svr3"]
    assert vips["VI_2"]["unicast"] is False


def test_validate_gives_an_unlisted_minion_no_roles(merged_seed):
    assert havip_pillar.validate(merged_seed(), "elsewhere")["roles"] == []


def test_validate_errors_are_command_execution_errors(merged_seed):
    config = merged_seed()
    config["nodes"]["svr1"]["priority"] = 300
    with pytest.raises(CommandExecutionError, match="havip:nodes:svr1:priority"):
        havip_pillar.validate(config, "svr1")

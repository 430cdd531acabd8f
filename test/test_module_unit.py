"""
Fast tier: the havip execution module with mocked Salt dunders.
"""

import importlib.util
import json

import pytest
from salt.exceptions import CommandExecutionError

from test.saltcall import REPO, seed_pillar


@pytest.fixture
def havip():
    spec = importlib.util.spec_from_file_location("havip_module", REPO / "_modules" / "havip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.__grains__ = {"kernel": "Linux", "id": "svr1"}
    module.__pillar__ = seed_pillar()
    return module


def ip_addr_json(*addresses):
    return json.dumps([
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {"ifname": "ens32", "addr_info": [
            {"family": "inet6" if ":" in a else "inet", "local": a, "prefixlen": 24}
            for a in addresses]},
    ])


def fake_ip(stdout, retcode=0):
    calls = []

    def run_all(cmd, python_shell=False):
        calls.append(cmd)
        return {"retcode": retcode, "stdout": stdout, "stderr": "boom" if retcode else ""}
    return {"cmd.run_all": run_all}, calls


def test_virtual_refuses_non_linux_with_a_reason(havip):
    havip.__grains__ = {"kernel": "Windows"}
    assert havip.__virtual__()[0] is False
    havip.__grains__ = {"kernel": "Linux"}
    assert havip.__virtual__() == "havip"


def test_status_reports_a_held_vip(havip):
    havip.__salt__, calls = fake_ip(ip_addr_json("192.168.100.13", "192.168.100.10"))
    assert havip.status() == {"vips": {"VI_1": {
        "address": "192.168.100.10", "interface": "ens32", "held": True}}}
    assert calls == [["ip", "-j", "addr", "show"]]


def test_status_reports_a_vip_held_elsewhere(havip):
    havip.__salt__, _ = fake_ip(ip_addr_json("192.168.100.14"))
    assert havip.status()["vips"]["VI_1"]["held"] is False


def test_status_on_a_minion_without_vips_is_empty(havip):
    havip.__pillar__ = {}
    havip.__salt__, _ = fake_ip(ip_addr_json("192.168.100.11"))
    assert havip.status() == {"vips": {}}


def test_status_raises_when_ip_fails(havip):
    havip.__salt__, _ = fake_ip("", retcode=1)
    with pytest.raises(CommandExecutionError, match="ip -j addr show"):
        havip.status()


def merged_seed():
    """The seed pillar merged over the defaults the way map.jinja does."""
    import yaml
    defaults = yaml.safe_load((REPO / "havip" / "parameters" / "defaults.yaml").read_text())["havip"]
    config = dict(defaults)
    for key, value in seed_pillar()["havip"].items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def test_validate_derives_roles_backends_and_balancers(havip):
    config = havip.validate(merged_seed(), "svr1")
    assert config["roles"] == ["balancer"]
    assert config["node"]["priority"] == 150
    assert [n["name"] for n in config["backends"]] == ["nginx1", "nginx2"]
    assert [n["name"] for n in config["balancers"]] == ["svr1", "svr2"]
    assert config["vips"]["VI_1"]["address"] == "192.168.100.10"
    assert config["vips"]["VI_1"]["cidr"] == "192.168.100.10/24"


def test_validate_gives_an_unlisted_minion_no_roles(havip):
    assert havip.validate(merged_seed(), "elsewhere")["roles"] == []


def test_validate_accepts_json_from_the_command_line(havip):
    assert havip.validate(json.dumps(merged_seed()), "nginx1")["roles"] == ["backend"]


def test_validate_errors_are_command_execution_errors(havip):
    config = merged_seed()
    config["nodes"]["svr1"]["priority"] = 300
    with pytest.raises(CommandExecutionError, match="havip:nodes:svr1:priority"):
        havip.validate(config, "svr1")

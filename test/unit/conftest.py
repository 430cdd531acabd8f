"""
What the unit tests share: the command surfaces loaded from their files
with fake Salt dunders, the seed configuration as map.jinja merges and
validates it, and a clock whose sleep only advances it.
"""

import copy
import importlib.util
import subprocess

import havip_pillar
import pytest
import yaml

from test.saltcall import REPO, seed_pillar

SURFACES = {"module": REPO / "_modules" / "havip.py", "runner": REPO / "_runners" / "havip.py",
            "states": REPO / "_states" / "havip.py"}


@pytest.fixture
def surface():
    """Factory: a fresh copy of the execution module ("module"), the
    runner ("runner") or the state module ("states"), its dunders left to
    the test."""
    def load(kind):
        spec = importlib.util.spec_from_file_location(f"havip_{kind}", SURFACES[kind])
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded
    return load


def _merge(base, over):
    """Recursive dict merge (lists replace), like slsutil.merge in map.jinja."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@pytest.fixture
def merged_seed():
    """Factory: the seed pillar merged over the defaults the way map.jinja does."""
    def make():
        defaults = yaml.safe_load((REPO / "havip" / "parameters" / "defaults.yaml").read_text())["havip"]
        return _merge(defaults, seed_pillar()["havip"])
    return make


@pytest.fixture
def facts(merged_seed):
    """Factory: the facts a minion's havip.config returns (default: svr1's),
    the validated seed after an optional ``edit`` of it."""
    def make(edit=None, minion="svr1"):
        config = merged_seed()
        if edit:
            edit(config)
        return havip_pillar.validate(config, minion)
    return make


@pytest.fixture
def staging():
    """An edit of the seed into another cluster (a staging one, say): other
    nodes, another VIP."""
    def edit(config):
        config["nodes"] = {"web1": {"roles": ["backend"], "address": "192.168.200.11"},
                           "lb1": {"roles": ["balancer"], "address": "192.168.200.13", "priority": 150}}
        config["vips"] = {"VI_S": {"address": "192.168.200.10/24", "interface": "ens32", "virtual_router_id": 61}}
    return edit


class FakeTime:
    """A `time` module whose sleep() only advances the clock."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def time(self):
        return 1_700_000_000.0 + self.now


@pytest.fixture
def fake_time():
    """The FakeTime class (a test makes one per clock, or a subclass)."""
    return FakeTime


@pytest.fixture(scope="session")
def dead_pid():
    """The pid of a process that has exited and was reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid

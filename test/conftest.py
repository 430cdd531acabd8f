"""Shared fixtures of havip's test tiers."""

import os
import shutil
import subprocess
import sys
import uuid

# The formula's folders are what `spm build` packs and Salt syncs: no
# bytecode of the tests' imports lands there (nor stays from an older run).
sys.dont_write_bytecode = True
for _folder in ("_modules", "_states", "_runners", "_utils", "_beacons"):
    shutil.rmtree(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), _folder, "__pycache__"),
                  ignore_errors=True)

import pytest
import salt._logging.impl

from test.lab.lab import LAB_ROOT
from test.saltcall import REPO, SaltCall

# The formula's helpers import each other by their plain names, as Salt's
# loader lets them (it puts _utils on sys.path while it loads a module).
sys.path.insert(0, str(REPO / "_utils"))


ON_REQUEST = {"demo": "the `make demo` walk-through", "bench": "the `make bench` benchmark",
              "chaos": "the `make chaos` fault campaign"}


def pytest_configure(config):
    # Salt, once imported, buffers every log record in a temporary handler
    # and writes them to stderr at exit - after pytest's summary, into a
    # closed stream.  The records go to pytest's own handlers instead.
    salt._logging.impl.shutdown_temp_handler()
    config.addinivalue_line("markers", "lab: needs the namespace lab (root, real daemons)")
    config.addinivalue_line("markers", "trixie: a lab test `make test-trixie` runs on Debian 13 hosts too")
    for marker, what in ON_REQUEST.items():
        config.addinivalue_line("markers", f"{marker}: {what}, not a test")


def pytest_collection_modifyitems(config, items):
    """The demo, the benchmark and the fault campaign run only when asked for with -m."""
    asked = config.option.markexpr or ""
    for marker, what in ON_REQUEST.items():
        if marker in asked:
            continue
        skip = pytest.mark.skip(reason=f"{what}: run it with `make {marker}`")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def salt_factories_config():
    """Keep salt-factories' files out of /tmp (lab hosts mount their own
    tmpfs there) and out of the repo.  salt-factories makes only the last
    directory of the path: its parent is made here, for a lab test run on
    its own on a fresh machine."""
    LAB_ROOT.mkdir(parents=True, exist_ok=True)
    return {"root_dir": str(LAB_ROOT / "salt-factories")}


@pytest.fixture
def salt_call(tmp_path):
    """Factory: a masterless minion with the given id and grains."""
    def make(minion_id, grains, netns=None, synced=False, site_root=None):
        return SaltCall(tmp_path / minion_id, minion_id, grains, netns=netns, synced=synced, site_root=site_root)
    return make


def _remove_orphaned_throwaway_netns():
    """Throwaway namespaces are named hvt-<pid of the pytest that made
    them>-...; a run killed before its teardown leaves them behind.  Remove
    those whose pytest is gone (a live run's are left alone)."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    for name in names:
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "hvt" and parts[1].isdigit() and not os.path.exists(f"/proc/{parts[1]}"):
            subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def netns_with(request):
    """Factory: a throwaway network namespace holding the named interfaces
    (keepalived -t insists that a VRRP interface exists)."""
    _remove_orphaned_throwaway_netns()
    made = []

    def make(*interfaces):
        name = f"hvt-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        made.append(name)
        for index, interface in enumerate(interfaces):
            subprocess.run(["ip", "-n", name, "link", "add", interface, "type", "veth",
                            "peer", "name", f"hvtpeer{index}"], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", interface, "up"], check=True)
        return name

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], check=False)

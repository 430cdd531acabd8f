"""
Run the formula through a real masterless ``salt-call --local`` with chosen
grains and pillar: the fast test tier's way to render states and templates
exactly as a minion would, without any daemon.
"""

import json
import os
import pathlib
import subprocess
import sys

import yaml

from test.platforms import PLATFORMS

REPO = pathlib.Path(__file__).resolve().parent.parent
SALT_CALL = pathlib.Path(sys.executable).with_name("salt-call")

# The interfaces a test minion claims to have (VIPs must be on one):
# hvtmissing is claimed but absent from the throwaway netns, for a config
# the pillar check passes and keepalived -t refuses.
INTERFACES = {name: [] for name in ("lo", "ens32", "eth0", "hvtvip0", "hvtmissing")}


def grains_of(platform):
    """A test minion's grains on ``platform`` (test/platforms.py)."""
    return {**PLATFORMS[platform].grains, "init": "systemd", "ip_interfaces": INTERFACES}


DEBIAN_GRAINS = grains_of("debian-12")
REDHAT_GRAINS = grains_of("rhel-9")


# What Salt's file server needs of the repo.  file_roots gets a directory of
# links to just these: the roots backend walks all of a file root on every
# call, and the repo holds virtualenvs (hundreds of MB each).
FORMULA_DIRS = ("havip", "_modules", "_states", "_runners", "_utils", "_beacons")


def formula_root(path):
    """``path`` made a file root holding the formula only (links into this
    repo, also where an earlier run's point into another checkout);
    returns it."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name in FORMULA_DIRS:
        link = path / name
        if not link.is_symlink() or link.readlink() != REPO / name:
            link.unlink(missing_ok=True)
            link.symlink_to(REPO / name)
    return path


# pillar.example leaves the stats password out on purpose (a copy must not
# run with a known one): the tests give one of their own.
TEST_PASSWORD = "tests-own-stats-password"


def seed_pillar():
    """The pillar.example shipped with the formula (the seed's topology),
    with the tests' stats password."""
    pillar = yaml.safe_load((REPO / "pillar.example").read_text())
    pillar["havip"]["stats"] = {"password": TEST_PASSWORD}
    return pillar


class SaltCall:
    """A masterless minion config in ``root``; ``run`` calls one function.
    The module and its helpers load from the repo; with ``synced`` only
    once ``saltutil.sync_all`` has brought them from the file root, as on
    a real minion.  ``site_root``: a file root of the operator's, before
    the formula's (its own templates, docs/tofs.md)."""

    def __init__(self, root, minion_id, grains, netns=None, synced=False, site_root=None):
        self.root = pathlib.Path(root)
        self.netns = netns
        conf = self.root / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        config = {
            "id": minion_id,
            "file_client": "local",
            "file_roots": {"base": [*([str(site_root)] if site_root else []),
                                    str(formula_root(self.root / "formula"))]},
            "root_dir": str(self.root / "root"),
            "pillar_roots": {"base": [str(self.root / "pillar")]},
            "enable_fqdns_grains": False,
            "grains": grains,
        }
        if not synced:
            config.update(module_dirs=[str(REPO / "_modules")], states_dirs=[str(REPO / "_states")],
                          utils_dirs=[str(REPO / "_utils")])
        (conf / "minion").write_text(yaml.safe_dump(config))

    def set_pillar(self, pillar):
        """``pillar`` is this minion's own from now on (as a master would
        give it), not only an override on one call: what a state's
        template reads with pillar.get (the secrets)."""
        (self.root / "pillar").mkdir(exist_ok=True)
        (self.root / "pillar" / "top.sls").write_text("base:\n  '*':\n    - havip\n")
        (self.root / "pillar" / "havip.sls").write_text(yaml.safe_dump(pillar))

    def run(self, function, *args, pillar=None, **kwargs):
        """Return (retcode, parsed JSON 'local' value or raw text)."""
        cmd = [str(SALT_CALL), "--local", "-c", str(self.root / "conf"), "--out", "json",
               "--retcode-passthrough", function, *args]
        cmd += [f"{key}={json.dumps(value)}" for key, value in kwargs.items()]
        if pillar is not None:
            cmd.append(f"pillar={json.dumps(pillar)}")
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONDONTWRITEBYTECODE": "1"})
        try:
            return proc.returncode, json.loads(proc.stdout)["local"]
        except (ValueError, KeyError):
            return proc.returncode, proc.stdout + proc.stderr

    def show_sls(self, pillar, sls="havip"):
        """The compiled states of ``sls`` as {state id: {'fun': .., args..}}."""
        code, data = self.run("state.show_sls", sls, pillar=pillar)
        if code != 0 or not isinstance(data, dict):
            raise RenderError(data)
        states = {}
        for state_id, body in data.items():
            for module, items in body.items():
                if module.startswith("__"):
                    continue
                args = {"fun": f"{module}.{next(i for i in items if isinstance(i, str))}"}
                for item in items:
                    if isinstance(item, dict):
                        args.update(item)
                states[state_id] = args
        return states


class RenderError(Exception):
    """The formula refused to render (e.g. a bad pillar)."""

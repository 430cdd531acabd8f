"""
HAProxy's and keepalived's configs of today's pillars, byte for byte: the
pillars of pillar.example, of the README and of the lab's topologies render
on every balancer exactly what test/render/snapshots/ holds (the configs
before services and pools came, issue 23).  A change of these files is a
change of every running cluster's config: regenerate them only on purpose,
``HAVIP_SNAPSHOTS=write .venv/bin/python -m pytest test/render/test_config_snapshots.py``.
"""

import copy
import os
import pathlib

import pytest

from test import certs
from test.formula import render, validated
from test.lab.cluster import ACTIVE, SEED, TRIO_HTTP
from test.saltcall import seed_pillar

SNAPSHOTS = pathlib.Path(__file__).resolve().parent / "snapshots"
TEMPLATES = ("haproxy.cfg.jinja", "keepalived.conf.jinja")
# One certificate for every run: only its path reaches the configs.
CERTIFICATE = certs.pem()


def _readme_mine():
    """The README's pillar of a backend that takes its address from the mine."""
    havip = seed_pillar()["havip"]
    havip["mine"] = {"network": "192.168.100.0/24"}
    havip["nodes"]["web3"] = {"roles": ["backend"]}
    return havip


def _tls(havip, **frontend):
    havip = copy.deepcopy(havip)
    havip["frontend"] = {**havip.get("frontend", {}), **frontend,
                         "tls": {"certificate": CERTIFICATE, "redirect": frontend.get("mode") == "http"}}
    return havip


PILLARS = {
    "example": seed_pillar()["havip"],
    "example-tls-http": _tls(seed_pillar()["havip"], mode="http"),
    "example-tls-tcp": _tls(seed_pillar()["havip"], mode="tcp"),
    "readme-mine": _readme_mine(),
    "lab-seed": SEED.pillar["havip"],
    "lab-trio-http": TRIO_HTTP.pillar["havip"],
    "lab-active": ACTIVE.pillar["havip"],
    "lab-active-tls": _tls(ACTIVE.pillar["havip"], mode="http"),
}

# What the mine holds for the nodes without an address: the next free one.
MINE = {"web1": "192.168.100.31", "web2": "192.168.100.32", "web3": "192.168.100.33"}


def _mine_get(name, function):
    return {name: [MINE[name]]} if function == "havip_address" and name in MINE else {}


def _balancers(havip):
    return sorted(name for name, node in havip["nodes"].items() if "balancer" in node["roles"])


CASES = [(pillar, balancer, template) for pillar, havip in sorted(PILLARS.items())
         for balancer in _balancers(havip) for template in TEMPLATES]


def rendered(pillar, balancer, template):
    havip = PILLARS[pillar]
    config = validated(havip, balancer, mine_get=_mine_get, ip_addrs=lambda **kwargs: [])
    return render(template, config, havip)


@pytest.mark.parametrize("pillar, balancer, template", CASES)
def test_todays_pillars_render_the_same_configs(pillar, balancer, template):
    snapshot = SNAPSHOTS / f"{pillar}-{balancer}-{template.removesuffix('.jinja')}"
    text = rendered(pillar, balancer, template)
    if os.environ.get("HAVIP_SNAPSHOTS") == "write":
        snapshot.write_text(text)
    assert text == snapshot.read_text()

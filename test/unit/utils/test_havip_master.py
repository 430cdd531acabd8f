"""
Unit tests of ``_utils/havip_master.py``'s master-side configuration: what
map.jinja makes of a minion's pillar, derived on the master.
"""

import copy

import havip_master
import havip_values
import pytest
from salt.exceptions import CommandExecutionError

from test.formula import DEFAULTS, validated
from test.saltcall import seed_pillar

SEED = seed_pillar()["havip"]


def validate(havip, minion_id="svr1", **kwargs):
    kwargs.setdefault("interfaces", ["lo", "ens32"])
    return validated(havip, minion_id, **kwargs)


def test_the_master_derives_the_public_configuration_from_a_minions_pillar():
    """As map.jinja on a minion (the same merge, the same checks), but
    without the minion's own data: the runner's view of the cluster."""
    derived = havip_master.master_config(copy.deepcopy(SEED), copy.deepcopy(DEFAULTS))
    checks = validate(SEED)["checks"]
    everyone = sorted(node["address"] for node in SEED["nodes"].values())  # no node of its own: it pings every one
    assert derived == {**validate(SEED), "node": None, "roles": [], "listen": {},
                       "checks": {**checks, "link": {**checks["link"], "addresses": everyone}},
                       "firewalld": {"ports": [], "rich_rules": [], "closed": {"ports": [], "rich_rules": []}},
                       "vips": {name: {key: value for key, value in vip.items() if key != "relay_to"}
                                for name, vip in validate(SEED)["vips"].items()}}
    assert "password" not in derived["stats"]
    assert havip_master.master_config(None, DEFAULTS) is None
    assert havip_master.master_config({"nodes": {}}, DEFAULTS) is None
    with pytest.raises(CommandExecutionError, match=r"^havip pillar: havip: must be a dictionary, got str$"):
        havip_master.master_config("nodes", DEFAULTS)
    with pytest.raises(havip_values.Invalid, match=r"havip:stats:password: is a well-known placeholder"):
        havip_master.master_config({**SEED, "stats": {**SEED["stats"], "password": "Passw0rd"}}, DEFAULTS)


def test_a_backend_whose_address_is_in_the_mine_has_none_on_the_master():
    pillar = copy.deepcopy(SEED)
    pillar["mine"] = {"network": "192.168.100.0/24"}
    del pillar["nodes"]["nginx1"]["address"]
    derived = havip_master.master_config(pillar, DEFAULTS)
    assert derived["nodes"]["nginx1"]["address"] is None and derived["nodes"]["nginx1"]["discovered"] is True

"""
Unit tests of ``_utils/havip_relay.py``: the handover's nftables tables read
back (through ``havip.status`` on a fake host: test/unit/test_module.py).
"""

import json

import havip_relay
import pytest

VI_1 = {"address": "192.168.100.10", "family": 4, "interface": "ens32"}
VI_6 = {"address": "fd00::10", "family": 6, "interface": "ens32"}


@pytest.fixture(autouse=True)
def nft_installed(monkeypatch):
    monkeypatch.setattr(havip_relay.shutil, "which", lambda name: f"/usr/sbin/{name}")


def nft(tables):
    """A fake ``run`` answering `nft -j list table FAMILY NAME` from
    ``tables`` ({(family, name): [items]}), and the commands it ran."""
    ran = []

    def run(cmd):
        ran.append(cmd)
        items = tables.get(tuple(cmd[4:6]))
        if items is None:
            return {"retcode": 1, "stdout": "", "stderr": "Error: No such file or directory"}
        return {"retcode": 0, "stdout": json.dumps({"nftables": items}), "stderr": ""}
    return run, ran


def dup_rule(*peers):
    return {"rule": {"expr": [{"match": {}}, *({"dup": {"addr": peer, "dev": "ens32"}} for peer in peers),
                              {"drop": None}]}}


def test_relays_reads_each_vips_table_in_its_family_and_skips_the_missing():
    run, ran = nft({("ip6", "havip_relay_VI_6"): [{"table": {}}, dup_rule("fd00::13", "fd00::15"),
                                                  dup_rule("fd00::13", "fd00::15")]})
    assert havip_relay.relays(run, {"VI_1": VI_1, "VI_6": VI_6}) == {"VI_6": ["fd00::13", "fd00::15"]}
    assert ran == [["nft", "-j", "list", "table", "ip", "havip_relay_VI_1"],
                   ["nft", "-j", "list", "table", "ip6", "havip_relay_VI_6"]]


def test_a_relay_table_without_a_dup_rule_relays_to_nobody():
    run, _ = nft({("ip", "havip_relay_VI_1"): [{"table": {}}, {"chain": {}}]})
    assert havip_relay.relays(run, {"VI_1": VI_1}) == {"VI_1": []}


def test_tracking_is_the_inet_havip_track_table():
    assert havip_relay.tracking(nft({("inet", "havip_track"): [{"table": {}}]})[0]) is True
    assert havip_relay.tracking(nft({})[0]) is False

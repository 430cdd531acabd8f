"""
The runner's view of the cluster comes from the pillar the master compiles
for each minion (havip_master.Minions.pillar_config), with Salt's own
pillar compiler over real pillar files: one execution-module loader serves
every compile of a runner call, and so does one file client of each
kind; each compile still sees its own minion's grains, in ``grains`` and
through ``salt['grains.get']``.
"""

import havip_master
import pytest
import salt.config
import salt.fileclient
import salt.utils.minions
import yaml

from test.saltcall import REPO, seed_pillar

PAGE = "{{ salt['grains.get']('id') }} of {{ grains['os_family'] }}, {{ grains['id'] }}"


def master_opts(tmp_path):
    """A master's options: the formula as its file root, the seed's pillar
    with nginx1's page templated on the grains as its pillar root."""
    pillar = seed_pillar()
    pillar["havip"]["nodes"]["nginx1"]["page"] = "PAGE"
    roots = tmp_path / "pillar"
    roots.mkdir()
    (roots / "top.sls").write_text("base:\n  '*':\n    - havip\n")
    (roots / "havip.sls").write_text(yaml.safe_dump(pillar).replace("PAGE", PAGE))
    config = tmp_path / "master"
    config.write_text(yaml.safe_dump({
        "root_dir": str(tmp_path), "cachedir": str(tmp_path / "cache"), "pki_dir": str(tmp_path / "pki"),
        "sock_dir": str(tmp_path / "sock"), "log_file": str(tmp_path / "log"), "enable_fqdns_grains": False,
        "file_roots": {"base": [str(REPO)]}, "pillar_roots": {"base": [str(roots)]},
    }))
    return salt.config.master_config(str(config))


FAMILIES = {"nginx1": "Debian", "nginx2": "RedHat", "svr1": "Debian"}


@pytest.fixture
def minions(tmp_path, monkeypatch):
    monkeypatch.setattr(salt.utils.minions, "get_minion_data",
                        lambda minion, opts: (minion, {"id": minion, "os_family": FAMILIES[minion]}, None))
    return havip_master.Minions(None, master_opts(tmp_path))


@pytest.fixture
def built(monkeypatch):
    """Every file client Salt builds: (its kind's arguments, the client)."""
    clients, build = [], salt.fileclient.get_file_client

    def counted(opts, *args, **kwargs):
        clients.append((args, build(opts, *args, **kwargs)))
        return clients[-1][1]

    monkeypatch.setattr(salt.fileclient, "get_file_client", counted)
    return clients


def test_each_compile_of_one_runner_call_sees_its_own_minions_grains(minions):
    with havip_master.shared_file_clients():
        pages = {minion: minions.pillar_config(minion)["nodes"]["nginx1"]["page"] for minion in FAMILIES}
    assert pages == {minion: f"{minion} of {family}, {minion}" for minion, family in FAMILIES.items()}
    assert minions.functions is not None


def test_the_compiles_of_one_runner_call_share_one_file_client_of_each_kind(minions, built):
    with havip_master.shared_file_clients():
        minions.pillar_config("nginx1")
        once = len(built)
        for minion in FAMILIES:
            minions.pillar_config(minion)
    assert once == len(built) == len({args for args, _ in built})


def test_salts_own_file_clients_come_back_when_the_compiles_end_even_on_error(minions, built):
    counted = salt.fileclient.get_file_client
    with pytest.raises(ValueError), havip_master.shared_file_clients():
        minions.pillar_config("nginx1")
        raise ValueError("a compile failed")
    assert salt.fileclient.get_file_client is counted
    servers = [client for args, client in built if args in {(), (False,)}]
    assert servers and all(client._closing for client in servers)  # destroyed once, at the end

"""
The runner's view of the cluster comes from the pillar the master compiles
for each minion (havip_master.Minions.pillar_config), with Salt's own
pillar compiler over real pillar files: one execution-module loader serves
every compile of a runner call, and each compile still sees its own
minion's grains, in ``grains`` and through ``salt['grains.get']``.
"""

import havip_master
import salt.config
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


def test_each_compile_of_one_runner_call_sees_its_own_minions_grains(tmp_path, monkeypatch):
    families = {"nginx1": "Debian", "nginx2": "RedHat", "svr1": "Debian"}
    monkeypatch.setattr(salt.utils.minions, "get_minion_data",
                        lambda minion, opts: (minion, {"id": minion, "os_family": families[minion]}, None))
    minions = havip_master.Minions(None, master_opts(tmp_path))
    pages = {minion: minions.pillar_config(minion)["nodes"]["nginx1"]["page"] for minion in families}
    assert pages == {minion: f"{minion} of {family}, {minion}" for minion, family in families.items()}
    assert minions.functions is not None

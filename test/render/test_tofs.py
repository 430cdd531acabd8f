"""
Render tests of template overrides (TOFS, docs/tofs.md): a template of the
operator's, in a file root before the formula's, under
``havip/files/<minion id>/`` or ``havip/files/<os_family>/``, is the one a
real masterless salt-call renders, checked by the daemon as the formula's
own; every other minion gets the formula's template.
"""

import havip_contract
import pytest

from test.render.test_formula_render import render_config
from test.saltcall import DEBIAN_GRAINS, REDHAT_GRAINS, seed_pillar

HAPROXY = "havip-haproxy-config-file"
# An override that adds to the formula's template: its text, then a line of its own.
OVERRIDE = "{{% include 'havip/files/haproxy.cfg.jinja' %}}\n# {mark}\n"


@pytest.fixture
def site_root(tmp_path):
    """The operator's file root: svr1's own HAProxy template, and one for
    the Debian family."""
    root = tmp_path / "site"
    for folder, mark in (("svr1", "svr1's own"), ("Debian", "Debian's own")):
        (root / "havip" / "files" / folder).mkdir(parents=True)
        (root / "havip" / "files" / folder / "haproxy.cfg.jinja").write_text(OVERRIDE.format(mark=mark))
    return root


def haproxy_cfg(salt_call, tmp_path, minion_id, grains, site_root, pillar=None):
    """``minion_id``'s HAProxy configuration as its file.managed renders it
    (haproxy -c included): (state result, text)."""
    pillar = pillar or seed_pillar()
    minion = salt_call(minion_id, grains, site_root=site_root)
    states = minion.show_sls(pillar)
    result, text = render_config(minion, states, HAPROXY, tmp_path / f"{minion_id}-haproxy.cfg", pillar)
    assert result["result"] is True, result
    return states[HAPROXY]["source"], text


def test_the_minions_own_template_wins_then_its_os_familys_then_the_formulas(salt_call, tmp_path, site_root):
    source, text = haproxy_cfg(salt_call, tmp_path, "svr1", DEBIAN_GRAINS, site_root)
    assert source == ["salt://havip/files/svr1/haproxy.cfg.jinja", "salt://havip/files/Debian/haproxy.cfg.jinja",
                      "salt://havip/files/haproxy.cfg.jinja"]
    assert text.endswith("# svr1's own\n") and "backend havip_backends" in text
    _, text = haproxy_cfg(salt_call, tmp_path, "svr2", DEBIAN_GRAINS, site_root)
    assert text.endswith("# Debian's own\n") and "backend havip_backends" in text
    _, text = haproxy_cfg(salt_call, tmp_path, "svr2", REDHAT_GRAINS, site_root)
    assert "'s own" not in text and "backend havip_backends" in text


def test_without_an_override_every_file_is_the_formulas_own(salt_call, tmp_path):
    _, text = haproxy_cfg(salt_call, tmp_path, "svr1", DEBIAN_GRAINS, site_root=None)
    assert "'s own" not in text
    states = salt_call("svr1", DEBIAN_GRAINS).show_sls(seed_pillar())
    states.update(salt_call("nginx1", DEBIAN_GRAINS).show_sls(seed_pillar()))
    templated = {state_id: args["source"][-1] for state_id, args in states.items()
                 if args["fun"] == "file.managed" and "source" in args}
    assert templated == {state_id: f"salt://havip/files/{name}" for state_id, name in havip_contract.TEMPLATES.items()}


def test_a_path_prefix_and_a_source_file_of_the_operators_are_picked(salt_call, tmp_path, site_root):
    (site_root / "ours" / "files").mkdir(parents=True)
    (site_root / "ours" / "files" / "edge.cfg.jinja").write_text(OVERRIDE.format(mark="edge"))
    pillar = seed_pillar()
    pillar["havip"]["tofs"] = {"path_prefix": "ours", "source_files": {HAPROXY: ["edge.cfg.jinja"]}}
    _, text = haproxy_cfg(salt_call, tmp_path, "svr1", DEBIAN_GRAINS, site_root, pillar)
    assert text.endswith("# edge\n")

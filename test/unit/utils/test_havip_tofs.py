"""
Unit tests of ``_utils/havip_tofs.py``: where each template is looked for
(template-formula's TOFS), from the ``tofs`` key and a minion's grains; a
grain value that is no folder name is skipped.
"""

import havip_contract
import havip_tofs
import havip_values
import pytest

from test.formula import DEFAULTS, REPO

GRAINS = {"id": "svr1", "os_family": "Debian", "osmajorrelease": 12, "roles": ["web", "edge"],
          "site": {"rack": "r7"}}
HAPROXY = "havip-haproxy-config-file"


def tofs(**over):
    return {**DEFAULTS["tofs"], **over}


def test_by_default_the_minion_id_then_the_os_family_then_the_formulas_own():
    assert havip_tofs.sources(tofs(), GRAINS)[HAPROXY] == [
        "salt://havip/files/svr1/haproxy.cfg.jinja",
        "salt://havip/files/Debian/haproxy.cfg.jinja",
        "salt://havip/files/haproxy.cfg.jinja",
    ]


def test_every_template_of_the_formula_has_its_sources_and_ends_with_its_own():
    templates = sorted(path.name for path in (REPO / "havip" / "files").glob("*.jinja"))
    assert sorted(havip_contract.TEMPLATES.values()) == templates
    sources = havip_tofs.sources(tofs(files_switch=[]), GRAINS)
    assert sources == {state: [f"salt://havip/files/{name}"] for state, name in havip_contract.TEMPLATES.items()}


def test_a_path_prefix_and_source_files_come_first_each_folder_in_turn():
    sources = havip_tofs.sources(tofs(files_switch=["id"], path_prefix="site/havip",
                                      source_files={HAPROXY: ["haproxy-edge.cfg.jinja"]}), GRAINS)
    assert sources[HAPROXY] == [
        "salt://site/havip/files/svr1/haproxy-edge.cfg.jinja",
        "salt://site/havip/files/svr1/haproxy.cfg.jinja",
        "salt://site/havip/files/haproxy-edge.cfg.jinja",
        "salt://site/havip/files/haproxy.cfg.jinja",
        "salt://havip/files/haproxy.cfg.jinja",
    ]
    assert sources["havip-nginx-config-file"][-1] == "salt://havip/files/nginx-site.conf.jinja"


def test_a_list_a_number_a_nested_grain_name_folders_and_a_missing_one_none():
    assert havip_tofs.folders(["roles", "osmajorrelease", "site:rack", "absent", "os_family", "id"], GRAINS) == [
        "web", "edge", "12", "r7", "Debian", "svr1"]
    assert havip_tofs.folders(["id", "id"], GRAINS) == ["svr1"]


@pytest.mark.parametrize("value", ["..", ".hidden", "a/b", "Debian GNU/Linux", "x\n", True, {"a": 1}, ["ok", "../up"]])
def test_a_grain_value_that_is_no_folder_name_is_skipped(value):
    sources = havip_tofs.sources(tofs(files_switch=["bad", "id"]), {**GRAINS, "bad": value})
    expected = ["ok"] if value == ["ok", "../up"] else []
    assert sources[HAPROXY] == [
        *(f"salt://havip/files/{folder}/haproxy.cfg.jinja" for folder in [*expected, "svr1"]),
        "salt://havip/files/haproxy.cfg.jinja",
    ]


@pytest.mark.parametrize("key, value", [
    ("files_switch", ["id", "os family"]),
    ("files_switch", "id"),
    ("path_prefix", "../etc"),
    ("path_prefix", "/srv/salt"),
    ("path_prefix", "salt://site"),
    ("source_files", {"havip-haproxy-config-fle": ["a.jinja"]}),
    ("source_files", {HAPROXY: ["../../etc/shadow"]}),
    ("source_files", {HAPROXY: "a.jinja"}),
])
def test_the_contract_refuses_a_tofs_key_that_could_leave_the_file_server_or_names_no_state(key, value):
    config = {**DEFAULTS, "tofs": tofs(**{key: value})}
    with pytest.raises(havip_values.Invalid) as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key.startswith(f"tofs:{key}")

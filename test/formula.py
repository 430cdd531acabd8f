"""
The formula's data and templates in process, for tests that need many
renders fast: the defaults merged under a pillar as map.jinja merges them,
the pillar contract's validation, and a template rendered by Salt's own
Jinja renderer with the context the states give it (``havip``, the
validated configuration) and the pillar, from which templates read secrets.
"""

import copy
import pathlib

import havip_pillar
import salt.config
import salt.utils.dictupdate
import salt.utils.templates
import yaml

REPO = pathlib.Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "havip" / "files"
DEFAULTS = yaml.safe_load((REPO / "havip" / "parameters" / "defaults.yaml").read_text())["havip"]
OPTS = salt.config.minion_config(None)


def merged(havip):
    """defaults <- ``havip`` (the pillar's havip key), as map.jinja merges them."""
    return salt.utils.dictupdate.merge(copy.deepcopy(DEFAULTS), copy.deepcopy(havip),
                                       strategy="recurse", merge_lists=False)


def validated(havip, minion_id, **kwargs):
    """The states' ``havip`` on ``minion_id`` for the pillar ``havip``."""
    return havip_pillar.validate(merged(havip), minion_id, **kwargs)


def _pillar_get(havip):
    def get(key, default=""):
        value = {"havip": havip}
        for part in key.split(":"):
            if not isinstance(value, dict) or part not in value:
                return default
            value = value[part]
        return value
    return get


def render(template, config, havip):
    """havip/files/``template`` rendered for the states' ``config`` and the
    pillar ``havip``."""
    context = {"opts": OPTS, "saltenv": "base", "havip": config, "salt": {"pillar.get": _pillar_get(havip)}}
    return salt.utils.templates.render_jinja_tmpl((TEMPLATES / template).read_text(), context)


# ---- edits of a pillar's havip key, for tests of bad pillars ------------------


def set_key(path, value):
    def edit(havip):
        *parents, last = path.split(":")
        node = havip
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return edit


def delete_key(path):
    def edit(havip):
        *parents, last = path.split(":")
        node = havip
        for key in parents:
            node = node[key]
        del node[last]
    return edit


def second_vip(**overrides):
    def edit(havip):
        havip["vips"]["VI_2"] = {"address": "192.168.100.9/24", "interface": "ens32",
                                 "virtual_router_id": 52, **overrides}
    return edit


def vip_named(name):
    def edit(havip):
        havip["vips"][name] = havip["vips"].pop("VI_1")
    return edit


def both(*edits):
    def edit(havip):
        for one in edits:
            one(havip)
    return edit

"""
Template overrides without forking (template-formula's TOFS, "Template
Override and Files Switch"): where each file.managed of the formula looks
for its template, first in folders a minion's grains name, then the
formula's own.  The ``tofs`` pillar key says which grains
(``files_switch``), under which salt:// folder (``path_prefix``), and extra
template names per state (``source_files``); the contract checked them.

Pure helpers: the grains come in as an argument (no Salt dunders).
"""

import re

import salt.utils.data
from havip_contract import TEMPLATES

# The formula's folder on the file server (map.jinja's tplroot) and its templates' folder.
FORMULA = "havip"
FILES = "files"
# A grain value that names a folder: one path segment, never . or ..
_FOLDER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}")


def _values(grains, name):
    """The values of grain ``name`` (``a:b`` a nested key) that name a
    folder; none if the minion has no such grain.  A value that is not one
    path segment (``..``, ``a/b``, a space, a dict) names no folder and is
    skipped: a minion's odd id must not stop its apply."""
    value = salt.utils.data.traverse_dict_and_list(grains, name, default=None, delimiter=":")
    values = value if isinstance(value, list) else [value]
    return [
        str(item)
        for item in values
        if isinstance(item, (str, int)) and not isinstance(item, bool) and _FOLDER.fullmatch(str(item))
    ]


def folders(files_switch, grains):
    """The folders ``files_switch``'s grains name on this minion, in order,
    each once."""
    found = [folder for name in files_switch for folder in _values(grains, name)]
    return list(dict.fromkeys(found))


def _url(*parts):
    return "salt://" + "/".join(parts)


def sources(tofs, grains):
    """{state id: its file.managed ``source``}: for each template of
    TEMPLATES, ``<prefix>/files/<folder>/<name>`` for every folder the
    grains name and every name (``source_files`` of the state, then the
    template's own), then ``<prefix>/files/<name>``, and last the formula's
    own ``havip/files/<template>``.  ``prefix`` is ``path_prefix`` or
    ``havip``.  Salt takes the first that exists."""
    prefix = tofs["path_prefix"] or FORMULA
    switched = folders(tofs["files_switch"], grains)
    found = {}
    for state_id, template in TEMPLATES.items():
        names = [*(tofs["source_files"] or {}).get(state_id, []), template]
        urls = [_url(prefix, FILES, folder, name) for folder in switched for name in names]
        urls += [_url(prefix, FILES, name) for name in names]
        found[state_id] = list(dict.fromkeys([*urls, _url(FORMULA, FILES, template)]))
    return found

"""
The pillar reference, generated from the contract's table
(_utils/havip_contract.py) and the defaults (havip/parameters/):

    python3 -m test.pillar_reference > docs/pillar.md      (make docs)

A fast-tier test fails when docs/pillar.md is not what this prints, so a
key cannot be added, renamed or re-documented without the reference.
"""

import json
import pathlib
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parent.parent
PARAMETERS = REPO / "havip" / "parameters"
sys.path.insert(0, str(REPO / "_utils"))
import havip_contract  # noqa: E402  (as Salt's loader imports it)
import havip_values  # noqa: E402

HEADER = """\
# havip pillar reference

Every key under `havip:`, generated from the formula's contract
(`_utils/havip_contract.py`, which also checks every value) and its defaults
(`havip/parameters/defaults.yaml`, overridden per OS family by
`havip/parameters/os_family/<family>.yaml`).  Do not edit: run `make docs`.

A key not listed here is refused, naming the nearest known one (beside a
secret, the unknown key itself is not named: `password:x`, without its
space, is such a key).  A value "written as is" is the operator's own syntax
(HAProxy's lines, the page's HTML): havip checks only what the table says
and writes it unchanged.  Secrets are checked like every other key but never
reach the rendered states, Salt's output, `havip.config` or a refusal's
message: the templates read them from the pillar.

| key | default | required | meaning | accepted |
|---|---|---|---|---|
"""


def _value(tree, key):
    for part in key.split(":"):
        if not isinstance(tree, dict) or part not in tree:
            return None, False
        tree = tree[part]
    return tree, True


def _shown(value):
    if isinstance(value, str) and " " in value:
        return value
    text = json.dumps(value)
    return f"`{text}`" if len(text) <= 40 else "see `defaults.yaml`"


def default(key, spec, defaults, families):
    value, found = _value(defaults, key)
    if not found:
        return "" if getattr(spec, "default", None) is None else _shown(spec.default)
    shown = _shown(value)
    overrides = [f"{family}: {_shown(other)}" for family, tree in sorted(families.items())
                 for other, present in [_value(tree, key)] if present and other != value]
    return shown + (f" ({'; '.join(overrides)})" if overrides else "")


def _cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def reference():
    defaults = yaml.safe_load((PARAMETERS / "defaults.yaml").read_text())["havip"]
    families = {path.stem: (yaml.safe_load(path.read_text()) or {}).get("havip", {})
                for path in sorted((PARAMETERS / "os_family").glob("*.yaml"))}
    rows = []
    for key, spec in havip_contract.keys():  # noqa: SIM118 (the contract's (key, spec) pairs, not dict.keys)
        accepts = ("a mapping by name" if isinstance(spec, havip_values.Each)
                   else "a list of mappings" if isinstance(spec, havip_values.Items) else spec.accepts)
        if getattr(spec, "as_is", False):
            accepts += "; written as is"
        if getattr(spec, "secret", False):
            accepts += "; **secret**"
        rows.append(f"| `{key}` | {_cell(default(key, spec, defaults, families))} | {_cell(spec.required)} |"
                    f" {_cell(spec.doc)} | {_cell(accepts)} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())

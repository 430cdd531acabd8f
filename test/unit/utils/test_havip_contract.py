"""
Unit tests of ``_utils/havip_contract.py``: the key table knows every
default and documents every key (docs/pillar.md is generated from it).
"""

import copy

import havip_contract
import pytest

from test.formula import DEFAULTS, REPO
from test.pillar_reference import reference


def test_every_default_is_a_key_of_the_contract_and_passes_its_check():
    havip_contract.walk(havip_contract.SPEC, DEFAULTS)


def test_an_unknown_key_names_the_nearest_known_one():
    config = copy.deepcopy(DEFAULTS)
    config["keepalived"]["advert_interval"] = 1
    with pytest.raises(havip_contract.Invalid, match="did you mean advert_int?") as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key == "keepalived:advert_interval"


def test_public_drops_every_key_the_table_calls_secret():
    config = {"stats": {"password": "x", "user": "admin"}, "vips": {"VI_1": {"auth_pass": "y", "address": "z"}},
              "frontend": {"tls": {"certificate": "PEM", "port": 443}}}
    assert havip_contract.public(config) == {"stats": {"user": "admin"}, "vips": {"VI_1": {"address": "z"}},
                                             "frontend": {"tls": {"port": 443}}}


def test_the_pillar_reference_documents_every_key_as_the_contract_says():
    assert (REPO / "docs" / "pillar.md").read_text() == reference(), "run `make docs`"

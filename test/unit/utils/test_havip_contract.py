"""
Unit tests of ``_utils/havip_contract.py``: the key table knows every
default and documents every key (docs/pillar.md is generated from it).
"""

import copy

import havip_contract
import havip_values
import pytest

from test.formula import DEFAULTS, REPO
from test.pillar_reference import reference


def test_every_default_is_a_key_of_the_contract_and_passes_its_check():
    havip_contract.walk(havip_contract.SPEC, DEFAULTS)


def test_an_unknown_key_names_the_nearest_known_one():
    config = copy.deepcopy(DEFAULTS)
    config["keepalived"]["advert_interval"] = 1
    with pytest.raises(havip_values.Invalid, match=r"did you mean advert_int\?") as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key == "keepalived:advert_interval"


def test_unknown_key_names_the_nearest_known_one():
    assert havip_contract.unknown_key(["failur", "rate"], ["failure", "rate"]) == (
        "failur", "unknown key (did you mean failure? known: failure, rate)")
    assert havip_contract.unknown_key(["zzz"], ["failure"]) == ("zzz", "unknown key (known: failure)")
    assert havip_contract.unknown_key(["rate"], ["failure", "rate"]) is None


def test_public_drops_every_key_the_table_calls_secret():
    config = {"stats": {"password": "x", "user": "admin"}, "vips": {"VI_1": {"auth_pass": "y", "address": "z"}},
              "frontend": {"tls": {"certificate": "PEM", "port": 443}}}
    assert havip_contract.public(config) == {"stats": {"user": "admin"}, "vips": {"VI_1": {"address": "z"}},
                                             "frontend": {"tls": {"port": 443}}}


def test_the_pillar_reference_documents_every_key_as_the_contract_says():
    assert (REPO / "docs" / "pillar.md").read_text() == reference(), "run `make docs`"


# ---- ASCII where the daemons take ASCII ---------------------------------------------


@pytest.mark.parametrize("line", ["log stdout\u0085global", "log stdout\u009b", "log stdout\u2028",
                                  "log \u00e9", "log\x7f", "log\tstdout"])
def test_an_haproxy_line_with_anything_but_printable_ascii_is_refused(line):
    config = copy.deepcopy(DEFAULTS)
    config["haproxy"]["global_extra"] = [line]
    with pytest.raises(havip_values.Invalid) as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key == "haproxy:global_extra"


@pytest.mark.parametrize("key", ["backend:check:inter", "stats:refresh"])
@pytest.mark.parametrize("time", ["\uff11s", "\u0661\u0660ms", "1\u00b2"])
def test_an_haproxy_time_with_digits_not_ascii_is_refused(key, time):
    config = copy.deepcopy(DEFAULTS)
    section, *middle, last = key.split(":")
    node = config[section]
    for part in middle:
        node = node[part]
    node[last] = time
    with pytest.raises(havip_values.Invalid) as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key == key


@pytest.mark.parametrize("page,taken", [("caf\u00e9 \u0085 \u2028 <b>&#x1F600;</b>", True),
                                        ("smile \U0001F600", False), ("lone \ud800", False), (" \n", False)])
def test_a_page_takes_what_the_sls_can_carry(page, taken):
    """The SLS carries strings ASCII-escaped (tojson): a character above
    U+FFFF would be a surrogate pair, which YAML refuses, breaking every
    state of the node; refused naming the key (an HTML entity serves it)."""
    config = copy.deepcopy(DEFAULTS)
    config["nodes"] = {"nginx1": {"roles": ["backend"], "address": "192.168.100.11", "page": page}}
    if taken:
        havip_contract.walk(havip_contract.SPEC, config)
        return
    with pytest.raises(havip_values.Invalid) as refused:
        havip_contract.walk(havip_contract.SPEC, config)
    assert refused.value.key == "nodes:nginx1:page"

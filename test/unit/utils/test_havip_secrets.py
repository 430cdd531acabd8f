"""
Unit tests: a secret that fails validation is refused naming its key and the
rule, never with any part of its value - for every key the contract calls
secret (``secret=True``), on the minion (``validate``) and on the master
(``master_config``, the runner's), whatever is wrong with the value.
"""

import copy

import havip_contract
import havip_master
import havip_pillar
import havip_values
import pytest

from test.certs import certificate, key_pem, new_key
from test.formula import DEFAULTS, merged, set_key
from test.saltcall import seed_pillar

SEED = seed_pillar()["havip"]
# In every bad value: no refusal may show it.
MARK = "Qz7mark"
KEY = new_key()
CERTIFICATE, PRIVATE_KEY = certificate(KEY), key_pem(KEY)
SECRET_KEYS = [key for key, spec in havip_contract.keys()  # noqa: SIM118 (the contract's pairs, not dict.keys)
               if getattr(spec, "secret", False)]


def block(kind, body):
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


BAD_VALUES = {
    "a number": 9081726354,
    "true": True,
    "a list of PEM lines": [line + MARK for line in (CERTIFICATE + PRIVATE_KEY).splitlines()],
    "a mapping": {f"{MARK}key": f"{MARK}value"},
    "too long": MARK * 30,
    "a placeholder": "Change-Me",
    "a control character": f"{MARK}\x01{MARK}",
    "a newline": f"{MARK}\n{MARK}",
    "a letter beyond ASCII": f"{MARK}é{MARK}",
    "text then a PEM": f"{MARK}\n{CERTIFICATE}{PRIVATE_KEY}",
    "a certificate that cannot be read": block("CERTIFICATE", MARK * 3) + PRIVATE_KEY,
    "a key that cannot be read": CERTIFICATE + block("PRIVATE KEY", MARK * 3),
    "an encrypted key": CERTIFICATE + block("ENCRYPTED PRIVATE KEY", MARK * 3),
    "two keys": CERTIFICATE + PRIVATE_KEY + PRIVATE_KEY,
}


def concrete(key):
    """The contract's key as the seed pillar names it (its VIP; the service
    ``web`` of ``with_secret``)."""
    return key.replace("<name>", next(iter(SEED["vips"]))).replace("<service>", "web")


def with_secret(key, value):
    """The seed pillar with ``value`` at ``key`` (VRRPv2 for auth_pass, so
    that its own check runs; http mode for TLS)."""
    havip = copy.deepcopy(SEED)
    if key.endswith("auth_pass"):
        set_key("keepalived", {"vrrp_version": 2, "advert_int": 1})(havip)
    if key.startswith("frontend:tls"):
        havip["frontend"] = {"mode": "http"}
    if key.startswith("services:"):
        havip["services"] = {"web": {"port": 80, "mode": "http", "pool": "web", "tls": {}}}
        havip["pools"] = {"web": {"servers": {"nginx1": {"node": "nginx1"}}}}
    set_key(key, value)(havip)
    return havip


def at(havip, key):
    """The value at ``key`` (a path of names) in ``havip``."""
    for name in key.split(":"):
        havip = havip[name]
    return havip


def shown_parts(value):
    """The parts of ``value`` no message may show."""
    return [MARK, "-----BEGIN"] + ([] if isinstance(value, (list, dict)) else [value, repr(value)])


def refusal(call):
    with pytest.raises(havip_values.Invalid) as refused:
        call()
    return refused.value


def test_the_contract_calls_the_four_secrets_secret():
    assert SECRET_KEYS == ["vips:<name>:auth_pass", "frontend:tls:certificate", "services:<service>:tls:certificates",
                           "stats:password"]


@pytest.mark.parametrize("where", ["minion", "master"])
@pytest.mark.parametrize("what", BAD_VALUES)
@pytest.mark.parametrize("key", SECRET_KEYS)
def test_a_bad_secret_is_refused_naming_its_key_never_its_value(key, what, where):
    key, value = concrete(key), BAD_VALUES[what]
    havip = with_secret(key, value)
    if where == "minion":
        refused = refusal(lambda: havip_pillar.validate(merged(havip), "svr1", interfaces=["lo", "ens32"]))
    else:
        refused = refusal(lambda: havip_master.master_config(havip, copy.deepcopy(DEFAULTS)))
    message = str(refused)
    assert refused.key == key and message.startswith(f"havip pillar: havip:{key}: "), message
    for part in shown_parts(value):
        assert str(part) not in message, (part, message)


@pytest.mark.parametrize("key,value", [
    ("frontend:tls", f"{MARK}{CERTIFICATE}{PRIVATE_KEY}"),
    ("stats", f"password: {MARK}"),
    (concrete("vips:<name>"), [f"auth_pass: {MARK}"]),
])
def test_a_secret_one_level_too_high_is_refused_without_its_value(key, value):
    havip = copy.deepcopy(SEED)
    set_key(key, value)(havip)
    refused = refusal(lambda: havip_pillar.validate(merged(havip), "svr1"))
    assert refused.key == key and MARK not in str(refused) and "BEGIN" not in str(refused), str(refused)


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_a_secret_without_the_space_after_its_colon_is_refused_without_its_value(key):
    # YAML reads `{password:s3cret}` as the key `password:s3cret`: an
    # unknown key beside a secret is not named.
    parent, leaf = concrete(key).rsplit(":", 1)
    havip = with_secret(concrete(key), None)
    set_key(parent, {**at(havip, parent), f"{leaf}:{MARK}": None})(havip)
    del at(havip, parent)[leaf]
    refused = refusal(lambda: havip_pillar.validate(merged(havip), "svr1"))
    assert refused.key == parent and MARK not in str(refused), str(refused)
    assert f"did you mean {leaf}?" in str(refused)


@pytest.mark.parametrize("what", [what for what, value in BAD_VALUES.items() if isinstance(value, str)])
def test_a_bad_certificate_in_a_services_list_is_refused_naming_its_key_and_place_never_its_value(what):
    key = concrete("services:<service>:tls:certificates")
    havip = with_secret(key, [CERTIFICATE + PRIVATE_KEY, BAD_VALUES[what]])
    refused = refusal(lambda: havip_pillar.validate(merged(havip), "svr1", interfaces=["lo", "ens32"]))
    message = str(refused)
    assert refused.key == key and message.startswith(f"havip pillar: havip:{key}: certificate 2: "), message
    for part in shown_parts(BAD_VALUES[what]):
        assert str(part) not in message, (part, message)

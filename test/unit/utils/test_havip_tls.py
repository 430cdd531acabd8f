"""
Fast tier: the VIPs' TLS certificate (_utils/havip_tls.py) is refused,
naming havip:frontend:tls:certificate, when it is no PEM, its key does not
match, or it is not valid now; a good one passes the whole pillar check.
"""

import copy
import subprocess
import sys

import havip_pillar
import havip_values
import pytest

from test.certs import DAY, NOW, certificate, key_pem, new_key
from test.formula import REPO, merged
from test.saltcall import seed_pillar

SEED = seed_pillar()["havip"]

KEY, OTHER = new_key(), new_key()
GOOD = certificate(KEY) + key_pem(KEY)


def validate(havip):
    return havip_pillar.validate(merged(havip), "svr1")


def with_tls(pem, **tls):
    havip = copy.deepcopy(SEED)
    havip["frontend"] = {"mode": "http", "tls": {"certificate": pem, **tls}}
    return havip


@pytest.mark.parametrize("pem,problem", [
    ("not a certificate", "is not a PEM"),
    (certificate(KEY), "exactly one private key"),
    (key_pem(KEY), "0 certificate"),
    (GOOD + "trailing text", "is not a PEM"),
    (certificate(KEY) + key_pem(OTHER), "does not match"),
    (certificate(KEY, NOW - 30 * DAY, NOW - DAY) + key_pem(KEY), "expired"),
    (certificate(KEY, NOW + DAY, NOW + 30 * DAY) + key_pem(KEY), "not valid before"),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + key_pem(KEY), "cannot be read"),
])
def test_a_bad_certificate_is_refused_naming_its_key(pem, problem):
    with pytest.raises(havip_values.Invalid, match=problem) as refused:
        validate(with_tls(pem))
    assert refused.value.key == "frontend:tls:certificate"


def test_a_good_certificate_passes_and_only_its_serial_and_expiry_reach_the_states():
    config = validate(with_tls(GOOD, redirect=True))
    tls = config["frontend"]["tls"]
    assert tls["enabled"] and tls["serial"] == "1234" and tls["redirect"]
    assert "certificate" not in tls and "PRIVATE KEY" not in repr(config)


@pytest.mark.parametrize("edit,key", [
    (lambda h: h["frontend"].update(mode="tcp"), "frontend:tls:redirect"),
    (lambda h: h["frontend"]["tls"].update(certificate=None), "frontend:tls:redirect"),
    (lambda h: h["frontend"]["tls"].update(port=1080), "frontend:tls:port"),
    (lambda h: h.update(metrics={"port": 9090}), "metrics:port"),
])
def test_tls_and_metrics_ports_and_redirects_are_checked(edit, key):
    havip = with_tls(GOOD, redirect=True)
    edit(havip)
    with pytest.raises(havip_values.Invalid) as refused:
        validate(havip)
    assert refused.value.key == key


def test_the_execution_modules_helpers_leave_x509_unimported_until_a_certificate_is_checked():
    """Each Salt job imports _modules/havip.py and its helpers in a process of
    its own: cryptography's x509 (about 25 ms) waits for a certificate."""
    code = ("import sys, salt.crypt; sys.path.insert(0, '_utils');"
            " import havip_pillar, havip_tofs, havip_health, havip_host, havip_probe, havip_transition;"
            " print('cryptography.x509' in sys.modules)")
    imported = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"

"""
A TLS certificate of the VIPs (havip:frontend:tls:certificate, each of
havip:services:<service>:tls:certificates), checked
before HAProxy ever sees it: a PEM holding the certificate, its chain, and
the private key that matches the certificate, valid now.  The PEM is a
secret: no message quotes it, nor the parser's error (which may).

cryptography's x509 is imported when a certificate is checked: every Salt job
is a process that imports the execution module and its helpers again, and
x509 alone costs about 25 ms, which every node would pay in each
``havip.check`` that ``salt-run havip.status`` asks of it.
"""

import datetime
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from havip_values import Invalid

KEY = "frontend:tls:certificate"
BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----\r?\n.*?-----END \1-----", re.S)


def _blocks(pem, key, which):
    """(certificate blocks, private key blocks) of a PEM text."""
    blocks = [(match[1], match[0]) for match in BLOCK.finditer(pem)]
    leftover = BLOCK.sub("", pem).strip()
    if leftover or not blocks:
        raise Invalid(key, f"{which}is not a PEM: certificate blocks then a private key block, nothing else")
    certificates = [text for kind, text in blocks if kind == "CERTIFICATE"]
    keys = [text for kind, text in blocks if kind.endswith("PRIVATE KEY")]
    if not certificates or len(keys) != 1 or len(certificates) + 1 != len(blocks):
        raise Invalid(key, f"{which}must hold certificates and exactly one private key, found"
                           f" {len(certificates)} certificate(s) and {len(keys)} key(s)")
    return certificates, keys[0]


def check_certificate(pem, now=None, key=KEY, which=""):
    """The certificate's ``serial`` and ``not_after`` (ISO); raises Invalid
    naming ``key`` (its message after ``which``: "certificate 2: " in a
    list) for a PEM that is not one, a key that does not match the (first)
    certificate, or a certificate not valid at ``now``."""
    from cryptography import x509

    certificates, key_text = _blocks(pem, key, which)
    try:
        certificate = x509.load_pem_x509_certificate(certificates[0].encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise Invalid(key, f"{which}its (first) certificate cannot be read") from None
    try:
        private_key = serialization.load_pem_private_key(key_text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise Invalid(key, f"{which}its private key cannot be read (it must be unencrypted: HAProxy reads it"
                           " unattended)") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if private_key.public_key().public_bytes(serialization.Encoding.PEM, public) != \
            certificate.public_key().public_bytes(serialization.Encoding.PEM, public):
        raise Invalid(key, f"{which}its private key does not match the certificate")
    now = now or datetime.datetime.now(datetime.UTC)
    not_before, not_after = _validity(certificate)
    if now > not_after:
        raise Invalid(key, f"{which}the certificate expired on {not_after:%Y-%m-%d %H:%M} UTC")
    if now < not_before:
        raise Invalid(key, f"{which}the certificate is not valid before {not_before:%Y-%m-%d %H:%M} UTC")
    return {"serial": format(certificate.serial_number, "x"), "not_after": not_after.isoformat()}


def _validity(certificate):
    """(not before, not after), timezone-aware, on every cryptography
    release Salt 3006-3008 ships with."""
    if hasattr(certificate, "not_valid_after_utc"):
        return certificate.not_valid_before_utc, certificate.not_valid_after_utc
    utc = datetime.UTC
    return certificate.not_valid_before.replace(tzinfo=utc), certificate.not_valid_after.replace(tzinfo=utc)

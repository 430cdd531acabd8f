"""
Certificates and keys made in process (cryptography) for the fast tier's
TLS tests.
"""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def certificate(key, not_before=NOW - DAY, not_after=NOW + 30 * DAY, serial=0x1234):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "192.168.100.10")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def pem(key=None):
    """A certificate and its key, valid now, as frontend:tls:certificate wants them."""
    key = key or new_key()
    return certificate(key) + key_pem(key)

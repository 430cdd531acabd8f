"""
A certificate authority of the lab's own, made with openssl: its
certificate (``pem``) for the clients to verify against, and certificates
it issues for the VIPs' addresses (and host names), as
``frontend:tls:certificate`` and a service's ``tls:certificates`` want them
(the certificate, then its key).
"""

import pathlib
import subprocess


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class CA:
    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=havip lab CA", cwd=self.dir)
        self.pem = self.dir / "ca.pem"

    def issue(self, name, addresses, serial, hosts=()):
        """A certificate for ``addresses`` (IPs) and ``hosts`` (DNS names)
        with ``serial``, and its key: one PEM text."""
        names = [f"IP:{a}" for a in addresses] + [f"DNS:{h}" for h in hosts]
        (self.dir / f"{name}.ext").write_text("subjectAltName=" + ",".join(names) + "\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial",
                 str(serial), "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=self.dir)
        return (self.dir / f"{name}.crt").read_text() + (self.dir / f"{name}.key").read_text()

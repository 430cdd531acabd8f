"""
Unit tests of ``_utils/havip_http.py``: the URLs the health checks ask, a
request that asks for a host (a local server sees its Host header and SNI).
"""

import contextlib
import datetime
import http.server
import ssl
import threading
import urllib.error

import havip_http
import havip_probe
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from salt.exceptions import CommandExecutionError

from test.certs import key_pem


@pytest.mark.parametrize("address, url", [
    ("192.168.100.10", "http://192.168.100.10:9090/"), ("fd00::10", "http://[fd00::10]:9090/")])
def test_http_url_brackets_an_ipv6_address(address, url):
    assert havip_http.http_url(address, 9090) == url
    assert havip_http.http_url(address, 1080, "/status;csv") == url.replace(":9090/", ":1080/status;csv")


# ---- a request that asks for a host: its Host header, SNI, the certificate of that name


def certificate_of(name):
    """A self-signed certificate for the DNS name ``name`` (its own CA) and its key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key).encode()


class Answer(http.server.BaseHTTPRequestHandler):
    """Answers what it was asked for: the Host header and the server name
    (SNI) of the TLS connection; /redirect redirects to /elsewhere."""

    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(301)
            self.send_header("Location", "/elsewhere")
            self.end_headers()
            return
        body = f"{self.headers['Host']} {getattr(self.request, 'server_name', None)}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(tls=None):
    """A local HTTP server (HTTPS with ``tls``: (certificate file, key
    file)) answering with Answer; its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)

        def remember(sock, name, _):
            sock.server_name = name
        context.sni_callback = remember
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def probe_ca(tmp_path):
    """(certificate file: also the CA, key file) for probe.example.com."""
    cert, key = certificate_of("probe.example.com")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")


def test_a_request_for_a_host_sends_its_host_header():
    with serving() as url:
        assert havip_http.get(f"{url}/", 5, host="api.example.com") == (200, "api.example.com None")
        assert havip_http.get(f"{url}/", 5)[1] == f"{url.removeprefix('http://')} None"


def test_an_https_request_for_a_host_asks_for_its_certificate_by_sni_and_verifies_that_name(probe_ca):
    with serving(probe_ca) as url:
        assert havip_http.get(f"{url}/", 5, cafile=probe_ca[0], host="probe.example.com") == (
            200, "probe.example.com probe.example.com")
        with pytest.raises(OSError, match="certificate verify failed"):
            havip_http.get(f"{url}/", 5, cafile=probe_ca[0], host="other.example.com")
        with pytest.raises(OSError, match="certificate verify failed"):
            havip_http.get(f"{url}/", 5, cafile=probe_ca[0])  # the address is not the certificate's name


def test_a_request_for_a_host_follows_no_redirect(probe_ca):
    """A redirect could send the request, and its Host header, anywhere."""
    with serving(probe_ca) as url:
        with pytest.raises(urllib.error.HTTPError, match="301"):
            havip_http.get(f"{url}/redirect", 5, cafile=probe_ca[0], host="probe.example.com")


def test_a_probe_builds_one_tls_context_for_all_its_requests_and_none_for_http(probe_ca, monkeypatch):
    """Building one costs tens of ms of CPU: one per request made a probe
    at 100 requests/s starve its host (the lab's rolling deploy of the app
    lost requests, and its probes did not stop in time)."""
    built, build = [], ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *args, **kw: built.append(1) or build(*args, **kw))
    with serving() as url:
        report = havip_probe.measure(f"{url}/", 0.3, 10, 5, host="probe.example.com")
    assert (report["total"], report["failed"], built) == (3, 0, [])
    with serving(probe_ca) as url:
        report = havip_probe.measure(f"{url}/", 0.3, 10, 5, cafile=probe_ca[0], host="probe.example.com")
    assert (report["total"], report["failed"], len(built)) == (3, 0, 1)


def test_a_probe_refuses_a_cafile_it_cannot_load(tmp_path):
    with pytest.raises(CommandExecutionError, match=r"havip\.probe: cafile .* refused"):
        havip_probe.measure("https://127.0.0.1:1/", 0.3, 10, 5, cafile=str(tmp_path / "missing.pem"))


def test_the_probe_asks_for_its_host(probe_ca):
    with serving(probe_ca) as url:
        report = havip_probe.measure(f"{url}/", 0.2, 10, 5, cafile=probe_ca[0], host="probe.example.com")
    assert report["backends"] == {"probe.example.com probe.example.com": 2}

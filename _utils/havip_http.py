"""
HTTP GETs, for the health checks that ask a URL once: a backend's nginx
(``havip.status``), a peer balancer's ``stats:backends_uri`` (before a
standby or an injection), each request of the probe (havip_probe), which
may name the host it asks for (a service's route).

Pure helpers (no Salt dunders); the lab imports this file as it is.
"""

import base64
import functools
import http.client
import ssl
import urllib.parse
import urllib.request

import salt.utils.network


def http_url(address, port, path="/"):
    """An HTTP URL of the IP ``address``, an IPv6 one in brackets (Salt's
    ``ip_bracket``, as the templates' ``ipwrap`` filter)."""
    return f"http://{salt.utils.network.ip_bracket(address)}:{port}{path}"


def get(url, timeout=2.0, auth=None, cafile=None, host=None):
    """(status, body) of an HTTP GET; raises OSError (URLError) on failure.
    ``cafile`` and ``host``: see ``opener``."""
    return read(opener(url, cafile, host), url, timeout, auth, host)


def opener(url, cafile=None, host=None):
    """An opener for GETs of ``url``, for one request or many (a probe's):
    an https URL's TLS context, tens of ms of CPU to build, is built here
    once, and an http URL's none.  An https URL's certificate is verified
    against ``cafile`` (default: the system's CAs).  With ``host``, see
    ``named_opener``."""
    context = ssl.create_default_context(cafile=cafile) if urllib.parse.urlsplit(url).scheme == "https" else None
    if host:
        return named_opener(host, context)
    return urllib.request.build_opener(*([urllib.request.HTTPSHandler(context=context)] if context else []))


def read(opened_by, url, timeout, auth=None, host=None):
    """(status, body) of an HTTP GET of ``url`` through ``opened_by`` (an
    ``opener`` of that URL and ``host``); raises OSError (URLError) on
    failure."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    if host:
        request.add_header("Host", host)
    with opened_by.open(request, timeout=timeout) as response:
        return response.status, response.read().decode(errors="replace")


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to the URL's address that asks for (SNI) and
    verifies the certificate of ``server_name``."""

    def __init__(self, *args, server_name, **kwargs):
        super().__init__(*args, **kwargs)
        self.server_name = server_name

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)


class _NamedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, server_name, context):
        super().__init__(context=context)
        self.server_name = server_name

    def https_open(self, req):
        return self.do_open(functools.partial(_NamedHTTPSConnection, server_name=self.server_name), req,
                            context=self._context)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def named_opener(host, context):
    """An opener for requests that ask for ``host`` (their Host header)
    at the URL's address: an https one asks for (SNI) and verifies the
    certificate of ``host``.  No proxy, and no redirect followed (an
    error): the request goes to that address and nowhere else."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NamedHTTPSHandler(host, context),
                                       _NoRedirect())


def http_ok(url):
    """Does ``url`` answer 200 within 2 s?"""
    try:
        return get(url)[0] == 200
    except (OSError, ValueError):
        return False

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
import urllib.request

import salt.utils.network


def http_url(address, port, path="/"):
    """An HTTP URL of the IP ``address``, an IPv6 one in brackets (Salt's
    ``ip_bracket``, as the templates' ``ipwrap`` filter)."""
    return f"http://{salt.utils.network.ip_bracket(address)}:{port}{path}"


def get(url, timeout=2.0, auth=None, cafile=None, host=None):
    """(status, body) of an HTTP GET; raises OSError (URLError) on failure.
    An https URL's certificate is verified against ``cafile`` (default: the
    system's CAs).  With ``host``, see ``named_opener``."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    if host:
        request.add_header("Host", host)
        opened = named_opener(host, context or ssl.create_default_context()).open(request, timeout=timeout)
    else:
        opened = urllib.request.urlopen(request, timeout=timeout, context=context)
    with opened as response:
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

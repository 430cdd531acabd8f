"""
HTTP GETs, for the health checks that ask a URL once: a backend's nginx
(``havip.status``), a peer balancer's ``stats:backends_uri`` (before a
standby or an injection), each request of the probe (havip_probe).

Pure helpers (no Salt dunders); the lab imports this file as it is.
"""

import base64
import ssl
import urllib.request

import salt.utils.network


def http_url(address, port, path="/"):
    """An HTTP URL of the IP ``address``, an IPv6 one in brackets (Salt's
    ``ip_bracket``, as the templates' ``ipwrap`` filter)."""
    return f"http://{salt.utils.network.ip_bracket(address)}:{port}{path}"


def get(url, timeout=2.0, auth=None, cafile=None):
    """(status, body) of an HTTP GET; raises OSError (URLError) on failure.
    An https URL's certificate is verified against ``cafile`` (default: the
    system's CAs)."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return response.status, response.read().decode(errors="replace")


def http_ok(url):
    """Does ``url`` answer 200 within 2 s?"""
    try:
        return get(url)[0] == 200
    except (OSError, ValueError):
        return False

"""
Unit tests of ``_utils/havip_http.py``: the URLs the health checks ask.
"""

import havip_http
import pytest


@pytest.mark.parametrize("address, url", [
    ("192.168.100.10", "http://192.168.100.10:9090/"), ("fd00::10", "http://[fd00::10]:9090/")])
def test_http_url_brackets_an_ipv6_address(address, url):
    assert havip_http.http_url(address, 9090) == url
    assert havip_http.http_url(address, 1080, "/status;csv") == url.replace(":9090/", ":1080/status;csv")

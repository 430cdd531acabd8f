"""
Fast tier: a stats password full of what HAProxy's config syntax fears
(quotes, `#`, spaces, `$`, a backslash) is written so that HAProxy accepts
the config and the password logs in - a real HAProxy in a throwaway network
namespace, asked with curl.
"""

import contextlib
import subprocess
import time

import pytest

from test import daemons
from test.formula import render, validated
from test.saltcall import seed_pillar

PASSWORDS = ["it's a \"quoted\" #pass;word $HOME `id` \\n", "'''''''''", "plain-but-long"]


def curl(netns, user=None, address="127.0.0.1", path="/status"):
    command = ["ip", "netns", "exec", netns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2"]
    if user is not None:
        command += ["-u", user]
    return subprocess.run(command + [f"http://{address}:18080{path}"], capture_output=True, text=True).stdout


@contextlib.contextmanager
def stats_page(netns, tmp_path, password, addresses=()):
    """A real HAProxy of the seed's svr1 (its stats page on port 18080) in
    ``netns``, whose lo holds ``addresses`` too, serving while the block
    runs."""
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    for address in addresses:
        subprocess.run(["ip", "-n", netns, "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    # The frontend binds the VIP, which this namespace does not have.
    subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"], check=True)
    havip = seed_pillar()["havip"]
    havip["stats"] = {"password": password, "port": 18080, "realm": "havip (test) stats"}
    config = validated(havip, "svr1")
    # The log line kept: without it HAProxy warns that the frontends' log
    # format is ignored.
    config["haproxy"]["global"] = ["log /dev/log local0", f"stats socket {tmp_path}/admin.sock mode 600 level admin",
                                   f"pidfile {tmp_path}/pid"]
    config_file = tmp_path / "haproxy.cfg"
    config_file.write_text(render("haproxy.cfg.jinja", config, havip))
    assert not daemons.refusals("haproxy", config_file)
    haproxy = subprocess.Popen(["ip", "netns", "exec", netns, "haproxy", "-db", "-f", str(config_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while curl(netns) != "401":
            assert time.monotonic() < deadline, "HAProxy's stats page did not answer"
            time.sleep(0.05)
        yield
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=10)


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_with_any_printable_character_logs_in(netns_with, tmp_path, password):
    netns = netns_with()
    with stats_page(netns, tmp_path, password):
        assert curl(netns, f"admin:{password}") == "200"
        assert curl(netns, f"admin:{password}x") == "401"


def test_the_stats_listener_answers_on_the_balancers_own_address_and_loopback_only(netns_with, tmp_path):
    """keepalived's checks ask 127.0.0.1, the other balancers svr1's own
    address (192.168.100.13); another address of the host gets nothing."""
    netns = netns_with()
    with stats_page(netns, tmp_path, "plain-but-long", addresses=("192.168.100.13", "192.168.100.99")):
        assert curl(netns, address="192.168.100.13") == "401"
        for address in ("127.0.0.1", "192.168.100.13"):
            assert curl(netns, address=address, path="/havip-health") == "200"
            # Answered without credentials (200 or 503: the servers are not checked yet).
            assert curl(netns, address=address, path="/havip-backends") in ("200", "503")
        assert curl(netns, address="192.168.100.99") == "000"

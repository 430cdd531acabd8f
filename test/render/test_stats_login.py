"""
Fast tier: a stats password full of what HAProxy's config syntax fears
(quotes, `#`, spaces, `$`, a backslash) is written so that HAProxy accepts
the config and the password logs in - a real HAProxy in a throwaway network
namespace, asked with curl.
"""

import subprocess
import time

import pytest

from test.formula import render, validated
from test.saltcall import seed_pillar

PASSWORDS = ["it's a \"quoted\" #pass;word $HOME `id` \\n", "'''''''''", "plain-but-long"]


def curl(netns, user=None):
    command = ["ip", "netns", "exec", netns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2"]
    if user is not None:
        command += ["-u", user]
    return subprocess.run(command + ["http://127.0.0.1:18080/status"], capture_output=True, text=True).stdout


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_with_any_printable_character_logs_in(netns_with, tmp_path, password):
    netns = netns_with()
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    # The frontend binds the VIP, which this namespace does not have.
    subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"], check=True)
    havip = seed_pillar()["havip"]
    havip["stats"] = {"password": password, "port": 18080, "realm": "havip (test) stats"}
    config = validated(havip, "svr1")
    config["haproxy"]["global"] = [f"stats socket {tmp_path}/admin.sock mode 600 level admin", f"pidfile {tmp_path}/pid"]
    config_file = tmp_path / "haproxy.cfg"
    config_file.write_text(render("haproxy.cfg.jinja", config, havip))
    assert subprocess.run(["haproxy", "-c", "-q", "-f", config_file]).returncode == 0
    haproxy = subprocess.Popen(["ip", "netns", "exec", netns, "haproxy", "-db", "-f", str(config_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while curl(netns) != "401":
            assert time.monotonic() < deadline, "HAProxy's stats page did not answer"
            time.sleep(0.05)
        assert curl(netns, f"admin:{password}") == "200"
        assert curl(netns, f"admin:{password}x") == "401"
    finally:
        haproxy.terminate()
        haproxy.wait(timeout=10)

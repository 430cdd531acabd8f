"""Smoke tests of the namespace lab: network, identity, packages, processes, teardown.

Run as root:  .venv/bin/python -m pytest test/lab/test_lab_smoke.py -v
(add -s to see the timings).  The module's lab uses prefix ``hvls`` on
192.168.123.0/24; the labs built to test teardown use ``hvlt`` on 192.168.124.0/24.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from . import lab as lablib
from .lab import Lab, LabError

pytestmark = pytest.mark.lab

HOSTS = {"a": "192.168.123.11", "b": "192.168.123.12", "c": "192.168.123.13"}
GATEWAY = "192.168.123.1/24"
T_HOSTS = {"x": "192.168.124.11", "y": "192.168.124.12"}
T_GATEWAY = "192.168.124.1/24"
APT = "apt-get install -y --no-download -o Acquire::Retries=0"


def report(capsys, text):
    with capsys.disabled():
        print(f"\n    [timing] {text}")


@pytest.fixture(scope="module")
def lab():
    with Lab(HOSTS, prefix="hvls", gateway=GATEWAY) as lab:
        yield lab


def netns_names():
    return [line.split()[0] for line in
            subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines()]


def assert_gone(prefix, workdir, pids):
    """Nothing of lab ``prefix`` is left: netns, gateway link, mounts, host dirs, processes."""
    assert not [n for n in netns_names() if n.startswith(prefix + "-")]
    assert subprocess.run(["ip", "link", "show", f"{prefix}-gw"], capture_output=True).returncode
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(workdir) + "/" not in mounts
    assert not (Path(workdir) / "hosts").exists() and not (Path(workdir) / "state.json").exists()
    for pid in pids:
        assert lablib._start_time(pid) is None, f"pid {pid} still alive"


def test_up_timing(lab, capsys):
    t = lab.timings
    report(capsys, f"lab up {t['up']:.2f}s, base layer {'cached' if t['base_cached'] else 'built'}"
                   f" {t['base']:.2f}s")
    assert all(h.pid for h in lab.hosts.values())


def test_hostname_and_hosts_file(lab):
    for h in lab.hosts.values():
        assert h.run("hostname").stdout.strip() == h.name
        assert (h.root / "etc/hostname").read_text().strip() == h.name
        hosts = h.run("getent hosts a b c gateway").stdout.split()
        assert hosts[:2] == ["192.168.123.11", "a"] and "192.168.123.1" in hosts


def test_ping_each_other_and_gateway(lab):
    for h in lab.hosts.values():
        h.run(f"{APT} iputils-ping")  # not in the root namespace; a host installs it offline
    for h in lab.hosts.values():
        for target in [*HOSTS.values(), "192.168.123.1"]:
            h.run(["ping", "-c1", "-W2", target])
    assert lab.host("a").run("ip route").stdout.count("default") == 0


def test_no_route_out(lab):
    p = lab.host("a").run("curl -sS -m3 http://deb.debian.org/", check=False)
    assert p.returncode != 0


def test_packages_purged_in_hosts(lab):
    for h in lab.hosts.values():
        for pkg in ("nginx", "haproxy", "keepalived"):
            assert h.run(["dpkg", "-s", pkg], check=False).returncode != 0
        assert h.run("test -e /usr/sbin/policy-rc.d", check=False).returncode != 0
    assert subprocess.run(["dpkg", "-s", "nginx"], capture_output=True).returncode == 0  # root untouched


def test_offline_install_serves_http(lab, capsys):
    a, b = lab.host("a"), lab.host("b")
    t0 = time.monotonic()
    a.run(f"{APT} nginx")
    took = time.monotonic() - t0
    report(capsys, f"apt-get install nginx inside host a: {took:.2f}s")
    assert took < 10
    a.run("service nginx start")
    assert b.run(f"curl -s -o /dev/null -w '%{{http_code}}' http://{a.address}/").stdout == "200"
    with urllib.request.urlopen(f"http://{a.address}/", timeout=5) as r:  # from the root namespace
        assert r.status == 200
    assert a.run("pidof nginx").stdout.strip()
    assert b.run("pidof nginx", check=False).returncode == 1  # b sees nothing of a
    assert b.run("dpkg -s nginx", check=False).returncode != 0  # installed on a only


def test_killed_process_is_reaped(lab):
    c = lab.host("c")
    pid = c.run("sleep 300 >/dev/null 2>&1 & echo $!").stdout.strip()
    assert c.run(f"ps -o ppid= -p {pid}").stdout.strip() == "1"  # orphan, adopted by hostinit
    c.run(f"kill {pid}")
    deadline = time.monotonic() + 5
    while c.run(f"test -e /proc/{pid}", check=False).returncode == 0:
        assert time.monotonic() < deadline, c.run(f"ps -o stat= -p {pid}", check=False).stdout
        time.sleep(0.05)


def test_popen_and_shared_dir(lab):
    (lab.shared_dir / "hello").write_text("from outside\n")
    c = lab.host("c")
    assert c.run(f"cat {lab.shared_dir}/hello").stdout == "from outside\n"
    assert c.run("cat hello", cwd=lab.shared_dir).stdout == "from outside\n"
    assert c.run("pwd").stdout == "/\n"
    p = c.popen(["sleep", "300"])
    try:
        deadline = time.monotonic() + 5
        while c.run("pidof sleep", check=False).returncode:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        p.terminate()
        p.wait(5)


def test_down_removes_everything():
    tlab = Lab(T_HOSTS, prefix="hvlt", gateway=T_GATEWAY)
    tlab.up()
    tlab.host("x").popen("sleep 300")  # a running process must not survive or block down()
    pids = [h.pid for h in tlab.hosts.values()]
    tlab.down()
    assert_gone("hvlt", tlab.workdir, pids)
    assert (tlab.workdir / "base" / "key").is_file()  # the base layer cache is kept
    tlab.down()  # twice is fine


def test_down_after_failure_mid_test():
    with pytest.raises(ZeroDivisionError):
        with Lab(T_HOSTS, prefix="hvlt", gateway=T_GATEWAY) as tlab:
            pids = [h.pid for h in tlab.hosts.values()]
            tlab.host("y").run("service --status-all", check=False)
            1 / 0
    assert_gone("hvlt", tlab.workdir, pids)


def test_down_after_partial_up(monkeypatch, tmp_path):
    broken = tmp_path / "hostinit.py"
    broken.write_text("import sys; sys.exit('hostinit exploded')\n")
    monkeypatch.setattr(lablib, "HOSTINIT", broken)
    tlab = Lab(T_HOSTS, prefix="hvlt", gateway=T_GATEWAY)
    with pytest.raises(LabError, match="hostinit exploded"):
        with tlab:
            pass
    assert_gone("hvlt", tlab.workdir, [])


def test_cleanup_cli_after_crash():
    """A run killed with SIGKILL leaves its lab; `lab.py cleanup` removes it from state.json."""
    code = ("import sys, time; sys.path.insert(0, %r); from lab import Lab; "
            "Lab(%r, prefix='hvlt', gateway=%r).up(); print('up', flush=True); time.sleep(300)"
            % (str(Path(lablib.__file__).parent), T_HOSTS, T_GATEWAY))
    crashed = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert crashed.stdout.readline() == "up\n"
    finally:
        crashed.kill()
        crashed.wait()
    workdir = lablib.default_workdir("hvlt")
    state = json.loads((workdir / "state.json").read_text())
    pids = [pid for pid, _ in state["inits"].values()]
    assert all(lablib._start_time(pid) for pid in pids)  # the hosts outlived their creator
    assert any(n.startswith("hvlt-") for n in netns_names())
    subprocess.run([sys.executable, lablib.__file__, "cleanup", "--prefix", "hvlt"], check=True)
    assert_gone("hvlt", workdir, pids)


def test_hostinit_sigterm_ends_host():
    """SIGTERM to a host's init kills every process of that host, then the init."""
    with Lab({"x": "192.168.124.11"}, prefix="hvlt", gateway=T_GATEWAY) as tlab:
        x = tlab.host("x")
        sleeper = x.popen("sleep 300")
        os.kill(x.pid, signal.SIGTERM)
        assert sleeper.wait(5) != 0
        deadline = time.monotonic() + 5
        while lablib._start_time(x.pid):
            assert time.monotonic() < deadline
            time.sleep(0.05)

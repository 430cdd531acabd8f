"""Smoke tests of the namespace lab: systemd hosts, network, identity,
packages, processes, reboot, teardown.

Run as root:  .venv/bin/python -m pytest test/lab/test_lab_smoke.py -v
(add -s to see the timings).  The module's lab uses prefix ``hvls`` on
192.168.123.0/24; the labs built to test teardown use ``hvlt`` on 192.168.124.0/24.
"""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from . import lab as lablib
from .lab import MASKED, Lab, LabError

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


def lab_pids(tlab):
    """Every PID the lab recorded: nspawn and the host's systemd, per host."""
    return [pid for h in tlab.hosts.values() for pid in (h.nspawn[0], h.pid)]


def assert_gone(prefix, workdir, pids):
    """Nothing of lab ``prefix`` is left: netns, gateway link, mounts, host dirs, processes."""
    assert not [n for n in netns_names() if n.startswith(prefix + "-")]
    assert subprocess.run(["ip", "link", "show", f"{prefix}-gw"], capture_output=True).returncode
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(workdir) + "/" not in mounts
    assert not (Path(workdir) / "hosts").exists() and not (Path(workdir) / "state.json").exists()
    assert not list(Path(lablib.NSPAWN_PROPAGATE).glob(f"{prefix}-*"))
    assert not [cg for root in lablib._cgroup_roots() for cg in (root / lablib.CGROUP_DIR).glob(f"{prefix}-*")]
    for pid in pids:
        assert lablib._start_time(pid) is None, f"pid {pid} still alive"


def test_up_timing(lab, capsys):
    t = lab.timings
    report(capsys, f"lab up {t['up']:.2f}s (hosts running after {t['boot']:.2f}s), base layer "
                   f"{'cached' if t['base_cached'] else 'built'} {t['base']:.2f}s")
    assert all(h.pid and h.nspawn for h in lab.hosts.values())


def test_every_host_boots_systemd_as_pid_1_and_is_running(lab):
    for h in lab.hosts.values():
        assert h.run("cat /proc/1/comm").stdout.strip() == "systemd"
        assert h.run("systemctl is-system-running").stdout.strip() == "running"
        assert h.run("systemctl --failed --plain --no-legend").stdout.strip() == ""
        # the host's systemd is the child of its nspawn
        assert Path(f"/proc/{h.pid}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(h.nspawn[0])
    # each host sees only its own processes
    assert lab.host("a").run("pgrep -x systemd-logind").stdout.split() != []
    assert len(lab.host("a").run("pgrep -x systemd").stdout.split()) == 1


def test_units_a_fresh_server_would_not_run_are_masked(lab):
    a = lab.host("a")
    for unit in MASKED:
        state = a.run(["systemctl", "is-enabled", unit], check=False).stdout.strip()
        assert state == "masked", (unit, state)
    timers = a.run("systemctl list-units --all --type=timer --output=json").stdout
    assert {u["load"] for u in json.loads(timers)} == {"masked"}, timers
    assert json.loads(a.run("systemctl list-units --type=timer --state=active --output=json").stdout) == []
    running = {u["unit"] for u in json.loads(
        a.run("systemctl list-units --type=service --state=running --output=json").stdout)}
    assert running == {"dbus.service", "systemd-journald.service", "systemd-logind.service"}, running


def test_hostname_machine_id_and_hosts_file(lab):
    ids = set()
    for h in lab.hosts.values():
        assert h.run("hostname").stdout.strip() == h.name
        assert (h.root / "etc/hostname").read_text().strip() == h.name
        ids.add(h.run("cat /etc/machine-id").stdout.strip())
        hosts = h.run("getent hosts a b c gateway").stdout.split()
        assert hosts[:2] == ["192.168.123.11", "a"] and "192.168.123.1" in hosts
    assert len(ids) == len(lab.hosts)
    assert Path("/etc/machine-id").read_text().strip() not in ids


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


def test_net_sysctls_and_addresses_are_the_hosts_own(lab):
    """/proc/sys/net is writable per host (sysctl.present works) and the host
    may add addresses (keepalived's VIPs): CAP_NET_ADMIN in its netns."""
    a, b = lab.host("a"), lab.host("b")
    before = Path("/proc/sys/net/ipv4/ip_nonlocal_bind").read_text()
    a.run("sysctl -w net.ipv4.ip_nonlocal_bind=1")
    assert a.run("cat /proc/sys/net/ipv4/ip_nonlocal_bind").stdout.strip() == "1"
    assert b.run("cat /proc/sys/net/ipv4/ip_nonlocal_bind").stdout == before
    assert Path("/proc/sys/net/ipv4/ip_nonlocal_bind").read_text() == before
    a.run("ip addr add 192.168.123.99/24 dev eth0")
    b.run(["ping", "-c1", "-W2", "192.168.123.99"])
    a.run("ip addr del 192.168.123.99/24 dev eth0")


def test_packages_purged_in_hosts(lab):
    for h in lab.hosts.values():
        for pkg in ("nginx", "haproxy", "keepalived"):
            assert h.run(["dpkg", "-s", pkg], check=False).returncode != 0
        assert h.run("test -e /usr/sbin/policy-rc.d", check=False).returncode != 0
    assert subprocess.run(["dpkg", "-s", "nginx"], capture_output=True).returncode == 0  # root untouched


def test_offline_install_starts_the_daemon_under_systemd(lab, capsys):
    a, b = lab.host("a"), lab.host("b")
    t0 = time.monotonic()
    a.run(f"{APT} nginx")
    took = time.monotonic() - t0
    report(capsys, f"apt-get install nginx inside host a: {took:.2f}s")
    assert took < 20
    # as on any Debian server: the package enables and starts its unit
    assert a.run("systemctl is-active nginx").stdout.strip() == "active"
    assert a.run("systemctl is-enabled nginx").stdout.strip() == "enabled"
    assert b.run(f"curl -s -o /dev/null -w '%{{http_code}}' http://{a.address}/").stdout == "200"
    with urllib.request.urlopen(f"http://{a.address}/", timeout=5) as r:  # from the root namespace
        assert r.status == 200
    assert a.run("pidof nginx").stdout.strip()
    assert b.run("pidof nginx", check=False).returncode == 1  # b sees nothing of a
    assert b.run("dpkg -s nginx", check=False).returncode != 0  # installed on a only


def test_killed_process_is_reaped(lab):
    c = lab.host("c")
    pid = c.run("sleep 300 >/dev/null 2>&1 & echo $!").stdout.strip()
    assert c.run(f"ps -o ppid= -p {pid}").stdout.strip() == "1"  # orphan, adopted by systemd
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


def test_reboot_keeps_the_upper_dir_and_enabled_units_and_nothing_else(lab, capsys):
    """A reboot: the host's files and enabled units come back; its processes,
    its /run and what was set on its network interfaces do not."""
    a = lab.host("a")
    assert a.run("systemctl is-enabled nginx").stdout.strip() == "enabled"  # installed above
    a.run("echo kept > /root/marker; echo gone > /run/marker")
    a.run("systemctl disable --now nginx && systemctl enable nginx")  # enabled, not running
    a.run("ip addr add 192.168.123.98/24 dev eth0; sysctl -w net.ipv4.ip_nonlocal_bind=1")
    machine_id = a.run("cat /etc/machine-id").stdout
    sleeper = a.popen("sleep 300")
    old_pid = a.pid
    off = lab.power_off("a")
    assert sleeper.wait(5) is not None  # ended with the host
    assert lablib._start_time(old_pid) is None and a.pid is None
    assert "hvls-a" not in netns_names()
    assert a.port not in lablib._switch_ports(lab.switch)  # a boot at once may add it again
    took = lab.boot("a")
    report(capsys, f"host a powered off in {off:.2f}s, booted to running in {took:.2f}s")
    assert a.pid != old_pid
    assert a.run("systemctl is-system-running").stdout.strip() == "running"
    assert a.run("cat /root/marker").stdout == "kept\n"
    assert a.run("test -e /run/marker", check=False).returncode != 0
    assert a.run("cat /etc/machine-id").stdout == machine_id
    assert a.run("systemctl is-active nginx").stdout.strip() == "active"
    assert a.run("pidof sleep", check=False).returncode == 1
    assert "192.168.123.98" not in a.run("ip addr show dev eth0").stdout
    assert a.run("cat /proc/sys/net/ipv4/ip_nonlocal_bind").stdout.strip() == "0"
    assert lab.host("b").run(f"curl -s -o /dev/null -w '%{{http_code}}' http://{a.address}/").stdout == "200"


def test_down_removes_everything():
    tlab = Lab(T_HOSTS, prefix="hvlt", gateway=T_GATEWAY)
    tlab.up()
    tlab.host("x").popen("sleep 300")  # a running process must not survive or block down()
    pids = lab_pids(tlab)
    t0 = time.monotonic()
    tlab.down()
    assert time.monotonic() - t0 < lablib.POWEROFF_TIMEOUT  # powered off, not killed
    assert_gone("hvlt", tlab.workdir, pids)
    assert (tlab.base(tlab.release) / "key").is_file()  # the base layer cache is kept
    tlab.down()  # twice is fine


def test_down_after_failure_mid_test():
    with pytest.raises(RuntimeError), Lab(T_HOSTS, prefix="hvlt", gateway=T_GATEWAY) as tlab:
        pids = lab_pids(tlab)
        tlab.host("y").run("systemctl list-units", check=False)
        raise RuntimeError("a test failing mid-way")
    assert_gone("hvlt", tlab.workdir, pids)


def test_down_after_partial_up(monkeypatch, tmp_path):
    broken = tmp_path / "nspawn"
    broken.write_text("#!/bin/sh\necho 'nspawn exploded' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(lablib, "NSPAWN", str(broken))
    tlab = Lab(T_HOSTS, prefix="hvlt", gateway=T_GATEWAY)
    with pytest.raises(LabError, match="nspawn exploded"), tlab:
        pass
    assert_gone("hvlt", tlab.workdir, [])


def test_up_names_a_host_that_does_not_reach_running_and_its_failed_units(monkeypatch):
    mount_root = Lab._mount_root

    def with_a_failing_unit(self, h, first_boot):
        mount_root(self, h, first_boot)
        if h.name == "y":
            units = self.workdir / "hosts" / h.name / "root" / "etc/systemd/system"
            (units / "havip-lab-broken.service").write_text(
                "[Service]\nType=oneshot\nExecStart=/bin/false\n[Install]\nWantedBy=multi-user.target\n")
            (units / "multi-user.target.wants" / "havip-lab-broken.service").symlink_to(
                "/etc/systemd/system/havip-lab-broken.service")

    monkeypatch.setattr(Lab, "_mount_root", with_a_failing_unit)
    tlab = Lab(T_HOSTS, prefix="hvlt", gateway=T_GATEWAY)
    with pytest.raises(LabError, match=r"host y is degraded; failed units:\n.*havip-lab-broken.service"), tlab:
        pass
    assert_gone("hvlt", tlab.workdir, [])


def test_cleanup_cli_after_crash():
    """A run killed with SIGKILL leaves its lab; `lab.py cleanup` powers its
    hosts off and removes the rest, from state.json."""
    code = (f"import sys, time; sys.path.insert(0, {str(Path(lablib.__file__).parent)!r}); from lab import Lab; "
            f"Lab({T_HOSTS!r}, prefix='hvlt', gateway={T_GATEWAY!r}).up(); print('up', flush=True); time.sleep(300)")
    crashed = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert crashed.stdout.readline() == "up\n"
    finally:
        crashed.kill()
        crashed.wait()
    workdir = lablib.default_workdir("hvlt")
    state = json.loads((workdir / "state.json").read_text())
    pids = [pid for h in state["hosts"].values() for pid, _ in (h["nspawn"], h["init"])]
    assert len(pids) == 4 and all(lablib._start_time(pid) for pid in pids)  # outlived their creator
    assert any(n.startswith("hvlt-") for n in netns_names())
    t0 = time.monotonic()
    subprocess.run([sys.executable, lablib.__file__, "cleanup", "--prefix", "hvlt"], check=True)
    assert time.monotonic() - t0 < lablib.POWEROFF_TIMEOUT  # powered off, not killed
    assert_gone("hvlt", workdir, pids)


def test_processes_entered_from_outside_never_hold_up_a_poweroff():
    """systemd-shutdown freezes every process of the host before it signals
    them; an nsenter outside sees its child stop and stops too, and would
    never reap it (the host's PID namespace could not end).  power_off sends
    those nsenters SIGCONT: every time, the host is off in seconds."""
    with Lab({"x": "192.168.124.11"}, prefix="hvlt", gateway=T_GATEWAY) as tlab:
        for _ in range(3):
            x = tlab.host("x")
            sleepers = [x.popen("sleep 300") for _ in range(3)]
            time.sleep(0.3)
            init = x.pid
            assert tlab.power_off("x") < 10
            assert all(s.wait(1) is not None for s in sleepers)
            assert lablib._start_time(init) is None
            tlab.boot("x")

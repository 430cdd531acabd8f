"""Namespace lab: systemd hosts on one machine (stdlib only).

Every host boots systemd as PID 1 with ``systemd-nspawn``: its own network
namespace ``<prefix>-<host>`` (``eth0`` with its address, a fixed MAC made
from it, and an IPv6 twin in fd00:100::/64 - 192.168.100.11 is
fd00:100::11 - ``lo``; no default route) wired to a bridge ``br0`` in the
switch namespace ``<prefix>-sw``.  The root namespace joins the bridge
through the veth ``<prefix>-gw`` (the gateway address), so a salt-master
there reaches the minions.  The host's root is an overlay whose upper dir is
private to the host and whose lower layer is the lab's *base layer*; it is
mounted in the root namespace at ``hosts/<host>/root`` and nspawn boots it
(``--boot --register=no --keep-unit --link-journal=no
--network-namespace-path=/run/netns/<prefix>-<host> --resolv-conf=off
--timezone=off --capability=CAP_NET_ADMIN``, ``/proc/sys/net`` writable,
stdin /dev/null, in a session and a cgroup ``havip-lab/<prefix>-<host>`` of
its own: nspawn puts the container in ``payload`` under its own cgroup, and
hosts sharing one would fight over it).  Each host gets a fresh
``/etc/machine-id``, its ``/etc/hostname`` and an ``/etc/hosts`` naming every
lab host.  ``up()`` returns once every host's ``systemctl
is-system-running`` says ``running``.

The base layer is the root file system of the hosts' release (``release``,
by default $HAVIP_LAB_RELEASE's, else bookworm: the machine's own root;
trixie: Debian 13's, see RELEASE_ROOTS; ``releases`` gives some hosts
another, and the lab then has a base layer of each) with the packages in
``purge`` dpkg-purged (and ``/usr/sbin/policy-rc.d`` removed, so an install in a host
starts its daemon as on any server), and the units in ``MASKED`` (plus every
timer) masked: an overlay ``lowerdir=<that root>`` whose upper dir holds the
whiteouts, built once and cached while its ``/var/lib/dpkg/status`` is
unchanged, mounted read-only at ``<workdir>/base/merged`` (trixie's:
``base-trixie/``) while the lab is up.  (It cannot be given to the hosts
as ``lowerdir=<base upper>:/``: the base upper lies inside ``/`` and
overlayfs refuses overlapping layers with ELOOP, so hosts stack on the
mounted base instead.)  Packages are then
absent in every host and ``apt-get install`` inside a host is a real,
offline install from ``/var/cache/apt/archives``.

Powering a host off (``power_off``: SIGTERM to its nspawn, which shuts the
container's systemd down cleanly) ends every process of the host.  Those
entered with ``nsenter`` (``Host.run``/``popen``, the salt-minions) are no
units of the host's systemd: they get SIGTERM with the poweroff and SIGKILL
after ``ENTERED_GRACE`` s, like login sessions at a shutdown; a salt-minion
started that way has to be started again after a boot (``Cluster.boot``
does).  ``boot`` starts the host again on the same upper
dir, in a network namespace made anew (a rebooted machine's interfaces come
up without the addresses, nftables rules and sysctls of its last run), so
enabled units come back and nothing else does.  ``Cluster.reboot`` = both.

Layout of ``workdir`` (default ``/var/lib/havip-lab/<prefix>``)::

    base/{upper,work,merged,key}     cached base layer (kept by down())
    hosts/<host>/{upper,work,root,console.log}
    shared/                          bind-mounted at the same path in every host
    state.json                       what a crashed run left, for cleanup()

CLI (needs ``test/__init__.py``, or Python's own ``test`` package shadows
ours; ``python3 test/lab/lab.py ...`` always works)::

    python3 -m test.lab.lab up [--prefix P] [--gateway CIDR] NAME=ADDR ...
    python3 -m test.lab.lab cleanup [--prefix P]... [--workdir DIR]

``cleanup`` without ``--prefix`` cleans every lab that has a directory under
/var/lib/havip-lab (the default workdirs), plus ``hvl``.
"""

import argparse
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

DEFAULT_PURGE = ("nginx", "nginx-common", "nginx-core", "haproxy", "keepalived")
# The Debian release of the hosts (`make ... HAVIP_LAB_RELEASE=trixie`) and
# the lower layer of their base: the machine's own root (Debian 12), or
# Debian 13's root file system that test/bootstrap-debian.sh builds (its
# apt lists and .deb files in it: hosts install from them offline).
RELEASE_ROOTS = {"bookworm": Path("/"), "trixie": Path("/var/cache/havip/trixie/root")}
RELEASE = os.environ.get("HAVIP_LAB_RELEASE", "bookworm")
# Units of the machine's image that a fresh lab server does not run: they are
# masked in the base layer (a link to /dev/null), as is every timer.
MASKED = (
    "postgresql.service", "postgresql@.service",
    "getty.target", "getty@.service", "console-getty.service", "container-getty@.service",
    "e2scrub_reap.service", "systemd-pstore.service", "systemd-timesyncd.service",
    # D-Bus activated by apt's hook on every install in a host
    "packagekit.service", "packagekit-offline-update.service",
)
BASE_FORMAT = "2"  # part of the base layer's cache key: bump when the build changes
BOOT_TIMEOUT = 120  # s until every host is `running`
POWEROFF_TIMEOUT = 20  # s for a clean poweroff before SIGKILL
ENTERED_GRACE = 2  # s the processes entered from outside have to end on SIGTERM at a poweroff
NSPAWN = "systemd-nspawn"
NSPAWN_PROPAGATE = "/run/systemd/nspawn/propagate"  # nspawn's dir per machine name
CGROUP_DIR = "havip-lab"  # the hosts' nspawns run in havip-lab/<prefix>-<host> of each hierarchy
HOST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
}
# Runs inside `unshare --mount --pid --fork`: "$1"=lower "$2"=upper "$3"=work
# "$4"=mount point, the rest are the packages to purge; $HAVIP_MASK the units to
# mask.  policy-rc.d stays until after the purge so that no maintainer script
# tries to stop a service.
BASE_BUILD_SCRIPT = r"""
lower=$1 upper=$2 work=$3 m=$4; shift 4
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$m"
mount -t proc proc "$m/proc"
mount -t tmpfs tmpfs "$m/run"
mkdir "$m/run/lock"
mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
mount --rbind /dev "$m/dev"
chroot "$m" dpkg --purge "$@"
rm -f "$m/usr/sbin/policy-rc.d"
timers=$(cd "$m" && find etc/systemd/system lib/systemd/system -name '*.timer' -printf '%f
' | sort -u)
for unit in $HAVIP_MASK $timers; do
    ln -sfn /dev/null "$m/etc/systemd/system/$unit"
done
"""


class LabError(RuntimeError):
    """The lab could not be brought up or torn down."""


class HostCommandError(subprocess.CalledProcessError):
    """A command inside a host failed; str() includes its output."""

    def __str__(self):
        return (f"{super().__str__()}\n--- stdout:\n{(self.stdout or '')[-2000:]}"
                f"\n--- stderr:\n{(self.stderr or '')[-2000:]}")


def _sh(*argv, env=None):
    """Run a command in the root namespace; raise LabError with its stderr on failure."""
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       env=env, stdin=subprocess.DEVNULL)
    if p.returncode:
        raise LabError(f"{' '.join(map(str, argv))}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def _start_time(pid):
    """Start time of ``pid`` (field 22 of /proc/PID/stat); None if it is gone or a zombie.

    Recorded with every PID so that a recycled PID is never killed.  Zombies count
    as gone: their namespaces are already released, and this machine's PID 1 never
    reaps the orphans re-parented to it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else fields[19]


def _alive(pid, start):
    """Is ``pid`` still the (non-zombie) process that started at ``start``?"""
    return start is not None and _start_time(pid) == start


def _kill_recorded(pid, start):
    """SIGKILL ``pid`` if it is still the process started at ``start``."""
    if _alive(pid, start):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _mounts_under(path):
    """Mount points of this mount namespace strictly below ``path``, deepest first."""
    prefix = str(path).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split()[4])
        if point.startswith(prefix):
            found.append(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def _argv(cmd):
    """A shell string runs under ``sh -c``; a list is used as is."""
    return ["sh", "-c", cmd] if isinstance(cmd, str) else [str(a) for a in cmd]


LAB_ROOT = Path("/var/lib/havip-lab")
PREFIX_RE = r"[a-z][a-z0-9]{0,11}"  # 1-12 chars, so "<prefix>-gw" fits IFNAMSIZ (15)


def default_workdir(prefix):
    return LAB_ROOT / prefix


def known_prefixes():
    """Prefixes of labs with a default workdir, plus the default one."""
    found = {d.name for d in LAB_ROOT.iterdir() if d.is_dir()} if LAB_ROOT.is_dir() else set()
    return sorted(p for p in found | {"hvl"} if re.fullmatch(PREFIX_RE, p))


IPV6_PREFIX = "fd00:100::"


def ipv6_twin(address):
    """The host's IPv6 address: the last IPv4 octet as the last group."""
    return IPV6_PREFIX + address.rsplit(".", 1)[1]


def mac_of(address):
    """The fixed MAC of a host's eth0, made from its address (02:68:76 and the
    last three octets): it stays the same across reboots, like a NIC's."""
    return "02:68:76:" + ":".join(f"{b:02x}" for b in ipaddress.ip_address(address).packed[1:])


class Host:
    """One lab host; ``pid`` is its systemd's PID in the root PID namespace
    (PID 1 of the host), ``nspawn`` (pid, start time) of the systemd-nspawn
    that runs it."""

    def __init__(self, name, iface, netns, port, release):
        self.name = name
        self.release = release  # its Debian release (RELEASE_ROOTS)
        self.iface = iface  # address with prefix length, e.g. "192.168.100.11/24"
        self.address = iface.split("/")[0]
        self.address6 = ipv6_twin(self.address)
        self.mac = mac_of(self.address)
        self.netns = netns
        self.port = port  # its veth's end on the switch's bridge
        self.pid = None
        self.start = None  # start time of pid, guards against PID reuse
        self.nspawn = None

    @property
    def root(self):
        """The host's root as its processes see it (its own /run and /tmp
        included), from the root namespace: ``/proc/<its systemd>/root``."""
        if self.pid is None:
            raise LabError(f"host {self.name} is not running")
        return Path(f"/proc/{self.pid}/root")

    def nsenter_prefix(self, cwd=None):
        """argv prefix that runs a command inside this host (all its namespaces, its root).

        The command starts in ``cwd`` (a path inside the host), else in ``/``.
        (A ``cwd=`` given to Popen would only move nsenter: ``-w`` resets it.)
        Such a process is no unit of the host's systemd, but it is in the
        host's PID namespace: it ends when the host powers off."""
        if self.pid is None:
            raise LabError(f"host {self.name} is not running")
        wd = ["-W", str(cwd)] if cwd else ["-w"]
        return ["nsenter", "-t", str(self.pid), "-m", "-u", "-i", "-p", "-n", "-r", *wd, "--"]

    def run(self, cmd, check=True, timeout=120, input=None, env=None, cwd=None):
        """Run ``cmd`` inside the host and return the CompletedProcess (text mode).

        ``env`` defaults to HOST_ENV (a clean environment, like a login on that
        host).  On timeout only nsenter is killed; the command may go on inside."""
        argv = self.nsenter_prefix(cwd) + _argv(cmd)
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                           env=HOST_ENV if env is None else env)
        if check and p.returncode:
            raise HostCommandError(p.returncode, argv, p.stdout, p.stderr)
        return p

    def popen(self, cmd, cwd=None, **kwargs):
        """Start a long-running ``cmd`` inside the host (in ``cwd``, a path inside it);
        other kwargs go to subprocess.Popen, ``env`` defaults to HOST_ENV."""
        kwargs.setdefault("env", HOST_ENV)
        return subprocess.Popen(self.nsenter_prefix(cwd) + _argv(cmd), **kwargs)

    def failed_units(self, status=False):
        """`systemctl --failed` of the host, one unit per line; with ``status``
        each failed unit's `systemctl status` (its last journal lines) too."""
        failed = self.run(["systemctl", "--failed", "--plain", "--no-legend"], check=False).stdout.strip()
        if status and failed:
            units = [line.split()[0] for line in failed.splitlines()]
            failed += "\n" + self.run(["systemctl", "status", "--no-pager", "--lines=15", *units],
                                      check=False).stdout
        return failed

    def __repr__(self):
        return f"Host({self.name!r}, {self.address!r}, pid={self.pid})"


class Lab:
    """A set of systemd hosts on one bridge.  Use as a context manager or call up()/down()."""

    def __init__(self, hosts, prefix="hvl", gateway="192.168.100.1/24", workdir=None,
                 purge=None, binds=(), release=None, releases=None):
        """``hosts``: name -> address ("192.168.100.11", prefix length taken from
        ``gateway`` unless given).  ``binds``: extra absolute paths (directories
        or files) bind-mounted at the same path into every host (e.g. a
        virtualenv under /tmp, which the hosts' own tmpfs on /tmp would hide).
        ``release``: the hosts' Debian release (RELEASE_ROOTS), by default
        $HAVIP_LAB_RELEASE's, else bookworm; ``releases``: name -> release of
        the hosts of another one (a cluster halfway through an OS upgrade)."""
        if not re.fullmatch(PREFIX_RE, prefix):
            raise ValueError(f"prefix {prefix!r} does not match {PREFIX_RE}")
        self.release = release or RELEASE
        releases = releases or {}
        if not set(releases) <= set(hosts):
            raise ValueError(f"releases of no lab host: {sorted(set(releases) - set(hosts))}")
        releases = {name: releases.get(name, self.release) for name in hosts}
        for used in sorted(set(releases.values())):
            if used not in RELEASE_ROOTS:
                raise ValueError(f"release {used!r} is none of {sorted(RELEASE_ROOTS)}")
            if not (RELEASE_ROOTS[used] / "var/lib/dpkg/status").is_file():
                raise LabError(f"no root file system of {used} at {RELEASE_ROOTS[used]}:"
                               " build it with `sh test/bootstrap-debian.sh`")
        self.prefix = prefix
        self.gateway = ipaddress.ip_interface(gateway)
        self.workdir = Path(workdir) if workdir else default_workdir(prefix)
        self.purge = list(DEFAULT_PURGE if purge is None else purge)
        self.binds = [str(Path(b).resolve()) for b in binds]
        self.shared_dir = self.workdir / "shared"
        self.switch = f"{prefix}-sw"
        self.gw_link = f"{prefix}-gw"
        self.timings = {}
        self.hosts = {}
        seen = {self.gateway.ip}
        for i, (name, addr) in enumerate(hosts.items()):
            if name == "sw" or not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name):
                raise ValueError(f"bad host name {name!r}")
            iface = ipaddress.ip_interface(addr if "/" in addr else
                                           f"{addr}/{self.gateway.network.prefixlen}")
            if iface.network != self.gateway.network or iface.ip in seen:
                raise ValueError(f"{name}: {addr} not a free address in {self.gateway.network}")
            seen.add(iface.ip)
            # switch-side port; `ip -n <prefix>-sw link` shows the host as alias
            self.hosts[name] = Host(name, str(iface), f"{prefix}-{name}", f"h{i}", releases[name])
        self._procs = {}  # name -> Popen of the host's systemd-nspawn

    def host(self, name):
        return self.hosts[name]

    def base(self, release):
        """The directory of ``release``'s base layer (Debian 12's keeps its
        name of before there were releases)."""
        return self.workdir / ("base" if release == "bookworm" else f"base-{release}")

    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc):
        self.down()

    # ---- up -------------------------------------------------------------------------

    def up(self):
        """Clean up a stale lab with this prefix, then build base, network and hosts,
        and wait until every host's systemd says `running`."""
        t0 = time.monotonic()
        cleanup(self.prefix, self.workdir)
        for d in (self.workdir / "hosts", self.shared_dir):
            d.mkdir(parents=True, exist_ok=True)
        t_base = time.monotonic()
        cached = [self._mount_base(release) for release in sorted({h.release for h in self.hosts.values()})]
        self.timings["base"] = time.monotonic() - t_base
        self.timings["base_cached"] = all(cached)
        self._save_state()
        self._make_switch()
        for h in self.hosts.values():
            self._make_host_network(h)
            self._mount_root(h, first_boot=True)
            self._spawn(h)
        self._wait_booted(self.hosts.values())
        self.timings["up"] = time.monotonic() - t0
        return self

    def _mount_base(self, release):
        """Build ``release``'s base layer unless cached, then mount it
        read-only at <its base>/merged; whether it was cached."""
        base, lower = self.base(release), RELEASE_ROOTS[release]
        upper, work, merged, key_file = base / "upper", base / "work", base / "merged", base / "key"
        key = hashlib.sha256((lower / "var/lib/dpkg/status").read_bytes()
                             + "\0".join([BASE_FORMAT] + self.purge + list(MASKED)).encode()).hexdigest()
        cached = upper.is_dir() and key_file.is_file() and key_file.read_text() == key
        if not cached:
            for d in (upper, work, key_file):
                if d.is_dir():
                    shutil.rmtree(d)
                else:
                    d.unlink(missing_ok=True)
            for d in (upper, work, merged):
                d.mkdir(parents=True, exist_ok=True)
            _sh("unshare", "--mount", "--pid", "--fork", "--propagation", "private",
                "sh", "-ec", BASE_BUILD_SCRIPT, "sh", lower, upper, work, merged, *self.purge,
                env={**HOST_ENV, "HAVIP_MASK": " ".join(MASKED)})
            shutil.rmtree(work)  # the read-only mount gets a fresh one
            work.mkdir()
            key_file.write_text(key)
        _sh("mount", "-t", "overlay", "overlay", "-o",
            f"ro,lowerdir={lower},upperdir={upper},workdir={work}", merged)
        return cached

    def _make_switch(self):
        """Switch netns with br0 and the root's gateway veth."""
        sw = ["ip", "-n", self.switch]
        _sh("ip", "netns", "add", self.switch)
        _sh(*sw, "link", "add", "br0", "type", "bridge")
        _sh(*sw, "link", "set", "br0", "up")
        _sh("ip", "link", "add", self.gw_link, "type", "veth", "peer", "name", "gw",
            "netns", self.switch)
        _sh(*sw, "link", "set", "gw", "master", "br0", "up")
        _sh("ip", "addr", "add", str(self.gateway), "dev", self.gw_link)
        _sh("ip", "link", "set", self.gw_link, "up")

    def _make_host_network(self, h):
        """The host's netns and its veth into the bridge: the machine's NIC,
        made anew at every boot (with the same MAC)."""
        sw = ["ip", "-n", self.switch]
        _sh("ip", "netns", "add", h.netns)
        _sh(*sw, "link", "add", h.port, "type", "veth", "peer", "name", "eth0", "netns", h.netns)
        _sh(*sw, "link", "set", h.port, "alias", h.name, "master", "br0", "up")
        _sh("ip", "-n", h.netns, "link", "set", "eth0", "address", h.mac)
        _sh("ip", "-n", h.netns, "addr", "add", h.iface, "dev", "eth0")
        _sh("ip", "-n", h.netns, "addr", "add", f"{h.address6}/64", "dev", "eth0", "nodad")
        _sh("ip", "-n", h.netns, "link", "set", "eth0", "up")
        _sh("ip", "-n", h.netns, "link", "set", "lo", "up")

    def _host_dir(self, h):
        return self.workdir / "hosts" / h.name

    def _mount_root(self, h, first_boot):
        """Mount the host's overlay root; on its first boot write its identity:
        a fresh machine-id, hostname, /etc/hosts with every lab host, no DNS."""
        d = self._host_dir(h)
        for sub in ("upper", "work", "root"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        root = d / "root"
        _sh("mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={self.base(h.release) / 'merged'},upperdir={d / 'upper'},workdir={d / 'work'}", root)
        if not first_boot:
            return
        names = {n: x.address for n, x in self.hosts.items()}
        names["gateway"] = str(self.gateway.ip)
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        lines += [f"{addr}\t{name}" for name, addr in names.items()]
        files = {
            "etc/machine-id": uuid.uuid4().hex + "\n",
            "etc/hostname": h.name + "\n",
            "etc/hosts": "\n".join(lines) + "\n",
            "etc/resolv.conf": "# havip lab host: no DNS, names come from /etc/hosts\n",
        }
        for path, text in files.items():
            target = root / path
            if target.is_symlink():  # never write through a link to the real root
                target.unlink()
            target.write_text(text)
        for path in [str(self.shared_dir)] + self.binds:
            point = root / path.lstrip("/")
            if Path(path).is_dir():
                point.mkdir(parents=True, exist_ok=True)
            else:
                point.parent.mkdir(parents=True, exist_ok=True)
                point.touch()

    def _spawn(self, h):
        """Boot the host: systemd-nspawn on its root, in its netns, in a session of its own."""
        d = self._host_dir(h)
        argv = [NSPAWN, "-q", "-D", str(d / "root"), "--boot", "--register=no", "--keep-unit",
                "--link-journal=no", "-M", f"{self.prefix}-{h.name}", f"--network-namespace-path=/run/netns/{h.netns}",
                "--resolv-conf=off", "--timezone=off", "--capability=CAP_NET_ADMIN"]
        argv += [f"--bind={path}" for path in [str(self.shared_dir)] + self.binds]
        if h.release != "bookworm" and Path("/sys/fs/cgroup") not in _cgroup_roots():
            # The machine's cgroups are v1 (legacy or hybrid), and so are the
            # host's: systemd >= 256 (trixie's 257; bookworm's is 252) boots
            # on them only when told so on its "kernel command line" - in a
            # container, the arguments of its PID 1.
            argv += ["--", "SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"]
        env = {"PATH": HOST_ENV["PATH"], "LANG": "C.UTF-8",
               # /proc/sys/net writable (per netns): sysctl.present of net.* works
               "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}
        cgroups = _make_cgroups(f"{self.prefix}-{h.name}")
        with open(d / "console.log", "ab") as log:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True,  # a terminal's Ctrl-C reaches only us
                                 # Into the lab's cgroups before nspawn runs (no lock taken there).
                                 preexec_fn=lambda: _join_cgroups(cgroups))  # noqa: PLW1509
        self._procs[h.name] = p
        h.nspawn = [p.pid, _start_time(p.pid)]
        self._save_state()

    def _console(self, h):
        try:
            return (self._host_dir(h) / "console.log").read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def _find_init(self, h, deadline):
        """The host's systemd: the child of its nspawn that runs systemd."""
        p = self._procs[h.name]
        while True:
            if p.poll() is not None:
                raise LabError(f"host {h.name}: systemd-nspawn exited ({p.returncode}):\n{self._console(h)}")
            try:
                children = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
            except FileNotFoundError:
                children = []
            for child in children:
                try:
                    comm = Path(f"/proc/{child}/comm").read_text().strip()
                except FileNotFoundError:
                    continue
                if comm == "systemd":
                    h.pid, h.start = int(child), _start_time(int(child))
                    self._save_state()
                    return
            if time.monotonic() > deadline:
                raise LabError(f"host {h.name}: no systemd after {BOOT_TIMEOUT}s:\n{self._console(h)}")
            time.sleep(0.05)

    def _wait_booted(self, hosts):
        """Wait until every host's `systemctl is-system-running` says running."""
        t0 = time.monotonic()
        deadline = t0 + BOOT_TIMEOUT
        hosts = list(hosts)
        for h in hosts:
            self._find_init(h, deadline)
        pending = {h.name: "" for h in hosts}
        while pending:
            for name in list(pending):
                h = self.hosts[name]
                if self._procs[name].poll() is not None:
                    raise LabError(f"host {name}: systemd-nspawn exited ({self._procs[name].returncode}):"
                                   f"\n{self._console(h)}")
                state = h.run(["systemctl", "is-system-running"], check=False, timeout=30).stdout.strip()
                pending[name] = state
                if state == "running":
                    del pending[name]
                elif state in ("degraded", "maintenance", "stopping"):
                    raise LabError(f"host {name} is {state}; failed units:\n{h.failed_units(status=True)}")
            if pending and time.monotonic() > deadline:
                raise LabError(f"hosts not running after {BOOT_TIMEOUT}s: "
                               + ", ".join(f"{n} ({s or 'no answer'}; failed units: "
                                           f"{self.hosts[n].failed_units() or 'none'})"
                                           for n, s in pending.items()))
            if pending:
                time.sleep(0.2)
        self.timings["boot"] = time.monotonic() - t0

    def _save_state(self):
        state = {
            "prefix": self.prefix,
            "netns": [self.switch] + [h.netns for h in self.hosts.values()],
            "link": self.gw_link,
            "hosts": {h.name: {"nspawn": h.nspawn, "init": [h.pid, h.start] if h.pid else None}
                      for h in self.hosts.values() if h.nspawn},
        }
        tmp = self.workdir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.workdir / "state.json")

    # ---- power ----------------------------------------------------------------------

    def power_off(self, name):
        """Shut host ``name`` down cleanly (its systemd stops every unit; every
        other process of the host ends with it), then unplug it: its root is
        unmounted and its netns deleted.  Returns the seconds it took."""
        t0 = time.monotonic()
        h = self.hosts[name]
        try:
            self._power_off([h])
        finally:
            self._unplug(h)
        return time.monotonic() - t0

    def set_cable(self, name, plugged):
        """Host ``name``'s cable pulled (its switch port down: its eth0 loses
        carrier, its addresses stay, as with a cable or a switch port that
        fails) or plugged in again.  Not `ip link set eth0 down` in the host:
        that flushes eth0's IPv6 addresses, which the host's network setup
        does not add back."""
        _sh("ip", "-n", self.switch, "link", "set", self.hosts[name].port, "up" if plugged else "down")

    def boot(self, name):
        """Boot host ``name`` again on its upper dir (enabled units start, the
        rest of its last run is gone); returns once it is `running`, with the
        seconds it took."""
        t0 = time.monotonic()
        h = self.hosts[name]
        if h.nspawn:
            raise LabError(f"host {name} is running")
        self._unplug(h)  # what a failed boot left
        self._make_host_network(h)
        self._mount_root(h, first_boot=False)
        self._spawn(h)
        self._wait_booted([h])
        return time.monotonic() - t0

    def _power_off(self, hosts):
        """SIGTERM to each host's nspawn (a clean poweroff), a bounded wait,
        then SIGKILL of the recorded nspawn and systemd PIDs as a last resort."""
        hosts = [h for h in hosts if h.nspawn]
        for h in hosts:
            if _alive(*h.nspawn):
                os.kill(h.nspawn[0], signal.SIGTERM)
        _wait_powered_off([h.nspawn for h in hosts], [h.pid for h in hosts if h.pid and _alive(h.pid, h.start)],
                          POWEROFF_TIMEOUT)
        for h in hosts:  # reap them
            p = self._procs.get(h.name)
            if p is not None and p.poll() is None and not _alive(*h.nspawn):
                p.wait(timeout=1)
        stuck = [h for h in hosts if _alive(*h.nspawn)]
        for h in stuck:
            for pid, start in (h.nspawn, (h.pid, h.start)):
                _kill_recorded(pid, start)
            p = self._procs.get(h.name)
            if p is not None:
                p.wait(timeout=10)
        try:
            _wait_gone([(h.pid, h.start) for h in hosts if h.pid])
        finally:
            for h in hosts:
                self._procs.pop(h.name, None)
                h.nspawn = None
                h.pid = h.start = None
            self._save_state()
        if stuck:
            raise LabError(f"hosts did not power off in {POWEROFF_TIMEOUT}s (killed): "
                           f"{[h.name for h in stuck]}")

    def _unplug(self, h):
        """The host's root unmounted, its switch port and its netns removed
        (each if there).  The port first: deleting one end of a veth removes
        both at once, where a deleted netns takes its eth0, and the port with
        it, only when the kernel gets round to it - a boot right after a
        power off found the port still there (chaos seed 92686334, round 33)."""
        root = self._host_dir(h) / "root"
        if str(root) in _mounts_under(self.workdir):
            _sh("umount", root)
        if h.port in _switch_ports(self.switch):
            _sh("ip", "-n", self.switch, "link", "del", h.port)
        if h.netns in _netns_names():
            _sh("ip", "netns", "del", h.netns)

    # ---- down -----------------------------------------------------------------------

    def down(self):
        """Power every host off, and remove everything up() made (not the base cache).

        Safe to call twice and after a partial up()."""
        try:
            self._power_off(self.hosts.values())
        finally:
            self._procs.clear()
            cleanup(self.prefix, self.workdir)


def _cgroup_roots():
    """Mount points of the cgroup hierarchies systemd uses: cgroup2 (the
    unified one) and the v1 ``name=systemd`` one of a hybrid layout."""
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype, options = fields[fields.index("-") + 1], fields[-1]
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options.split(",")):
            roots.append(Path(fields[4]))
    return roots


def _make_cgroups(name):
    """A cgroup ``havip-lab/<name>`` in each of systemd's hierarchies, for one
    host's nspawn.  nspawn puts the container in ``payload`` under its own
    cgroup: hosts whose nspawns shared one cgroup would share that, and their
    systemds would fight over it (units failing with status 219/CGROUP,
    shutdowns that never end)."""
    made = []
    for root in _cgroup_roots():
        path = root / CGROUP_DIR / name
        path.mkdir(parents=True, exist_ok=True)
        made.append(str(path))
    return made


def _join_cgroups(paths):
    """In the child before exec: move this process into ``paths``."""
    for path in paths:
        with open(f"{path}/cgroup.procs", "w") as procs:
            procs.write("0")


def _remove_cgroups(prefix):
    """Remove the lab's cgroups ``havip-lab/<prefix>-*`` (empty once their
    hosts are off), deepest first; the paths still there are returned."""
    left = []
    for root in _cgroup_roots():
        for top in (root / CGROUP_DIR).glob(f"{prefix}-*"):
            for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    left.append(dirpath)
    return left


def _netns_names():
    return [line.split()[0] for line in _sh("ip", "netns", "list").stdout.splitlines()]


def _switch_ports(switch):
    """The names of the links in the switch's netns (none if it is gone)."""
    if switch not in _netns_names():
        return []
    return [line.split(":")[1].strip().split("@")[0]
            for line in _sh("ip", "-n", switch, "-o", "link", "show").stdout.splitlines()]


def _continue_nsenters(inits):
    """SIGCONT to every stopped ``nsenter -t INIT`` of these hosts' systemd PIDs.

    systemd-shutdown freezes every process of the host (kill(-1, SIGSTOP))
    before it signals them; nsenter, outside the host, sees its child stop
    and stops itself, and the SIGCONT that follows reaches only the host.
    Stopped, nsenter never reaps its child, and the host's PID namespace
    cannot end.  These nsenters are the lab's own (Host.run/popen)."""
    wanted = {str(pid) for pid in inits}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if (len(argv) > 2 and argv[0] == b"nsenter" and argv[1] == b"-t"
                and argv[2].decode() in wanted and stat[0] in "Tt"):
            try:
                os.kill(int(proc.name), signal.SIGCONT)
            except ProcessLookupError:
                pass


def _systemd_cgroup(pid):
    """The cgroup path of ``pid`` in systemd's hierarchy (cgroup2, or the v1
    ``name=systemd`` one)."""
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        paths[controllers] = path
    return paths.get("name=systemd", paths.get(""))


def _entered(inits):
    """PIDs of the processes of these hosts (``inits``: their systemd PIDs)
    that their systemd does not manage: entered from outside with nsenter,
    and their children (they stay in the cgroup of whoever entered, outside
    the host's ``havip-lab/...`` cgroup)."""
    namespaces = set()
    for pid in inits:
        try:
            namespaces.add(os.readlink(f"/proc/{pid}/ns/pid"))
        except (FileNotFoundError, PermissionError):
            pass
    namespaces.discard(os.readlink("/proc/self/ns/pid"))  # never the machine's own
    if not namespaces:
        return []
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in inits:
            continue
        try:
            if (os.readlink(proc / "ns/pid") in namespaces
                    and not _systemd_cgroup(proc.name).startswith(f"/{CGROUP_DIR}/")):
                found.append(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def _signal_entered(inits, signum):
    for pid in _entered(inits):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def _wait_powered_off(spawners, inits, timeout):
    """Wait until every (pid, start) of ``spawners`` has exited, or ``timeout`` s.

    The processes entered from outside (like login sessions, which a
    shutdown ends first: the salt-minion, probes) get SIGTERM at once, and
    SIGKILL after ENTERED_GRACE s; systemd-shutdown would otherwise wait
    on them, since they are not its children.  Meanwhile the lab's stopped
    nsenters are continued (_continue_nsenters)."""
    start = time.monotonic()
    _signal_entered(inits, signal.SIGTERM)
    killed = False
    while any(_alive(pid, start_time) for pid, start_time in spawners):
        now = time.monotonic()
        if now > start + timeout:
            break
        if not killed and now > start + ENTERED_GRACE:
            _signal_entered(inits, signal.SIGKILL)
            killed = True
        _continue_nsenters(inits)
        time.sleep(0.05)


def _wait_gone(procs, timeout=10):
    """Wait until every (pid, start) in ``procs`` has exited."""
    deadline = time.monotonic() + timeout
    while any(_alive(pid, start) for pid, start in procs):
        if time.monotonic() > deadline:
            raise LabError(f"processes still alive after {timeout}s: {procs}")
        time.sleep(0.02)


def cleanup(prefix, workdir=None):
    """Remove whatever a lab with ``prefix`` left: its hosts (recorded nspawn PIDs
    get SIGTERM, a clean poweroff; recorded PIDs still alive after that SIGKILL),
    netns ``<prefix>-*``, the link ``<prefix>-gw``, mounts under ``workdir``, host
    and shared dirs, state.json.

    Signals only PIDs recorded in state.json whose start time still matches.
    Every step runs; failures are collected and raised together at the end."""
    workdir = Path(workdir) if workdir else default_workdir(prefix)
    state_file = workdir / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    errors = []
    hosts = state.get("hosts", {}).values()
    spawners = [tuple(h["nspawn"]) for h in hosts if h.get("nspawn")]
    procs = spawners + [tuple(h["init"]) for h in hosts if h.get("init")]
    # A state.json of the earlier lab (hosts under a reaping init): SIGKILL only.
    procs += [tuple(v) for key in ("inits", "spawners") for v in state.get(key, {}).values()]
    for pid, start in spawners:
        if _alive(pid, start):
            os.kill(pid, signal.SIGTERM)
    _wait_powered_off(spawners, [h["init"][0] for h in hosts if h.get("init") and _alive(*h["init"])],
                      POWEROFF_TIMEOUT)
    try:
        _wait_gone(procs, timeout=1)
    except LabError:
        for pid, start in procs:
            _kill_recorded(pid, start)
        try:
            _wait_gone(procs)
        except LabError as e:
            errors.append(str(e))
    link = f"{prefix}-gw"
    if subprocess.run(["ip", "link", "show", link], capture_output=True).returncode == 0:
        try:
            _sh("ip", "link", "del", link)
        except LabError as e:
            errors.append(str(e))
    for name in _netns_names():
        if name.startswith(prefix + "-"):
            try:
                _sh("ip", "netns", "del", name)
            except LabError as e:
                errors.append(str(e))
    for point in _mounts_under(workdir):
        if subprocess.run(["umount", point], capture_output=True).returncode:
            subprocess.run(["umount", "-l", point], capture_output=True)
    if _mounts_under(workdir):
        errors.append(f"still mounted: {_mounts_under(workdir)}")
    left = _remove_cgroups(prefix)
    if left:
        errors.append(f"cgroups not removed: {left}")
    # nspawn's per-machine directory, left when an nspawn was killed
    for d in Path(NSPAWN_PROPAGATE).glob(f"{prefix}-*"):
        shutil.rmtree(d, ignore_errors=True)
    for d in (workdir / "hosts", workdir / "shared"):
        shutil.rmtree(d, ignore_errors=True)
        if d.exists():
            errors.append(f"could not remove {d}")
    state_file.unlink(missing_ok=True)
    if errors:
        raise LabError("cleanup incomplete:\n" + "\n".join(errors))


# ---- CLI --------------------------------------------------------------------------------


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m test.lab.lab", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="bring a lab up, wait for Ctrl-C/SIGTERM, tear it down")
    up.add_argument("hosts", nargs="+", metavar="NAME=ADDR")
    up.add_argument("--gateway", default="192.168.100.1/24")
    up.add_argument("--prefix", default="hvl")
    up.add_argument("--workdir")
    clean = sub.add_parser("cleanup", help="remove what crashed labs left behind")
    clean.add_argument("--prefix", action="append", help="default: every known lab")
    clean.add_argument("--workdir", help="only with a single --prefix")
    args = ap.parse_args(argv)
    if args.cmd == "cleanup":
        prefixes = args.prefix or known_prefixes()
        if args.workdir and len(prefixes) != 1:
            ap.error("--workdir needs exactly one --prefix")
        for prefix in prefixes:
            cleanup(prefix, args.workdir)
            print(f"lab {prefix!r} cleaned up")
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    hosts = dict(h.split("=", 1) for h in args.hosts)
    try:
        with Lab(hosts, prefix=args.prefix, gateway=args.gateway, workdir=args.workdir) as lab:
            print(f"lab {lab.prefix!r} up in {lab.timings['up']:.1f}s (hosts running after "
                  f"{lab.timings['boot']:.1f}s) "
                  f"(base layer {'cached' if lab.timings['base_cached'] else 'built'} "
                  f"in {lab.timings['base']:.1f}s); shared dir {lab.shared_dir}")
            for h in lab.hosts.values():
                print(f"  {h.name:12} {h.address:16} {' '.join(h.nsenter_prefix())} bash")
            print("Ctrl-C to tear down", flush=True)
            while True:
                signal.pause()
    except KeyboardInterrupt:
        print("lab torn down")


if __name__ == "__main__":
    main()

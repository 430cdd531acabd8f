"""Namespace lab: Linux namespaces as "hosts" on one machine (stdlib only).

Every host is a network namespace ``<prefix>-<host>`` (``eth0`` with its
address and an IPv6 twin in fd00:100::/64 - 192.168.100.11 is fd00:100::11 -
``lo``; no default route) wired to a bridge ``br0`` in the switch
namespace ``<prefix>-sw``.  The root namespace joins the bridge through the
veth ``<prefix>-gw`` (the gateway address), so a salt-master there reaches
the minions.  Each host runs ``hostinit.py`` as PID 1 of its own PID, mount
and UTS namespaces, chrooted into an overlay whose upper dir is private to
the host and whose lower layer is the lab's *base layer*.

The base layer is the root file system with the packages in ``purge``
dpkg-purged (and ``/usr/sbin/policy-rc.d`` removed): an overlay
``lowerdir=/`` whose upper dir holds the whiteouts, built once and cached
while ``/var/lib/dpkg/status`` is unchanged, mounted read-only at
``<workdir>/base/merged`` while the lab is up.  (It cannot be given to the
hosts as ``lowerdir=<base upper>:/``: the base upper lies inside ``/`` and
overlayfs refuses overlapping layers with ELOOP, so hosts stack on the
mounted base instead.)  Packages are then absent in every host and
``apt-get install`` inside a host is a real, offline install from
``/var/cache/apt/archives``.

Layout of ``workdir`` (default ``/var/lib/havip-lab/<prefix>``)::

    base/{upper,work,merged,key}     cached base layer (kept by down())
    hosts/<host>/{upper,work,root,init.log}
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
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HOSTINIT = Path(__file__).resolve().with_name("hostinit.py")
DEFAULT_PURGE = ("nginx", "nginx-common", "nginx-core", "haproxy", "keepalived")
BASE_FORMAT = "1"  # part of the base layer's cache key: bump when the build changes
READY_TIMEOUT = 30
HOST_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
}
# Runs inside `unshare --mount --pid --fork`: "$1"=upper "$2"=work "$3"=mount point,
# the rest are the packages to purge.  policy-rc.d stays until after the purge so
# that no maintainer script tries to stop a service.
BASE_BUILD_SCRIPT = r"""
upper=$1 work=$2 m=$3; shift 3
mount -t overlay overlay -o "lowerdir=/,upperdir=$upper,workdir=$work" "$m"
mount -t proc proc "$m/proc"
mount -t tmpfs tmpfs "$m/run"
mkdir "$m/run/lock"
mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
mount --rbind /dev "$m/dev"
chroot "$m" dpkg --purge "$@"
rm -f "$m/usr/sbin/policy-rc.d"
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


class Host:
    """One lab host; ``pid`` is its init's PID in the root PID namespace."""

    def __init__(self, name, iface, netns):
        self.name = name
        self.iface = iface  # address with prefix length, e.g. "192.168.100.11/24"
        self.address = iface.split("/")[0]
        self.address6 = ipv6_twin(self.address)
        self.netns = netns
        self.pid = None
        self.start = None  # start time of pid, guards against PID reuse

    @property
    def root(self):
        """The host's merged root as seen from outside.

        The overlay is mounted only in the host's own mount namespace, so the
        path to reach it from the root namespace is ``/proc/<init pid>/root``."""
        return Path(f"/proc/{self.pid}/root")

    def nsenter_prefix(self, cwd=None):
        """argv prefix that runs a command inside this host (all its namespaces, chrooted).

        The command starts in ``cwd`` (a path inside the host), else in ``/``.
        (A ``cwd=`` given to Popen would only move nsenter: ``-w`` resets it.)"""
        if self.pid is None:
            raise LabError(f"host {self.name} is not running")
        wd = ["-W", str(cwd)] if cwd else ["-w"]
        return ["nsenter", "-t", str(self.pid), "-m", "-u", "-p", "-n", "-r", *wd, "--"]

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

    def __repr__(self):
        return f"Host({self.name!r}, {self.address!r}, pid={self.pid})"


class Lab:
    """A set of namespace hosts on one bridge.  Use as a context manager or call up()/down()."""

    def __init__(self, hosts, prefix="hvl", gateway="192.168.100.1/24", workdir=None,
                 purge=None, binds=()):
        """``hosts``: name -> address ("192.168.100.11", prefix length taken from
        ``gateway`` unless given).  ``binds``: extra absolute paths bind-mounted at
        the same path into every host (e.g. a virtualenv under /tmp, which the
        hosts' own tmpfs on /tmp would hide)."""
        if not re.fullmatch(PREFIX_RE, prefix):
            raise ValueError(f"prefix {prefix!r} does not match {PREFIX_RE}")
        self.prefix = prefix
        self.gateway = ipaddress.ip_interface(gateway)
        self.workdir = Path(workdir) if workdir else default_workdir(prefix)
        self.purge = list(DEFAULT_PURGE if purge is None else purge)
        self.binds = [str(Path(b).resolve()) for b in binds]
        self.shared_dir = self.workdir / "shared"
        self.base_merged = self.workdir / "base" / "merged"
        self.switch = f"{prefix}-sw"
        self.gw_link = f"{prefix}-gw"
        self.timings = {}
        self.hosts = {}
        seen = {self.gateway.ip}
        for name, addr in hosts.items():
            if name == "sw" or not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name):
                raise ValueError(f"bad host name {name!r}")
            iface = ipaddress.ip_interface(addr if "/" in addr else
                                           f"{addr}/{self.gateway.network.prefixlen}")
            if iface.network != self.gateway.network or iface.ip in seen:
                raise ValueError(f"{name}: {addr} not a free address in {self.gateway.network}")
            seen.add(iface.ip)
            self.hosts[name] = Host(name, str(iface), f"{prefix}-{name}")
        self._procs = {}  # name -> Popen of `unshare`, the parent of the host's init

    def host(self, name):
        return self.hosts[name]

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
        """Clean up a stale lab with this prefix, then build base, network and hosts."""
        t0 = time.monotonic()
        cleanup(self.prefix, self.workdir)
        for d in (self.workdir / "hosts", self.shared_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._mount_base()
        self._save_state()
        self._make_network()
        self._start_hosts()
        self.timings["up"] = time.monotonic() - t0
        return self

    def _mount_base(self):
        """Build the base layer unless cached, then mount it read-only at base/merged."""
        base = self.workdir / "base"
        upper, work, key_file = base / "upper", base / "work", base / "key"
        key = hashlib.sha256(Path("/var/lib/dpkg/status").read_bytes()
                             + "\0".join([BASE_FORMAT] + self.purge).encode()).hexdigest()
        t0 = time.monotonic()
        cached = upper.is_dir() and key_file.is_file() and key_file.read_text() == key
        if not cached:
            for d in (upper, work, key_file):
                if d.is_dir():
                    shutil.rmtree(d)
                else:
                    d.unlink(missing_ok=True)
            for d in (upper, work, self.base_merged):
                d.mkdir(parents=True, exist_ok=True)
            _sh("unshare", "--mount", "--pid", "--fork", "--propagation", "private",
                "sh", "-ec", BASE_BUILD_SCRIPT, "sh", upper, work, self.base_merged, *self.purge,
                env=HOST_ENV)
            shutil.rmtree(work)  # the read-only mount gets a fresh one
            work.mkdir()
            key_file.write_text(key)
        _sh("mount", "-t", "overlay", "overlay", "-o",
            f"ro,lowerdir=/,upperdir={upper},workdir={work}", self.base_merged)
        self.timings["base"] = time.monotonic() - t0
        self.timings["base_cached"] = cached

    def _make_network(self):
        """Switch netns with br0, the root's gateway veth, one netns + veth per host."""
        sw = ["ip", "-n", self.switch]
        _sh("ip", "netns", "add", self.switch)
        _sh(*sw, "link", "add", "br0", "type", "bridge")
        _sh(*sw, "link", "set", "br0", "up")
        _sh("ip", "link", "add", self.gw_link, "type", "veth", "peer", "name", "gw",
            "netns", self.switch)
        _sh(*sw, "link", "set", "gw", "master", "br0", "up")
        _sh("ip", "addr", "add", str(self.gateway), "dev", self.gw_link)
        _sh("ip", "link", "set", self.gw_link, "up")
        for i, h in enumerate(self.hosts.values()):
            port = f"h{i}"  # switch-side port; `ip -n <prefix>-sw link` shows the host as alias
            _sh("ip", "netns", "add", h.netns)
            _sh(*sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.netns)
            _sh(*sw, "link", "set", port, "alias", h.name, "master", "br0", "up")
            _sh("ip", "-n", h.netns, "addr", "add", h.iface, "dev", "eth0")
            _sh("ip", "-n", h.netns, "addr", "add", f"{h.address6}/64", "dev", "eth0", "nodad")
            _sh("ip", "-n", h.netns, "link", "set", "eth0", "up")

    def _start_hosts(self):
        """Start every host's init, then wait until each has printed READY <pid>."""
        names = {h.name: h.address for h in self.hosts.values()}
        names["gateway"] = str(self.gateway.ip)
        for h in self.hosts.values():
            d = self.workdir / "hosts" / h.name
            for sub in ("upper", "work", "root"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            cfg = {"hostname": h.name, "lower": str(self.base_merged), "upper": str(d / "upper"),
                   "work": str(d / "work"), "root": str(d / "root"),
                   "binds": [str(self.shared_dir)] + self.binds, "hosts": names}
            with open(d / "init.log", "wb") as log:
                self._procs[h.name] = subprocess.Popen(
                    ["ip", "netns", "exec", h.netns, "unshare", "--mount", "--uts", "--pid",
                     "--fork", "--kill-child", "--propagation", "private",
                     sys.executable, "-I", str(HOSTINIT), json.dumps(cfg)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                    start_new_session=True)  # a terminal's Ctrl-C reaches only us; down() ends them
        self._save_state()
        pending = {p.stdout.fileno(): (name, p, b"") for name, p in self._procs.items()}
        deadline = time.monotonic() + READY_TIMEOUT
        while pending:
            ready, _, _ = select.select(list(pending), [], [], max(0, deadline - time.monotonic()))
            if not ready:
                raise LabError(f"hosts not ready after {READY_TIMEOUT}s: "
                               f"{[n for n, _, _ in pending.values()]}")
            for fd in ready:
                name, p, buf = pending[fd]
                chunk = os.read(fd, 256)
                buf += chunk
                if b"\n" in buf:
                    line = buf.split(b"\n")[0].decode()
                    if not re.fullmatch(r"READY \d+", line):
                        raise LabError(f"host {name}: unexpected output from hostinit: {line!r}")
                    h = self.hosts[name]
                    h.pid = int(line.split()[1])
                    h.start = _start_time(h.pid)
                    p.stdout.close()
                    del pending[fd]
                    self._save_state()
                elif not chunk:
                    log = (self.workdir / "hosts" / name / "init.log").read_text()[-3000:]
                    raise LabError(f"host {name}: init exited ({p.wait()}):\n{log}")
                else:
                    pending[fd] = (name, p, buf)

    def _save_state(self):
        state = {
            "prefix": self.prefix,
            "netns": [self.switch] + [h.netns for h in self.hosts.values()],
            "link": self.gw_link,
            "mounts": [str(self.base_merged)],
            "inits": {h.name: [h.pid, h.start] for h in self.hosts.values() if h.pid},
            "spawners": {n: [p.pid, _start_time(p.pid)] for n, p in self._procs.items()},
        }
        tmp = self.workdir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.workdir / "state.json")

    # ---- down -----------------------------------------------------------------------

    def down(self):
        """Kill the hosts, wait for them, and remove everything up() made (not the base cache).

        Safe to call twice and after a partial up()."""
        for h in self.hosts.values():
            if h.pid:
                _kill_recorded(h.pid, h.start)  # PID 1 of the PID namespace: takes all of it
        for name, p in self._procs.items():
            if not self.hosts[name].pid:  # init not READY (yet): it is unshare's only child
                try:
                    children = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
                except FileNotFoundError:  # unshare has exited already
                    children = []
                for child in children:
                    os.kill(int(child), signal.SIGKILL)
            try:
                p.wait(timeout=10)  # unshare reaps the init, then exits
            except subprocess.TimeoutExpired:
                p.kill()  # --kill-child: the init gets SIGKILL too
                p.wait()
            p.stdout.close()
        self._procs.clear()
        try:
            cleanup(self.prefix, self.workdir)
        finally:
            for h in self.hosts.values():
                h.pid = h.start = None


def _wait_gone(procs, timeout=10):
    """Wait until every (pid, start) in ``procs`` has exited."""
    deadline = time.monotonic() + timeout
    while any(_alive(pid, start) for pid, start in procs):
        if time.monotonic() > deadline:
            raise LabError(f"processes still alive after SIGKILL: {procs}")
        time.sleep(0.02)


def cleanup(prefix, workdir=None):
    """Remove whatever a lab with ``prefix`` left: recorded PIDs, netns ``<prefix>-*``,
    the link ``<prefix>-gw``, mounts under ``workdir``, host and shared dirs, state.json.

    Kills only PIDs recorded in state.json whose start time still matches.  Every
    step runs; failures are collected and raised together at the end."""
    workdir = Path(workdir) if workdir else default_workdir(prefix)
    state_file = workdir / "state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    errors = []
    procs = [tuple(v) for key in ("inits", "spawners") for v in state.get(key, {}).values()]
    for pid, start in procs:
        _kill_recorded(pid, start)
    try:
        _wait_gone(procs)
    except LabError as e:
        errors.append(str(e))
    for line in _sh("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0]
        if name.startswith(prefix + "-"):
            try:
                _sh("ip", "netns", "del", name)
            except LabError as e:
                errors.append(str(e))
    link = f"{prefix}-gw"
    if subprocess.run(["ip", "link", "show", link], capture_output=True).returncode == 0:
        try:
            _sh("ip", "link", "del", link)
        except LabError as e:
            errors.append(str(e))
    for point in _mounts_under(workdir):
        if subprocess.run(["umount", point], capture_output=True).returncode:
            subprocess.run(["umount", "-l", point], capture_output=True)
    if _mounts_under(workdir):
        errors.append(f"still mounted: {_mounts_under(workdir)}")
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
            print(f"lab {lab.prefix!r} up in {lab.timings['up']:.1f}s "
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

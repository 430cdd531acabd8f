"""PID 1 of one lab host.

Started by ``lab.py`` as::

    ip netns exec NS unshare --mount --uts --pid --fork --propagation private \
        PYTHON -I hostinit.py CONFIG_JSON

so it already sits in the host's network namespace and in fresh mount, UTS
and PID namespaces.  It builds the host's file system (an overlay over the
lab's base layer), chroots into it, prints ``READY <pid>`` (``<pid>`` is its
PID as seen from the root PID namespace) on stdout and then stays PID 1:
it reaps every orphan, so daemons that exit never linger as zombies, and on
SIGTERM/SIGINT it kills every process of the host and exits.

CONFIG_JSON keys: ``hostname``, ``lower``, ``upper``, ``work``, ``root``
(overlay mount point), ``binds`` (absolute paths bind-mounted at the same
path inside), ``hosts`` (name -> address, written to /etc/hosts).
"""

import json
import os
import signal
import socket
import subprocess
import sys


def sh(*argv):
    """Run a setup command (its output goes to the log); any failure aborts the host start."""
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=sys.stderr)


def build_root(cfg):
    """Mount the overlay root and the pseudo file systems under it."""
    root = cfg["root"]
    sh("mount", "-t", "overlay", "overlay", "-o",
       f"lowerdir={cfg['lower']},upperdir={cfg['upper']},workdir={cfg['work']}", root)
    sh("mount", "-t", "proc", "proc", f"{root}/proc")
    sh("mount", "-t", "sysfs", "sysfs", f"{root}/sys")  # shows this netns's links
    sh("mount", "--rbind", "/dev", f"{root}/dev")
    sh("mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", f"{root}/run")
    os.mkdir(f"{root}/run/lock", 0o1777)
    sh("mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", f"{root}/tmp")
    for path in cfg["binds"]:
        os.makedirs(root + path, exist_ok=True)
        sh("mount", "--rbind", path, root + path)


def write_identity(cfg):
    """Write /etc/hostname, /etc/hosts and an empty resolver config (no DNS)."""
    root, name = cfg["root"], cfg["hostname"]
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{addr}\t{host}" for host, addr in cfg["hosts"].items()]
    files = {
        "/etc/hostname": name + "\n",
        "/etc/hosts": "\n".join(lines) + "\n",
        "/etc/resolv.conf": "# havip lab host: no DNS, names come from /etc/hosts\n",
    }
    for path, text in files.items():
        if os.path.islink(root + path):  # never write through a link to the real root
            os.unlink(root + path)
        with open(root + path, "w") as f:
            f.write(text)
    socket.sethostname(name)


def serve_as_init():
    """Reap children forever; on SIGTERM/SIGINT kill the whole host and exit."""
    signals = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    while True:
        info = signal.sigwaitinfo(signals)
        if info.si_signo != signal.SIGCHLD:
            os.kill(-1, signal.SIGKILL)  # from PID 1: every other process of the namespace
            os._exit(0)
        while True:  # SIGCHLDs coalesce: reap everything that has exited
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


def main():
    cfg = json.loads(sys.argv[1])
    outer_pid = int(os.readlink("/proc/self"))  # still the root namespace's /proc here
    build_root(cfg)
    write_identity(cfg)
    os.chroot(cfg["root"])
    os.chdir("/")
    sh("ip", "link", "set", "lo", "up")
    print(f"READY {outer_pid}", flush=True)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    serve_as_init()


if __name__ == "__main__":
    main()

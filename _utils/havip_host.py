"""
What a havip minion reads of its host and does to it: pid files and
processes, addresses (``ip -j addr``), keepalived's state and standby
files, sysctls, TCP connections (``/proc/net/tcp``), ``ip`` commands and
the failures the failover test injects (SIGKILL, a link down).

Pure helpers: a command runs through ``run(cmd, **kwargs)``, Salt's
``cmd.run_all`` without a shell, which the caller passes in.
"""

import ipaddress
import json
import os
import struct
import time

from havip_facts import ARP_SYSCTLS, LINGER_DEVICE
from salt.exceptions import CommandExecutionError

PROC_NET_TCP = ("/proc/net/tcp", "/proc/net/tcp6")
# TCP states (/proc/net/tcp) that are no connection in use: TIME_WAIT, CLOSE, LISTEN.
IDLE_TCP_STATES = {"06", "07", "0A"}
# havip.release: seconds without a connection on the lingering VIPs.
RELEASE_QUIET = 1.0


# ---- processes ----------------------------------------------------------------


def pids(pidfiles):
    found = []
    for path in pidfiles:
        try:
            with open(path, encoding="utf-8") as handle:
                found.extend(int(word) for word in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(pidfiles):
    """Is a process of any of these pid files alive?"""
    return any(alive(pid) for pid in pids(pidfiles))


def kill(pidfiles, what):
    """SIGKILL to the live processes of ``pidfiles`` (``what`` names them)."""
    live = [pid for pid in pids(pidfiles) if alive(pid)]
    if not live:
        raise CommandExecutionError(f"havip.inject: {what} is not running here")
    for pid in live:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            continue


# ---- addresses and links ------------------------------------------------------


def addresses(run):
    """{interface: {address (no prefix): its `ip -j addr` entry}} of this host."""
    out = run(["ip", "-j", "addr", "show"])
    if out["retcode"] != 0:
        raise CommandExecutionError(f"havip: 'ip -j addr show' failed: {out['stderr']}")
    return {
        link["ifname"]: {str(ipaddress.ip_address(info["local"])): info
                         for info in link.get("addr_info", []) if "local" in info}
        for link in json.loads(out["stdout"] or "[]")
    }


def held(vip, found):
    """Is ``vip`` on its interface here (where keepalived puts it)?
    ``found``: :py:func:`addresses`."""
    return vip["address"] in found.get(vip["interface"], {})


def lingering(vip, found):
    """Is ``vip`` kept on LINGER_DEVICE here (havip.linger)?"""
    return vip["address"] in found.get(LINGER_DEVICE, {})


def ip(run, args):
    out = run(["ip", *args])
    if out["retcode"] != 0:
        raise CommandExecutionError(f"havip: `ip {' '.join(args)}` failed: {out['stderr'].strip()}")


def host_prefix(vip):
    return f"{vip['address']}/{32 if vip['family'] == 4 else 128}"


def routes_via(run, interface):
    """`ip route replace` arguments of the routes through ``interface`` that
    the kernel does not re-create when the link comes back (gateways)."""
    out = run(["ip", "-j", "route", "show", "dev", interface])
    routes = json.loads(out["stdout"] or "[]") if out["retcode"] == 0 else []
    commands = []
    for route in routes:
        if route.get("protocol") == "kernel" or "gateway" not in route:
            continue
        command = ["ip", "route", "replace", route["dst"], "via", route["gateway"], "dev", interface]
        if "metric" in route:
            command += ["metric", str(route["metric"])]
        commands.append(command)
    return commands


def link_down(run, interfaces, duration):
    """Take the interfaces down for ``duration`` s, then up again with the
    routes through them restored."""
    routes = [command for interface in interfaces for command in routes_via(run, interface)]
    for interface in interfaces:
        run(["ip", "link", "set", "dev", interface, "down"])
    time.sleep(duration)
    for interface in interfaces:
        run(["ip", "link", "set", "dev", interface, "up"])
    for command in routes:
        run(command)


# ---- keepalived's files and the kernel's settings ---------------------------


def vrrp_state(state_dir, name):
    """(state, since) of a VRRP instance as keepalived's notify script
    recorded it; since = the time of the change (seconds since the epoch)."""
    path = os.path.join(state_dir, name)
    try:
        with open(path, encoding="utf-8") as handle:
            words = handle.read().split()
        return (words[0] if words else "UNKNOWN"), os.stat(path).st_mtime
    except OSError:
        return "UNKNOWN", None


def standby_value(lookup):
    try:
        with open(lookup["keepalived"]["standby_file"], encoding="utf-8") as handle:
            return int(handle.read().strip() or 0)
    except FileNotFoundError:
        return 0
    except ValueError:
        raise CommandExecutionError(
            f"havip: {lookup['keepalived']['standby_file']} must hold 0, 1 or 2"
        ) from None


def write_standby(lookup, value):
    with open(lookup["keepalived"]["standby_file"], "w", encoding="utf-8") as handle:
        handle.write(f"{value}\n")


def sysctl(name):
    with open(f"/proc/sys/{name.replace('.', '/')}", encoding="utf-8") as handle:
        return int(handle.read().split()[0])


def arp_guard(function, vips):
    """A VIP kept on ``lo`` must not be announced: with arp_ignore 0 this
    balancer would answer ARP for it, with arp_announce 0 it could use it
    as the source of its own ARP requests (the formula sets both)."""
    if not any(vip["family"] == 4 for vip in vips):
        return
    settings = {name: sysctl(name) for name in ARP_SYSCTLS}
    wrong = [f"{name} = {value}" for name, value in settings.items() if value < ARP_SYSCTLS[name]]
    if wrong:
        raise CommandExecutionError(
            f"havip.{function}: refused, {' and '.join(wrong)}: this balancer would announce the VIPs"
            " it keeps (run state.apply havip, which sets "
            + ", ".join(f"{name} = {value}" for name, value in ARP_SYSCTLS.items()) + ")")


# ---- TCP connections ------------------------------------------------------------


def connections(local):
    """How many TCP connections this host has on the addresses ``local``
    (local end), from /proc/net/tcp and tcp6: every state but LISTEN,
    TIME_WAIT and CLOSE (a handshake in progress counts)."""
    count = 0
    for path in PROC_NET_TCP:
        try:
            with open(path, encoding="ascii") as handle:
                lines = handle.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] not in IDLE_TCP_STATES and proc_address(fields[1]) in local:
                count += 1
    return count


def proc_address(field):
    """The address of a /proc/net/tcp{,6} ``HEX:PORT`` field: 32-bit words
    in host byte order."""
    words = field.split(":")[0]
    packed = b"".join(struct.pack("=I", int(words[i:i + 8], 16)) for i in range(0, len(words), 8))
    address = ipaddress.ip_address(packed)
    return str(getattr(address, "ipv4_mapped", None) or address)


def quiet(local, budget):
    """Wait until the addresses ``local`` have had no connection for
    RELEASE_QUIET s, at most ``budget`` s; returns how many connections
    are left."""
    start = quiet_since = time.monotonic()
    while (now := time.monotonic()) - quiet_since < RELEASE_QUIET and now - start < budget:
        if connections(local):
            quiet_since = now
        time.sleep(0.05)
    return connections(local)

"""
What a havip minion reads of its host and does to it: pid files and
processes, addresses (``ip -j addr``), keepalived's state and standby
files, and the failures the failover test injects (SIGKILL, a link down
with its restore scheduled first).

Pure helpers: a command runs through ``run(cmd, **kwargs)``, Salt's
``cmd.run_all`` without a shell, which the caller passes in.
"""

import ipaddress
import json
import os
import time

from havip_facts import IN_SERVICE, LINGER_DEVICE, STANDBY_FAULT, STANDBY_LOWEST
from havip_values import is_interface
from salt.exceptions import CommandExecutionError

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
    """Is ``vip`` kept on LINGER_DEVICE here after it left its interface
    (the handover's old holder, serving the connections it had)?"""
    return vip["address"] in found.get(LINGER_DEVICE, {}) and not held(vip, found)


def restore_unit(interface):
    """The transient systemd unit (a .timer and its .service) that brings
    ``interface`` back after a link_down."""
    return f"havip-link-restore-{interface}"


def _checked_interface(name):
    """``name``, an interface name a link restore takes into a file and a
    unit name, or refused."""
    if not is_interface(name):
        raise CommandExecutionError(f"havip.inject: refused, {name!r} is not an interface name a restore can use")
    return name


def _route_line(route, interface):
    """``ip -batch``'s line re-creating a gateway route of ``ip -j route``,
    rebuilt from its fields, each checked."""
    try:
        destination = "default" if route["dst"] == "default" else str(ipaddress.ip_network(route["dst"]))
        gateway = str(ipaddress.ip_address(route["gateway"]))
        metric = route.get("metric")
        if metric is not None and (isinstance(metric, bool) or not isinstance(metric, int)
                                   or not 0 <= metric < 2**32):
            raise ValueError(metric)
    except (KeyError, TypeError, ValueError):
        raise CommandExecutionError(
            f"havip.inject: refused, a route through {interface} that the restore could not rebuild: {route}"
        ) from None
    return f"route replace {destination} via {gateway} dev {interface}" + (
        "" if metric is None else f" metric {metric}")


def restore_lines(run, interface):
    """``ip -batch`` lines that bring ``interface`` up with the routes
    through it the kernel does not re-create (those via a gateway)."""
    out = run(["ip", "-j", "route", "show", "dev", interface])
    if out["retcode"] != 0:
        raise CommandExecutionError(f"havip: `ip -j route show dev {interface}` failed: {out['stderr'].strip()}")
    return [f"link set dev {interface} up"] + [
        _route_line(route, interface) for route in json.loads(out["stdout"] or "[]")
        if route.get("protocol") != "kernel" and "gateway" in route]


def _write_private(path, text):
    """``text`` into ``path``, readable by root only (never through a link)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


def _unschedule(run, interface):
    run(["systemctl", "stop", f"{restore_unit(interface)}.timer"])


def _schedule(run, restores, seconds):
    """A transient systemd timer per interface of ``restores`` ({interface:
    its restore file}) that runs the restore in ``seconds`` s; none is left
    when one cannot be set up."""
    scheduled = []
    for interface, path in restores.items():
        out = run(["systemd-run", f"--on-active={round(seconds * 1000)}ms", f"--unit={restore_unit(interface)}",
                   "--collect", "ip", "-force", "-batch", path])
        if out["retcode"] != 0:
            for done in scheduled:
                _unschedule(run, done)
            raise CommandExecutionError(f"havip.inject: refused, the restore of {interface} could not be"
                                        f" scheduled (systemd-run: {out['stderr'].strip()})")
        scheduled.append(interface)


def link_down(run, interfaces, duration, restore_dir, late):
    """Take ``interfaces`` down for ``duration`` s, then up again with the
    gateway routes through them.  Each one's restore is an ``ip -batch``
    file in ``restore_dir``, scheduled before the link goes down as a
    transient systemd timer ``late`` s after the duration: the link comes
    back even if this process is killed.  The restore runs here after the
    duration and then stops the timer (left to try again if the restore
    failed)."""
    restores = {}
    for interface in [_checked_interface(name) for name in interfaces]:
        lines = restore_lines(run, interface)
        os.makedirs(restore_dir, mode=0o700, exist_ok=True)
        restores[interface] = os.path.join(restore_dir, f"link-restore-{interface}.batch")
        _write_private(restores[interface], "\n".join(lines) + "\n")
    _schedule(run, restores, duration + late)
    for interface in restores:
        run(["ip", "link", "set", "dev", interface, "down"])
    time.sleep(duration)
    failed = []
    for interface, path in restores.items():
        out = run(["ip", "-force", "-batch", path])
        if out["retcode"] == 0:
            _unschedule(run, interface)
        else:
            failed.append(f"{interface} ({out['stderr'].strip()})")
    if failed:
        raise CommandExecutionError(f"havip.inject: restoring {', '.join(failed)} failed;"
                                    f" its systemd timer tries again {late} s later")


# ---- keepalived's files -------------------------------------------------------


def vrrp_state(state_dir, name):
    """(state, since) of a VRRP instance as keepalived's notify script
    recorded it; since = the time of the change (seconds since the epoch).
    Both from the one file opened: the script replaces it by a rename."""
    try:
        with open(os.path.join(state_dir, name), encoding="utf-8") as handle:
            words = handle.read().split()
            return (words[0] if words else "UNKNOWN"), os.fstat(handle.fileno()).st_mtime
    except OSError:
        return "UNKNOWN", None


def vips(facts, found, keepalived):
    """havip.status's ``vips`` of a balancer: each VIP of ``facts`` with
    its ``address``, ``interface``, ``held`` and ``lingering`` (among this
    host's addresses ``found``), keepalived's recorded ``state`` (STOPPED
    unless ``keepalived`` runs), ``since_s`` and this node's
    ``priority``."""
    report = {}
    for name, vip in sorted(facts["vips"].items()):
        state, since = vrrp_state(facts["lookup"]["keepalived"]["state_dir"], name)
        report[name] = {
            "address": vip["address"],
            "interface": vip["interface"],
            "held": held(vip, found),
            "lingering": lingering(vip, found),
            "state": state if keepalived else "STOPPED",
            "since_s": None if since is None else round(since, 3),
            "priority": vip["priorities"][facts["node"]["name"]],
        }
    return report


def standby_value(lookup):
    try:
        with open(lookup["keepalived"]["standby_file"], encoding="utf-8") as handle:
            return int(handle.read().strip() or IN_SERVICE)
    except FileNotFoundError:
        return IN_SERVICE
    except ValueError:
        raise CommandExecutionError(
            f"havip: {lookup['keepalived']['standby_file']} must hold {IN_SERVICE}, {STANDBY_LOWEST} or {STANDBY_FAULT}"
        ) from None


def write_standby(lookup, value):
    with open(lookup["keepalived"]["standby_file"], "w", encoding="utf-8") as handle:
        handle.write(f"{value}\n")

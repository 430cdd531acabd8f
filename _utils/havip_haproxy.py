"""
HAProxy as havip sees it: its runtime API (the ``stats socket``), the CSV
statistics of the havip backend servers, a server's state set at runtime
(drain, ready), and a peer's stats page.

Pure helpers: what they need of the deployed configuration comes in as
arguments (no Salt dunders).
"""

import csv
import io
import itertools
import socket
import urllib.error

import havip_http
from havip_facts import HAPROXY_BACKEND
from salt.exceptions import CommandExecutionError

# What havip needs of haproxy:global (and global_extra).
NO_SOCKET = "no `stats socket <path> ... level admin` line in havip:haproxy:global or global_extra"


def stats_socket(haproxy):
    """The path of the runtime API socket havip uses, read as HAProxy reads
    the ``haproxy`` pillar key's lines (``global`` then ``global_extra``):
    the first ``stats socket`` on a path (``/...`` or ``unix@/...``) at
    ``level admin``, before any ``#`` (a comment); None if there is none."""
    for line in haproxy["global"] + haproxy["global_extra"]:
        words = line.split("#", 1)[0].split()
        if words[:2] != ["stats", "socket"] or len(words) < 3:
            continue
        path = words[2].removeprefix("unix@")
        admin = ("level", "admin") in itertools.pairwise(words[3:])
        if path.startswith("/") and admin:
            return path
    return None


def server_rows(stats_csv):
    """{server: its row} of the havip backend servers in HAProxy's CSV stats."""
    rows = csv.DictReader(io.StringIO(stats_csv.lstrip("# ")))
    return {
        row["svname"]: row
        for row in rows
        if row.get("pxname") == HAPROXY_BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")
    }


def servers(stats_csv):
    """{server: status} of the havip backend servers in HAProxy's CSV stats."""
    return {name: row["status"] for name, row in server_rows(stats_csv).items()}


def any_up(states):
    """Is any server of {server: status} UP?"""
    return any(state.startswith("UP") for state in states.values())


def runtime_api(path, command, timeout=2.0):
    """The answer of HAProxy's runtime API (stats socket) to one command."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def ask(path, command):
    """:py:func:`runtime_api`, its failure a CommandExecutionError."""
    try:
        return runtime_api(path, command)
    except OSError as exc:
        raise CommandExecutionError(f"havip: HAProxy's runtime API ({path}) did not answer: {exc}") from None


def server_socket(facts, function, server):
    """The runtime API socket of this balancer's HAProxy, for ``server``, one
    of the havip backend servers (``function`` names the caller)."""
    known = [node["name"] for node in facts["backends"]]
    if server not in known:
        raise CommandExecutionError(
            f"havip.{function}: unknown backend server {server!r} (known: {', '.join(known)})")
    path = stats_socket(facts["haproxy"])
    if path is None:
        raise CommandExecutionError(f"havip.{function}: {NO_SOCKET}")
    return path


def server_row(path, server):
    """``show stat``'s row of one havip backend server."""
    rows = server_rows(ask(path, "show stat"))
    if server not in rows:
        raise CommandExecutionError(f"havip: HAProxy has no server {server} in {HAPROXY_BACKEND}")
    return rows[server]


def sessions(path, server):
    return int(server_row(path, server)["scur"] or 0)


def set_server_state(path, server, state):
    command = f"set server {HAPROXY_BACKEND}/{server} state {state}"
    answer = ask(path, command).strip()
    if answer:
        raise CommandExecutionError(f"havip: HAProxy refused `{command}`: {answer}")


def status(facts, running, config_valid):
    """``havip.status``'s view of HAProxy: ``running`` and ``config_valid``
    as the caller found them, and every backend server's status from the
    runtime API (an ``error`` if it cannot be asked)."""
    report = {"running": running, "config_valid": config_valid, "backends": None}
    path = stats_socket(facts["haproxy"])
    if path is None:
        report["error"] = NO_SOCKET
        return report
    try:
        report["backends"] = servers(runtime_api(path, "show stat"))
    except OSError as exc:
        report["error"] = f"HAProxy's runtime API ({path}) did not answer: {exc}"
    return report


def peer_health(facts, peer):
    """None if ``peer``'s HAProxy serves: its stats:backends_uri answers 200
    (a backend server is UP there).  It is asked without credentials, so the
    stats password can change under a rolling deploy.  Else the reason why
    not."""
    stats = facts["stats"]
    page = havip_http.http_url(peer["address"], stats["port"], stats["backends_uri"])
    try:
        havip_http.get(page)
    except urllib.error.HTTPError as exc:
        return f"its HAProxy has no backend server UP ({page} answered {exc.code})"
    except (OSError, ValueError) as exc:
        return f"its HAProxy did not answer {page} ({exc})"
    return None

"""
HAProxy as havip sees it: its runtime API (the ``stats socket``), its
statistics of the pools' servers and the services' frontends (read by
havip_servers), a server's state set at runtime (drain, ready) and kept
in HAProxy's server state file (havip_server_state), and a peer's stats
page.

Pure helpers: what they need of the deployed configuration comes in as
arguments (no Salt dunders).
"""

import itertools
import socket
import time
import urllib.error

import havip_http
import havip_server_state
import havip_servers
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


def status(facts, running, config_valid):
    """``havip.status``'s view of HAProxy: ``running`` and ``config_valid``
    as the caller found them, and from the runtime API the ``pools`` and
    ``services`` of the model ``facts`` deployed (havip_servers) and the
    ``backends`` ({server: status}); when it cannot be asked, only
    ``backends`` None and the ``error``."""
    report = {"running": running, "config_valid": config_valid, "backends": None}
    path = stats_socket(facts["haproxy"])
    if path is None:
        report["error"] = NO_SOCKET
        return report
    try:
        rows = havip_servers.stat_rows(runtime_api(path, "show stat"))
    except OSError as exc:
        report["error"] = f"HAProxy's runtime API ({path}) did not answer: {exc}"
        return report
    pools = havip_servers.pools_view(rows, facts["pools"])
    report.update(backends=havip_servers.backends(pools), pools=pools,
                  services=havip_servers.services_view(rows, facts["services"]))
    return report


# ---- a server out of rotation and back (havip.drain, havip.ready) ----------------


def _target(facts, function, reference):
    """(runtime API socket, pool, server, its name) of the server
    ``reference`` names on this balancer (``function`` names the caller)."""
    try:
        pool, server = havip_servers.resolve(facts["pools"], reference)
    except ValueError as error:
        raise CommandExecutionError(f"havip.{function}: {error}") from None
    path = stats_socket(facts["haproxy"])
    if path is None:
        raise CommandExecutionError(f"havip.{function}: {NO_SOCKET}")
    return path, pool, server, havip_servers.name(_pool_names(facts), pool, server)


def _pool_names(facts):
    return [pool["name"] for pool in facts["pools"]]


def pool_rows(path, pool):
    """``show stat``'s rows of ``pool``'s servers: {server: row}."""
    return havip_servers.pool_servers(havip_servers.stat_rows(ask(path, "show stat")), pool)


def server_row(path, pool, server):
    """``show stat``'s row of ``pool``'s ``server``."""
    rows = pool_rows(path, pool)
    if server not in rows:
        raise CommandExecutionError(f"havip: HAProxy has no server {server} in {pool}")
    return rows[server]


def sessions(path, pool, server):
    return int(server_row(path, pool, server)["scur"] or 0)


def set_server_state(path, pool, server, state):
    _set_server(path, pool, server, f"state {state}")


def _set_server(path, pool, server, setting):
    """``set server <pool>/<server> <setting>`` through the runtime API."""
    command = f"set server {pool}/{server} {setting}"
    answer = ask(path, command).strip()
    if answer:
        raise CommandExecutionError(f"havip: HAProxy refused `{command}`: {answer}")


def save_server_state(facts):
    """``havip.save_server_state``: the servers out of rotation in this
    balancer's HAProxy (``show servers state``; when it does not answer,
    those of the file) that the deployed model ``facts`` still has at the
    same address and port, written to lookup:haproxy:server_state_file
    (HAProxy loads it at every start and reload).  Returns the file and
    the servers saved (``pool/server``)."""
    path = facts["lookup"]["haproxy"]["server_state_file"]
    text, source = _shown_state(stats_socket(facts["haproxy"])), "HAProxy's `show servers state`"
    if text is None:
        text, source = _read(path), path
    try:
        names, rows = havip_server_state.parse(text)
    except ValueError as error:
        raise CommandExecutionError(f"havip: {source} {error}; {path} not saved") from None
    kept = havip_server_state.out_of_rotation(rows, facts["pools"])
    try:
        havip_server_state.write(path, havip_server_state.render(names, kept))
    except OSError as exc:
        raise CommandExecutionError(f"havip: could not save HAProxy's server state to {path}: {exc}") from None
    return {"file": path, "out_of_rotation": havip_server_state.shown(kept)}


def _shown_state(socket_path):
    """``show servers state``'s answer, or None when HAProxy does not answer."""
    if socket_path is None:
        return None
    try:
        return runtime_api(socket_path, "show servers state")
    except OSError:
        return None


def _read(path):
    """The server state file's text (the formula's empty one if it is missing)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return havip_server_state.EMPTY
    except OSError as exc:
        raise CommandExecutionError(f"havip: could not read {path}: {exc}") from None


def _kept(facts, function, shown, state):
    """:py:func:`save_server_state` after ``function`` set ``shown`` to
    ``state``: its failure says that a restart would not keep it."""
    try:
        save_server_state(facts)
    except CommandExecutionError as exc:
        raise CommandExecutionError(f"havip.{function}: {shown} is {state} in HAProxy, but a restart or reload"
                                    f" would not keep it: {str(exc).removeprefix('havip: ')}") from None


def drain(facts, reference, budget, wait):
    """``havip.drain``: the server ``reference`` names set to ``drain`` in
    this balancer's HAProxy (and saved in its server state file), refused
    when no other server of its pool is UP there, then ``wait(predicate,
    budget, interval)`` until it has no session left."""
    path, pool, server, shown = _target(facts, "drain", reference)
    others = {name: row["status"] for name, row in pool_rows(path, pool).items() if name != server}
    if not any_up(others):
        kind = "backend server" if havip_servers.bare(_pool_names(facts)) else f"server of pool {pool}"
        listing = ", ".join(f"{name} {state}" for name, state in sorted(others.items()))
        raise CommandExecutionError(f"havip.drain: refused, no other {kind} is UP here ({listing or 'none'});"
                                    f" draining {shown} would leave none to answer")
    start = time.monotonic()
    set_server_state(path, pool, server, "drain")
    _kept(facts, "drain", shown, "drained")
    if not wait(lambda: sessions(path, pool, server) == 0, budget, interval=0.1):
        raise CommandExecutionError(f"havip.drain: {shown} still has {sessions(path, pool, server)} sessions after"
                                    f" {budget:.1f} s; it stays drained (havip.ready {shown} puts it back)")
    return {"server": reference, "pool": pool, "state": "drain", "took_s": round(time.monotonic() - start, 3)}


def ready(facts, reference, budget, wait):
    """``havip.ready``: the server ``reference`` names set to ``ready`` in
    this balancer's HAProxy (and gone from its server state file), then
    ``wait(predicate, budget, interval)`` until HAProxy sees it UP.  A
    server out of rotation (DRAIN, MAINT) is first marked down, so that
    only fresh health checks (``rise`` of them) put it back: after a deploy
    restarted it, the UP its checks saw before says nothing of the new
    process, which may not listen yet."""
    path, pool, server, shown = _target(facts, "ready", reference)
    start = time.monotonic()
    if server_row(path, pool, server)["status"].startswith(tuple(havip_servers.OUT_OF_ROTATION)):
        _set_server(path, pool, server, "health down")
    set_server_state(path, pool, server, "ready")
    _kept(facts, "ready", shown, "in rotation")
    if not wait(lambda: server_row(path, pool, server)["status"].startswith("UP"), budget, interval=0.1):
        raise CommandExecutionError(f"havip.ready: {shown} is in rotation again but not UP after {budget:.1f} s"
                                    f" ({server_row(path, pool, server)['status']}): its health checks fail")
    return {"server": reference, "pool": pool, "state": "ready", "took_s": round(time.monotonic() - start, 3)}


def peer_health(facts, peer):
    """None if ``peer``'s HAProxy serves: its stats:backends_uri answers 200
    (every pool has a server UP there).  It is asked without credentials, so
    the stats password can change under a rolling deploy.  Else the reason
    why not."""
    stats = facts["stats"]
    page = havip_http.http_url(peer["address"], stats["port"], stats["backends_uri"])
    try:
        havip_http.get(page)
    except urllib.error.HTTPError as exc:
        lacks = "no backend server UP" if havip_servers.bare(_pool_names(facts)) else "a pool with no server UP"
        return f"its HAProxy has {lacks} ({page} answered {exc.code})"
    except (OSError, ValueError) as exc:
        return f"its HAProxy did not answer {page} ({exc})"
    return None


def require_serving_peer(facts, function):
    """Refuse ``function`` unless another balancer's HAProxy serves: its
    ``stats:backends_uri`` answers 200, asked without credentials (so a
    rolling deploy can rotate the stats password).  A peer's standby cannot
    be seen from here."""
    peers = [node for node in facts["balancers"] if node["name"] != facts["node"]["name"]]
    problems = {peer["name"]: peer_health(facts, peer) for peer in peers}
    if not peers or all(problems.values()):
        details = "; ".join(f"{name}: {why}" for name, why in sorted(problems.items()))
        raise CommandExecutionError(
            f"havip.{function}: refused, no other healthy balancer could take over the VIPs"
            + (f" ({details})" if details else " (this is the only balancer)")
        )

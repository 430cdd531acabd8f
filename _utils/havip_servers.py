"""
The servers of havip's pools as an operator names them and as HAProxy
shows them.  A server is named ``pool/server`` (``web/app1``), or by its
bare name when one pool alone holds a server of that name; the name havip
reports is ``pool/server``, bare in today's pair (the one pool
``havip_backends``) as it always was.  HAProxy's ``show stat`` CSV is read
against the model of services and pools the formula deployed
(havip_services): every pool's servers, every service's frontend, each
status in HAProxy's own words (UP, DOWN, DRAIN, MAINT, NOLB, ``UP 1/3``,
``DOWN 1/2``, ...).

Pure helpers: the model and HAProxy's answers come in as arguments (no
Salt dunders).
"""

import csv
import io

from havip_facts import HAPROXY_BACKEND

SEPARATOR = "/"
# show stat's rows of a proxy that are not its servers.
NOT_SERVERS = ("FRONTEND", "BACKEND")
# HAProxy's statuses of a server taken out of rotation (by havip.drain, or
# into maintenance), and what they mean.
OUT_OF_ROTATION = {"DRAIN": "drained", "MAINT": "in maintenance"}


# ---- names -------------------------------------------------------------------


def bare(pool_names):
    """Are the servers of these pools named bare: today's pair, its one
    pool havip_backends?"""
    return list(pool_names) == [HAPROXY_BACKEND]


def name(pool_names, pool, server):
    """The name havip gives ``pool``'s ``server`` among the pools
    ``pool_names``: ``pool/server``, bare in today's pair."""
    return server if bare(pool_names) else f"{pool}{SEPARATOR}{server}"


def split(shown):
    """(pool, server) of a name :py:func:`name` gave."""
    pool, _, server = shown.rpartition(SEPARATOR)
    return pool or HAPROXY_BACKEND, server


def pools_named(names):
    """The pools (as the model's: ``name``, ``servers`` by ``name``) of the
    names :py:func:`name` gave, such as havip.status's ``backends``."""
    pools = {}
    for shown in names:
        pool, server = split(shown)
        pools.setdefault(pool, []).append({"name": server})
    return [{"name": pool, "servers": servers} for pool, servers in sorted(pools.items())]


def resolve(pools, reference):
    """(pool, server) that ``reference`` names among ``pools`` (the model's
    list): ``pool/server``, or a server's bare name that one pool alone
    holds.  ValueError saying why when it names none, or several."""
    if not isinstance(reference, str):
        raise ValueError(f"a server is named pool/server or by its name, not {reference!r}")
    servers = {pool["name"]: [server["name"] for server in pool["servers"]] for pool in pools}
    if SEPARATOR in reference:
        pool, server = reference.split(SEPARATOR, 1)
        if pool not in servers:
            raise ValueError(f"unknown pool {pool!r} in {reference!r} (pools: {', '.join(sorted(servers)) or 'none'})")
        if server not in servers[pool]:
            raise ValueError(f"unknown server {server!r} in pool {pool} (its servers:"
                             f" {', '.join(sorted(servers[pool]))})")
        return pool, server
    holders = sorted(pool for pool, names in servers.items() if reference in names)
    if not holders:
        known = sorted(name(servers, pool, server) for pool, names in servers.items() for server in names)
        raise ValueError(f"unknown backend server {reference!r} (known: {', '.join(known) or 'none'})")
    if len(holders) > 1:
        raise ValueError(f"server {reference!r} is in the pools {' and '.join(holders)}: name one of them"
                         f" ({' or '.join(pool + SEPARATOR + reference for pool in holders)})")
    return holders[0], reference


# ---- HAProxy's show stat ---------------------------------------------------------


def stat_rows(stats_csv):
    """{(proxy, row): row} of HAProxy's ``show stat`` CSV: a proxy's
    FRONTEND, BACKEND and each server by its name."""
    rows = csv.DictReader(io.StringIO(stats_csv.lstrip("# ")))
    return {(row.get("pxname"), row.get("svname")): row for row in rows}


def pool_servers(rows, pool):
    """{server: its row} of ``pool``'s servers in :py:func:`stat_rows`."""
    return {server: row for (proxy, server), row in rows.items() if proxy == pool and server not in NOT_SERVERS}


def _count(value):
    """A number of show stat (empty when there is none: 0)."""
    return int(value) if value else 0


def pools_view(rows, pools):
    """havip.status's ``pools``: {pool: {server: ``status``, ``weight``,
    ``sessions``}} of every pool of the model ``pools``, each server
    HAProxy shows in it (:py:func:`stat_rows`); a server of the model that
    HAProxy does not show has None for each."""
    view = {}
    for pool in pools:
        servers = {server["name"]: {"status": None, "weight": None, "sessions": None} for server in pool["servers"]}
        for server, row in pool_servers(rows, pool["name"]).items():
            servers[server] = {"status": row["status"], "weight": _count(row.get("weight")),
                               "sessions": _count(row.get("scur"))}
        view[pool["name"]] = servers
    return view


def services_view(rows, services):
    """havip.status's ``services``: {service: ``status`` (OPEN, STOP, ...),
    ``sessions``} of every service of the model's ``services``, from its
    frontend's row (None for each when HAProxy has no such frontend)."""
    view = {}
    for service in services:
        row = rows.get((service["name"], "FRONTEND"))
        view[service["name"]] = ({"status": None, "sessions": None} if row is None
                                 else {"status": row["status"], "sessions": _count(row.get("scur"))})
    return view


def backends(view):
    """havip.status's ``backends``: {name: status} of every server
    HAProxy shows in :py:func:`pools_view`'s ``view``, by the name
    :py:func:`name` gives it."""
    return {name(view, pool, server): state["status"]
            for pool, servers in view.items() for server, state in servers.items() if state["status"] is not None}

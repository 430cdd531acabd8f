"""
The nodes' answers to the runner, untrusted: each node's verdict and
status (``havip.check with_status=True``) checked before it is believed,
and only about that node; what every balancer's HAProxy lists of the
configuration's pools, servers and services, a name or status that is not
the configuration's or HAProxy's refused (and shown only if it is a name).

Pure helpers (no Salt dunders).
"""

import re

from havip_values import NAME

# A status HAProxy gives a server (UP, DOWN, DRAIN, MAINT, NOLB, "UP 1/3",
# "MAINT (via web/app1)", "no check") or a frontend (OPEN, STOP, ...).
HAPROXY_STATUS = r"[A-Za-z0-9 ()/_.-]{1,64}"
VERDICT = ("healthy", "reasons", "standby")


class Refused(ValueError):
    """Why a node's answer is not believed (in the master's words)."""


def expect(condition, why):
    if not condition:
        raise Refused(why)


def named(value):
    """A name a minion gave, to show: itself if it is one, else a word."""
    return value if isinstance(value, str) and re.fullmatch(NAME, value) else "(not a name)"


def is_status(value):
    """None (HAProxy does not list it) or a status string HAProxy gives."""
    return value is None or (isinstance(value, str) and re.fullmatch(HAPROXY_STATUS, value) is not None)


def verdicts(config, answers):
    """({node: verdict}, {node: the ``havip.status`` it was judged on}) of
    the nodes' answers to ``havip.check with_status=True`` ({node:
    answer}).  An answer is believed about its node only, and only
    with the shape the module gives: the verdict's ``healthy``,
    ``reasons`` (lines of text), ``standby``, and a status whose VIPs are
    mappings and whose HAProxy backends have HAProxy's statuses.  Any
    other answer is an unhealthy verdict saying why (its contents not
    repeated), without a status.  Of the backends, only the
    servers of ``config`` are kept (one it does not have, a change not
    applied yet, is named by :py:func:`across_balancers`, which checks
    ``haproxy``'s ``pools`` and ``services``)."""
    balancers = {node["name"] for node in config["balancers"]}
    checks, statuses = {}, {}
    for name in sorted(set(answers) & set(config["nodes"])):
        answer = answers[name]
        try:
            check_answer(config, answer, name in balancers)
        except Refused as refused:
            checks[name] = {"healthy": False, "reasons": [f"its answer to havip.check is refused: {refused}"],
                            "standby": False}
        else:
            checks[name] = {key: answer[key] for key in VERDICT}
            statuses[name] = known_backends(config, answer["status"])
    return checks, statuses


def server_names(config):
    """The names ``havip.status``'s backends may give the servers of
    ``config``'s pools: ``pool/server``, or a bare ``server``."""
    return {name for pool in config["pools"] for server in pool["servers"]
            for name in (server["name"], f"{pool['name']}/{server['name']}")}


def known_backends(config, status):
    """``status`` with only the backends that are servers of ``config``."""
    haproxy = status.get("haproxy")
    if not haproxy or not haproxy.get("backends"):
        return status
    names = server_names(config)
    return {**status, "haproxy": {**haproxy, "backends": {server: state for server, state in
                                                          haproxy["backends"].items() if server in names}}}


def check_answer(config, answer, balancer):
    """Refused unless ``answer`` is a verdict with the status it judged;
    a balancer's with VIPs and backends with HAProxy's statuses (only
    ``config``'s VIPs are read from it; what it does not give claims
    nothing: no VIP held, no server UP)."""
    expect(isinstance(answer, dict) and set(VERDICT) | {"status"} <= set(answer),
           "it is not a verdict with its status (salt <node> saltutil.sync_modules brings the havip module"
           " that gives one)")
    expect(isinstance(answer["healthy"], bool) and isinstance(answer["standby"], bool),
           "healthy and standby are not true or false")
    reasons = answer["reasons"]
    expect(isinstance(reasons, list) and all(isinstance(r, str) and r.isprintable() for r in reasons),
           "its reasons are not lines of text")
    status = answer["status"]
    expect(isinstance(status, dict), "its status is not a mapping")
    if not balancer:
        return
    vips = status.get("vips", {})
    expect(isinstance(vips, dict) and all(isinstance(vip, dict) for vip in vips.values()),
           "its status's vips are not VIPs")
    haproxy = status.get("haproxy", {})
    expect(isinstance(haproxy, dict), "its status's haproxy is not a mapping")
    backends = haproxy.get("backends")
    expect(backends is None or (isinstance(backends, dict) and all(isinstance(server, str) for server in backends)
           and all(isinstance(state, str) and is_status(state) for state in backends.values())),
           "its HAProxy backends are not servers with HAProxy's statuses")


# ---- every service and pool across the balancers --------------------------------


def across_balancers(config, statuses):
    """({pool: {server: {balancer: status}}}, {service: {balancer:
    status}}, problems, the balancers that listed their pools): what every
    balancer's HAProxy says of each of
    ``config``'s pools' servers and services, from their ``havip.status``
    (``haproxy``'s ``pools`` and ``services``).  None where it is not
    known: the balancer did not answer, its HAProxy's API did not, it does
    not list it, or its answer names a pool, server or service that
    ``config`` does not have or a status that is not HAProxy's (a problem
    saying so: none of it is believed)."""
    balancers = [node["name"] for node in config["balancers"]]
    pools = {pool["name"]: {server["name"]: dict.fromkeys(balancers) for server in pool["servers"]}
             for pool in config["pools"]}
    services = {service["name"]: dict.fromkeys(balancers) for service in config["services"]}
    problems, listing = [], []
    for name in balancers:
        haproxy = statuses.get(name, {}).get("haproxy", {})
        try:
            listed = listed_pools(pools, haproxy.get("pools")), listed_services(services, haproxy.get("services"))
        except Refused as refused:
            problems.append(f"{name}: its HAProxy pools and services are refused: {refused}")
            continue
        if listed[0] is not None:
            listing.append(name)
        for pool, servers in (listed[0] or {}).items():
            for server, state in servers.items():
                pools[pool][server][name] = state
        for service, state in (listed[1] or {}).items():
            services[service][name] = state
    return pools, services, problems, listing


def listed_pools(pools, answer):
    """{pool: {server: status}} of a balancer's ``haproxy.pools``, every
    pool and server one of ``pools``'; None when it gives none."""
    if answer is None:
        return None
    expect(isinstance(answer, dict), "pools is not a mapping")
    listed = {}
    for pool, servers in answer.items():
        expect(pool in pools, f"it lists a pool {named(pool)} that is not in the configuration")
        expect(servers is None or isinstance(servers, dict), f"pool {pool} is not a mapping of servers")
        for server, entry in (servers or {}).items():
            expect(server in pools[pool], f"it lists a server {named(server)} in pool {pool} that is not one of"
                                          " its servers in the configuration")
            expect(isinstance(entry, dict) and is_status(entry.get("status")),
                   f"server {server} of pool {pool} has no status HAProxy gives")
            listed.setdefault(pool, {})[server] = entry.get("status")
    return listed


def listed_services(services, answer):
    """{service: status} of a balancer's ``haproxy.services``, every
    service one of ``services``; None when it gives none."""
    if answer is None:
        return None
    expect(isinstance(answer, dict), "services is not a mapping")
    for service, entry in answer.items():
        expect(service in services, f"it lists a service {named(service)} that is not in the configuration")
        expect(entry is None or (isinstance(entry, dict) and is_status(entry.get("status"))),
               f"service {service} has no status HAProxy gives")
    return {service: (entry or {}).get("status") for service, entry in answer.items()}



"""
The services and pools of a havip cluster, derived once from the validated
pillar (issue 23): every part (haproxy.cfg, the firewall, next the module,
the runner, the deploy and the failover test) reads this model, never the
pillar's ``services``/``pools``/``frontend``/``backend`` keys.  A pillar
without ``services`` and ``pools`` is today's pair: the service ``havip``
(``frontend``) and the pool ``havip_backends`` (``backend``'s port and
checks, every backend node a server).  What lands in a config is what this
module built: addresses canonical, host names in lower case.  The checks
across keys refuse with ``Invalid`` naming the key.  Pure.
"""

import pathlib
import re

from havip_contract_services import POOLS, SERVICES
from havip_facts import HAPROXY_BACKEND
from havip_tls import check_certificate
from havip_values import SERVICE_NAME, Invalid, canonical_address

# The frontend of today's pair (a pillar without services).
LEGACY_SERVICE = "havip"
# The state that writes today's frontend's certificate; a service's n-th
# is <this>-<service>-<n>.
CERTIFICATE_STATE = "havip-haproxy-certificate-file"
# The roles of the nodes a pool's server may be.
SERVER_ROLES = ("app", "backend")


def derive(config, nodes, vips):
    """{"services": [service], "pools": [pool]} of the configuration
    ``config`` (merged, walked), its checked ``nodes`` and ``vips``.  A
    service: ``name`` (HAProxy's frontend), ``port``, ``mode``, ``vips``,
    ``binds`` (addresses), ``ports`` ({pillar key: port}), ``tls``
    (``enabled``, ``port``, ``redirect``, ``certificates``: each one's
    ``file``, the ``pillar`` key of its PEM, the ``state`` that writes it,
    ``serial`` and ``not_after``), ``routes`` in order (``host``,
    ``wildcard``, ``path_prefix``, ``pool``) and ``pool``.  A pool:
    ``name`` (HAProxy's backend), ``mode``, ``balance``, ``check``,
    ``http_check`` (http pools) and ``servers`` (``name``, ``node``,
    ``address``, ``port``, ``options``: HAProxy's server options)."""
    if "services" not in config and "pools" not in config:
        return _legacy(config, nodes, vips)
    _refuse_legacy_keys(config)
    services = [_service(str(name), service, config, vips)
                for name, service in sorted((config.get("services") or {}).items())]
    pools = _pools(config, services, nodes)
    _check_binds(services)
    return {"services": services, "pools": pools}


# ---- today's pair ------------------------------------------------------------


def _legacy(config, nodes, vips):
    frontend, backend = config["frontend"], config["backend"]
    tls = frontend["tls"]
    service = {
        "name": LEGACY_SERVICE, "port": frontend["port"], "mode": frontend["mode"], "vips": sorted(vips),
        "binds": [canonical_address(a) for a in frontend["bind"]] or sorted(v["address"] for v in vips.values()),
        "ports": {"frontend:port": frontend["port"]},
        "tls": _legacy_tls(config),
        "routes": [], "pool": HAPROXY_BACKEND,
    }
    if service["tls"]["enabled"]:
        service["ports"]["frontend:tls:port"] = tls["port"]
    if backend["balance"] == "uri" and frontend["mode"] != "http":
        raise Invalid("backend:balance", "uri needs frontend:mode http")
    servers = [{"name": name, "node": name, "address": node["address"], "port": backend["port"], "options": []}
               for name, node in sorted(nodes.items()) if "backend" in node["roles"]]
    pool = {"name": HAPROXY_BACKEND, "mode": frontend["mode"], "balance": backend["balance"],
            "check": dict(backend["check"]),
            "http_check": {"host": None, **backend["http_check"]} if frontend["mode"] == "http" else None,
            "servers": servers}
    return {"services": [service], "pools": [pool]}


def _legacy_tls(config):
    """frontend:tls: its certificate, when there is one, checked (its
    serial and expiry go to the states, the PEM does not)."""
    tls = config["frontend"]["tls"]
    if tls["redirect"] and config["frontend"]["mode"] != "http":
        raise Invalid("frontend:tls:redirect", "needs frontend:mode http (a tcp frontend cannot redirect)")
    if tls["certificate"] is None:
        if tls["redirect"]:
            raise Invalid("frontend:tls:redirect", "needs frontend:tls:certificate (there is no TLS to redirect to)")
        return {"enabled": False, "port": tls["port"], "redirect": False, "certificates": []}
    certificate = {"file": config["lookup"]["haproxy"]["certificate"], "pillar": "havip:frontend:tls:certificate",
                   "state": CERTIFICATE_STATE, **check_certificate(tls["certificate"])}
    return {"enabled": True, "port": tls["port"], "redirect": tls["redirect"], "certificates": [certificate]}


def _refuse_legacy_keys(config):
    """With services, frontend:bind and frontend:tls:certificate say
    nothing: a pillar that gives them meant today's frontend."""
    if config["frontend"]["bind"]:
        raise Invalid("frontend:bind", "is today's frontend's: with havip:services, a service listens on its"
                                       " vips (services:<service>:vips)")
    if config["frontend"]["tls"]["certificate"] is not None:
        raise Invalid("frontend:tls:certificate", "is today's frontend's: with havip:services, give each service"
                                                  " its own (services:<service>:tls:certificates)")


# ---- services ------------------------------------------------------------------


def _service(name, service, config, vips):
    key = f"services:{name}"
    mode = service.get("mode", SERVICES.spec["mode"].default)
    names = list(dict.fromkeys(str(vip) for vip in service.get("vips", sorted(vips))))
    for vip in names:
        if vip not in vips:
            raise Invalid(f"{key}:vips", f"{vip} is not a VIP (vips: {', '.join(sorted(vips)) or 'none'})")
    entry = {
        "name": name, "port": service["port"], "mode": mode, "vips": names,
        "binds": sorted(vips[vip]["address"] for vip in names),
        "ports": {f"{key}:port": service["port"]},
        "tls": _service_tls(key, service.get("tls"), mode, config),
        "routes": _routes(key, service.get("routes") or [], mode),
        "pool": service["pool"],
    }
    if entry["tls"]["enabled"]:
        entry["ports"][f"{key}:tls:port"] = entry["tls"]["port"]
    return entry


def _service_tls(key, tls, mode, config):
    """A service's TLS: each certificate checked, its file beside
    lookup:haproxy:certificate (``havip-<service>-<n>.pem``), the pillar
    key the state writes it from."""
    if tls is None:
        return {"enabled": False, "port": None, "redirect": False, "certificates": []}
    redirect = tls.get("redirect", False)
    if redirect and mode != "http":
        raise Invalid(f"{key}:tls:redirect", "needs an http service (a tcp service cannot redirect)")
    default = pathlib.PurePosixPath(config["lookup"]["haproxy"]["certificate"])
    name = key.split(":", 1)[1]
    certificates = [{"file": str(default.with_name(f"{default.stem}-{name}-{number}{default.suffix}")),
                     "pillar": f"havip:{key}:tls:certificates:{number - 1}",
                     "state": f"{CERTIFICATE_STATE}-{name}-{number}",
                     **check_certificate(pem, key=f"{key}:tls:certificates", which=f"certificate {number}: ")}
                    for number, pem in enumerate(tls["certificates"], 1)]
    return {"enabled": True, "port": tls.get("port", config["frontend"]["tls"]["port"]), "redirect": redirect,
            "certificates": certificates}


def certificate_files(certificate, services):
    """What havip/haproxy/config.sls tidies of the services' certificate
    files, beside ``certificate`` (lookup:haproxy:certificate): their
    ``directory``, the full-path pattern of every file havip writes there
    for a service (``<stem>-<service>-<n><suffix>``, ``havip-shop-1.pem``)
    and the patterns of those the model names (``current``): the others
    are ``stale``, left by a service gone or a shorter list."""
    default = pathlib.PurePosixPath(certificate)
    prefix = re.escape(str(default.with_name(default.stem)))
    return {"directory": str(default.parent),
            "stale": rf"{prefix}-{SERVICE_NAME}-[1-9][0-9]*{re.escape(default.suffix)}\Z",
            "current": [rf"{re.escape(each['file'])}\Z" for service in services
                        for each in service["tls"]["certificates"]]}


def _routes(key, routes, mode):
    if routes and mode != "http":
        raise Invalid(f"{key}:routes", "needs an http service (a tcp service sees no host or path)")
    checked = []
    for index, route in enumerate(routes):
        if "host" not in route and "path_prefix" not in route:
            raise Invalid(f"{key}:routes:{index}", "needs host, path_prefix or both (every other request goes to"
                                                   f" {key}:pool)")
        host = route["host"].lower() if "host" in route else None
        checked.append({"host": host.removeprefix("*.") if host else None,
                        "wildcard": bool(host and host.startswith("*.")),
                        "path_prefix": route.get("path_prefix"), "pool": route["pool"]})
    return checked


def _check_binds(services):
    """No two services, nor a service's port and TLS port, on one address
    and port."""
    taken = {}
    for service in services:
        for key, number in service["ports"].items():
            for address in service["binds"]:
                other = taken.setdefault((address, number), key)
                if other != key:
                    raise Invalid(key, f"{number} on {address} is also {other}")


# ---- pools -------------------------------------------------------------------------


def _uses(services):
    """{pool: [(pillar key, service)]} of every service's pool and routes."""
    uses = {}
    for service in services:
        key = f"services:{service['name']}"
        uses.setdefault(service["pool"], []).append((f"{key}:pool", service))
        for index, route in enumerate(service["routes"]):
            uses.setdefault(route["pool"], []).append((f"{key}:routes:{index}:pool", service))
    return uses


def _pools(config, services, nodes):
    pools = {str(name): pool for name, pool in (config.get("pools") or {}).items()}
    uses = _uses(services)
    for name, used in uses.items():
        if name not in pools:
            raise Invalid(used[0][0], f"{name} is not a pool (pools: {', '.join(sorted(pools)) or 'none'})")
    derived = []
    for name, pool in sorted(pools.items()):
        if name not in uses:
            raise Invalid(f"pools:{name}", "no service uses it (services:<service>:pool or a route's pool)")
        derived.append(_pool(name, pool, uses[name], config, nodes))
    return derived


def _mode(key, used):
    """A pool's mode: its services', all alike (HAProxy's backend takes
    its frontends' mode)."""
    modes = {service["mode"]: where for where, service in used}
    if len(modes) > 1:
        raise Invalid(key, f"serves a tcp service ({modes['tcp']}) and an http one ({modes['http']}): give each"
                           " mode its own pool")
    return next(iter(modes))


def _pool(name, pool, used, config, nodes):
    key = f"pools:{name}"
    backend = config["backend"]
    mode = _mode(key, used)
    balance = pool.get("balance", backend["balance"])
    if balance == "uri" and mode != "http":
        raise Invalid(f"{key}:balance", "uri needs an http pool (its services' mode)")
    if "http_check" in pool and mode != "http":
        raise Invalid(f"{key}:http_check", "needs an http pool (its services' mode is tcp)")
    servers = pool["servers"] or {}
    if not servers:
        raise Invalid(f"{key}:servers", "needs at least one server")
    port = pool.get("port", backend["port"])
    return {"name": name, "mode": mode, "balance": balance,
            "check": {**backend["check"], **pool.get("check", {})},
            "http_check": {"host": None, **backend["http_check"], **pool.get("http_check", {})}
            if mode == "http" else None,
            "servers": [_server(f"{key}:servers:{server}", str(server), spec, port, nodes)
                        for server, spec in sorted(servers.items())]}


def _server(key, name, server, port, nodes):
    if ("node" in server) == ("address" in server):
        raise Invalid(key, "needs node (a node of havip:nodes) or address (any other server), one of them")
    if "node" in server:
        node = nodes.get(str(server["node"]))
        if node is None or not set(node["roles"]) & set(SERVER_ROLES):
            raise Invalid(f"{key}:node", f"{server['node']} is not a node with the role backend or app")
        address = node["address"]
    else:
        address = canonical_address(server["address"])
    options = [f"weight {server['weight']}"] if "weight" in server else []
    options += [f"maxconn {server['maxconn']}"] if "maxconn" in server else []
    options += ["backup"] if server.get("backup", POOLS.spec["servers"].spec["backup"].default) else []
    return {"name": name, "node": server.get("node"), "address": address, "port": server.get("port", port),
            "options": options}


def server_nodes(model):
    """The names of the nodes that are some pool's servers."""
    return sorted({server["node"] for pool in model["pools"] for server in pool["servers"] if server["node"]})

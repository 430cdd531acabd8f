"""
What the client probes of a cluster's services, derived once from the
model (havip_services) for the failover test and both deploys: for each
service and each of its VIPs, a request per pool it reaches (the target),
chosen by the frontend's own routing (its ACLs, re-read here).  Pure.
"""

import havip_http

# The name a target asks for below a wildcard route's domain, and one no
# route takes (.invalid is reserved: RFC 2606).
WILDCARD_LABEL = "probe"
NO_ROUTE_HOST = "probe.invalid"


def route_pool(service, host, path):
    """The pool ``service``'s frontend sends a request for ``host`` (the
    Host header without its port) and ``path`` to, as its ACLs do: the
    first route that matches (its host exactly, or a name below a
    wildcard's domain, in any case; a path that starts with its
    path_prefix), else the service's pool."""
    host = host.lower()
    for route in service["routes"]:
        if route["host"] and not (host.endswith(f".{route['host']}") if route["wildcard"] else host == route["host"]):
            continue
        if route["path_prefix"] and not path.startswith(route["path_prefix"]):
            continue
        return route["pool"]
    return service["pool"]


def _requests_to(service, pool):
    """The (host or None, path) requests that may reach ``pool`` of
    ``service``, best first: its default pool by ``/`` and no host (the
    URL's address) or a host no route takes, a route's by its host (a name
    below a wildcard's domain) and its path_prefix."""
    if pool == service["pool"]:
        yield None, "/"
        yield NO_ROUTE_HOST, "/"
    for route in service["routes"]:
        if route["pool"] == pool and route["host"]:
            yield (f"{WILDCARD_LABEL}.{route['host']}" if route["wildcard"] else route["host"],
                   route["path_prefix"] or "/")
        elif route["pool"] == pool:
            yield None, route["path_prefix"]


def probe_targets(config):
    """What the failover test probes, from the model of ``config``: (the
    targets, {service: why a part of it is not probed}).  For each service
    and each of its VIPs, one target per pool the service reaches (its
    pool, its routes'): ``service``, ``vip``, ``pool``, ``url`` (the
    service's plain port on the VIP, the path), ``host`` (the Host header,
    or None: the URL's address).  A pool that every request for it is
    taken from by an earlier route is not probed; nor are TLS ports (the
    test has no CA to verify their certificates with), nor a service that
    redirects its plain port to TLS."""
    targets, not_probed = [], {}
    for service in config["services"]:
        found, reasons = _service_targets(config, service)
        targets += found
        not_probed.update({service["name"]: reasons} if reasons else {})
    return targets, not_probed


def _service_targets(config, service):
    """(The targets of ``service``, why a part of it is not probed)."""
    reasons = []
    if service["tls"]["enabled"]:
        reasons.append(f"TLS port {service['tls']['port']}: the failover test probes the plain port only")
    if service["tls"]["redirect"]:
        return [], [*reasons, f"port {service['port']}: it redirects every request to TLS"]
    targets = []
    for vip in service["vips"]:
        address = config["vips"][vip]["address"]
        for pool in dict.fromkeys([service["pool"], *(route["pool"] for route in service["routes"])]):
            request = next(((host, path) for host, path in _requests_to(service, pool)
                            if route_pool(service, host or address, path) == pool), None)
            if request is None:
                reasons.append(f"pool {pool} on {vip}: an earlier route takes every request for it")
                continue
            targets.append({"service": service["name"], "vip": vip, "pool": pool, "host": request[0],
                            "url": havip_http.http_url(address, service["port"], request[1])})
    return targets, reasons


def of_pools(config, pools):
    """The targets (:py:func:`probe_targets`) that reach one of ``pools``:
    what a deploy that takes their servers out in turn probes."""
    return [target for target in probe_targets(config)[0] if target["pool"] in pools]


def shown(url, host):
    """A target's URL as a report says it, with the host it asks for."""
    return url + (f" (host {host})" if host else "")

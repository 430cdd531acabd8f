"""
The probe: a client's view of a URL, behind ``havip.probe`` (and the lab's
probe) - a request at a fixed rate, each on its own, and a summary of what
the client saw: failures, outages, answers per backend; and what it may
request.

Pure helpers (no Salt dunders); the lab imports this file as it is.
"""

import concurrent.futures
import contextlib
import ipaddress
import re
import time

import havip_http
from havip_facts import WAIT_LIMIT
from havip_values import is_host, parse_address
from salt.exceptions import CommandExecutionError


def fetch_body(url, timeout, opened_by, host=None):
    """The response body (stripped) of ``url`` through ``opened_by`` (a
    ``havip_http.opener``), or None on any failure."""
    try:
        return havip_http.read(opened_by, url, timeout, host=host)[1].strip()
    except (OSError, ValueError):
        return None


def summarize(url, started, seconds, requests, timeline=False, answers=False):
    """What a client saw, from ``requests``: [seconds after the start it was
    sent, response body or None], in the order sent; with ``answers`` also
    every request's response body (None when it failed), in that order.

    An outage is a run of failed requests; it lasts from the sending of its
    first failed request to the sending of the first answered one after it
    (to the end of the probe if none was), so its resolution is the probing
    period."""
    failures = [sent for sent, body in requests if body is None]
    backends = {}
    longest, outage_started = 0.0, None
    for sent, body in requests:
        if body is None:
            outage_started = sent if outage_started is None else outage_started
            continue
        backends[body] = backends.get(body, 0) + 1
        if outage_started is not None:
            longest = max(longest, sent - outage_started)
            outage_started = None
    if outage_started is not None:
        longest = max(longest, seconds - outage_started)
    report = {
        "url": url,
        "started_s": round(started, 3),
        "duration_s": round(seconds, 3),
        "total": len(requests),
        "failed": len(failures),
        "first_failure_s": round(failures[0], 3) if failures else None,
        "last_failure_s": round(failures[-1], 3) if failures else None,
        "longest_outage_s": round(longest, 3),
        "recovered": outage_started is None,
        "backends": backends,
    }
    if timeline:
        report["timeline"] = [[round(sent, 4), int(body is not None)] for sent, body in requests]
    if answers:
        report["answers"] = [body for _, body in requests]
    return report


def measure(url, seconds, rate, timeout, timeline=False, stop=None, cafile=None, host=None, answers=False):
    """Send a request to ``url`` every 1/rate s for ``seconds`` s, each on
    its own (a slow or lost request does not hold up the next), and
    summarize what a client saw (the loop behind ``havip.probe``); with
    ``timeline`` also every request as [seconds after the start, answered
    (1) or not (0)], and with ``answers`` every request's response body
    (None when it failed).  ``stop``, if given, is asked before each request
    and ends the run early when it returns True.  ``cafile`` and ``host`` (the
    host name asked for, when there is one): see ``havip_http.opener``; a
    ``cafile`` that cannot be loaded is refused (CommandExecutionError),
    nothing requested."""
    period = 1.0 / rate
    count = int(seconds * rate)
    started, start = time.time(), time.monotonic()
    workers = int(rate * timeout) + 4
    named = {"host": host} if host else {}
    try:  # once for every request: an https context costs tens of ms of CPU
        opened_by = havip_http.opener(url, cafile, host)
    except OSError as exc:  # ssl.SSLError too
        raise CommandExecutionError(f"havip.probe: cafile {cafile!r} refused: {exc}") from exc
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for index in range(count):
            time.sleep(max(0.0, start + index * period - time.monotonic()))
            if stop is not None and stop():
                break
            pending.append((time.monotonic() - start, pool.submit(fetch_body, url, timeout, opened_by, **named)))
    requests = [[sent, future.result()] for sent, future in pending]
    return summarize(url, started, time.monotonic() - start, requests, timeline, answers)


# An http(s) URL: scheme, host (an IPv4 literal, an IPv6 one in brackets
# without a zone, or a host name), optional port, then a path (and query)
# of URL characters.
URL = re.compile(r"(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?"
                 r"(?P<path>/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?")
HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
# A file the probe reads or looks for: an absolute path of safe characters.
PATH = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9_.+-]+)+")


def _host(text):
    """The IP address (ipaddress) or the host name (str) ``text`` of a URL
    names, or None."""
    if text.startswith("["):
        try:
            return ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            return None
    if re.fullmatch(r"[0-9.]+", text):
        try:
            return ipaddress.IPv4Address(text)
        except ValueError:
            return None
    return text.lower() if HOST_NAME.fullmatch(text) and len(text) <= 253 else None


def probe_url(url, allowed=None):
    """``url`` as ``havip.probe`` requests it, rebuilt from its checked
    parts: an http or https URL (see ``URL``), and, when ``allowed`` (a set
    of IP addresses) is given, to one of those.  Anything else is refused
    (CommandExecutionError)."""
    match = URL.fullmatch(url) if isinstance(url, str) else None
    host = _host(match["host"]) if match else None
    port = int(match["port"]) if match and match["port"] else None
    if host is None or (port is not None and not 1 <= port <= 65535):
        raise CommandExecutionError(f"havip.probe: url {url!r} refused: not an http or https URL")
    if allowed is not None and host not in allowed:
        raise CommandExecutionError(f"havip.probe: url {url!r} refused: its host is none of this cluster's VIPs"
                                    " and nodes")
    shown = f"[{host}]" if isinstance(host, ipaddress.IPv6Address) else str(host)
    return f"{match['scheme']}://{shown}{'' if port is None else f':{port}'}{match['path'] or '/'}"


def cluster_addresses(config, groups=("vips", "nodes")):
    """The IP addresses of the VIPs and nodes (``groups``) of a
    configuration (deployed, or a pillar: what is not an address is left
    out)."""
    addresses = set()
    for group in groups:
        entries = config.get(group)
        for entry in entries.values() if isinstance(entries, dict) else ():
            address = entry.get("address") if isinstance(entry, dict) else None
            with contextlib.suppress(ValueError):
                addresses.add(parse_address(address, ipaddress.ip_interface).ip)
    return addresses


def probe_host(host):
    """``host`` (the Host header, and an https request's server name) in
    lower case: a host name as a service's route or a pool's check asks
    for (RFC 1123, no ``*.``), or None; refused (CommandExecutionError)
    otherwise."""
    if host is None:
        return None
    if not (is_host(host) and not host.startswith("*.")):
        raise CommandExecutionError(f"havip.probe: host {host!r} refused: not a host name (RFC 1123: labels of"
                                    " letters, digits and -, none starting or ending with -)")
    return host.lower()


def file_path(name, value):
    """``value``, an absolute path of safe characters (``PATH``), or None;
    refused (CommandExecutionError) otherwise."""
    if value is not None and not (isinstance(value, str) and PATH.fullmatch(value)):
        raise CommandExecutionError(f"havip.probe: {name} {value!r} refused: not an absolute path of letters,"
                                    " digits and . _ + -")
    return value


def probe_args(seconds, rate, timeout):
    """``havip.probe``'s seconds, rate and timeout as floats, each refused
    outside its range."""
    for name, value, low, high in (("seconds", seconds, 0.1, WAIT_LIMIT), ("rate", rate, 0.1, 1000),
                                   ("timeout", timeout, 0.01, 60)):
        if not isinstance(value, (int, float)) or not low <= value <= high:
            raise CommandExecutionError(f"havip.probe: {name} must be from {low} to {high}, got {value!r}")
    return float(seconds), float(rate), float(timeout)

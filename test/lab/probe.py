"""
A client's view of the VIP: request a URL at a fixed rate for a bounded time
and report what a user would have seen.  Runs inside a lab host:

    python3 -m test.lab.probe URL --seconds 10 --rate 100 [--timeout 0.2]

Prints one JSON object: total, failed, first/last failure (seconds since the
start), longest outage (seconds between the last success before a run of
failures and the first success after it), and how many answers each backend
gave.  Stops by itself; SIGTERM/SIGINT end it early with the report so far.
"""

import argparse
import collections
import json
import signal
import socket
import sys
import time
import urllib.error
import urllib.request


class _Stop(Exception):
    pass


def _stop(signum, frame):
    raise _Stop()


def fetch(url, timeout):
    """The response body (stripped) or None on any failure."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode(errors="replace").strip()
    except (urllib.error.URLError, OSError, socket.timeout, ValueError):
        return None


def probe(url, seconds, rate, timeout):
    start = time.monotonic()
    period = 1.0 / rate
    total, failed = 0, 0
    first_failure = last_failure = None
    last_ok, outage_started, longest = start, None, 0.0
    backends = collections.Counter()
    try:
        while time.monotonic() - start < seconds:
            sent = time.monotonic()
            body = fetch(url, timeout)
            now = time.monotonic()
            total += 1
            if body is None:
                failed += 1
                first_failure = first_failure if first_failure is not None else sent - start
                last_failure = sent - start
                outage_started = outage_started or last_ok
            else:
                backends[body] += 1
                if outage_started is not None:
                    longest = max(longest, now - outage_started)
                    outage_started = None
                last_ok = now
            time.sleep(max(0.0, sent + period - time.monotonic()))
    except _Stop:
        pass
    if outage_started is not None:
        longest = max(longest, time.monotonic() - outage_started)
    return {
        "url": url,
        "seconds": round(time.monotonic() - start, 3),
        "total": total,
        "failed": failed,
        "first_failure": first_failure,
        "last_failure": last_failure,
        "longest_outage": round(longest, 4),
        "backends": dict(backends),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--timeout", type=float, default=0.2)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print("probe started", file=sys.stderr, flush=True)
    print(json.dumps(probe(args.url, args.seconds, args.rate, args.timeout)), flush=True)


if __name__ == "__main__":
    main()

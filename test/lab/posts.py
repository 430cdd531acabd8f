"""
A client's POSTs to the VIP, for the fault campaign's audit that no POST is
answered twice (test/lab/test_chaos.py), run inside a lab host:

    python3 -m test.lab.posts URL --token TOKEN [--rate 10] [--timeout 1]

Each POST goes to ``URL?havip-post=TOKEN.N`` (N: its number, from 0), so
that the backends' access logs name it; the client never sends one twice.
Prints "posts started" on stderr, then, when its stdin closes, one JSON
object on stdout: {"url", "token", "posts": [[seconds after the start it
was sent, HTTP status (null: no answer), whether nginx answered (its Server
header)]]}, in the order sent.
"""

import argparse
import concurrent.futures
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request

PARAMETER = "havip-post"
# A POST's request line as nginx's access log shows it (Debian's default
# `combined` format): its token and number.
LOGGED = re.compile(r'"POST /\?' + PARAMETER + r'=(?P<token>[0-9a-f]+)\.(?P<number>[0-9]+) HTTP/[0-9.]+"')


def post(url, timeout):
    """[HTTP status, answered by nginx] of one POST of ``url`` ([None,
    False]: no answer)."""
    request = urllib.request.Request(url, data=b"havip", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return [response.status, response.headers.get("Server", "").startswith("nginx")]
    except urllib.error.HTTPError as error:  # an answer too (nginx: 405 for a POST of its page)
        return [error.code, (error.headers.get("Server") or "").startswith("nginx")]
    except (OSError, ValueError):
        return [None, False]


def send(url, token, rate, timeout, stop):
    """POSTs of ``url`` numbered from 0, one every 1/rate s, each on its
    own, until ``stop()``; [[sent, status, by nginx]] in the order sent."""
    period, start, pending = 1.0 / rate, time.monotonic(), []
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(rate * timeout) + 4) as pool:
        for number in range(10**9):
            time.sleep(max(0.0, start + number * period - time.monotonic()))
            if stop():
                break
            numbered = f"{url}?{PARAMETER}={token}.{number}"
            pending.append((round(time.monotonic() - start, 4), pool.submit(post, numbered, timeout)))
    return [[sent, *future.result()] for sent, future in pending]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--token", required=True, type=lambda value: re.fullmatch(r"[0-9a-f]+", value)[0])
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args(argv)
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    print("posts started", file=sys.stderr, flush=True)
    posts = send(args.url, args.token, args.rate, args.timeout, closed.is_set)
    print(json.dumps({"url": args.url, "token": args.token, "posts": posts}), flush=True)


if __name__ == "__main__":
    main()

"""
One client connection kept open, for lab tests of what happens to a
connection in flight when a VIP moves:

    python3 -m test.lab.keepalive URL

Reads a line on stdin for every request, sends it on the same HTTP/1.1
connection and prints one JSON line: {"answer": body, "port": the
connection's local port} or {"error": ...}.  Never reconnects: a request
after an error fails too.  Ends (closing the connection) at end of input.
"""

import http.client
import json
import sys
import urllib.parse


def main(argv=None):
    url = urllib.parse.urlsplit((argv or sys.argv[1:])[0])
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=3)
    connection.connect()
    port = connection.sock.getsockname()[1]
    broken = None
    for _ in sys.stdin:
        if broken is None:
            try:
                connection.request("GET", url.path or "/")
                result = {"answer": connection.getresponse().read().decode().strip(), "port": port}
            except (OSError, http.client.HTTPException) as exc:
                broken = f"{type(exc).__name__}: {exc}"
        print(json.dumps(result if broken is None else {"error": broken}), flush=True)
    connection.close()


if __name__ == "__main__":
    main()

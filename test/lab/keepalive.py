"""
One client connection kept open, for lab tests of what happens to a
connection in flight when a VIP moves:

    python3 -m test.lab.keepalive URL [--port PORT]

Reads a line on stdin for every request, sends it on the same HTTP/1.1
connection and prints one JSON line: {"answer": body, "port": the
connection's local port} or {"error": ...}.  Never reconnects: a request
after an error fails too.  Ends (closing the connection) at end of input.
``--port`` binds the connection to that local port.

    python3 -m test.lab.keepalive URL --port PORT --server-closes

One request on a connection from local port PORT with ``Connection:
close``, read until the server has closed its side: the server's side ends
in TIME_WAIT, the client's does not, so PORT is free again at once.
Prints the same JSON line.
"""

import argparse
import http.client
import json
import socket
import sys
import urllib.parse


def keep_open(url, bind_port):
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=3, source_address=("", bind_port))
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


def server_closes(url, port):
    request = f"GET {url.path or '/'} HTTP/1.1\r\nHost: {url.hostname}\r\nConnection: close\r\n\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=3, source_address=("", port)) as sock:
        sock.sendall(request.encode())
        answer = b"".join(iter(lambda: sock.recv(65536), b""))  # up to the server's FIN
    body = answer.partition(b"\r\n\r\n")[2].decode().strip()
    print(json.dumps({"answer": body, "port": port}), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--server-closes", action="store_true")
    args = parser.parse_args(argv)
    url = urllib.parse.urlsplit(args.url)
    if args.server_closes:
        server_closes(url, args.port)
    else:
        keep_open(url, args.port)


if __name__ == "__main__":
    main()

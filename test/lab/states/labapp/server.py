"""
The lab's application (test/lab/states/labapp/init.sls installs it on the
`app` nodes as the unit labapp): answers every GET with its name and
version, /healthz with "ok".  SIGTERM ends it gracefully: the requests it
has accepted are answered, then the port closes.

    python3 server.py --name app1 --version 1 --port 8080
"""

import argparse
import http.server
import signal
import threading


def handler(answer):
    """A request handler answering ``answer`` (and "ok" on /healthz), one
    request per connection."""
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 5

        def do_GET(self):
            body = (b"ok" if self.path == "/healthz" else answer.encode()) + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    return Handler


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    server = http.server.ThreadingHTTPServer(("", args.port), handler(f"{args.name} {args.version}"))
    server.daemon_threads = False  # server_close() waits for the requests in flight
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()

"""
A backend that dies in the middle of every request but its health check,
for lab tests of what HAProxy replays:

    python3 -m test.lab.recorder PORT LOG

Answers `GET /` with 200 (HAProxy's check keeps it UP); for any other
request it writes "METHOD PATH" to LOG, reads the request, and closes the
connection without an answer - as a server that died mid-request.
"""

import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one_request(self):
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or not self.parse_request():
            self.close_connection = True
            return
        if self.command == "GET" and self.path == "/":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        with open(sys.argv[2], "a", encoding="utf-8") as log:
            log.write(f"{self.command} {self.path}\n")
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.close_connection = True

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A peer that hangs up (HAProxy ending a check) is not an error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


if __name__ == "__main__":
    Server(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()

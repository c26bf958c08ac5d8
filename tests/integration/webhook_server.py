"""A small HTTP/1.1 server for the webhook tests, on 127.0.0.1, port 0.

    webhook_server.py LOG [--script 500,500] [--status 200] [--delay S]
                          [--hang] [--tls CERT KEY]

Prints its port on the first line of stdout, then serves until killed.
Each request is appended to LOG as one JSON line
{"n", "method", "path", "headers", "body", "status"} (body as text) before it
is answered: the statuses of --script for the first requests in order, then
--status; --delay seconds after reading the request; --hang reads the
request, logs it with status 0 and never answers (the connection stays
open). Keep-alive, one thread per connection. --tls serves https with CERT
and KEY (PEM).
"""
import argparse
import http.server
import json
import ssl
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("log")
ap.add_argument("--script", default="")
ap.add_argument("--status", type=int, default=200)
ap.add_argument("--delay", type=float, default=0.0)
ap.add_argument("--hang", action="store_true")
ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
args = ap.parse_args()
script = [int(s) for s in args.script.split(",") if s]
log = open(args.log, "a", encoding="utf-8")
lock = threading.Lock()
count = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            n = count[0]
            count[0] += 1
            status = 0 if args.hang else (script[n] if n < len(script) else args.status)
            log.write(json.dumps({"n": n, "method": self.command, "path": self.path,
                                  "headers": dict(self.headers.items()),
                                  "body": body.decode("utf-8", "replace"),
                                  "status": status}) + "\n")
            log.flush()
        if args.hang:
            time.sleep(3600)
            return
        if args.delay:
            time.sleep(args.delay)
        reply = b"status %d" % status
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # a client that went away (a stop, a timeout) is no failure


srv = Server(("127.0.0.1", 0), Handler)
if args.tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls[0], args.tls[1])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)

#!/usr/bin/env python3
"""A real webhook receiver for the delivery tests: an http.server on a free loopback port that checks every
POST's signature as docs/protocol.md tells receivers to (HMAC-SHA256 over "<timestamp>.<raw body>" with the
shared secret, constant-time compare, timestamp within 5 minutes) and appends one JSON line per POST to the
log file. Standard library only.

    webhook_receiver.py --secret S --log FILE [--fail-first N] [--tls-cert PEM --tls-key KEY]
prints "READY <port>" once listening; --fail-first N answers 503 to the first N requests (to exercise retries);
--tls-cert/--tls-key serve https with that certificate. A PUT (an upload, as the s3 store sends) is logged and
answered 503 for the first N requests, then 200, without a signature check.
"""
import argparse, base64, hashlib, hmac, json, os, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--secret", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--fail-first", type=int, default=0)
ap.add_argument("--tls-cert")
ap.add_argument("--tls-key")
args = ap.parse_args()
lock = threading.Lock()
seen = [0]


def verify(headers, body):
    """What a receiver must check: the signature over timestamp.body, then the timestamp's age."""
    ts = headers.get("X-Darkroom-Timestamp", "")
    sig = headers.get("X-Darkroom-Signature", "")
    if not ts.isdigit() or not sig.startswith("sha256="):
        return False
    expected = hmac.new(args.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, sig[len("sha256="):]) and abs(time.time() - int(ts)) <= 300


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            seen[0] += 1
            n = seen[0]
        status = 503 if n <= args.fail_first else (200 if self.command == "PUT" or verify(self.headers, body) else 401)
        entry = {"n": n, "status": status, "valid": verify(self.headers, body), "path": self.path, "method": self.command,
                 "headers": {k: v for k, v in self.headers.items()}, "body": base64.b64encode(body).decode()}
        with lock, open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, *a):
        pass


def exit_when_stdin_closes():
    """The test holds our stdin: when it goes (stopped or crashed), so do we."""
    sys.stdin.read()
    os._exit(0)


threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if args.tls_cert:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
print("READY", server.server_address[1], flush=True)
server.serve_forever()

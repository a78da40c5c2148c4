#!/usr/bin/env python3
"""Receive c2c's callbacks and progress webhooks, checking their signatures (Python 3.8+,
standard library only).

    export C2C_WEBHOOK_SECRET=...   # the account's webhook secret (`c2c keys create` prints it)
    PORT=8000 python3 webhook_receiver.py

Both kinds of request carry X-C2C-Timestamp and X-C2C-Signature: v1=<hex>:
- the final callback, GET <your callback_url>&minutes=..&answered=..&reason=.., is signed over
  the request target (path and query exactly as on the request line);
- a progress webhook (status_callback_url), POST with a JSON body {call_id, event, at,
  sequence}, is signed over the raw body.
Genuine requests are answered 200 and printed as JSON lines on stdout; anything else gets 403.
"""

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

TOLERANCE_SECONDS = 300  # refuse requests signed more than 5 minutes from our clock (replays)
DELIVERY_ID_HEADER = "X-C2C-Delivery-Id"  # a progress webhook's id, the same on each retry
MAX_BODY = 64 * 1024


def signature_ok(secret, timestamp, signed_bytes, signature, now=None,
                 tolerance=TOLERANCE_SECONDS):
    """True if ``signature`` (X-C2C-Signature) is c2c's for ``signed_bytes`` at ``timestamp``
    (X-C2C-Timestamp), and that timestamp is within ``tolerance`` seconds of ``now``.

    signed_bytes: the raw request target of a GET callback, the raw body of a POST webhook,
    as received: never rebuilt from parsed parameters or re-serialized JSON.
    """
    if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False  # stale, or from the future: possibly a replay
    payload = timestamp.encode() + b"." + signed_bytes
    expected = ("v1=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()).encode()
    # While a secret is being replaced the header may hold several comma-separated values; any
    # may match. compare_digest takes the same time wherever the first difference is.
    return any(hmac.compare_digest(expected, candidate.strip().encode("utf-8", "replace"))
               for candidate in signature.split(","))


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        # self.path is the request target as on the request line, held (as in WSGI's RAW_URI or
        # REQUEST_URI) decoded as Latin-1: encoding it back gives the very bytes that were signed.
        if not self.genuine(self.path.encode("latin-1")):
            return
        result = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        # Delivery is at least once: a retry repeats X-C2C-Call-Id. Record the call id with your
        # update (one transaction), and answer a repeat 200 without acting twice.
        self.accept({"kind": "callback", "call_id": self.headers.get("X-C2C-Call-Id"),
                     "answered": result.get("answered"), "minutes": result.get("minutes"),
                     "reason": result.get("reason")})

    def do_POST(self):
        length = self.headers.get("Content-Length", "")
        if not (length.isdigit() and int(length) <= MAX_BODY):
            return self.reply(413, b"body too large or without a length")
        body = self.rfile.read(int(length))  # the raw bytes: the signature covers them
        if not self.genuine(body):
            return
        event = json.loads(body)
        # At least once, in order per call: de-duplicate on the delivery id (or call_id and
        # sequence); a sequence lower than one already seen is a repeat.
        self.accept({"kind": "progress", "call_id": event["call_id"], "event": event["event"],
                     "sequence": event["sequence"], "at": event["at"],
                     "delivery_id": self.headers.get(DELIVERY_ID_HEADER)})

    def genuine(self, signed_bytes):
        if signature_ok(os.environ["C2C_WEBHOOK_SECRET"], self.headers.get("X-C2C-Timestamp"),
                        signed_bytes, self.headers.get("X-C2C-Signature")):
            return True
        self.reply(403, b"bad signature")
        return False

    def accept(self, record):
        print(json.dumps(record), flush=True)  # your work here; answer within a few seconds
        self.reply(200, b"ok")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    if not os.environ.get("C2C_WEBHOOK_SECRET"):
        sys.exit("set C2C_WEBHOOK_SECRET to the account's webhook secret")
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"listening on http://{host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()

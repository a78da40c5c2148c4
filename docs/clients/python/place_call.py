#!/usr/bin/env python3
"""Place a click-to-call call with c2c (Python 3.8+, standard library only).

    export C2C_URL=https://c2c.example.com C2C_API_KEY=...   # never put the key in code or logs
    python3 place_call.py 1 2125550123 1 2125550199 [https://example.com/c2c/callback]

Arguments: caller country code, caller number, callee country code, callee number (national
numbers, digits only), and optionally the callback URL. Prints the call's id and exits 0 when the
call was accepted; otherwise prints the code and its meaning and exits 1. C2C_IDEMPOTENCY_KEY
names the request (default: a new random key).
"""

import os
import sys
import time
import urllib.parse
import urllib.request
import uuid

CODES = {
    0: "accepted: the call will be attempted shortly",
    1: "invalid api_key",
    2: "no call credits",
    3: "a phone number is on the Do-Not-Call list",
    4: "badly formed request",
    5: "api_key is disabled",
    6: "flood protection: a number was used too recently; retry later",
    7: "caller area code not supported",
    8: "caller country code not supported",
    9: "callee area code not supported",
    10: "callee country code not supported",
    11: "temporarily unable to place calls; retry later",
}


def place_call(base_url, api_key, caller_country_code, caller_number, callee_country_code,
               callee_number, callback_url="", secret="", idempotency_key=None, timeout=15.0):
    """Ask c2c to connect two phones. Returns (code, call_id); call_id is None unless code is 0.
    Raises OSError when no answer came (urllib.error.HTTPError: not c2c's answer)."""
    form = urllib.parse.urlencode({
        "api_key": api_key,
        "caller_country_code": caller_country_code,
        "caller_phone_number": caller_number,
        "callee_country_code": callee_country_code,
        "callee_phone_number": callee_number,
        "callback_url": callback_url,
        "secret": secret,  # echoed in the callback, e.g. your own order id
    }).encode()
    # A POST form body keeps the api_key out of URLs, which end up in proxy and server logs.
    # (A GET with the same parameters in the query string works too.)
    request = urllib.request.Request(base_url.rstrip("/") + "/api/clicktocall/", data=form)
    if idempotency_key:
        # The same key with the same parameters, within 24 hours, answers what the first request
        # answered and places nothing: a retry after a timeout never rings the phones twice.
        request.add_header("Idempotency-Key", idempotency_key)
    # urlopen raises HTTPError on a 4xx/5xx: that never comes from c2c in this mode, but from
    # something in between (a proxy's 502, a URL too long).
    with urllib.request.urlopen(request, timeout=timeout) as response:
        # HTTP 200 for EVERY code: the code is the body, as bare digits ("0" means accepted).
        # Never treat "HTTP 200" as "call placed". (Send "Accept: application/json" to get
        # {"code", "message", "call_id"} with a fitting HTTP status instead.)
        body = response.read(16).decode("ascii", "replace")
        call_id = response.headers.get("X-C2C-Call-Id")  # only with code 0
    if not (body.isdigit() and int(body) in CODES):
        raise ValueError(f"not a c2c answer: {body!r}")
    return int(body), call_id


def main(argv):
    if len(argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    if not (os.environ.get("C2C_URL") and os.environ.get("C2C_API_KEY")):
        print("set C2C_URL and C2C_API_KEY", file=sys.stderr)
        return 2
    # One key for every try of this one call; a new call gets a new key.
    key = os.environ.get("C2C_IDEMPOTENCY_KEY") or str(uuid.uuid4())
    for attempt in (1, 2, 3):
        try:
            code, call_id = place_call(os.environ["C2C_URL"], os.environ["C2C_API_KEY"],
                                       *argv[1:], idempotency_key=key)
            break
        except (OSError, ValueError) as exc:
            # No answer (OSError), or not c2c's: a proxy's 5xx (HTTPError) may pass, a 404 won't.
            retry = isinstance(exc, OSError) and getattr(exc, "code", 500) >= 500
            if attempt == 3 or not retry:
                print(f"no answer from c2c: {exc}", file=sys.stderr)
                return 1
            time.sleep(attempt)  # then the same request again, with the same key
    if code != 0:
        print(f"not placed: code {code} ({CODES[code]})", file=sys.stderr)
        return 1
    # Keep the id: it names the call in the status API, the callback's X-C2C-Call-Id header
    # and c2c's logs.
    print(call_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

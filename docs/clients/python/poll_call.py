#!/usr/bin/env python3
"""Follow a c2c call until it has ended (Python 3.8+, standard library only).

    export C2C_URL=https://c2c.example.com C2C_API_KEY=...
    python3 poll_call.py CALL_ID

Prints each new state on stderr and, once the call has ended, the call as JSON on stdout; exits
0 then, 1 on an error or when C2C_POLL_TIMEOUT seconds (default 3 hours) have passed.
C2C_POLL_INTERVAL sets the seconds between two requests (default 5).
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def get_call(base_url, api_key, call_id, timeout=10.0):
    """The call as c2c has it now (a dict), or an exception: urllib.error.HTTPError 404 for a
    call id that is not this account's, 401/403 for a bad or disabled key, 503 store down."""
    url = base_url.rstrip("/") + "/api/calls/" + urllib.parse.quote(call_id, safe="")
    # The key goes in a header, never in the URL (URLs are logged).
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + api_key,
                                                   "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def wait_until_ended(base_url, api_key, call_id, interval=5.0, timeout=3 * 3600.0,
                     on_state=None):
    """Poll until the call's state is "ended"; returns the call. Transient trouble (no answer,
    a 5xx) is retried until ``timeout``; a 4xx is not (the key or the id is wrong)."""
    deadline = time.monotonic() + timeout
    last_state = None
    while True:
        wait = interval
        try:
            call = get_call(base_url, api_key, call_id)
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise
            # 503: c2c's store is unreachable for a moment; it says when to come back.
            retry_after = exc.headers.get("Retry-After", "")
            wait = max(interval, float(retry_after)) if retry_after.isdigit() else interval
        except OSError:
            pass  # no answer this time (network down, timeout): try again
        else:
            if call["state"] != last_state and on_state is not None:
                on_state(call["state"])
            last_state = call["state"]
            if call["state"] == "ended":
                return call
        if time.monotonic() + wait > deadline:
            raise TimeoutError(f"call {call_id} has not ended within {timeout:.0f} s")
        time.sleep(wait)


REASONS = {0: "failed", 1: "hung up", 3: "ring timeout", 5: "busy", 8: "congestion"}


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not (os.environ.get("C2C_URL") and os.environ.get("C2C_API_KEY")):
        print("set C2C_URL and C2C_API_KEY", file=sys.stderr)
        return 2
    try:
        call = wait_until_ended(
            os.environ["C2C_URL"], os.environ["C2C_API_KEY"], argv[1],
            interval=float(os.environ.get("C2C_POLL_INTERVAL", "5")),
            timeout=float(os.environ.get("C2C_POLL_TIMEOUT", str(3 * 3600))),
            on_state=lambda state: print("state:", state, file=sys.stderr))
    except urllib.error.HTTPError as exc:
        # The body is a problem document: {"type", "title", "status", "detail"}.
        problem = exc.read(2000).decode("utf-8", "replace")
        print(f"c2c answered {exc.code}: {problem}", file=sys.stderr)
        return 1
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        return 1
    if call["answered"]:
        # minutes: whole minutes connected, rounded up; what the account was debited.
        print(f"ended: answered, {call['minutes']} minute(s)", file=sys.stderr)
    else:
        reason = REASONS.get(call["reason"], call["reason"])
        print(f"ended: not answered ({reason})", file=sys.stderr)
    print(json.dumps(call))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

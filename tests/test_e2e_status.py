"""End to end: `GET /api/calls/{id}` follows a call through its states, through real gunicorn
(two gevent workers: the status request often lands on a worker that does not hold the switch's
events) and the simulator process, as a customer polling it would see it; another account's
call is a 404 there too."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.support.deployment import Deployment
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow

# The public states in the order a call moves through them (c2c/domain/call_status.py).
ORDER = ["queued", "dialing_caller", "caller_answered", "dialing_callee", "bridged", "ended"]


def _get(d: Deployment, call_id: str, key: str) -> requests.Response:
    assert d.gunicorn is not None
    return requests.get(f"{d.gunicorn.base_url}/api/calls/{call_id}",
                        headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _follow(d: Deployment, call_id: str, timeout: float = 30.0) -> tuple[list[str], Any]:
    """Poll the call until it ends: the states seen, in the order seen, and the last answer."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = _get(d, call_id, d.api_key)
        assert answer.status_code == 200, answer.text
        call = answer.json()
        if not seen or seen[-1] != call["state"]:
            seen.append(call["state"])
        if call["state"] == "ended":
            return seen, call
        time.sleep(0.02)
    raise AssertionError(f"call {call_id} did not end; states seen {seen}")


def test_status_follows_a_call_through_each_state(tmp_path, store_url):
    # At time scale 0.5 each phone takes half a real second to answer and the callee hangs up
    # 2.5 s after answering: slow enough to see every state the call passes through.
    with Deployment(tmp_path, store_url, workers=2, time_scale=0.5) as d:
        code, call_id = d.place()
        assert code == 0 and call_id
        seen, call = _follow(d, call_id)
        # Never backwards, and every state from the caller's ringing to the end was seen.
        assert seen == sorted(seen, key=ORDER.index), seen
        assert {"dialing_caller", "dialing_callee", "bridged", "ended"} <= set(seen), seen
        assert (call["answered"], call["minutes"], call["reason"]) == (True, 1, None)
        assert call["caller"]["number"] == "+12125550123"
        assert call["callee"]["number"] == "+12125550199"
        for moment in ("created_at", "caller_answered_at", "bridged_at", "ended_at"):
            assert call[moment], moment
        assert call["caller"]["hangup_cause"] == "NORMAL_CLEARING"
        # The callback's delivery shows up once it is done.
        wait_until(lambda: _get(d, call_id, d.api_key).json()["callback"]["status"]
                   == "delivered", 20, 0.05, "the callback delivered")
        shown = _get(d, call_id, d.api_key).json()["callback"]
        assert shown["attempts"] == 1 and shown["last_http_status"] == 200

        # Another account sees no such call: the same 404 as an id that does not exist.
        other = d.store.accounts.create("someone else", 10)
        theirs = _get(d, call_id, other.api_key)
        nobody = _get(d, "00000000-0000-4000-8000-000000000000", other.api_key)
        assert theirs.status_code == nobody.status_code == 404
        assert theirs.json()["title"] == nobody.json()["title"]
        assert theirs.headers["Content-Type"].startswith("application/problem+json")

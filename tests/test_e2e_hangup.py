"""End to end: `POST /api/calls/{call_id}/hangup` through real gunicorn (two gevent workers, so
the request often lands on a worker that does not hold the switch's events) and the simulator
process: a queued, a ringing and a bridged call each settle once with the right outcome and
send one final callback; an ended call answers 409 with its final state; another account's
call is 404."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from c2c.fakeswitch.scenarios import DEFAULT_RULES
from tests.support.deployment import Deployment
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow

SILENT_CALLER = "2125550111"  # its channel exists, its phone never says it rings: queued
RINGS_FOREVER = "2125550408"
NEVER_HANGS_UP = "2125550999"
TIME_SCALE = 0.2  # a virtual second is 0.2 real ones


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.json"
    silent = {"suffix": SILENT_CALLER[-4:], "role": "caller", "action": "no_answer",
              "progress_after": None}
    path.write_text(json.dumps({"rules": [silent, *DEFAULT_RULES]}), encoding="utf-8")
    return path


def _hang_up(d: Deployment, call_id: str, key: str | None = None) -> requests.Response:
    assert d.gunicorn is not None
    return requests.post(f"{d.gunicorn.base_url}/api/calls/{call_id}/hangup",
                         headers={"Authorization": f"Bearer {key or d.api_key}"}, timeout=10)


def _shown(d: Deployment, call_id: str) -> Any:
    assert d.gunicorn is not None
    result = requests.get(f"{d.gunicorn.base_url}/api/calls/{call_id}",
                          headers={"Authorization": f"Bearer {d.api_key}"}, timeout=10)
    assert result.status_code == 200, result.text
    return result.json()


def _reaches(d: Deployment, call_id: str, state: str) -> Any:
    return wait_until(lambda: (lambda c: c if c["state"] == state else None)(
        _shown(d, call_id)), 20, 0.05, f"call {call_id} {state}")


def _one_callback(d: Deployment, call_id: str) -> dict[str, str]:
    """The call's one callback, once received and recorded delivered (from then on the call's
    representation stays as it is)."""
    wait_until(lambda: _shown(d, call_id)["callback"]["status"] == "delivered", 20, 0.05,
               f"the callback of {call_id} delivered")
    (request,) = d.callbacks_for(call_id)
    return dict(request.query)


def test_hanging_up_a_queued_a_ringing_and_a_bridged_call(tmp_path: Path, store_url: str) -> None:
    env = {"C2C_RING_TIMEOUT": "300"}  # 60 real seconds of ringing: time to hang up
    with Deployment(tmp_path, store_url, workers=2, time_scale=TIME_SCALE, env=env,
                    scenario=_scenario(tmp_path)) as d:
        other = d.store.accounts.create("other", 10)
        placed = {}
        numbers: list[tuple[str, dict[str, str]]] = [
            ("queued", {"caller_phone_number": SILENT_CALLER}),
            ("ringing", {"caller_phone_number": RINGS_FOREVER}),
            ("bridged", {"callee_phone_number": NEVER_HANGS_UP})]
        for name, number in numbers:
            code, call_id = d.place(True, False, **number)
            assert code == 0 and call_id
            placed[name] = call_id

        # Queued: the caller's channel is there (the request answered once it was created),
        # its phone not seen ringing.
        assert _shown(d, placed["queued"])["state"] == "queued"
        assert _hang_up(d, placed["queued"], other.api_key).status_code == 404
        _reaches(d, placed["ringing"], "dialing_caller")
        _reaches(d, placed["bridged"], "bridged")
        talking_since = time.monotonic()
        for name in ("queued", "ringing"):
            result = _hang_up(d, placed[name])
            assert result.status_code == 202, result.text
            assert result.json()["id"] == placed[name]
        # Talk for a few (virtual) seconds before hanging up: billed as talked.
        wait_until(lambda: time.monotonic() - talking_since > 1.0, 5, 0.05, "a second talked")
        assert _hang_up(d, placed["bridged"]).status_code == 202

        for name in ("queued", "ringing"):
            row = d.wait_settled(placed[name])
            assert (row["answered"], row["minutes"], row["reason"]) == (False, 0, 1), name
            assert row["caller_answered_at"] is None, name
            assert row["caller_hangup_cause"] == "ORIGINATOR_CANCEL", name
            query = _one_callback(d, placed[name])
            assert (query["answered"], query["minutes"], query["reason"]) == ("0", "0", "1")
        row = d.wait_settled(placed["bridged"])
        assert row["answered"] and row["minutes"] == 1 and row["reason"] is None
        assert row["billsec"] >= 1
        assert row["caller_hangup_cause"] == row["callee_hangup_cause"] == "NORMAL_CLEARING"
        query = _one_callback(d, placed["bridged"])
        assert (query["answered"], query["minutes"], query["reason"]) == ("1", "1", "")

        # Each settled once: hanging up again is 409 with the call as it ended; no second
        # callback, one debit (the bridged call's minute).
        for name, call_id in placed.items():
            result = _hang_up(d, call_id)
            assert result.status_code == 409, (name, result.text)
            assert result.headers["content-type"] == "application/problem+json"
            body = result.json()
            assert body["type"] == "urn:c2c:problem:call-ended"
            assert body["call"] == _shown(d, call_id)
            assert len(d.callbacks_for(call_id)) == 1
        account = d.store.accounts.find(d.account_id)
        assert account is not None and account.reserved == 0
        assert account.credits == d.credits - 1


def test_a_call_that_ended_by_itself_answers_409(tmp_path: Path, store_url: str) -> None:
    with Deployment(tmp_path, store_url, workers=1, time_scale=0.05) as d:
        code, call_id = d.place()
        assert code == 0 and call_id
        d.wait_settled(call_id)
        _one_callback(d, call_id)
        result = _hang_up(d, call_id)
        assert result.status_code == 409
        body = result.json()
        assert body["call"]["state"] == "ended" and body["call"]["answered"] is True
        assert body["call"] == _shown(d, call_id)
        assert len(d.callbacks_for(call_id)) == 1
        row = d.store.calls.get(call_id)
        assert row is not None and row["hangup_requested_at"] is None

"""`POST /api/calls/{call_id}/hangup` in-process (tests.support.app_harness), on SQLite and
MariaDB: who may end a call, the answers (202, 409 with the final call, 404), idempotency (one
request sends the kills), the reason rule, a leg that appears after the request (ended on
sight by the event holder, also on a call already settled), a call never seen on its switch
(settled soon after its request), one on a switch out of reach (settled within the grace, reason
1), and press 1 (the prompt, and `dialing_callee` while the callee rings)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from c2c.calls import hangup
from c2c.fakeswitch.scenarios import Scenario
from c2c.store import schema
from tests.support.app_harness import AppHarness
from tests.support.call_rows import seed_call

PROBLEM = "application/problem+json"
CALL_ENDED = "urn:c2c:problem:call-ended"
RINGS_FOREVER = "2125550408"  # the default scenario: rings, never answers
MAILBOX = "2125550700"  # answers, never presses 1


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def hang_up(h: AppHarness, key: str | None, call_id: str, query: str = "") -> Any:
    return h.request("POST", f"/api/calls/{call_id}/hangup", query,
                     bearer(key) if key else None)


def shown(h: AppHarness, key: str, call_id: str) -> Any:
    result = h.request("GET", f"/api/calls/{call_id}", headers=bearer(key))
    assert result.status_code == 200, result.text
    return result.json


def assert_problem(result: Any, status: int, kind: str) -> dict[str, Any]:
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == PROBLEM
    body = result.json
    assert body["type"] == kind and body["status"] == status and body["title"] and body["detail"]
    return body


def kills_sent(h: AppHarness) -> list[str]:
    """Spy on the command connection (the API's and the event holder's): every uuid_kill."""
    connection = h.connection
    original = connection.api
    sent: list[str] = []

    def api(cmd: str, *args: Any, **kwargs: Any) -> str:
        if cmd.startswith("uuid_kill"):
            sent.append(cmd)
        return original(cmd, *args, **kwargs)

    connection.api = api
    return sent


def callbacks_of(h: AppHarness, call_id: str) -> int:
    with h.store.engine.connect() as conn:
        return len(conn.execute(select(schema.callbacks.c.id)
                                .where(schema.callbacks.c.call_id == call_id)).all())


def place(h: AppHarness, key: str, **numbers: str) -> str:
    result = h.get({"api_key": key, **h.numbers(**numbers),
                    "callback_url": "http://127.0.0.1:9/cb"})
    assert h.code(result) == 0
    return str(result.headers["x-c2c-call-id"])


def switch_of(h: AppHarness) -> str:
    assert h.config is not None
    return h.config.switches[0].name


def wait_state(h: AppHarness, key: str, call_id: str, state: str) -> Any:
    return h.wait_until(lambda: (lambda c: c if c["state"] == state else None)(
        shown(h, key, call_id)), timeout=15, message=f"call {state}")


@pytest.fixture
def live(store_url: str) -> Iterator[AppHarness]:
    with AppHarness(store_url, background=True) as h:
        yield h


# -- answers ------------------------------------------------------------------------------------


def test_a_ringing_call_is_cancelled_and_settles_hung_up_once(live: AppHarness) -> None:
    account = live.account()
    kills = kills_sent(live)
    call_id = place(live, account.api_key, caller=RINGS_FOREVER)
    wait_state(live, account.api_key, call_id, "dialing_caller")
    result = hang_up(live, account.api_key, call_id)
    assert result.status_code == 202, result.text
    assert result.headers["content-type"] == "application/json"
    assert result.json["id"] == call_id and result.json["state"] in ("dialing_caller", "ended")
    row = live.wait_settled(call_id)
    assert (row["answered"], row["minutes"], row["reason"]) == (False, 0, 1)
    assert row["caller_hangup_cause"] == hangup.UNANSWERED_CAUSE
    assert row["hangup_requested_at"] is not None
    assert kills == [f"uuid_kill {row['caller_uuid']} ORIGINATOR_CANCEL"]
    assert callbacks_of(live, call_id) == 1
    # Ended: 409, the final call in the problem; nothing more is sent or written.
    final = shown(live, account.api_key, call_id)
    again = assert_problem(hang_up(live, account.api_key, call_id), 409, CALL_ENDED)
    assert again["call"] == final and final["reason"] == 1
    assert len(kills) == 1 and callbacks_of(live, call_id) == 1


def test_asking_again_while_the_call_ends_sends_nothing_more(store_url: str) -> None:
    # No event holder: the call stays as the request left it.
    with AppHarness(store_url) as h:
        account = h.account()
        kills = kills_sent(h)
        switch = switch_of(h)
        call_id = seed_call(h.store, account.id, state="caller_ringing", switch=switch)
        answers = [hang_up(h, account.api_key, call_id) for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 202]
        assert answers[0].json == answers[2].json == shown(h, account.api_key, call_id)
        row = h.store.calls.get(call_id)
        assert row is not None and row["state"] == "caller_ringing"
        assert kills == [f"uuid_kill {row['caller_uuid']} ORIGINATOR_CANCEL"]  # not there
        first = row["hangup_requested_at"]
        hang_up(h, account.api_key, call_id)
        assert h.store.calls.get(call_id)["hangup_requested_at"] == first  # type: ignore[index]
        # Bridged: both legs, NORMAL_CLEARING.
        bridged = seed_call(h.store, account.id, state="bridged", switch=switch,
                            caller_answered_at=time.time(), callee_answered_at=time.time(),
                            bridged_at=time.time())
        assert hang_up(h, account.api_key, bridged).status_code == 202
        row = h.store.calls.get(bridged)
        assert row is not None
        assert kills[1:] == [f"uuid_kill {row['caller_uuid']} NORMAL_CLEARING",
                             f"uuid_kill {row['callee_uuid']} NORMAL_CLEARING"]
        # A leg's end is recorded: the call is ending by itself; not recorded, nothing sent.
        ending = seed_call(h.store, account.id, state="caller_answered", switch=switch,
                           caller_answered_at=time.time(), caller_gone_at=time.time())
        result = hang_up(h, account.api_key, ending)
        assert result.status_code == 202 and result.json["state"] == "dialing_callee"
        assert h.store.calls.get(ending)["hangup_requested_at"] is None  # type: ignore[index]
        assert len(kills) == 3


def test_who_may_hang_up_a_call(store_url: str) -> None:
    with AppHarness(store_url) as h:
        owner, other = h.account(), h.account()
        disabled = h.account(enabled=False)
        call_id = seed_call(h.store, owner.id, state="queued")  # on an unconfigured switch
        theirs = hang_up(h, other.api_key, call_id)
        missing = hang_up(h, other.api_key, "3f1c9a52-8d7e-4c2b-9d0e-5b1f2a6c7e90")
        assert assert_problem(theirs, 404, "about:blank") == assert_problem(
            missing, 404, "about:blank")
        assert h.store.calls.get(call_id)["hangup_requested_at"] is None  # type: ignore[index]
        for bad in ("x" * 37, "%C3%A9", "a%00b", "'%20OR%201=1"):
            assert_problem(hang_up(h, owner.api_key, bad), 404, "about:blank")
        assert_problem(hang_up(h, None, call_id), 401, "urn:c2c:problem:unauthorized")
        assert_problem(hang_up(h, "nobody", call_id), 401, "urn:c2c:problem:unauthorized")
        assert_problem(hang_up(h, disabled.api_key, call_id), 403,
                       "urn:c2c:problem:key-disabled")
        assert_problem(hang_up(h, owner.api_key, call_id, f"api_key={owner.api_key}"), 400,
                       "urn:c2c:problem:invalid-parameter")
        assert_problem(h.request("GET", f"/api/calls/{call_id}/hangup",
                                 headers=bearer(owner.api_key)), 405, "about:blank")
        # The key as a parameter; a switch not configured here: recorded, answered, no error.
        result = hang_up(h, None, call_id.upper(), f"api_key={owner.api_key}")
        assert result.status_code == 202 and result.json["id"] == call_id
        assert h.store.calls.get(call_id)["hangup_requested_at"] is not None  # type: ignore[index]
        ended = seed_call(h.store, owner.id, reason=5, callee_fate="USER_BUSY")
        body = assert_problem(hang_up(h, owner.api_key, ended), 409, CALL_ENDED)
        assert body["call"] == shown(h, owner.api_key, ended)
        assert set(body) == {"type", "title", "status", "detail", "call"}


# -- the event holder ---------------------------------------------------------------------------

LATE_RINGING = Scenario.from_dict({"rules": [
    {"role": "caller", "action": "answer", "progress_after": 1, "answer_after": 3,
     "hangup_after": None},
    {"action": "answer", "answer_after": 1, "hangup_after": 5},
]})


@pytest.mark.parametrize("settled_first", [False, True])
def test_a_leg_that_appears_after_the_request_is_ended_on_sight(store_url: str,
                                                                settled_first: bool) -> None:
    with AppHarness(store_url, background=True, scenario=LATE_RINGING) as h:
        account = h.account()
        kills = kills_sent(h)
        call_id = place(h, account.api_key)
        # Recorded as the request does, with no kill of its own: what the holder must do alone
        # when a leg appears (the originate was still on its way, or the call moved).
        assert h.store.calls.request_hangup(call_id, account.id, time.time())
        row = h.store.calls.get(call_id)
        assert row is not None and row["state"] == "queued"
        if settled_first:
            assert h.store.calls.settle(call_id, hangup.cancelled_outcome(row),
                                        ended_at=time.time())
        h.wait_until(lambda: kills, message="the holder ended the leg")
        assert kills == [f"uuid_kill {row['caller_uuid']} ORIGINATOR_CANCEL"]
        h.wait_until(lambda: h.switch.switchboard.live(row["caller_uuid"]) is None,
                     message="the caller's channel gone")
        ended = h.wait_until(lambda: (lambda c: c if c and c["caller_gone_at"] else None)(
            h.store.calls.get(call_id)), message="the caller's end recorded")
        ended = h.wait_settled(call_id)
        assert ended["caller_answered_at"] is None  # the phone was never answered
        assert (ended["answered"], ended["minutes"], ended["reason"]) == (False, 0, 1)
        assert ended["caller_hangup_cause"] == "ORIGINATOR_CANCEL"
        assert callbacks_of(h, call_id) == 1


def test_a_call_never_seen_on_its_switch_settles_soon_after_its_hangup(live: AppHarness) -> None:
    account = live.account()
    kills = kills_sent(live)
    now = time.time()
    call_id = seed_call(live.store, account.id, state="queued",
                        switch=switch_of(live), created_at=now - 30,
                        hangup_requested_at=now - 2 * hangup.LOOK_AGAIN_SECONDS,
                        callback_url="http://127.0.0.1:9/cb")
    row = live.wait_settled(call_id, timeout=10)
    assert (row["answered"], row["minutes"], row["reason"]) == (False, 0, 1)
    assert not row["estimated"]
    assert kills == [f"uuid_kill {row['caller_uuid']} ORIGINATOR_CANCEL"]
    assert callbacks_of(live, call_id) == 1


# -- press 1 ------------------------------------------------------------------------------------


def test_a_caller_on_the_prompt_is_ended_before_the_callee_is_dialed(store_url: str) -> None:
    with AppHarness(store_url, background=True, confirm="key", confirm_timeout=30) as h:
        account = h.account()
        kills = kills_sent(h)
        call_id = place(h, account.api_key, caller=MAILBOX)
        wait_state(h, account.api_key, call_id, "caller_answered")
        assert hang_up(h, account.api_key, call_id).status_code == 202
        row = h.wait_settled(call_id)
        # Not 3 (never pressed): the customer ended it.
        assert (row["answered"], row["minutes"], row["reason"]) == (False, 0, 1)
        assert row["confirm"] == "unconfirmed"
        assert row["callee_gone_at"] is None and row["callee_hangup_cause"] is None
        assert kills[0] == f"uuid_kill {row['caller_uuid']} NORMAL_CLEARING"


def test_with_press_1_a_ringing_callee_shows_dialing_callee(store_url: str) -> None:
    with AppHarness(store_url, background=True, confirm="key") as h:
        account = h.account()
        call_id = place(h, account.api_key, callee=RINGS_FOREVER)
        call = wait_state(h, account.api_key, call_id, "dialing_callee")
        assert call["confirm"] == "confirmed" and call["bridged_at"] is None
        assert hang_up(h, account.api_key, call_id).status_code == 202
        row = h.wait_settled(call_id)
        assert (row["answered"], row["minutes"], row["reason"]) == (False, 0, 1)
        assert row["callee_hangup_cause"] == "ORIGINATOR_CANCEL"


def test_a_call_on_a_switch_out_of_reach_settles_hung_up_within_the_grace(
        store_url: str) -> None:
    liveness, grace = 1.0, 2
    with AppHarness(store_url, background=True, esl_timeout=0.5, esl_liveness_seconds=liveness,
                    settle_grace=grace) as h:
        h.switch.heartbeat_interval = 0.2
        account = h.account()
        call_id = place(h, account.api_key, caller=RINGS_FOREVER)
        wait_state(h, account.api_key, call_id, "dialing_caller")
        h.switch.faults.frozen = True
        asked_at = time.time()
        result = hang_up(h, account.api_key, call_id)  # its kill is not answered in time
        assert result.status_code == 202, result.text
        row = h.wait_settled(call_id, timeout=liveness + grace + 10)
        assert time.time() - asked_at < liveness + grace + 10 < row["deadline_at"] - asked_at
        # Settled from what is known (the caller never answered): reason 1, not failed.
        assert (row["answered"], row["minutes"], row["reason"], row["estimated"]) == (
            False, 0, 1, True)
        assert callbacks_of(h, call_id) == 1
        h.switch.faults.frozen = False

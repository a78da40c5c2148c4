"""Progress webhooks (issue 13): the events a request asks for, written with the moves they report,
numbered in order per call, POSTed signed over their body, one at a time per call, at least once.

Tiers: pure (the events and the body), the store on SQLite and MySQL (what is written when, the
outbox's order, a finish racing a new event), the listener replaying recorded calls, the
dispatcher against a real local receiver, and end to end through gunicorn and the simulator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from c2c.callbacks.dispatcher import CallbackDispatcher
from c2c.calls import events as ev
from c2c.calls.listener import CallEventListener
from c2c.config import Config
from c2c.domain.progress import (
    ProgressEvent,
    decode_events,
    delivery_id,
    encode_events,
    iso_utc,
    parse_events,
    progress_body,
)
from c2c.store import Report, SettledOutcome, schema
from c2c.store.progress import write_events
from tests.callback_receiver import CallbackReceiver, ReceivedRequest
from tests.conftest import ACCEPT_DEFAULTS
from tests.support.deployment import Deployment
from tests.support.processes import wait_until
from tests.test_confirm_outcome import NEVER, PRESSES, needs_captures, recorded

T0 = 1_700_000_000.0
ALL = ("ringing", "answered", "bridged", "completed")
NOWHERE = "http://127.0.0.1:9/progress"  # for tests that never send


# --------------------------------------------------------------------------------------------
# Pure: the events and the body


@pytest.mark.parametrize(("raw", "events"), [
    ("", ("completed",)),
    ("completed", ("completed",)),
    ("bridged,ringing", ("ringing", "bridged")),
    ("completed,bridged,answered,ringing", ALL),
])
def test_parse_events_gives_event_order(raw, events):
    assert parse_events(raw) == events


@pytest.mark.parametrize("raw", ["Ringing", "ringing,", ",", "ringing,,bridged", "ringing,ringing",
                                 " ringing", "ringing ", "rang", "completed;ringing"])
def test_parse_events_refuses_anything_else(raw):
    with pytest.raises(ValueError):
        parse_events(raw)


def test_stored_events_round_trip():
    assert encode_events(["completed", ProgressEvent.RINGING]) == "ringing,completed"
    assert encode_events(ALL) == "ringing,answered,bridged,completed"
    assert len(encode_events(ALL) or "") <= schema.calls.c.status_events.type.length
    assert encode_events(()) is None
    assert decode_events("ringing,completed") == {ProgressEvent.RINGING, ProgressEvent.COMPLETED}
    assert decode_events(None) == decode_events("") == frozenset()


def test_the_body_is_compact_json_in_a_fixed_order():
    body = progress_body("3f1c9a52-8d7e-4c2b-9d0e-5b1f2a6c7e90", "answered", 1700000000.25, 2)
    assert body == ('{"call_id":"3f1c9a52-8d7e-4c2b-9d0e-5b1f2a6c7e90","event":"answered",'
                    '"at":"2023-11-14T22:13:20.250Z","sequence":2}')
    assert body.isascii()
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert delivery_id("c", 3) == "c:3"


# --------------------------------------------------------------------------------------------
# The store (SQLite and MySQL)


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def account(store):
    return store.accounts.create("acme", 100_000, now=T0 - 3600)


@pytest.fixture
def accept(store, account, make_call):
    def accept_one(events: tuple[str, ...] = ALL, url: str | None = NOWHERE, *,
                   callback_url: str | None = None, **replace: Any) -> str:
        call = dataclasses.replace(make_call(account.id, callback_url=callback_url),
                                   status_callback_url=url, status_events=events, **replace)
        store.accept_call(account.id, call, now=T0, **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
        return call.id

    return accept_one


@pytest.fixture
def listener(store):
    return CallEventListener(store, clock=Clock())


def ring(listener: CallEventListener, call_id: str, at: float) -> None:
    listener.leg_moment(ev.LegMoment(call_id, ev.CALLER, "CHANNEL_PROGRESS", at))


def answer(listener: CallEventListener, call_id: str, at: float) -> None:
    listener.leg_moment(ev.LegMoment(call_id, ev.CALLER, "CHANNEL_ANSWER", at))


def bridge(listener: CallEventListener, call_id: str, at: float) -> None:
    listener.leg_moment(ev.LegMoment(call_id, ev.CALLEE, "CHANNEL_ANSWER", at))


ANSWERED = SettledOutcome(answered=True, minutes=1, reason=None, billsec=30)
BUSY = SettledOutcome(answered=False, minutes=0, reason=5, billsec=0)


def settle(store, call_id: str, outcome: SettledOutcome = ANSWERED, at: float = T0 + 40) -> bool:
    return store.calls.settle(call_id, outcome, ended_at=at, now=at)


def webhooks(store, call_id: str) -> list[tuple[int, str, str, float]]:
    return [(w["sequence"], w["event"], w["status"], w["at"])
            for w in store.progress.for_call(call_id)]


def test_the_accept_records_what_was_asked(store, accept):
    asked = accept(("completed", "ringing"))
    row = store.calls.get(asked)
    assert (row["status_callback_url"], row["status_events"]) == (NOWHERE, "ringing,completed")
    for none in (accept(()), accept(ALL, url=None)):
        row = store.calls.get(none)
        assert (row["status_callback_url"], row["status_events"]) == (None, None)


def test_each_event_is_written_with_its_move_numbered_in_order(store, accept, listener):
    call_id = accept()
    ring(listener, call_id, T0 + 1)
    assert store.calls.get(call_id)["state"] == "caller_ringing"
    answer(listener, call_id, T0 + 2)
    bridge(listener, call_id, T0 + 3)
    assert store.calls.get(call_id)["state"] == "bridged"
    assert settle(store, call_id)
    assert webhooks(store, call_id) == [
        (1, "ringing", "pending", T0 + 1),
        (2, "answered", "waiting", T0 + 2),
        (3, "bridged", "waiting", T0 + 3),
        (4, "completed", "waiting", T0 + 40),
    ]
    rows = store.progress.for_call(call_id)
    assert [json.loads(r["body"]) for r in rows] == [
        {"call_id": call_id, "event": e, "at": iso_utc(at), "sequence": n}
        for n, e, _, at in webhooks(store, call_id)]
    assert {(r["url"], r["account_id"], r["attempts"]) for r in rows} == {
        (NOWHERE, store.calls.get(call_id)["account_id"], 0)}


def test_an_event_seen_again_writes_nothing(store, accept, listener):
    call_id = accept()
    for _ in range(2):
        ring(listener, call_id, T0 + 1)
        answer(listener, call_id, T0 + 2)
        bridge(listener, call_id, T0 + 3)
    ring(listener, call_id, T0 + 9)  # late, after the moves it would have made
    assert settle(store, call_id)
    assert not settle(store, call_id, at=T0 + 50)
    assert [w[:2] for w in webhooks(store, call_id)] == [
        (1, "ringing"), (2, "answered"), (3, "bridged"), (4, "completed")]


def test_only_the_events_asked_for_are_written(store, accept, listener):
    call_id = accept(("answered", "completed"))
    ring(listener, call_id, T0 + 1)
    assert store.calls.get(call_id)["state"] == "caller_ringing"  # the move is made all the same
    assert webhooks(store, call_id) == []
    answer(listener, call_id, T0 + 2)
    bridge(listener, call_id, T0 + 3)
    assert settle(store, call_id)
    assert webhooks(store, call_id) == [(1, "answered", "pending", T0 + 2),
                                        (2, "completed", "waiting", T0 + 40)]


def test_a_later_event_seen_first_keeps_the_earlier_one_out(store, accept, listener):
    call_id = accept()
    bridge(listener, call_id, T0 + 3)  # the caller's events were lost
    answer(listener, call_id, T0 + 2)  # fills the time, moves nothing
    assert store.calls.get(call_id)["caller_answered_at"] == T0 + 2
    assert settle(store, call_id)
    assert [w[1] for w in webhooks(store, call_id)] == ["bridged", "completed"]


def test_settlement_sends_what_the_row_shows_and_no_event_reported(store, accept):
    """A listener that took over mid-call never saw the answers; the row has their times."""
    call_id = accept()
    store.calls.set_fields(call_id, {"caller_answered_at": T0 + 2, "bridged_at": T0 + 3})
    assert settle(store, call_id)
    assert webhooks(store, call_id) == [(1, "answered", "pending", T0 + 2),
                                        (2, "bridged", "waiting", T0 + 3),
                                        (3, "completed", "waiting", T0 + 40)]


def test_an_unanswered_call_reports_what_happened(store, accept, listener):
    call_id = accept()
    ring(listener, call_id, T0 + 1)
    assert settle(store, call_id, BUSY)
    assert [w[1] for w in webhooks(store, call_id)] == ["ringing", "completed"]


def test_completed_is_written_with_the_final_callback(store, accept):
    call_id = accept(("completed",), callback_url="https://example.com/cb")
    assert settle(store, call_id)
    assert store.callbacks.get_for_call(call_id) is not None
    assert webhooks(store, call_id) == [(1, "completed", "pending", T0 + 40)]


def test_without_a_status_callback_url_nothing_is_written(store, accept, listener):
    call_id = accept(ALL, url=None, callback_url="https://example.com/cb")
    ring(listener, call_id, T0 + 1)
    answer(listener, call_id, T0 + 2)
    bridge(listener, call_id, T0 + 3)
    assert settle(store, call_id)
    assert webhooks(store, call_id) == []
    assert store.calls.get(call_id)["state"] == "ended"


def test_a_move_the_update_leaves_alone_writes_no_webhook(store, accept):
    """``unless_set`` (a call whose hangup was requested): no move, so no webhook, until the
    move is made."""
    call_id = accept()
    c = schema.calls
    with store.engine.begin() as conn:
        conn.execute(update(c).where(c.c.id == call_id).values(hangup_requested_at=T0 + 0.5))
    move = dict(report=Report(ProgressEvent.RINGING, T0 + 1), now=T0 + 1, recheck_at=None)
    assert not store.calls.advance(call_id, ["queued"], "caller_ringing",
                                   unless_set=("hangup_requested_at",), **move)
    assert webhooks(store, call_id) == []
    assert store.calls.advance(call_id, ["queued"], "caller_ringing", **move)
    assert webhooks(store, call_id) == [(1, "ringing", "pending", T0 + 1)]


@pytest.fixture
def statements(store) -> Iterator[list[str]]:
    """Every SQL statement sent while the test runs."""
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    sa_event.listen(store.engine, "before_cursor_execute", record)
    yield sent
    sa_event.remove(store.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("events", [(), ("completed",)])
def test_a_call_that_asked_for_no_moment_pays_one_statement_per_move(store, accept, listener,
                                                                      statements, events):
    call_id = accept(events)
    for step, at in ((ring, 1), (answer, 2), (bridge, 3)):
        statements.clear()
        step(listener, call_id, T0 + at)
        assert [s.split()[0].upper() for s in statements if re.search(r"\bcalls\b", s)] == [
            "UPDATE"]
        assert not [s for s in statements if "progress_webhooks" in s]


def test_a_call_that_asked_for_none_never_touches_the_outbox(store, accept, listener, statements):
    call_id = accept(())
    ring(listener, call_id, T0 + 1)
    answer(listener, call_id, T0 + 2)
    bridge(listener, call_id, T0 + 3)
    answer(listener, call_id, T0 + 2)  # a replay
    assert settle(store, call_id)
    assert [s for s in statements if "progress_webhooks" in s] == []


# -- the outbox


def test_only_a_calls_earliest_unfinished_webhook_is_claimed(store, accept, listener):
    first, second = accept(), accept()
    for call_id in (first, second):
        ring(listener, call_id, T0 + 1)
        answer(listener, call_id, T0 + 2)
    outbox = store.progress
    claimed = outbox.claim_due(T0 + 5, 10, 60)
    assert sorted((j.call_id, j.sequence) for j in claimed) == sorted(
        [(first, 1), (second, 1)])
    assert outbox.claim_due(T0 + 5, 10, 60) == []  # claimed, and the rest waits
    one = next(j for j in claimed if j.call_id == first)
    assert one.body == store.progress.for_call(first)[0]["body"]
    assert one.delivery_id == f"{first}:1"

    # A failed try keeps the rest waiting.
    assert outbox.reschedule(one.id, at=T0 + 6, next_attempt_at=T0 + 8, error="HTTP 500",
                             http_status=500)
    assert outbox.claim_due(T0 + 7, 10, 60) == []
    [again] = outbox.claim_due(T0 + 8, 10, 60)
    assert (again.id, again.attempts) == (one.id, 1)
    # Delivered: the next one is due at once.
    assert outbox.mark_delivered(one.id, at=T0 + 9, http_status=204)
    assert not outbox.mark_delivered(one.id, at=T0 + 9, http_status=204)  # once
    [following] = outbox.claim_due(T0 + 9, 10, 60)
    assert (following.call_id, following.sequence, following.event) == (first, 2, "answered")
    # Given up: the next one is due too.
    bridge(listener, first, T0 + 10)
    assert outbox.mark_failed(following.id, at=T0 + 11, error="gone", http_status=410)
    [last] = outbox.claim_due(T0 + 11, 10, 60)
    assert (last.sequence, last.event) == (3, "bridged")
    rows = {w["sequence"]: w for w in outbox.for_call(first)}
    assert (rows[1]["status"], rows[1]["attempts"], rows[1]["last_http_status"]) == (
        "delivered", 2, 204)
    assert (rows[2]["status"], rows[2]["last_error"], rows[2]["last_http_status"]) == (
        "failed", "gone", 410)
    assert outbox.counts() == {"delivered": 1, "failed": 1, "pending": 2, "waiting": 1}


def test_an_event_after_a_finished_one_is_due_at_once(store, accept, listener):
    call_id = accept()
    ring(listener, call_id, T0 + 1)
    [job] = store.progress.claim_due(T0 + 1, 10, 60)
    assert store.progress.mark_delivered(job.id, at=T0 + 1.5, http_status=200)
    answer(listener, call_id, T0 + 2)
    assert webhooks(store, call_id)[1][:3] == (2, "answered", "pending")


def test_a_finish_racing_a_new_event_never_leaves_it_waiting(store, accept, listener):
    """The event's transaction locks the call's webhooks: the finish waits for it, then sees the
    new row and makes it due (the other order is the test above)."""
    call_id = accept()
    ring(listener, call_id, T0 + 1)
    [job] = store.progress.claim_due(T0 + 1, 10, 60)
    finished: list[bool] = []
    c = schema.calls
    with store.engine.begin() as conn:  # as Calls.advance does for a call that asked
        call = dict(conn.execute(select(c).where(c.c.id == call_id).with_for_update())
                    .mappings().one())
        conn.execute(update(c).where(c.c.id == call_id)
                     .values(state="caller_answered", caller_answered_at=T0 + 2))
        assert write_events(conn, [(call, [Report(ProgressEvent.ANSWERED, T0 + 2)])], T0 + 2) == 1
        finisher = threading.Thread(target=lambda: finished.append(
            store.progress.mark_delivered(job.id, at=T0 + 2, http_status=200)))
        finisher.start()
        finisher.join(0.3)
        assert finished == []  # it waits for this transaction's locks
    finisher.join(20)
    assert finished == [True]
    assert [w[:3] for w in webhooks(store, call_id)] == [(1, "ringing", "delivered"),
                                                         (2, "answered", "pending")]


# --------------------------------------------------------------------------------------------
# The listener, replaying recorded calls (SQLite and MySQL)


def place_recorded(store, account, make_call, name: str, events: tuple[str, ...]) -> Any:
    call = recorded(name)
    new = dataclasses.replace(
        make_call(account.id, max_duration=5), id=call.call_id, job_uuid=call.job_uuid,
        caller_uuid=call.caller_uuid, callee_uuid=call.callee_uuid, confirm=True,
        status_callback_url=NOWHERE, status_events=events)
    created = int(call.events[0].get("Event-Date-Timestamp") or 0) / 1e6
    store.accept_call(account.id, new, now=created - 0.02,
                      **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
    return call


@needs_captures
def test_a_recorded_call_reports_each_event_once_in_order(store, account, make_call):
    call = place_recorded(store, account, make_call, PRESSES, ALL)
    listener = CallEventListener(store, clock=Clock(1796396712.0))
    for _ in range(2):  # everything seen twice changes nothing the second time
        for event in call.events:
            listener.handle(event)
    row = store.calls.get(call.call_id)
    assert (row["state"], row["answered"]) == ("ended", True)
    assert webhooks(store, call.call_id) == [
        (1, "ringing", "pending", 1796396703.031657),  # the caller's CHANNEL_PROGRESS
        (2, "answered", "waiting", 1796396703.551649),  # the caller's CHANNEL_ANSWER
        (3, "bridged", "waiting", 1796396705.831659),  # the callee's CHANNEL_ANSWER
        (4, "completed", "waiting", row["ended_at"]),  # the caller's end, the last
    ]
    assert row["ended_at"] == 1796396710.851657


@needs_captures
def test_a_listener_that_took_over_sends_what_the_ends_show(store, account, make_call):
    call = place_recorded(store, account, make_call, PRESSES, ALL)
    listener = CallEventListener(store, clock=Clock(1796396712.0))
    for event in call.events:
        if event.name == "CHANNEL_HANGUP_COMPLETE":
            listener.handle(event)
    row = store.calls.get(call.call_id)
    assert [w[1:] for w in webhooks(store, call.call_id)] == [
        ("answered", "pending", row["caller_answered_at"]),
        ("bridged", "waiting", row["bridged_at"]),
        ("completed", "waiting", row["ended_at"]),
    ]


@needs_captures
def test_a_caller_who_never_pressed_1_rang_answered_and_completed(store, account, make_call):
    call = place_recorded(store, account, make_call, NEVER, ALL)
    listener = CallEventListener(store, clock=Clock(1796396730.0))
    for event in call.events:
        listener.handle(event)
    assert [w[1] for w in webhooks(store, call.call_id)] == ["ringing", "answered", "completed"]


@needs_captures
def test_a_recorded_call_that_asked_for_none_costs_what_it_did(store, account, make_call,
                                                               statements):
    call = place_recorded(store, account, make_call, PRESSES, ())
    listener = CallEventListener(store, clock=Clock(1796396712.0))
    per_event = []
    for event in call.events:
        statements.clear()
        listener.handle(event)
        per_event.append((event.name, event.get("variable_c2c_leg"),
                          [s.split()[0].upper() for s in statements
                           if re.search(r"\b(calls|progress_webhooks)\b", s)]))
    for moment in (("CHANNEL_PROGRESS", "caller"), ("CHANNEL_ANSWER", "caller"),
                   ("CHANNEL_ANSWER", "callee")):
        assert (*moment, ["UPDATE"]) in per_event
    assert store.calls.get(call.call_id)["state"] == "ended"
    assert store.progress.for_call(call.call_id) == []


# --------------------------------------------------------------------------------------------
# The dispatcher, against a local receiver (SQLite and MySQL)


def signed_body_ok(secret: str, request: ReceivedRequest) -> bool:
    """Checked the way a customer would, without c2c.callbacks.signing."""
    payload = f"{request.header('X-C2C-Timestamp')}.".encode() + request.body
    expected = "v1=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.header("X-C2C-Signature") or "")


@pytest.fixture
def receiver():
    with CallbackReceiver() as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_dispatcher(store, clock):
    def build(idle_interval: float = 0.25, **settings: Any) -> CallbackDispatcher:
        settings.setdefault("callback_allow_private", True)  # the receiver is on loopback
        settings.setdefault("callback_timeout", 1.0)
        return CallbackDispatcher(store, Config.defaults(**settings), 4, clock=clock,
                                  rng=lambda: 0.0, idle_interval=idle_interval)

    return build


def test_posts_each_event_signed_over_its_body_in_order(store, account, accept, listener,
                                                       receiver, make_dispatcher, clock):
    call_id = accept(("ringing", "answered"), url=receiver.url("/progress?site=7"))
    ring(listener, call_id, T0 + 1)
    answer(listener, call_id, T0 + 2)
    dispatcher = make_dispatcher()
    receiver.fail_next(1)

    assert dispatcher.run_once() == 1  # ringing, answered 500
    assert dispatcher.run_once() == 0  # ringing waits for its retry, answered for ringing
    clock.now = store.progress.for_call(call_id)[0]["next_attempt_at"]
    assert dispatcher.run_once() == 1  # ringing again: delivered
    assert dispatcher.run_once() == 1  # then answered

    bodies = [r["body"].encode() for r in store.progress.for_call(call_id)]
    requests = receiver.requests
    assert [(r.method, r.target, r.body) for r in requests] == [
        ("POST", "/progress?site=7", bodies[0]),
        ("POST", "/progress?site=7", bodies[0]),
        ("POST", "/progress?site=7", bodies[1]),
    ]
    assert [r.header("X-C2C-Delivery-Id") for r in requests] == [
        f"{call_id}:1", f"{call_id}:1", f"{call_id}:2"]
    for request in requests:
        assert request.header("Content-Type") == "application/json"
        assert request.header("Content-Length") == str(len(request.body))
        assert request.header("X-C2C-Call-Id") == call_id
        assert signed_body_ok(account.webhook_secret, request)
    assert [w[2] for w in webhooks(store, call_id)] == ["delivered", "delivered"]


def test_calls_are_delivered_side_by_side(store, accept, listener, receiver, make_dispatcher):
    calls = [accept(("ringing", "answered"), url=receiver.url("/p")) for _ in range(3)]
    for call_id in calls:
        ring(listener, call_id, T0 + 1)
        answer(listener, call_id, T0 + 2)
    dispatcher = make_dispatcher()
    assert [dispatcher.run_once() for _ in range(3)] == [3, 3, 0]
    firsts = [json.loads(r.body)["sequence"] for r in receiver.requests]
    assert firsts == [1, 1, 1, 2, 2, 2]


def test_a_webhook_given_up_lets_the_next_one_go(store, accept, listener, receiver,
                                                 make_dispatcher):
    # A loopback address is refused (not retried) without C2C_CALLBACK_ALLOW_PRIVATE.
    call_id = accept(("ringing", "answered"), url=receiver.url("/p"))
    ring(listener, call_id, T0 + 1)
    answer(listener, call_id, T0 + 2)
    dispatcher = make_dispatcher(callback_allow_private=False)
    assert [dispatcher.run_once() for _ in range(3)] == [1, 1, 0]
    assert [w[2] for w in webhooks(store, call_id)] == ["failed", "failed"]
    assert receiver.requests == []


def test_the_progress_loop_moves_on_to_a_calls_next_webhook_by_itself(
        store, accept, listener, receiver, make_dispatcher):
    """Settlements do not wake it; a finished webhook does, so a call's events follow one
    another without waiting for the next poll."""
    call_id = accept(url=receiver.url("/p"))
    ring(listener, call_id, T0 + 1)
    answer(listener, call_id, T0 + 2)
    bridge(listener, call_id, T0 + 3)
    dispatcher = make_dispatcher(idle_interval=60.0)
    dispatcher.start()
    try:
        deadline = time.monotonic() + 10
        while len(receiver.requests) < 3 and time.monotonic() < deadline:
            gevent.sleep(0.01)  # the receiver's threads run; the dispatcher's greenlets too
    finally:
        dispatcher.stop(timeout=2)
    assert [json.loads(r.body)["event"] for r in receiver.requests] == [
        "ringing", "answered", "bridged"]


# --------------------------------------------------------------------------------------------
# End to end: gunicorn (two workers), the simulator process, the store, a receiver


def _posts(d: Deployment, call_id: str) -> list[ReceivedRequest]:
    return [r for r in d.callbacks_for(call_id) if r.method == "POST"]


@pytest.mark.slow
def test_progress_webhooks_arrive_in_order_signed_once_per_event(tmp_path, store_url):
    with Deployment(tmp_path, store_url, workers=2) as d:
        d.receiver.fail_next(1)  # the first request (a webhook) fails, and is sent again
        code, call_id = d.place(status_callback_url=d.receiver.url("/progress?site=7"),
                                status_events="completed,bridged,answered,ringing")
        assert code == 0 and call_id
        code, default_id = d.place(status_callback_url=d.receiver.url("/progress"))
        assert code == 0 and default_id
        code, plain_id = d.place()
        assert code == 0 and plain_id

        def delivered(call: str, count: int) -> bool:
            ids = {r.header("X-C2C-Delivery-Id") for r in _posts(d, call)}
            return len(ids) == count and store_done(call)

        def store_done(call: str) -> bool:
            return all(w["status"] == "delivered" for w in d.store.progress.for_call(call))

        wait_until(lambda: delivered(call_id, 4) and delivered(default_id, 1), 40, 0.05,
                   "every progress webhook delivered")
        d.wait_callbacks(3)
        row = d.wait_settled(call_id)

        posts = _posts(d, call_id)
        sequences = [json.loads(r.body)["sequence"] for r in posts]
        # A later event is never sent before an earlier one is delivered: every try of one
        # comes before the first of the next.
        assert sequences == sorted(sequences)
        by_id: dict[str, list[ReceivedRequest]] = {}
        for request in posts:
            by_id.setdefault(request.header("X-C2C-Delivery-Id") or "", []).append(request)
        assert sorted(by_id) == [f"{call_id}:{n}" for n in (1, 2, 3, 4)]
        # Once per event; a repeat only as the same delivery, byte for byte: the first request
        # of all (ringing, seconds before any call ends) was answered 500 and sent again.
        assert d.receiver.requests[0] is posts[0]
        assert [len(by_id[f"{call_id}:{n}"]) for n in (1, 2, 3, 4)] == [2, 1, 1, 1]
        assert posts[0].body == posts[1].body
        assert [w["attempts"] for w in d.store.progress.for_call(call_id)] == [2, 1, 1, 1]
        bodies = [json.loads(tries[0].body) for _, tries in sorted(by_id.items())]
        assert [(b["call_id"], b["event"], b["sequence"]) for b in bodies] == [
            (call_id, "ringing", 1), (call_id, "answered", 2), (call_id, "bridged", 3),
            (call_id, "completed", 4)]
        assert [b["at"] for b in bodies] == sorted(b["at"] for b in bodies)
        assert bodies[3]["at"] == iso_utc(row["ended_at"])
        for request in posts:
            assert request.target == "/progress?site=7"
            assert request.header("Content-Type") == "application/json"
            assert request.header("X-C2C-Call-Id") == call_id
            assert signed_body_ok(d.webhook_secret, request)

        # The default is completed alone; a call that asked for nothing gets no POST.
        [done] = {r.header("X-C2C-Delivery-Id"): r for r in _posts(d, default_id)}.values()
        assert json.loads(done.body)["event"] == "completed"
        assert _posts(d, plain_id) == []

        # The final callback is the GET it always was.
        wait_until(lambda: all(any(r.method == "GET" for r in d.callbacks_for(c))
                               for c in (call_id, default_id, plain_id)), 30, 0.05,
                   "every final callback")
        [final] = {r.target: r for r in d.callbacks_for(call_id) if r.method == "GET"}.values()
        assert final.path == "/cb"
        assert final.query == [
            ("order", "42"), ("caller_phone_number", "2125550123"),
            ("callee_phone_number", "2125550199"), ("minutes", "1"), ("secret", "s3cret"),
            ("answered", "1"), ("reason", "")]
        assert final.body == b""


# --------------------------------------------------------------------------------------------
# The OpenAPI document says what the code does


def test_the_document_describes_the_parameters_and_the_webhook():
    from c2c.api.openapi import load_document

    document = load_document()
    operation = document["paths"]["/api/clicktocall/"]["get"]
    query = {p["name"]: p for p in operation["parameters"] if "name" in p}
    form = document["components"]["schemas"]["ClickToCallForm"]["properties"]
    for name in ("status_callback_url", "status_events"):
        assert query[name]["in"] == "query" and not query[name]["required"]
        assert form[name]["type"] == "string"
    pattern = re.compile(query["status_events"]["schema"]["pattern"])
    assert all(pattern.fullmatch(raw) for raw in ("", "completed", ",".join(reversed(ALL))))
    schema = document["components"]["schemas"]["ProgressWebhook"]
    body = json.loads(progress_body("c", "ringing", T0, 1))
    assert list(schema["properties"]) == list(body) == schema["required"]
    assert schema["properties"]["event"]["enum"] == [e.value for e in ProgressEvent]
    webhook = document["webhooks"]["callProgress"]["post"]
    assert webhook["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ProgressWebhook")
    assert {p["name"] for p in webhook["parameters"]} == {
        "X-C2C-Call-Id", "X-C2C-Delivery-Id", "X-C2C-Timestamp", "X-C2C-Signature"}


def test_the_guides_example_signature_is_right():
    from pathlib import Path

    guide = (Path(__file__).resolve().parent.parent / "docs" / "callbacks.md").read_text()
    section = guide[guide.index("## Progress webhooks"):]
    body = re.search(r"^(\{\"call_id\".*\})$", section, re.MULTILINE)
    signature = re.findall(r"X-C2C-Signature: (v1=[0-9a-f]{64})", section)
    assert body is not None and len(signature) == 1
    payload = b"1700000000." + body.group(1).encode()
    expected = hmac.new(b"test-secret", payload, hashlib.sha256).hexdigest()
    assert signature[0] == f"v1={expected}"
    assert body.group(1) == progress_body("3f1c9a52-8d7e-4c2b-9d0e-5b1f2a6c7e90", "answered",
                                          1700000000.25, 2)

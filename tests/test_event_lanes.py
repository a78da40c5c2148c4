"""Events of one call stay in order on one lane; different calls are applied concurrently."""

from __future__ import annotations

import logging
import zlib

import gevent
import gevent.event

from c2c.calls.lanes import EventLanes, lane_key
from c2c.errors import StoreError
from c2c.esl.protocol import Event


def _event(call_id: str, seq: int) -> Event:
    return Event([("Event-Name", "CHANNEL_ANSWER"), ("Event-Sequence", str(seq)),
                  ("variable_c2c_call_id", call_id)])


def test_lane_key_is_the_call_id_or_the_job_uuid():
    assert lane_key(_event("abc", 1)) == "abc"
    assert lane_key(Event([("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", "j1")])) == "j1"


def test_one_calls_events_keep_their_order_while_another_call_is_blocked():
    release = gevent.event.Event()
    applied: list[tuple[str, int]] = []

    def handle(event: Event) -> None:
        call = event.get("variable_c2c_call_id")
        if call == "slow":
            release.wait(5)
        applied.append((call, int(event.get("Event-Sequence"))))

    lanes = EventLanes(handle, lanes=8)
    # A call on another lane than "slow" (crc32 decides the lane).
    fast = next(f"call-{i}" for i in range(100)
                if zlib.crc32(f"call-{i}".encode()) % 8 != zlib.crc32(b"slow") % 8)
    try:
        lanes.put(_event("slow", 1))
        for seq in range(1, 6):
            lanes.put(_event(fast, seq))
        with gevent.Timeout(5):
            while len(applied) < 5:
                gevent.sleep(0.01)
        assert applied == [(fast, seq) for seq in range(1, 6)]  # not held up by "slow"
        release.set()
        with gevent.Timeout(5):
            while len(applied) < 6:
                gevent.sleep(0.01)
        assert applied[-1] == ("slow", 1)
    finally:
        lanes.stop()
    assert lanes.pending() == 0


def _other_lane(name: str, lanes: int = 8) -> str:
    return next(f"call-{i}" for i in range(100)
                if zlib.crc32(f"call-{i}".encode()) % lanes != zlib.crc32(name.encode()) % lanes)


def _until(predicate, timeout: float = 5.0) -> None:
    with gevent.Timeout(timeout):
        while not predicate():
            gevent.sleep(0.005)


def test_events_the_store_refuses_are_held_in_order_and_applied_when_it_is_back(caplog):
    caplog.set_level(logging.INFO, logger="c2c")
    store_down = True
    attempts: list[tuple[str, int]] = []
    applied: list[tuple[str, int]] = []

    def handle(event: Event) -> None:
        key = (event.get("variable_c2c_call_id"), int(event.get("Event-Sequence")))
        attempts.append(key)
        if store_down and key[0] == "down":
            raise StoreError("database error: (2003) Can't connect")
        applied.append(key)

    other = _other_lane("down")
    lanes = EventLanes(handle, retry_first=0.01, retry_max=0.02)
    try:
        for seq in (1, 2, 3):
            lanes.put(_event("down", seq))
        lanes.put(_event(other, 1))
        _until(lambda: attempts.count(("down", 1)) >= 3)  # tried again and again
        assert applied == [(other, 1)]  # another call's lane goes on
        assert lanes.held and lanes.pending() == 3
        assert ("down", 2) not in attempts  # its call's later events wait their turn
        store_down = False
        _until(lambda: len(applied) == 4)
        assert applied[1:] == [("down", 1), ("down", 2), ("down", 3)]
        assert not lanes.held and lanes.pending() == 0
    finally:
        lanes.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert any("CHANNEL_ANSWER not applied, the store is unavailable" in m for m in messages)
    assert any("call down: CHANNEL_ANSWER applied after" in m for m in messages)


def test_other_errors_are_logged_and_the_event_dropped(caplog):
    applied: list[int] = []

    def handle(event: Event) -> None:
        seq = int(event.get("Event-Sequence"))
        if seq == 1:
            raise ValueError("a bug")
        applied.append(seq)

    lanes = EventLanes(handle, lanes=1)
    try:
        lanes.put(_event("x", 1))
        lanes.put(_event("x", 2))
        _until(lambda: applied == [2])
    finally:
        lanes.stop()
    assert any(r.getMessage() == "applying CHANNEL_ANSWER failed" for r in caplog.records)


def test_held_events_are_bounded_and_an_overflow_asks_for_a_reconciliation(caplog):
    overflows: list[bool] = []

    def handle(event: Event) -> None:
        raise StoreError("down")

    lanes = EventLanes(handle, lanes=2, max_held=3, on_overflow=lambda: overflows.append(True),
                       retry_first=0.01, retry_max=0.01)
    try:
        for seq in range(1, 6):
            lanes.put(_event(f"call-{seq}", seq))
        assert lanes.pending() == 3 and lanes.dropped == 2 and overflows == [True, True]
    finally:
        lanes.stop()
    assert any("dropped" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)

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


class _StagedGroup:
    """A stand-in for the store's transaction: what the handler applies inside a group is kept
    only if the group ends without error (as a rolled-back transaction leaves nothing)."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, int]] = []
        self.groups: list[int] = []  # events per committed group
        self._staged: list[tuple[str, int]] | None = None

    def __call__(self):
        import contextlib

        @contextlib.contextmanager
        def group():
            self._staged = []
            try:
                yield
                self.applied.extend(self._staged)
                self.groups.append(len(self._staged))
            finally:
                self._staged = None
        return group()

    def record(self, event: Event) -> None:
        item = (event.get("variable_c2c_call_id"), int(event.get("Event-Sequence")))
        (self.applied if self._staged is None else self._staged).append(item)


def _wait_for(predicate, timeout=5.0):
    with gevent.Timeout(timeout):
        while not predicate():
            gevent.sleep(0.005)


def test_grouped_lanes_apply_a_burst_in_few_transactions_each_call_in_order():
    txn = _StagedGroup()
    lanes = EventLanes(txn.record, lanes=2, group=txn, gather=0.01)
    calls = [f"call-{n}" for n in range(10)]
    try:
        for seq in range(1, 6):
            for call in calls:
                lanes.put(_event(call, seq))
        assert lanes.pending() == 50
        _wait_for(lambda: len(txn.applied) == 50)
        assert lanes.pending() == 0
    finally:
        lanes.stop()
    for call in calls:
        assert [seq for c, seq in txn.applied if c == call] == [1, 2, 3, 4, 5]
    assert sum(txn.groups) == 50
    assert len(txn.groups) <= 4  # a burst on two lanes: a group or two each, not 50


def test_a_failed_group_is_applied_one_by_one_nothing_lost_or_doubled(caplog):
    txn = _StagedGroup()
    failed = []

    def handle(event: Event) -> None:
        # The first time inside a group, the fourth event fails (the store, or a bug).
        if txn._staged is not None and len(txn._staged) == 3 and not failed:
            failed.append(True)
            raise StoreError("lost the connection")
        txn.record(event)

    lanes = EventLanes(handle, lanes=1, group=txn, gather=0.01, retry_first=0.01)
    try:
        with caplog.at_level(logging.INFO, logger="c2c.calls.lanes"):
            for seq in range(1, 9):
                lanes.put(_event("one", seq))
            _wait_for(lambda: len(txn.applied) == 8)
    finally:
        lanes.stop()
    assert failed
    assert txn.applied == [("one", seq) for seq in range(1, 9)]
    assert "applying them one by one" in caplog.text


def test_a_lone_event_is_applied_without_a_group():
    txn = _StagedGroup()
    lanes = EventLanes(txn.record, lanes=1, group=txn, gather=0.0)
    try:
        lanes.put(_event("one", 1))
        _wait_for(lambda: len(txn.applied) == 1)
    finally:
        lanes.stop()
    assert txn.groups == []  # its own transaction, as without grouping

"""Events of one call stay in order on one lane; different calls are applied concurrently."""

from __future__ import annotations

import zlib

import gevent
import gevent.event

from c2c.calls.lanes import EventLanes, lane_key
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

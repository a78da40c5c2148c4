"""Apply a switch's events on several lanes at once, each call's events in order on one lane.

Handling an event is a database round trip (or three); one at a time, the listener would keep
up with only a few dozen calls a second. Events of different calls are independent (every write
is idempotent and settle happens once), so they run concurrently; the events of one call keep
their order because they always land on the same lane.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable

import gevent
import gevent.queue

from c2c.calls.events import CALL_ID_VARIABLE
from c2c.esl.protocol import Event

log = logging.getLogger(__name__)

LANES = 8  # under the per-worker database pool, which accepts and callbacks share


def lane_key(event: Event) -> str:
    """The call an event belongs to (its Job-UUID for a BACKGROUND_JOB, which has no call id)."""
    return event.get(f"variable_{CALL_ID_VARIABLE}") or event.get("Job-UUID") or ""


class EventLanes:
    def __init__(self, handle: Callable[[Event], None], lanes: int = LANES) -> None:
        self._handle = handle
        self._queues: list[gevent.queue.Queue] = [gevent.queue.Queue() for _ in range(lanes)]
        self._workers = [gevent.spawn(self._drain, queue) for queue in self._queues]

    def put(self, event: Event) -> None:
        index = zlib.crc32(lane_key(event).encode()) % len(self._queues)
        self._queues[index].put(event)

    def pending(self) -> int:
        return sum(queue.qsize() for queue in self._queues)

    def stop(self) -> None:
        dropped = self.pending()
        gevent.killall(self._workers, block=True, timeout=5)
        if dropped:
            log.warning("stopped with %d event(s) not yet applied", dropped)

    def _drain(self, queue: gevent.queue.Queue) -> None:
        while True:
            event = queue.get()
            try:
                self._handle(event)
            except Exception:
                log.exception("applying %s failed", event.name)

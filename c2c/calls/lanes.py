"""Apply a switch's events on several lanes at once, each call's events in order on one lane.

Handling an event is a database round trip (or three); one at a time, the listener would keep
up with only a few dozen calls a second. Events of different calls are independent (every write
is idempotent and settle happens once), so they run concurrently; the events of one call keep
their order because they always land on the same lane.

An event that cannot be applied because the store is unreachable (StoreError) is not dropped:
its lane tries it again, with backoff, until the store answers, and the events behind it wait
their turn (so each call's stay in order). They are facts from the switch, and only this worker
heard them: nothing else would bring them back but a CDR. The lanes outlive a lost lease (a
store outage is also what loses it): applying an event twice changes nothing, so a held event
applied after another worker took over is harmless. Memory is bounded: past ``max_held`` events
waiting, new ones are dropped (logged) and ``on_overflow`` is told, so that the owner reconciles
once the store is back.

Given ``group`` (Store.grouped), a lane applies what gathered in its queue in one transaction:
after its first event it waits ``gather`` seconds for more, then applies up to ``max_group`` in
order and commits once. Under load that is one COMMIT (and one connection checkout) for dozens
of events instead of one each; idle, an event waits ``gather`` seconds more. A group that fails
is rolled back whole and its events applied one by one as above, so a group never loses or
reorders an event.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import gevent
import gevent.queue

from c2c.calls.events import CALL_ID_VARIABLE
from c2c.errors import StoreError
from c2c.esl.protocol import Event

log = logging.getLogger(__name__)

LANES = 8  # under the per-worker database pool, which accepts and callbacks share
# Events waiting while the store is down. A HANGUP_COMPLETE is a few kB: ~100 MB at worst.
MAX_HELD = 20_000
RETRY_FIRST = 0.2  # seconds before an event refused by the store is tried again
RETRY_MAX = 5.0  # the backoff doubles up to this
LOG_EVERY = 30.0  # seconds between warnings while an event is still held
# Grouped: fewer lanes, so that each gathers more (a group's events are one transaction).
GROUPED_LANES = 4
GATHER = 0.02  # seconds a lane waits after its first event for others to join its group
MAX_GROUP = 100  # events per transaction (its locks held that much longer)


def lane_key(event: Event) -> str:
    """The call an event belongs to (its Job-UUID for a BACKGROUND_JOB, which has no call id)."""
    return event.get(f"variable_{CALL_ID_VARIABLE}") or event.get("Job-UUID") or ""


def retry_delay(failures: int, first: float = RETRY_FIRST, most: float = RETRY_MAX) -> float:
    """Seconds before the next try after ``failures`` failed ones (1, 2, ...): doubling."""
    return min(most, first * 2 ** max(0, failures - 1))


class EventLanes:
    def __init__(
        self,
        handle: Callable[[Event], None],
        lanes: int = LANES,
        *,
        max_held: int = MAX_HELD,
        on_overflow: Callable[[], None] | None = None,
        retry_first: float = RETRY_FIRST,
        retry_max: float = RETRY_MAX,
        group: Callable[[], AbstractContextManager[None]] | None = None,
        gather: float = GATHER,
        max_group: int = MAX_GROUP,
    ) -> None:
        """``group``: a transaction the store calls made inside it share (Store.grouped); with
        it, each lane applies the events gathered in its queue together (see above)."""
        self._handle = handle
        self._group = group
        self._gather = gather
        self._max_group = max(1, max_group)
        self._in_hand = 0  # taken from a queue into a group, not yet applied
        self._max_held = max_held
        self._on_overflow = on_overflow
        self._retry_first = retry_first
        self._retry_max = retry_max
        self._queues: list[gevent.queue.Queue] = [gevent.queue.Queue() for _ in range(lanes)]
        self._retrying = 0  # lanes whose head event the store refused
        self.dropped = 0  # events refused for want of room, in this lanes' life
        self._workers = [gevent.spawn(self._drain, queue) for queue in self._queues]

    def put(self, event: Event) -> None:
        if self.pending() >= self._max_held:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("%d event(s) waiting for the store: %s of call %s dropped (%d so "
                          "far); a reconciliation will follow", self._max_held, event.name,
                          lane_key(event) or "?", self.dropped)
            if self._on_overflow is not None:
                self._on_overflow()
            return
        index = zlib.crc32(lane_key(event).encode()) % len(self._queues)
        self._queues[index].put(event)

    def pending(self) -> int:
        """Events not yet applied: queued, and those being tried again."""
        return sum(queue.qsize() for queue in self._queues) + self._retrying + self._in_hand

    @property
    def held(self) -> bool:
        """Whether some lane is waiting for the store to take an event."""
        return self._retrying > 0

    def stop(self) -> None:
        dropped = self.pending()
        gevent.killall(self._workers, block=True, timeout=5)
        if dropped:
            log.warning("stopped with %d event(s) not yet applied", dropped)

    def _drain(self, queue: gevent.queue.Queue) -> None:
        while True:
            first = queue.get()
            if self._group is None:
                self._apply(first)
                continue
            if self._gather > 0:
                self._in_hand += 1
                try:
                    gevent.sleep(self._gather)
                finally:
                    self._in_hand -= 1
            events = [first]
            while len(events) < self._max_group:
                try:
                    events.append(queue.get_nowait())
                except gevent.queue.Empty:
                    break
            self._apply_group(events)

    def _apply_group(self, events: list[Event]) -> None:
        """Apply ``events`` in one transaction; if that fails, one by one (each retried)."""
        assert self._group is not None
        if len(events) == 1:
            self._apply(events[0])
            return
        self._in_hand += len(events)
        try:
            with self._group():
                for event in events:
                    self._handle(event)
            return
        except StoreError as exc:
            log.info("a group of %d event(s) not applied (%s); applying them one by one",
                     len(events), exc)
        except Exception:
            log.exception("a group of %d event(s) failed; applying them one by one",
                          len(events))
        finally:
            self._in_hand -= len(events)
        for event in events:
            self._apply(event)

    def _apply(self, event: Event) -> None:
        """Apply one event; while the store refuses it, again and again (the lane waits)."""
        failures = 0
        first_failure = last_warning = 0.0
        applied = False
        try:
            while True:
                try:
                    self._handle(event)
                    applied = True
                    break
                except StoreError as exc:
                    failures += 1
                    now = time.monotonic()
                    if failures == 1:
                        self._retrying += 1
                        first_failure = last_warning = now
                        log.warning("call %s: %s not applied, the store is unavailable (%s); "
                                    "holding it, retrying", lane_key(event) or "?", event.name,
                                    exc)
                    elif now - last_warning >= LOG_EVERY:
                        last_warning = now
                        log.warning("call %s: %s still held after %d attempt(s) in %.0f s; "
                                    "%d event(s) waiting", lane_key(event) or "?", event.name,
                                    failures, now - first_failure, self.pending())
                    gevent.sleep(retry_delay(failures, self._retry_first, self._retry_max))
                except Exception:
                    log.exception("applying %s failed", event.name)
                    break
        finally:
            if failures:
                self._retrying -= 1
        if failures and applied:
            log.info("call %s: %s applied after %d failed attempt(s), %.1f s late",
                     lane_key(event) or "?", event.name, failures,
                     time.monotonic() - first_failure)

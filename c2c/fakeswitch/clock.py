"""Scaled virtual time and timers for the simulator: one scheduler greenlet for every call.

Every delay the simulator waits (ringing, answering, timeouts, sched_hangup) is a timer on this
clock. With ``time_scale`` X a delay of d seconds takes d*X real seconds; with 0 it takes none at
all and timers fire in order of their virtual due time, so a 60 s ring timeout still comes after
a 1 s answer. Event timestamps, billsec and the like are read from the virtual time, so they show
the unscaled durations (and run ahead of the wall clock when X < 1).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

log = logging.getLogger(__name__)


class Timer:
    __slots__ = ("due", "callback", "args", "cancelled")

    def __init__(self, due: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.due = due
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Virtual epoch time plus a heap of timers run by one greenlet."""

    # Let sessions write between bursts of instant (time scale 0) timers.
    _YIELD_EVERY = 200

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale < 0:
            raise ValueError("time scale must be >= 0")
        self.time_scale = time_scale
        self._epoch0 = time.time()
        self._mono0 = time.monotonic()
        self._offset = 0.0  # time scale 0: how far virtual time has jumped ahead
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._wake = gevent.event.Event()
        self._runner: gevent.Greenlet | None = None

    def now(self) -> float:
        """Virtual time, in epoch seconds."""
        if self.time_scale > 0:
            return self._epoch0 + (time.monotonic() - self._mono0) / self.time_scale
        return time.time() + self._offset

    def now_us(self) -> int:
        return int(self.now() * 1_000_000)

    def real_seconds(self, virtual: float) -> float:
        return virtual * self.time_scale

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(self.now() + max(0.0, delay), callback, args)
        entry = (timer.due, next(self._order), timer)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._wake.set()
        return timer

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.call_later(0.0, callback, *args)

    @property
    def pending(self) -> int:
        return sum(1 for _, _, timer in self._heap if not timer.cancelled)

    def start(self) -> None:
        if self._runner is None or self._runner.dead:
            self._runner = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._runner is not None:
            self._runner.kill(block=True, timeout=5)
            self._runner = None

    def clear(self) -> None:
        """Forget every pending timer."""
        for _, _, timer in self._heap:
            timer.cancel()
        self._heap.clear()

    def _run(self) -> None:
        fired = 0
        while True:
            if not self._heap:
                self._wake.clear()
                self._wake.wait()
                continue
            due, _, timer = self._heap[0]
            if timer.cancelled:
                heapq.heappop(self._heap)
                continue
            lag = due - self.now()
            if lag > 0:
                if self.time_scale > 0:
                    self._wake.clear()
                    self._wake.wait(timeout=lag * self.time_scale)
                    continue
                self._offset += lag  # time scale 0: jump to the timer
            heapq.heappop(self._heap)
            try:
                timer.callback(*timer.args)
            except Exception:
                log.exception("timer callback %r failed", timer.callback)
            fired += 1
            if fired % self._YIELD_EVERY == 0:
                gevent.sleep(0)

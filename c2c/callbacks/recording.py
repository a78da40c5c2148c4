"""Recording delivery tries in groups: the outcomes of sends that end within a few milliseconds of
each other are written in one transaction (Store.grouped) instead of one each, the deliveries
among them in two statements for the whole group (Callbacks.mark_delivered_many).

Each sender still waits until its outcome is committed, so a claim is never released before its
try is recorded and the dispatcher's pool bounds the tries in flight as before. If a group fails,
every outcome in it is written again on its own by its sender (each write is idempotent: it
finishes only a row still pending), so a failed group loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Generic, TypeVar

import gevent
import gevent.event

log = logging.getLogger(__name__)

GATHER = 0.01  # seconds the first outcome waits for others to join its group
MAX_GROUP = 100  # outcomes per transaction

T = TypeVar("T")


class GroupRecorder(Generic[T]):
    def __init__(self, grouped: Callable[[], AbstractContextManager[None]],
                 write_group: Callable[[list[T]], None], write_one: Callable[[T], None], *,
                 gather: float = GATHER, max_group: int = MAX_GROUP) -> None:
        """``write_group``: writes several outcomes (inside the group's transaction);
        ``write_one``: one outcome in its own transaction (alone, or after a failed group)."""
        self._grouped = grouped
        self._write_group = write_group
        self._write_one = write_one
        self._gather = gather
        self._max_group = max(1, max_group)
        self._waiting: list[tuple[T, gevent.event.AsyncResult]] = []
        self._ready = gevent.event.Event()
        self._loop: gevent.Greenlet | None = None

    def record(self, item: T) -> None:
        """Write ``item`` with the others gathered meanwhile; returns once it is committed.
        Should its group fail, it is written on its own (whose errors are raised here)."""
        done = gevent.event.AsyncResult()
        self._waiting.append((item, done))
        self._ready.set()
        if self._loop is None or self._loop.dead:
            self._loop = gevent.spawn(self._run)
        if not done.get():
            self._write_one(item)

    def stop(self) -> None:
        """Stop grouping; those waiting write on their own."""
        if self._loop is not None:
            self._loop.kill(block=True, timeout=5)
            self._loop = None
        waiting, self._waiting = self._waiting, []
        for _, done in waiting:
            done.set(False)

    def _run(self) -> None:
        while True:
            self._ready.wait()
            if self._gather > 0:
                gevent.sleep(self._gather)
            group = self._waiting[: self._max_group]
            del self._waiting[: len(group)]
            if not self._waiting:
                self._ready.clear()
            if not group:
                continue
            if len(group) == 1:  # alone: its own transaction, as without grouping
                group[0][1].set(False)
                continue
            try:
                with self._grouped():
                    self._write_group([item for item, _ in group])
            except Exception as exc:
                log.info("recording %d outcome(s) together failed (%s); each is recorded on "
                         "its own", len(group), exc)
                for _, done in group:
                    done.set(False)
            else:
                for _, done in group:
                    done.set(True)

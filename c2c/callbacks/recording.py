"""Recording delivery tries in groups: the outcomes of sends that end within a few milliseconds of
each other are written in one transaction (Store.grouped) instead of one each.

Each sender still waits until its outcome is committed, so a claim is never released before its
try is recorded and the dispatcher's pool bounds the tries in flight as before. If a group fails,
every outcome in it is written again on its own by its sender (each write is idempotent: it
finishes only a row still pending), so a failed group loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager

import gevent
import gevent.event

log = logging.getLogger(__name__)

GATHER = 0.01  # seconds the first outcome waits for others to join its group
MAX_GROUP = 100  # outcomes per transaction

Write = Callable[[], None]


class GroupRecorder:
    def __init__(self, grouped: Callable[[], AbstractContextManager[None]],
                 gather: float = GATHER, max_group: int = MAX_GROUP) -> None:
        self._grouped = grouped
        self._gather = gather
        self._max_group = max(1, max_group)
        self._waiting: list[tuple[Write, gevent.event.AsyncResult]] = []
        self._ready = gevent.event.Event()
        self._loop: gevent.Greenlet | None = None

    def record(self, write: Write) -> None:
        """Run ``write`` (store calls) in a transaction with the others gathered meanwhile;
        returns once it is committed. Should the group fail, ``write`` runs again on its own
        (its errors are raised here)."""
        done = gevent.event.AsyncResult()
        self._waiting.append((write, done))
        self._ready.set()
        if self._loop is None or self._loop.dead:
            self._loop = gevent.spawn(self._run)
        if not done.get():
            write()

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
                    for write, _ in group:
                        write()
            except Exception as exc:
                log.info("recording %d callback outcome(s) together failed (%s); each is "
                         "recorded on its own", len(group), exc)
                for _, done in group:
                    done.set(False)
            else:
                for _, done in group:
                    done.set(True)

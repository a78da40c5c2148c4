"""Settling calls in groups: the event listener hands over each call whose legs are all gone, and
one greenlet settles whatever has gathered meanwhile in one transaction.

Settling locks the account's row, and on a busy account that row is what every accept and every
settle waits for: settled one by one, the calls of one account were held to the few hundred a
second that its row lock allows (bench/). In a group, the row is locked once per transaction,
however many calls it settles. Under light load a group is one call and nothing waits.

Nothing is lost if a group fails or the worker dies with calls handed over: their legs' ends are
already recorded, so the owner's sweep (every second) finds them ready and settles them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import gevent
import gevent.event

from c2c.errors import StoreError

log = logging.getLogger(__name__)

MAX_GROUP = 200  # calls per transaction (its statements stay well under max_allowed_packet)
RETRY_PAUSE = 1.0  # seconds before a failed group is tried again
ATTEMPTS = 3  # then the sweep settles what is left


class SettleBatcher:
    def __init__(self, settle_group: Callable[[list[str]], None],
                 max_group: int = MAX_GROUP) -> None:
        self._settle_group = settle_group
        self._max_group = max_group
        self._pending: dict[str, None] = {}  # insertion-ordered set of call ids
        self._ready = gevent.event.Event()
        self._greenlet: gevent.Greenlet | None = None

    def submit(self, call_id: str) -> None:
        self._pending[call_id] = None
        self._ready.set()
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)

    def pending(self) -> int:
        return len(self._pending)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=5)
            self._greenlet = None
        if self._pending:
            log.info("%d call(s) handed over but not settled; the sweep will", len(self._pending))
            self._pending.clear()

    def _run(self) -> None:
        while True:
            self._ready.wait()
            group = list(self._pending)[: self._max_group]
            for call_id in group:
                del self._pending[call_id]
            if not self._pending:
                self._ready.clear()
            self._settle(group)

    def _settle(self, group: list[str]) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._settle_group(group)
                return
            except StoreError as exc:
                log.warning("settling %d call(s) failed (attempt %d): %s", len(group), attempt,
                            exc)
            except Exception:
                log.exception("settling %d call(s) failed unexpectedly", len(group))
                return
            gevent.sleep(RETRY_PAUSE)
        log.warning("%d call(s) left for the sweep to settle", len(group))

"""Accepts of one account, in this worker, go to the store together: one transaction at a time
per account, carrying every accept that arrived while the one before it ran.

Every accept ends by locking its account's row, and a busy account's row is what all its accepts
and settles queue for. Sent one by one, a burst of accepts for one account queued at MariaDB,
each waiter holding a pooled connection and its flood rows' locks, while the holder's last round
trips waited behind every other greenlet of the worker: the row was held many times longer than
its two round trips, and accepts of one account topped out near a hundred a second (bench/).
Grouped, the row is locked once per transaction however many calls it carries, and under light
load a group is one call, sent at once.

The greenlet of the first request in the queue runs the group (its own call among them), then
hands the next group to the first request still waiting, so no request serves others for long.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence

import gevent
import gevent.event

from c2c.errors import RequestRejected, StoreError
from c2c.store import AcceptedCall, NewCall

log = logging.getLogger(__name__)

MAX_GROUP = 50  # accepts per transaction
WAIT_SECONDS = 60.0  # a request gives up (answering 11) if its group has not run by then

AcceptMany = Callable[[int, Sequence[tuple[NewCall, float]]], list[AcceptedCall | RequestRejected]]


class _Waiting:
    __slots__ = ("call", "now", "result", "lead")

    def __init__(self, call: NewCall, now: float) -> None:
        self.call = call
        self.now = now
        self.result: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self.lead = gevent.event.Event()  # set: run the next group


class AcceptGroups:
    def __init__(self, accept_many: AcceptMany, max_group: int = MAX_GROUP) -> None:
        self._accept_many = accept_many
        self._max_group = max_group
        self._queues: dict[int, deque[_Waiting]] = {}

    def accept(self, account_id: int, call: NewCall, now: float) -> AcceptedCall:
        """As Store.accept_call: the accepted call, or RequestRejected / StoreError raised."""
        waiting = _Waiting(call, now)
        queue = self._queues.get(account_id)
        if queue is None:
            queue = self._queues[account_id] = deque()
            waiting.lead.set()  # nobody runs this account's accepts: we do
        queue.append(waiting)
        deadline = gevent.Timeout(WAIT_SECONDS, StoreError("accept not run within its time"))
        with deadline:
            while not waiting.result.ready():
                if waiting.lead.is_set():
                    waiting.lead.clear()
                    self._run_group(account_id, queue)
                else:
                    gevent.wait([waiting.result, waiting.lead], count=1)
        result = waiting.result.get()
        if isinstance(result, RequestRejected):
            raise result
        return result

    def _run_group(self, account_id: int, queue: deque[_Waiting]) -> None:
        group = [queue.popleft() for _ in range(min(self._max_group, len(queue)))]
        try:
            results = self._accept_many(account_id, [(w.call, w.now) for w in group])
            for waiting, result in zip(group, results, strict=True):
                waiting.result.set(result)
        except BaseException as exc:  # every waiter learns of it; then it goes on up
            for waiting in group:
                if not waiting.result.ready():
                    waiting.result.set_exception(
                        exc if isinstance(exc, Exception) else StoreError("accept interrupted"))
            if not isinstance(exc, Exception):
                raise
        finally:
            if queue:
                queue[0].lead.set()
            elif self._queues.get(account_id) is queue:
                del self._queues[account_id]

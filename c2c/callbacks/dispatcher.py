"""The callback dispatcher: greenlets that drain the two outboxes (DESIGN.md section 3): the final
callbacks (store.callbacks, a signed GET) and the progress webhooks (store.progress, a signed POST).

Per outbox, one claimer loop per worker claims due rows (atomically, for a lease: claim_due) and
hands each to a pool of sender greenlets. Every try ends in exactly one store call: delivered,
rescheduled with backoff, or failed (past the horizon, or a URL that can never be sent). A worker
killed mid-send leaves its claims to expire; the rows are then claimed again: delivery is at least
once, and the receiver de-duplicates on X-C2C-Call-Id (a progress webhook: X-C2C-Delivery-Id).

Idle, each loop polls every ``idle_interval`` seconds (one indexed query); ``wake()`` lets
settlement nudge the callbacks' loop so a fresh callback leaves within milliseconds. The event
listener's settlements do better: they write their callbacks already claimed and hand them over
(``take_claimed``), so those are sent without a claim's round trips at all. The progress
loop is not woken by settlements (most calls ask for no webhook: that would cost them a query
each); it wakes itself when a webhook is finished, since the call's next one is then due.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gevent
import gevent.event
import gevent.pool

from c2c.callbacks.backoff import next_delay, should_give_up
from c2c.callbacks.recording import GroupRecorder
from c2c.callbacks.sender import SendResult, redact_url, send_callback, send_progress
from c2c.config import Config
from c2c.errors import StoreError

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 10
DEFAULT_IDLE_INTERVAL = 0.25  # seconds between polls when nothing is due and no wake() came
STORE_ERROR_PAUSE = 2.0  # seconds to wait after the store failed, before claiming again
CLAIM_MARGIN_SECONDS = 30.0  # a claim outlives the longest send by this much
# Calls whose callbacks were handed over, remembered until their settlement's wake() (at most).
MAX_HANDED_CALLS = 10_000
# Handed-over callbacks wait for a free sender, and one that waits past the claim's margin is
# left to expire (up to the lease, over a minute, late). So a burst (a hupall, a switch's
# calls settled at once) is not handed over beyond what the senders get through promptly:
# past this many waiting per sender, or once the oldest has waited this long, settlements write
# their callbacks unclaimed and the claim loop sends them in due order.
HANDOVER_BACKLOG_PER_SENDER = 50
HANDOVER_MAX_WAIT_SECONDS = 2.0


class Job(Protocol):
    """A claimed callback, as store.callbacks.claim_due returns it (CallbackJob)."""

    id: int
    call_id: str
    url: str
    attempts: int  # tries made before this one
    created_at: float
    webhook_secret: str


def signing_secrets(job: Any) -> tuple[str, ...]:
    """The secrets a delivery is signed with: the account's, and during a rotation's grace
    period the one it replaced (a job without that field has only the one)."""
    previous = getattr(job, "previous_webhook_secret", None)
    return (job.webhook_secret, previous) if previous else (job.webhook_secret,)


class Outbox(Protocol):
    """The store methods the dispatcher uses (c2c.store.callbacks.Callbacks)."""

    def claim_due(self, now: float, limit: int, lease_seconds: float,
                  look_first: bool = True) -> list[Any]: ...

    def mark_delivered(self, callback_id: int, *, at: float, http_status: int | None) -> bool: ...

    def reschedule(
        self,
        callback_id: int,
        *,
        at: float,
        next_attempt_at: float,
        error: str,
        http_status: int | None = None,
    ) -> bool: ...

    def mark_failed(
        self, callback_id: int, *, at: float, error: str, http_status: int | None = None
    ) -> bool: ...


Sender = Callable[..., SendResult]
_Outcome = tuple[Any, SendResult, float]  # a claimed row, its try's result, when it ended


@dataclass
class _Lane:
    """One outbox, how its rows are sent, and its claimer loop's state."""

    outbox: Outbox
    send: Callable[[Any], SendResult]  # one try of a claimed row
    describe: Callable[[Any], str]  # the row, for log lines
    on_attempt: Callable[[str], None]
    pool: gevent.pool.Pool
    wake: gevent.event.Event
    # Finishing a row makes another due at once (the call's next progress webhook): look again.
    chained: bool = False
    loop: gevent.Greenlet | None = None
    # Rows claimed by the transaction that wrote them, with when they were handed (monotonic).
    handed: deque[tuple[float, Any]] = field(default_factory=deque)
    due: bool = False  # woken: rows were written due, unclaimed
    recorder: GroupRecorder[_Outcome] | None = None


class CallbackDispatcher:
    def __init__(
        self,
        store: Any,
        config: Config,
        concurrency: int = DEFAULT_CONCURRENCY,
        *,
        idle_interval: float = DEFAULT_IDLE_INTERVAL,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        send: Sender = send_callback,
        post: Sender = send_progress,
        on_attempt: Callable[[str], None] | None = None,
        on_progress_attempt: Callable[[str], None] | None = None,
    ) -> None:
        """``concurrency``: senders per outbox. ``send`` / ``post``: one try of a callback /
        a progress webhook (c2c.callbacks.sender). ``on_attempt`` / ``on_progress_attempt``:
        metrics hooks, told "delivered", "retry" or "failed" after each try."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._timeout = config.callback_timeout
        self._horizon = config.callback_horizon
        self._allow_private = config.callback_allow_private
        self._concurrency = concurrency
        self._idle_interval = idle_interval
        self._clock = clock
        self._rng = rng
        self._send = send
        self._post = post
        # The sender's socket timeouts apply to each connect and read; this bounds the whole
        # exchange (a server trickling its headers), so that no send outlives its claim.
        self.send_deadline = self._timeout * 4 + 5.0
        self.lease_seconds = self.send_deadline + CLAIM_MARGIN_SECONDS
        self._callbacks = _Lane(
            outbox=store.callbacks, send=self._send_callback, describe=lambda job: "callback",
            on_attempt=on_attempt or _ignore, pool=gevent.pool.Pool(concurrency),
            wake=gevent.event.Event())
        self._progress = _Lane(
            outbox=store.progress, send=self._send_progress,
            describe=lambda job: f"progress webhook {job.event} (#{job.sequence})",
            on_attempt=on_progress_attempt or _ignore, pool=gevent.pool.Pool(concurrency),
            wake=gevent.event.Event(), chained=True)
        self._lanes = (self._callbacks, self._progress)
        self._stopping = gevent.event.Event()
        # Outcomes recorded in groups where the store can (c2c.callbacks.recording); counted
        # and announced once committed.
        grouped = getattr(store, "grouped", None)
        if grouped is not None:
            for lane in self._lanes:
                lane.recorder = GroupRecorder(grouped, functools.partial(self._record_group, lane),
                                              functools.partial(self._record_one, lane))
        self._after_commit: Callable[[Callable[[], None]], None] = getattr(
            store, "after_commit", lambda hook: hook())
        self._handed_calls: dict[str, None] = {}  # insertion-ordered

    # -- lifecycle (in a gunicorn worker: start after the fork, stop at worker exit) --

    def start(self) -> None:
        self._stopping.clear()
        for lane in self._lanes:
            if lane.loop is None or lane.loop.dead:
                lane.loop = gevent.spawn(self._claim_loop, lane)
        log.info("callback dispatcher started (%d senders per outbox)", self._concurrency)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; give sends in flight ``timeout`` s, then kill them (their claims expire
        and another worker sends them again)."""
        self._stopping.set()
        for lane in self._lanes:
            lane.wake.set()
        for lane in self._lanes:
            if lane.loop is not None:
                lane.loop.join(timeout)
                lane.loop.kill(block=False)
                lane.loop = None
        for lane in self._lanes:
            if lane.recorder is not None:
                lane.recorder.stop()
        for lane in self._lanes:
            if not lane.pool.join(timeout):
                log.warning("callback dispatcher: %d sends cut short at stop", len(lane.pool))
                lane.pool.kill(block=True, timeout=1.0)
        log.info("callback dispatcher stopped")

    def wake(self, call_id: str | None = None) -> None:
        """Look for due callbacks now (settlement calls this after enqueueing one); not for
        ``call_id`` if its callback was handed over (take_claimed): nothing is due then."""
        if call_id is not None and call_id in self._handed_calls:
            del self._handed_calls[call_id]
            return
        self._callbacks.due = True
        self._callbacks.wake.set()

    def accepts_handover(self) -> bool:
        """Whether a settlement may hand its callbacks over claimed (take_claimed) now: not
        when stopped, nor while those handed before wait too long or are too many."""
        handed = self._callbacks.handed
        if self._stopping.is_set():
            return False
        if len(handed) >= self._concurrency * HANDOVER_BACKLOG_PER_SENDER:
            return False
        return not handed or time.monotonic() - handed[0][0] < HANDOVER_MAX_WAIT_SECONDS

    def take_claimed(self, jobs: list[Any]) -> None:
        """Send these callbacks, which the transaction that wrote them claimed for
        ``lease_seconds`` (Calls.settle_ready), without claiming them. Stopped, or once they
        waited too long for a sender, they are left to their claim's expiry: then any
        dispatcher claims them, so none is lost."""
        if self._stopping.is_set() or not jobs:
            return
        handed_at = time.monotonic()
        lane = self._callbacks
        for job in jobs:
            lane.handed.append((handed_at, job))
            self._handed_calls[job.call_id] = None
        while len(self._handed_calls) > MAX_HANDED_CALLS:
            del self._handed_calls[next(iter(self._handed_calls))]
        lane.wake.set()

    # -- one round, also the deterministic entry point for tests --

    def run_once(self, now: float | None = None) -> int:
        """Claim what is due at ``now`` (default: the clock) in both outboxes, send it all,
        wait; return the count."""
        now = self._clock() if now is None else now
        group = gevent.pool.Pool(self._concurrency * len(self._lanes))
        claimed = 0
        for lane in self._lanes:
            jobs = lane.outbox.claim_due(now, self._concurrency, self.lease_seconds)
            for job in jobs:
                group.spawn(self._deliver, lane, job)
            claimed += len(jobs)
        group.join()
        return claimed

    # -- internals --

    def _claim_loop(self, lane: _Lane) -> None:
        next_poll = 0.0  # monotonic: when to look in the store again, if not woken before
        while not self._stopping.is_set():
            lane.wake.clear()  # a wake from here on is seen by the wait below
            free = lane.pool.free_count()
            if free == 0:
                lane.pool.wait_available(timeout=self._idle_interval)
                continue
            free -= self._send_handed(lane, free)
            if not free:
                continue  # wait for a sender first
            if lane.due or time.monotonic() >= next_poll:
                # Woken, something is due: no need to look before claiming.
                woken, lane.due = lane.due, False
                try:
                    jobs = lane.outbox.claim_due(self._clock(), free, self.lease_seconds,
                                                 look_first=not woken)
                except StoreError as exc:
                    log.warning("callback dispatcher: claiming failed: %s", exc)
                    self._stopping.wait(STORE_ERROR_PAUSE)
                    continue
                except Exception:
                    log.exception("callback dispatcher: unexpected error while claiming")
                    self._stopping.wait(STORE_ERROR_PAUSE)
                    continue
                for job in jobs:
                    lane.pool.spawn(self._deliver, lane, job)
                # A full claim: more may be due, look again at once; else rest until woken.
                lane.due = lane.due or len(jobs) == free
                next_poll = time.monotonic() + self._idle_interval
            if lane.due or (lane.handed and lane.pool.free_count()):
                continue
            lane.wake.wait(max(0.0, next_poll - time.monotonic()))

    def _send_handed(self, lane: _Lane, free: int) -> int:
        """Start sending up to ``free`` handed-over callbacks; returns how many it started."""
        started = 0
        while lane.handed and started < free:
            handed_at, job = lane.handed.popleft()
            if time.monotonic() - handed_at > CLAIM_MARGIN_SECONDS:
                # Its claim may lapse before the send ends: left to expire, then claimed.
                log.info("call %s: handed-over callback left to its claim's expiry",
                         job.call_id)
                continue
            lane.pool.spawn(self._deliver, lane, job)
            started += 1
        return started

    def _deliver(self, lane: _Lane, job: Any) -> None:
        try:
            result = self._send_within_deadline(lane, job)
            at = self._clock()
            if lane.recorder is None:
                self._record(lane, job, result, at)
            else:
                lane.recorder.record((job, result, at))
        except StoreError as exc:
            # The claim expires and the row is tried again: at least once, never lost.
            log.warning("call %s: %s outcome not recorded (%s); will retry", job.call_id,
                        lane.describe(job), exc)
        except Exception:
            log.exception("call %s: unexpected error delivering the %s", job.call_id,
                          lane.describe(job))

    def _send_callback(self, job: Job) -> SendResult:
        return self._send(job.url, signing_secrets(job), job.call_id, self._timeout,
                          self._allow_private, self._clock)

    def _send_progress(self, job: Any) -> SendResult:
        return self._post(job.url, signing_secrets(job), job.call_id, job.delivery_id, job.body,
                          self._timeout, self._allow_private, self._clock)

    def _send_within_deadline(self, lane: _Lane, job: Any) -> SendResult:
        deadline = gevent.Timeout(self.send_deadline)
        deadline.start()
        try:
            return lane.send(job)
        except gevent.Timeout as exc:
            if exc is not deadline:
                raise
            return SendResult(False, None, f"no complete answer within {self.send_deadline:g}s")
        finally:
            deadline.close()

    def _record_one(self, lane: _Lane, outcome: _Outcome) -> None:
        self._record(lane, *outcome)

    def _record_group(self, lane: _Lane, outcomes: list[_Outcome]) -> None:
        """Store several outcomes (in one transaction): the deliveries in two statements where
        the outbox can, the rest one by one."""
        many = getattr(lane.outbox, "mark_delivered_many", None)
        delivered = [outcome for outcome in outcomes if outcome[1].ok]
        if many is not None and len(delivered) > 1:
            many([(job.id, at, result.http_status) for job, result, at in delivered])
            for job, result, _ in delivered:
                self._delivered(lane, job, result)
            outcomes = [outcome for outcome in outcomes if not outcome[1].ok]
        for outcome in outcomes:
            self._record(lane, *outcome)

    def _delivered(self, lane: _Lane, job: Any, result: SendResult) -> None:
        self._counted(lane, "delivered")
        log.info("call %s: %s delivered (HTTP %s, attempt %d)", job.call_id, lane.describe(job),
                 result.http_status, job.attempts + 1)

    def _record(self, lane: _Lane, job: Any, result: SendResult, at: float) -> None:
        """Store the outcome of one try: delivered, retry later, or give up."""
        attempt = job.attempts + 1
        what = lane.describe(job)
        if result.ok:
            if lane.outbox.mark_delivered(job.id, at=at, http_status=result.http_status):
                self._delivered(lane, job, result)
            else:
                self._log_moved_on(job, what)
            return

        error = result.error or "failed"
        if not result.retryable or should_give_up(job.created_at, at, self._horizon):
            if lane.outbox.mark_failed(job.id, at=at, error=error,
                                       http_status=result.http_status):
                self._counted(lane, "failed")
                log.warning("call %s: %s to %s given up after %d attempt(s): %s", job.call_id,
                            what, redact_url(job.url), attempt, error)
            else:
                self._log_moved_on(job, what)
            return

        # The last try falls on the horizon itself rather than past it.
        retry_at = min(at + next_delay(attempt, self._rng), job.created_at + self._horizon)
        if not lane.outbox.reschedule(
            job.id, at=at, next_attempt_at=retry_at, error=error, http_status=result.http_status
        ):
            self._log_moved_on(job, what)
            return
        self._after_commit(lambda: lane.on_attempt("retry"))
        log.info("call %s: %s to %s failed (attempt %d: %s); next try in %.1fs", job.call_id,
                 what, redact_url(job.url), attempt, error, retry_at - at)

    def _counted(self, lane: _Lane, result: str) -> None:
        """A row finished: counted, and its lane woken if that makes another due, once the
        outcome is committed (recorded in a group, it may be written twice)."""

        def finished() -> None:
            lane.on_attempt(result)
            if lane.chained:
                lane.due = True
                lane.wake.set()

        self._after_commit(finished)

    @staticmethod
    def _log_moved_on(job: Any, what: str) -> None:
        # Our claim outlived its lease and another worker finished the row meanwhile.
        log.info("call %s: %s already settled by another worker; try kept", job.call_id, what)


def _ignore(result: str) -> None:
    pass

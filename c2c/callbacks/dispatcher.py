"""The callback dispatcher: greenlets that drain the callbacks outbox (DESIGN.md section 3).

One claimer loop per worker claims due rows (atomically, for a lease: store.callbacks.claim_due)
and hands each to a pool of sender greenlets. Every try ends in exactly one store call: delivered,
rescheduled with backoff, or failed (past the horizon, or a URL that can never be sent). A worker
killed mid-send leaves its claims to expire; the rows are then claimed again: delivery is at least
once, and the receiver de-duplicates on X-C2C-Call-Id.

Idle, the loop polls every ``idle_interval`` seconds (one indexed query); ``wake()`` lets
settlement nudge it so a fresh callback leaves within milliseconds.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
import gevent.event
import gevent.pool

from c2c.callbacks.backoff import next_delay, should_give_up
from c2c.callbacks.sender import SendResult, redact_url, send_callback
from c2c.config import Config
from c2c.errors import StoreError

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 10
DEFAULT_IDLE_INTERVAL = 0.25  # seconds between polls when nothing is due and no wake() came
STORE_ERROR_PAUSE = 2.0  # seconds to wait after the store failed, before claiming again
CLAIM_MARGIN_SECONDS = 30.0  # a claim outlives the longest send by this much


class Job(Protocol):
    """A claimed callback, as store.callbacks.claim_due returns it (CallbackJob)."""

    id: int
    call_id: str
    url: str
    attempts: int  # tries made before this one
    created_at: float
    webhook_secret: str


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
        on_attempt: Callable[[str], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._outbox: Outbox = store.callbacks
        self._timeout = config.callback_timeout
        self._horizon = config.callback_horizon
        self._allow_private = config.callback_allow_private
        self._concurrency = concurrency
        self._idle_interval = idle_interval
        self._clock = clock
        self._rng = rng
        self._send = send
        # Metrics hook: called with "delivered", "retry" or "failed" after each try.
        self._on_attempt = on_attempt or (lambda result: None)
        # The sender's socket timeouts apply to each connect and read; this bounds the whole
        # exchange (a server trickling its headers), so that no send outlives its claim.
        self.send_deadline = self._timeout * 4 + 5.0
        self.lease_seconds = self.send_deadline + CLAIM_MARGIN_SECONDS
        self._pool = gevent.pool.Pool(concurrency)
        self._wake = gevent.event.Event()
        self._stopping = gevent.event.Event()
        self._loop: gevent.Greenlet | None = None

    # -- lifecycle (in a gunicorn worker: start after the fork, stop at worker exit) --

    def start(self) -> None:
        if self._loop is not None and not self._loop.dead:
            return
        self._stopping.clear()
        self._loop = gevent.spawn(self._claim_loop)
        log.info("callback dispatcher started (%d senders)", self._concurrency)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; give sends in flight ``timeout`` s, then kill them (their claims expire
        and another worker sends them again)."""
        self._stopping.set()
        self._wake.set()
        if self._loop is not None:
            self._loop.join(timeout)
            self._loop.kill(block=False)
            self._loop = None
        if not self._pool.join(timeout):
            log.warning("callback dispatcher: %d sends cut short at stop", len(self._pool))
            self._pool.kill(block=True, timeout=1.0)
        log.info("callback dispatcher stopped")

    def wake(self) -> None:
        """Look for due callbacks now (settlement calls this after enqueueing one)."""
        self._wake.set()

    # -- one round, also the deterministic entry point for tests --

    def run_once(self, now: float | None = None) -> int:
        """Claim what is due at ``now`` (default: the clock), send it all, wait; return the count."""
        now = self._clock() if now is None else now
        jobs = self._outbox.claim_due(now, self._concurrency, self.lease_seconds)
        group = gevent.pool.Pool(self._concurrency)
        for job in jobs:
            group.spawn(self._deliver, job)
        group.join()
        return len(jobs)

    # -- internals --

    def _claim_loop(self) -> None:
        woken = False
        while not self._stopping.is_set():
            self._wake.clear()  # a wake() from here on is seen by the wait below
            free = self._pool.free_count()
            if free == 0:
                self._pool.wait_available(timeout=self._idle_interval)
                continue
            try:
                # Woken by a settlement, something is due: no need to look before claiming.
                jobs = self._outbox.claim_due(self._clock(), free, self.lease_seconds,
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
                self._pool.spawn(self._deliver, job)
            if len(jobs) < free:  # all that is due has been taken: rest until due or woken
                woken = self._wake.wait(self._idle_interval)
            else:
                woken = True  # a full claim: more may be due

    def _deliver(self, job: Job) -> None:
        try:
            result = self._send_within_deadline(job)
            self._record(job, result, self._clock())
        except StoreError as exc:
            # The claim expires and the callback is tried again: at least once, never lost.
            log.warning("call %s: callback outcome not recorded (%s); will retry", job.call_id, exc)
        except Exception:
            log.exception("call %s: unexpected error delivering the callback", job.call_id)

    def _send_within_deadline(self, job: Job) -> SendResult:
        deadline = gevent.Timeout(self.send_deadline)
        deadline.start()
        try:
            return self._send(
                job.url,
                job.webhook_secret,
                job.call_id,
                self._timeout,
                self._allow_private,
                self._clock,
            )
        except gevent.Timeout as exc:
            if exc is not deadline:
                raise
            return SendResult(False, None, f"no complete answer within {self.send_deadline:g}s")
        finally:
            deadline.close()

    def _record(self, job: Job, result: SendResult, at: float) -> None:
        """Store the outcome of one try: delivered, retry later, or give up."""
        attempt = job.attempts + 1
        if result.ok:
            if self._outbox.mark_delivered(job.id, at=at, http_status=result.http_status):
                self._on_attempt("delivered")
                log.info(
                    "call %s: callback delivered (HTTP %s, attempt %d)",
                    job.call_id,
                    result.http_status,
                    attempt,
                )
            else:
                self._log_moved_on(job)
            return

        error = result.error or "failed"
        if not result.retryable or should_give_up(job.created_at, at, self._horizon):
            if self._outbox.mark_failed(job.id, at=at, error=error, http_status=result.http_status):
                self._on_attempt("failed")
                log.warning(
                    "call %s: callback to %s given up after %d attempt(s): %s",
                    job.call_id,
                    redact_url(job.url),
                    attempt,
                    error,
                )
            else:
                self._log_moved_on(job)
            return

        # The last try falls on the horizon itself rather than past it.
        retry_at = min(at + next_delay(attempt, self._rng), job.created_at + self._horizon)
        if not self._outbox.reschedule(
            job.id, at=at, next_attempt_at=retry_at, error=error, http_status=result.http_status
        ):
            self._log_moved_on(job)
            return
        self._on_attempt("retry")
        log.info(
            "call %s: callback to %s failed (attempt %d: %s); next try in %.1fs",
            job.call_id,
            redact_url(job.url),
            attempt,
            error,
            retry_at - at,
        )

    @staticmethod
    def _log_moved_on(job: Job) -> None:
        # Our claim outlived its lease and another worker finished the row meanwhile.
        log.info("call %s: callback already settled by another worker; try kept", job.call_id)

"""The progress webhooks outbox (issue 13): one row per event a call reported and asked for,
numbered 1, 2, ... per call, POSTed in that order, each at least once.

Rows are written by ``write_events``, inside the transaction that records what they report (the
listener's UPDATE of the call, or its settlement: c2c.store.calls), with the call's row locked;
a call that asked for no event never reaches this module.

In order per call: only a call's earliest unfinished row is ``pending`` (claimable); the rows
after it are ``waiting``. Finishing a row (delivered, or given up) makes the next one pending in
the same transaction. Writing a row locks its call's rows first, so a row finishing at the same
moment is seen either finished (the new row is pending) or not (the new row waits, and that
finish promotes it): a row is never left waiting behind a finished one.

Claiming and retrying are those of the final callback (c2c.store.callbacks): a lease
(claimed_until), FOR UPDATE SKIP LOCKED on MySQL, BEGIN IMMEDIATE on SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update

from c2c.domain.progress import ProgressEvent, decode_events, delivery_id, progress_body
from c2c.store import schema
from c2c.store.callbacks import previous_secret
from c2c.store.db import Database

log = logging.getLogger(__name__)


class ProgressStatus(StrEnum):
    WAITING = "waiting"  # an earlier event of its call is not yet delivered or given up
    PENDING = "pending"  # due at next_attempt_at
    DELIVERED = "delivered"  # the customer answered 2xx
    FAILED = "failed"  # given up (past the retry horizon, or a URL that can never be sent)


_OPEN = (ProgressStatus.WAITING.value, ProgressStatus.PENDING.value)


@dataclass(frozen=True)
class ProgressJob:
    """A claimed progress webhook: what the dispatcher needs to send and sign it."""

    id: int
    call_id: str
    account_id: int
    sequence: int
    event: str
    url: str
    body: str  # the exact JSON sent (and signed)
    attempts: int  # tries made before this one
    created_at: float  # when the event was recorded; the retry horizon counts from here
    next_attempt_at: float
    webhook_secret: str = field(repr=False)  # the HMAC key; never logged
    previous_webhook_secret: str | None = field(default=None, repr=False)  # see CallbackJob

    @property
    def delivery_id(self) -> str:
        return delivery_id(self.call_id, self.sequence)


@dataclass(frozen=True)
class Report:
    """An event a call may report now, with when it happened (the switch's time)."""

    event: ProgressEvent
    at: float


def write_events(conn: Connection, reports: Sequence[tuple[Mapping[str, Any], Sequence[Report]]],
                 now: float) -> int:
    """Write the webhooks of ``reports`` ((call row, its reports in event order), the call rows
    locked by this transaction): those the call asked for and that come after every event it
    already has a row for (an event seen twice, or after a later one, writes nothing). One
    read of the calls' rows (locking them) and one INSERT; nothing for calls that asked for
    none. Returns how many rows it wrote."""
    asking = [(call, [r for r in wanted if r.event in decode_events(call["status_events"])])
              for call, wanted in reports
              if call["status_events"] and call["status_callback_url"]]
    asking = [(call, wanted) for call, wanted in asking if wanted]
    if not asking:
        return 0
    latest: dict[str, tuple[int, int, bool]] = {}  # call id -> (sequence, event rank, open)
    call_ids = sorted({call["id"] for call, _ in asking})
    for row in conn.execute(_ROWS_OF_CALLS_LOCKED, {"b_ids": call_ids}):
        latest[row.call_id] = (int(row.sequence), ProgressEvent(row.event).rank,
                               row.status in _OPEN)
    rows: list[dict[str, Any]] = []
    for call, wanted in asking:
        sequence, rank, is_open = latest.get(call["id"], (0, -1, False))
        for report in wanted:
            if report.event.rank <= rank:
                continue
            sequence += 1
            rank = report.event.rank
            rows.append({
                "call_id": call["id"],
                "account_id": call["account_id"],
                "sequence": sequence,
                "event": report.event.value,
                "at": report.at,
                "url": call["status_callback_url"],
                "body": progress_body(call["id"], report.event, report.at, sequence),
                "status": (ProgressStatus.WAITING if is_open else ProgressStatus.PENDING).value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            })
            is_open = True  # the next event of this call waits for this one
        latest[call["id"]] = (sequence, rank, is_open)
    if rows:
        conn.execute(_INSERT, rows)
        for written in rows:
            log.debug("call %s: progress webhook %s (#%d) enqueued", written["call_id"],
                      written["event"], written["sequence"])
    return len(rows)


def _short(text: str | None) -> str | None:
    return text[:255] if text else None


class Progress:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim_due(self, now: float, limit: int, lease_seconds: float,
                  look_first: bool = True) -> list[ProgressJob]:
        """Claim up to ``limit`` pending webhooks due at ``now`` for ``lease_seconds`` (at most
        one per call: only a call's earliest unfinished one is pending).

        ``look_first``: make sure something is due with a plain read before taking write locks."""
        pw, a = schema.progress_webhooks, schema.accounts
        due = (
            select(pw.c.id)
            .where(
                pw.c.status == ProgressStatus.PENDING.value,
                pw.c.next_attempt_at <= now,
                or_(pw.c.claimed_until.is_(None), pw.c.claimed_until < now),
            )
            .order_by(pw.c.next_attempt_at, pw.c.id)
            .limit(limit)
        )
        if look_first:
            with self._db.read() as conn:
                if conn.execute(due.limit(1)).first() is None:
                    return []
        if self._db.is_mysql:
            due = due.with_for_update(skip_locked=True)
        # Through two Galera nodes, SKIP LOCKED skips only the local locks: two hosts may
        # pick the same rows, and the second to commit loses certification; run again, it
        # skips them (one claim per row, either way).
        def claim(conn: Connection) -> Sequence[Any]:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                update(pw).where(pw.c.id.in_(ids)).values(claimed_until=now + lease_seconds)
            )
            return conn.execute(
                select(pw.c.id, pw.c.call_id, pw.c.account_id, pw.c.sequence, pw.c.event,
                       pw.c.url, pw.c.body, pw.c.attempts, pw.c.created_at,
                       pw.c.next_attempt_at, a.c.webhook_secret, a.c.previous_webhook_secret,
                       a.c.previous_secret_until)
                .join(a, a.c.id == pw.c.account_id)
                .where(pw.c.id.in_(ids))
                .order_by(pw.c.next_attempt_at, pw.c.id)
            ).all()

        rows = self._db.write_retrying(claim)
        return [
            ProgressJob(
                id=int(row.id),
                call_id=row.call_id,
                account_id=int(row.account_id),
                sequence=int(row.sequence),
                event=row.event,
                url=row.url,
                body=row.body,
                attempts=int(row.attempts),
                created_at=float(row.created_at),
                next_attempt_at=float(row.next_attempt_at),
                webhook_secret=row.webhook_secret,
                previous_webhook_secret=previous_secret(row, now),
            )
            for row in rows
        ]

    def mark_delivered(self, webhook_id: int, *, at: float, http_status: int | None) -> bool:
        """The customer answered 2xx; the call's next webhook becomes due. Returns whether the
        row was still pending."""
        return self._finish_attempt(
            webhook_id, at=at, http_status=http_status, finished=True,
            values={"status": ProgressStatus.DELIVERED.value, "delivered_at": at,
                    "last_error": None},
        )

    def reschedule(self, webhook_id: int, *, at: float, next_attempt_at: float, error: str,
                   http_status: int | None = None) -> bool:
        """This try failed; try again at ``next_attempt_at`` (the call's later webhooks keep
        waiting). Returns whether it was pending."""
        return self._finish_attempt(
            webhook_id, at=at, http_status=http_status, finished=False,
            values={"next_attempt_at": next_attempt_at, "last_error": _short(error)},
        )

    def mark_failed(self, webhook_id: int, *, at: float, error: str,
                    http_status: int | None = None) -> bool:
        """This try failed and no more will be made; the call's next webhook becomes due.
        Returns whether it was pending."""
        return self._finish_attempt(
            webhook_id, at=at, http_status=http_status, finished=True,
            values={"status": ProgressStatus.FAILED.value, "last_error": _short(error)},
        )

    def for_call(self, call_id: str) -> list[dict[str, Any]]:
        """The call's webhooks in sequence order, every column."""
        pw = schema.progress_webhooks
        query = select(pw).where(pw.c.call_id == call_id).order_by(pw.c.sequence)
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def for_calls(self, call_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The webhooks of several calls (call id -> its rows in sequence order), one read."""
        ids = sorted(set(call_ids))
        found: dict[str, list[dict[str, Any]]] = {call_id: [] for call_id in ids}
        if not ids:
            return found
        pw = schema.progress_webhooks
        query = (select(pw).where(pw.c.call_id.in_(ids))
                 .order_by(pw.c.call_id, pw.c.sequence))
        with self._db.read() as conn:
            for row in conn.execute(query).mappings():
                found[row["call_id"]].append(dict(row))
        return found

    def counts(self) -> dict[str, int]:
        """How many webhooks are in each status (for metrics)."""
        pw = schema.progress_webhooks
        with self._db.read() as conn:
            rows = conn.execute(select(pw.c.status, func.count()).group_by(pw.c.status)).all()
        return {status: int(count) for status, count in rows}

    def _finish_attempt(self, webhook_id: int, *, at: float, http_status: int | None,
                        finished: bool, values: dict[str, Any]) -> bool:
        pw = schema.progress_webhooks
        with self._db.write() as conn:
            changed = conn.execute(
                update(pw)
                .where(pw.c.id == webhook_id, pw.c.status == ProgressStatus.PENDING.value)
                .values(attempts=pw.c.attempts + 1, claimed_until=None,
                        last_http_status=http_status, **values)
            ).rowcount
            if changed and finished:
                row = conn.execute(
                    select(pw.c.call_id, pw.c.sequence).where(pw.c.id == webhook_id)
                ).one()
                conn.execute(_PROMOTE, {"b_call_id": row.call_id,
                                        "b_sequence": int(row.sequence) + 1, "b_at": at})
        return bool(changed)


_pw = schema.progress_webhooks
# Every row of these calls, locking them (a handful per call): the latest decides the next
# sequence, the event it must come after, and whether the next row waits.
_ROWS_OF_CALLS_LOCKED = (
    select(_pw.c.call_id, _pw.c.sequence, _pw.c.event, _pw.c.status)
    .where(_pw.c.call_id.in_(bindparam("b_ids", expanding=True)))
    .order_by(_pw.c.call_id, _pw.c.sequence)
    .with_for_update()
)
_INSERT = insert(_pw)
# The call's next webhook, once the one before it is finished, is due now.
_PROMOTE = (
    update(_pw)
    .where(_pw.c.call_id == bindparam("b_call_id"), _pw.c.sequence == bindparam("b_sequence"),
           _pw.c.status == ProgressStatus.WAITING.value)
    .values(status=ProgressStatus.PENDING.value, next_attempt_at=bindparam("b_at"))
)

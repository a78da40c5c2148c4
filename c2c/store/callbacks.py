"""The callbacks outbox: one row per settled call with a callback_url, delivered at least once.

Dispatchers in every worker claim due rows for a short lease (claimed_until): on MySQL with
SELECT ... FOR UPDATE SKIP LOCKED, so two claimers skip each other's rows instead of waiting; on
SQLite the claim runs in a BEGIN IMMEDIATE transaction, one claimer at a time. A claim that is
not followed by mark_delivered / reschedule / mark_failed (the worker died) expires and the row
becomes due again. Every try is kept in callback_attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, insert, or_, select, update

from c2c.store import schema
from c2c.store.db import Database

log = logging.getLogger(__name__)


class CallbackStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up (past the retry horizon)


@dataclass(frozen=True)
class CallbackJob:
    """A claimed callback: what the dispatcher needs to send and sign it."""

    id: int
    call_id: str
    account_id: int
    url: str
    attempts: int  # tries made before this one
    created_at: float  # when the call settled; the retry horizon counts from here
    next_attempt_at: float
    webhook_secret: str = field(repr=False)  # the HMAC key; never logged
    # The key replaced by `c2c keys rotate --webhook-secret`, within its grace period: callbacks
    # are signed with both meanwhile.
    previous_webhook_secret: str | None = field(default=None, repr=False)


def previous_secret(row: Any, now: float) -> str | None:
    """An account row's replaced webhook secret while its grace period lasts."""
    until = row.previous_secret_until
    return row.previous_webhook_secret if until is not None and until > now else None


class NotAllPending(Exception):
    """mark_delivered_many: some row had been finished meanwhile (a claim that outlived its
    lease); its transaction must be rolled back."""


def _short(text: str | None) -> str | None:
    return text[:255] if text else None


class Callbacks:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim_due(self, now: float, limit: int, lease_seconds: float,
                  look_first: bool = True) -> list[CallbackJob]:
        """Claim up to ``limit`` pending callbacks due at ``now`` for ``lease_seconds``.

        ``look_first``: make sure something is due with a plain read before taking write locks
        (for a poll, which mostly finds nothing); False when a callback was just enqueued."""
        cb = schema.callbacks
        due = (
            select(cb.c.id)
            .where(
                cb.c.status == CallbackStatus.PENDING.value,
                cb.c.next_attempt_at <= now,
                or_(cb.c.claimed_until.is_(None), cb.c.claimed_until < now),
            )
            .order_by(cb.c.next_attempt_at, cb.c.id)
            .limit(limit)
        )
        # Most polls find nothing: look first without a write transaction (on SQLite that would
        # take the database's write lock, stalling every accept, several times a second).
        if look_first:
            with self._db.read() as conn:
                if conn.execute(due.with_only_columns(cb.c.id).limit(1)).first() is None:
                    return []
        if self._db.is_mysql:
            # Lock only callbacks rows (a join would lock accounts too, stalling accepts).
            due = due.with_for_update(skip_locked=True)
        # Through two Galera nodes, SKIP LOCKED skips only the local locks: two hosts may
        # pick the same rows, and the second to commit loses certification; run again, it
        # skips them (one claim per row, either way).
        def claim(conn: Connection) -> Sequence[Any]:
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            conn.execute(
                update(cb).where(cb.c.id.in_(ids)).values(claimed_until=now + lease_seconds)
            )
            return conn.execute(_JOBS.where(cb.c.id.in_(ids))).all()

        return _jobs(self._db.write_retrying(claim), now)

    def mark_delivered(self, callback_id: int, *, at: float, http_status: int | None) -> bool:
        """The customer answered 2xx. Returns whether the row was still pending."""
        return self._finish_attempt(
            callback_id,
            at=at,
            http_status=http_status,
            error=None,
            values={
                "status": CallbackStatus.DELIVERED.value,
                "delivered_at": at,
                "last_error": None,
            },
        )

    def mark_delivered_many(self, deliveries: Sequence[tuple[int, float, int | None]]) -> None:
        """Several callbacks answered 2xx, each (id, at, http_status): two statements for all
        (one UPDATE, one multi-row INSERT of the tries). Raises NotAllPending, the transaction
        to be rolled back, if any of them was no longer pending (then record them one by one,
        mark_delivered saying which)."""
        if not deliveries:
            return
        cb = schema.callbacks
        ids = [callback_id for callback_id, _, _ in deliveries]
        delivered_at = case({callback_id: at for callback_id, at, _ in deliveries},
                            value=cb.c.id)
        with self._db.write() as conn:
            changed = conn.execute(
                update(cb)
                .where(cb.c.id.in_(ids), cb.c.status == CallbackStatus.PENDING.value)
                .values(attempts=cb.c.attempts + 1, claimed_until=None, last_error=None,
                        status=CallbackStatus.DELIVERED.value, delivered_at=delivered_at)
            ).rowcount
            if changed != len(set(ids)):
                raise NotAllPending(f"{len(ids) - changed} of {len(ids)} no longer pending")
            conn.execute(insert(schema.callback_attempts), [
                {"callback_id": callback_id, "at": at, "http_status": http_status,
                 "error": None}
                for callback_id, at, http_status in deliveries
            ])

    def reschedule(
        self,
        callback_id: int,
        *,
        at: float,
        next_attempt_at: float,
        error: str,
        http_status: int | None = None,
    ) -> bool:
        """This try failed; try again at ``next_attempt_at``. Returns whether it was pending."""
        return self._finish_attempt(
            callback_id,
            at=at,
            http_status=http_status,
            error=error,
            values={"next_attempt_at": next_attempt_at, "last_error": _short(error)},
        )

    def mark_failed(
        self, callback_id: int, *, at: float, error: str, http_status: int | None = None
    ) -> bool:
        """This try failed and no more will be made. Returns whether it was pending."""
        return self._finish_attempt(
            callback_id,
            at=at,
            http_status=http_status,
            error=error,
            values={"status": CallbackStatus.FAILED.value, "last_error": _short(error)},
        )

    def get_for_call(self, call_id: str) -> dict[str, Any] | None:
        cb = schema.callbacks
        with self._db.read() as conn:
            row = conn.execute(select(cb).where(cb.c.call_id == call_id)).mappings().first()
        return dict(row) if row else None

    def list_for_call(self, call_id: str) -> list[dict[str, Any]]:
        """The delivery attempts of the call's callback, oldest first (at, http_status, error)."""
        cb, at = schema.callbacks, schema.callback_attempts
        query = (
            select(at.c.callback_id, at.c.at, at.c.http_status, at.c.error)
            .join(cb, cb.c.id == at.c.callback_id)
            .where(cb.c.call_id == call_id)
            .order_by(at.c.at, at.c.id)
        )
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def counts(self) -> dict[str, int]:
        """How many callbacks are in each status (for metrics)."""
        cb = schema.callbacks
        with self._db.read() as conn:
            rows = conn.execute(select(cb.c.status, func.count()).group_by(cb.c.status)).all()
        return {status: int(count) for status, count in rows}

    def _finish_attempt(
        self,
        callback_id: int,
        *,
        at: float,
        http_status: int | None,
        error: str | None,
        values: dict[str, Any],
    ) -> bool:
        cb = schema.callbacks
        with self._db.write() as conn:
            changed = conn.execute(
                update(cb)
                .where(cb.c.id == callback_id, cb.c.status == CallbackStatus.PENDING.value)
                .values(attempts=cb.c.attempts + 1, claimed_until=None, **values)
            ).rowcount
            _record_attempt(conn, callback_id, at, http_status, error)
        return bool(changed)


def claimed_jobs(conn: Connection, call_ids: Sequence[str], now: float) -> list[CallbackJob]:
    """These calls' callbacks as claim_due returns them: for the transaction that has just
    written them claimed (a settlement handing them to its own dispatcher)."""
    if not call_ids:
        return []
    return _jobs(conn.execute(_JOBS_OF_CALLS, {"b_call_ids": list(call_ids)}).all(), now)


def _jobs(rows: Sequence[Any], now: float) -> list[CallbackJob]:
    return [
        CallbackJob(
            id=int(row.id),
            call_id=row.call_id,
            account_id=int(row.account_id),
            url=row.url,
            attempts=int(row.attempts),
            created_at=float(row.created_at),
            next_attempt_at=float(row.next_attempt_at),
            webhook_secret=row.webhook_secret,
            previous_webhook_secret=previous_secret(row, now),
        )
        for row in rows
    ]


# A claimed row with what sending it needs: its account's signing secrets.
_JOBS = (
    select(
        schema.callbacks.c.id,
        schema.callbacks.c.call_id,
        schema.callbacks.c.account_id,
        schema.callbacks.c.url,
        schema.callbacks.c.attempts,
        schema.callbacks.c.created_at,
        schema.callbacks.c.next_attempt_at,
        schema.accounts.c.webhook_secret,
        schema.accounts.c.previous_webhook_secret,
        schema.accounts.c.previous_secret_until,
    )
    .join(schema.accounts, schema.accounts.c.id == schema.callbacks.c.account_id)
    .order_by(schema.callbacks.c.next_attempt_at, schema.callbacks.c.id)
)
_JOBS_OF_CALLS = _JOBS.where(
    schema.callbacks.c.call_id.in_(bindparam("b_call_ids", expanding=True)))


def _record_attempt(
    conn: Connection, callback_id: int, at: float, http_status: int | None, error: str | None
) -> None:
    # Kept even when the row had moved on meanwhile (a claim that outlived its lease): the
    # attempt happened, and the log should say so.
    conn.execute(
        insert(schema.callback_attempts).values(
            callback_id=callback_id, at=at, http_status=http_status, error=_short(error)
        )
    )

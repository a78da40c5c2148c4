"""What the two outboxes still owe, read at scrape time for /metrics (c2c.api.metrics_resource).

Every query here is cheap however large the tables grow: the backlog figures read only the open
rows' slice of the (status, next_attempt_at) indexes (ix_callbacks_due, ix_progress_due), and the
delivery lag reads the newest callbacks by primary key, then their calls by primary key.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, case, func, select

from c2c.store import schema
from c2c.store.callbacks import CallbackStatus
from c2c.store.db import Database
from c2c.store.progress import ProgressStatus

# The delivery lag is measured over callbacks delivered within this window, among this many of
# the newest: enough for a steady median, bounded whatever the traffic.
LAG_WINDOW_SECONDS = 300.0
LAG_SAMPLE_ROWS = 500


@dataclass(frozen=True)
class OutboxBacklog:
    """One outbox's open rows at ``now``."""

    pending: int  # claimable now or at their next_attempt_at (retries included)
    due: int  # of those, due at ``now`` (being sent, or waiting for a free sender)
    oldest_due_seconds: float  # how long the earliest due row has been due; 0 when none is
    waiting: int = 0  # progress webhooks behind an earlier unfinished one of their call


@dataclass(frozen=True)
class DeliveryLag:
    """Hangup to delivered, over the callbacks delivered lately (c2c.store.backlog)."""

    delivered: int  # how many callbacks the figures cover
    median_seconds: float
    max_seconds: float


@dataclass(frozen=True)
class BacklogSnapshot:
    callbacks: OutboxBacklog
    progress: OutboxBacklog
    lag: DeliveryLag | None  # None: nothing delivered within the window


class Backlog:
    def __init__(self, db: Database) -> None:
        self._db = db

    @classmethod
    def on(cls, engine: Engine) -> Backlog:
        return cls(Database(engine))

    def read(self, now: float) -> BacklogSnapshot:
        """Both outboxes and the recent delivery lag, in one read transaction."""
        with self._db.read() as conn:
            callbacks = _open_rows(conn, schema.callbacks, now)
            progress = _open_rows(conn, schema.progress_webhooks, now)
            lag = _delivery_lag(conn, now)
        pending = callbacks.get(CallbackStatus.PENDING.value, _NO_ROWS)
        progress_pending = progress.get(ProgressStatus.PENDING.value, _NO_ROWS)
        progress_waiting = progress.get(ProgressStatus.WAITING.value, _NO_ROWS)
        return BacklogSnapshot(
            callbacks=OutboxBacklog(pending.count, pending.due, pending.oldest_due_seconds),
            progress=OutboxBacklog(progress_pending.count, progress_pending.due,
                                   progress_pending.oldest_due_seconds,
                                   waiting=progress_waiting.count),
            lag=lag,
        )


@dataclass(frozen=True)
class _StatusRows:
    count: int
    due: int
    oldest_due_seconds: float


_NO_ROWS = _StatusRows(count=0, due=0, oldest_due_seconds=0.0)
_OPEN_STATUSES = (CallbackStatus.PENDING.value, ProgressStatus.WAITING.value)


def _open_rows(conn: Connection, table: Table, now: float) -> dict[str, _StatusRows]:
    """Per open status: how many rows, how many due, how long the earliest has been due. Only
    the index is read (status, next_attempt_at; InnoDB's secondary index carries the key too)."""
    due_at = table.c.next_attempt_at
    query = (
        select(
            table.c.status,
            func.count(),
            func.sum(case((due_at <= now, 1), else_=0)),
            func.min(due_at),
        )
        .where(table.c.status.in_(_OPEN_STATUSES))
        .group_by(table.c.status)
    )
    figures = {}
    for status, count, due, earliest in conn.execute(query):
        overdue = now - float(earliest) if earliest is not None else 0.0
        figures[status] = _StatusRows(int(count), int(due or 0), max(overdue, 0.0))
    return figures


def _delivery_lag(conn: Connection, now: float) -> DeliveryLag | None:
    """From the call's end (the switch's time) to its callback's 2xx, over the newest callbacks
    delivered within LAG_WINDOW_SECONDS. A call whose end was not recorded counts from its
    settlement (the callback's creation)."""
    cb, c = schema.callbacks, schema.calls
    newest = (
        select(cb.c.call_id, cb.c.status, cb.c.delivered_at, cb.c.created_at)
        .order_by(cb.c.id.desc())
        .limit(LAG_SAMPLE_ROWS)
        .subquery()
    )
    delivered = {
        call_id: (float(delivered_at), float(created_at))
        for call_id, delivered_at, created_at in conn.execute(
            select(newest.c.call_id, newest.c.delivered_at, newest.c.created_at).where(
                newest.c.status == CallbackStatus.DELIVERED.value,
                newest.c.delivered_at >= now - LAG_WINDOW_SECONDS,
            )
        )
    }
    if not delivered:
        return None
    # Apart from the read above, by primary key: joined, MySQL may choose to scan calls first.
    ended = dict(conn.execute(select(c.c.id, c.c.ended_at).where(c.c.id.in_(delivered))).all())
    # Clamped at 0: the end is the switch's clock, the delivery this host's.
    lags = [
        max(delivered_at - float(ended.get(call_id) or created_at), 0.0)
        for call_id, (delivered_at, created_at) in delivered.items()
    ]
    return DeliveryLag(
        delivered=len(lags), median_seconds=statistics.median(lags), max_seconds=max(lags)
    )

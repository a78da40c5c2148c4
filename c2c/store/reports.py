"""What operators bill from: ended calls summed per period or destination, and every call of a
period streamed out row by row.

Credits come from the ledger, not from the calls' rows: a call's debit (``ledger.call_id``) plus
the correction of its estimate (``ledger.corrects``), so a report always adds up to what the
accounts were actually charged. Both columns are unique, so joining each gives at most one row
per call and the sums count every ledger row once.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
)

from c2c.domain.states import CallState
from c2c.store import schema
from c2c.store.db import Database

DAY_SECONDS = 86400
# Inline, not a bound parameter: the day's expression is then the same text wherever it appears.
_DAY = literal_column(str(DAY_SECONDS), Integer)
# Rows a streamed export holds at once: the driver's buffer (MySQL: a server-side cursor).
EXPORT_BATCH = 500


class GroupBy(StrEnum):
    DAY = "day"  # the UTC day of the call's created_at: "2027-01-15"
    MONTH = "month"  # its UTC month: "2027-01"
    DESTINATION = "destination"  # the callee's country code: "44"


@dataclass(frozen=True)
class Period:
    """created_at from ``start`` (inclusive) to ``end`` (exclusive), Unix seconds; None: open."""

    start: float | None = None
    end: float | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        created = schema.calls.c.created_at
        found = []
        if self.start is not None:
            found.append(created >= self.start)
        if self.end is not None:
            found.append(created < self.end)
        return found


@dataclass(frozen=True)
class UsageRow:
    """One group's sums, raw: the CLI derives ratios and averages from them (and totals them
    exactly, by adding rows)."""

    key: str | int  # the UTC day number (Unix seconds // 86400), or the country code
    calls: int
    answered: int
    timed: int  # answered calls whose billsec is known: the average talk's denominator
    billsec: int  # summed over those
    minutes: int
    credits: Decimal  # debited, corrections included: minus the ledger's deltas


class Reports:
    def __init__(self, db: Database) -> None:
        self._db = db

    def usage(self, period: Period, group_by: GroupBy,
              account_id: int | None = None) -> list[UsageRow]:
        """The ended calls created in ``period`` (of one account), summed per UTC day or
        destination in one grouped query. Months are days folded by the caller, so the query
        stays one portable GROUP BY on both stores. Rows in no particular order."""
        with self._db.read() as conn:
            query = _usage_query(self._day_of(), period, group_by, account_id)
            return [_usage_row(row) for row in conn.execute(query)]

    def export_calls(self, period: Period, account_id: int | None = None,
                     batch: int = EXPORT_BATCH) -> Generator[dict[str, Any], None, None]:
        """Every call created in ``period`` (of one account), oldest first, as rows of the
        calls table's billing columns: streamed (a server-side cursor on MySQL), so memory stays
        the same whatever the period holds. The read transaction stays open until the iterator
        is exhausted or closed."""
        c = schema.calls
        query = select(*(c.c[name] for name in EXPORT_COLUMNS)).where(*period.clauses())
        if account_id is not None:
            query = query.where(c.c.account_id == account_id)
        query = query.order_by(c.c.created_at, c.c.id)
        with self._db.read() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
            for row in result.mappings():
                yield dict(row)

    def _day_of(self) -> Any:
        return _mysql_day if self._db.is_mysql else _sqlite_day


# The columns a billing export carries, in its order.
EXPORT_COLUMNS = (
    "id",
    "account_id",
    "created_at",
    "ended_at",
    "caller_country_code",
    "caller_number",
    "callee_country_code",
    "callee_number",
    "answered",
    "reason",
    "minutes",
    "billsec",
    "caller_minutes",
    "rate",
    "caller_rate",
    "charged",
    "estimated",
    "state",
)


def _mysql_day(created: ColumnElement[float]) -> ColumnElement[int]:
    return cast(func.floor(created / _DAY), Integer)


def _sqlite_day(created: ColumnElement[float]) -> ColumnElement[int]:
    # SQLite has FLOOR only when built with its math functions; CAST truncates, which is the
    # floor for the times c2c writes (after 1970).
    return cast(created / _DAY, Integer)


def _usage_query(day_of: Any, period: Period, group_by: GroupBy,
                 account_id: int | None) -> Select[Any]:
    c = schema.calls
    debit = schema.ledger.alias("debit")
    correction = schema.ledger.alias("correction")
    key = c.c.callee_country_code if group_by is GroupBy.DESTINATION else day_of(c.c.created_at)
    answered = c.c.answered.is_(True)
    timed = and_(answered, c.c.billsec.is_not(None))
    where = [c.c.state == CallState.ENDED.value, *period.clauses()]
    if account_id is not None:
        where.append(c.c.account_id == account_id)
    grouped = key.label("group_key")
    return (
        select(
            grouped,
            func.count().label("calls"),
            func.sum(case((answered, 1), else_=0)).label("answered"),
            func.sum(case((timed, 1), else_=0)).label("timed"),
            func.sum(case((timed, c.c.billsec), else_=0)).label("billsec"),
            func.sum(func.coalesce(c.c.minutes, 0)).label("minutes"),
            # Credits typed sums: exact micro-credits in SQL, Decimals once read.
            func.sum(debit.c.delta).label("debited"),
            func.sum(correction.c.delta).label("corrected"),
        )
        .select_from(
            c.outerjoin(debit, debit.c.call_id == c.c.id)
            .outerjoin(correction, correction.c.corrects == c.c.id)
        )
        .where(*where)
        .group_by(grouped)  # by its label: one expression, whatever the driver binds
    )


def _usage_row(row: Any) -> UsageRow:
    debited = row.debited if row.debited is not None else Decimal(0)
    corrected = row.corrected if row.corrected is not None else Decimal(0)
    return UsageRow(
        key=row.group_key if isinstance(row.group_key, str) else int(row.group_key),
        calls=int(row.calls),
        answered=int(row.answered or 0),
        timed=int(row.timed or 0),
        billsec=int(row.billsec or 0),
        minutes=int(row.minutes or 0),
        credits=-(Decimal(debited) + Decimal(corrected)),
    )

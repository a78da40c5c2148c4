"""The credit ledger: one row per change of an account's credits, written in the same transaction
as the change, so the ledger always sums to the balance. Also the consistency checks behind
`c2c check`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select

from c2c.domain.credits import format_credits
from c2c.domain.states import IN_FLIGHT
from c2c.store import schema
from c2c.store.db import Database


class LedgerKind(StrEnum):
    GRANT = "grant"  # credits added by the operator (or given at creation)
    # Credits removed by the operator (no call); or, naming the call in ``corrects``, the
    # difference between a call's estimated minutes and those its CDR later measured.
    CORRECTION = "correction"
    DEBIT = "debit"  # a call's minutes at its rates


def entry(
    *,
    account_id: int,
    delta: Decimal | int,
    balance_after: Decimal | int,
    kind: LedgerKind,
    now: float,
    call_id: str | None = None,
    note: str | None = None,
    corrects: str | None = None,
    rate: Decimal | None = None,
    caller_rate: Decimal | None = None,
) -> dict[str, Any]:
    """One ledger row, for record_entries (inside the transaction that changed the balance).

    ``call_id``: the call a debit is for; ``corrects``: the call a correction is for; ``rate``
    and ``caller_rate``: what the call's minutes were charged at."""
    return {
        "rate": rate,
        "caller_rate": caller_rate,
        "account_id": account_id,
        "delta": delta,
        "balance_after": balance_after,
        "kind": kind.value,
        "call_id": call_id,
        "note": note[:200] if note else None,
        "created_at": now,
        "corrects": corrects,
    }


def record_entries(conn: Connection, entries: list[dict[str, Any]]) -> None:
    """Append ledger rows (from entry()) in one statement; inside the balance's transaction."""
    if entries:
        conn.execute(_INSERT, entries)


_INSERT = insert(schema.ledger)


@dataclass(frozen=True)
class LedgerProblem:
    account_id: int
    message: str


class Ledger:
    def __init__(self, db: Database) -> None:
        self._db = db

    def entries(self, account_id: int, limit: int = 100) -> list[dict[str, Any]]:
        """The account's newest ledger rows, newest first."""
        t = schema.ledger
        query = select(t).where(t.c.account_id == account_id).order_by(t.c.id.desc()).limit(limit)
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def for_call(self, call_id: str) -> list[dict[str, Any]]:
        """A call's ledger rows, oldest first: its debit, and the correction of an estimate."""
        t = schema.ledger
        query = (select(t).where(or_(t.c.call_id == call_id, t.c.corrects == call_id))
                 .order_by(t.c.id))
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def check(self) -> list[LedgerProblem]:
        """Every way the balances disagree with the ledger and the calls in flight.

        For each account: credits and reserved are not negative; the ledger's deltas sum to the
        credits and its newest balance_after equals them; reserved equals the credits the
        account's in-flight calls hold, and active_calls their number. An empty list means all
        is consistent.
        """
        a, lg, c = schema.accounts, schema.ledger, schema.calls
        sums = (
            select(
                lg.c.account_id,
                func.sum(lg.c.delta).label("total"),
                func.max(lg.c.id).label("last"),
            )
            .group_by(lg.c.account_id)
            .subquery()
        )
        held = (
            select(c.c.account_id, func.sum(c.c.reserved_credits).label("held"),
                   func.count().label("running"))
            .where(c.c.state.in_([s.value for s in IN_FLIGHT]))
            .group_by(c.c.account_id)
            .subquery()
        )
        query = (
            select(
                a.c.id,
                a.c.credits,
                a.c.reserved,
                sums.c.total,
                lg.c.balance_after,
                held.c.held,
                held.c.running,
                a.c.active_calls,
            )
            .outerjoin(sums, sums.c.account_id == a.c.id)
            .outerjoin(lg, lg.c.id == sums.c.last)
            .outerjoin(held, held.c.account_id == a.c.id)
            .order_by(a.c.id)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        problems: list[LedgerProblem] = []
        for (account_id, credits, reserved, total, last_balance, in_flight, running,
             active) in rows:
            total, last_balance, in_flight = total or 0, last_balance or 0, in_flight or 0
            running, active = running or 0, active or 0
            shown = format_credits
            messages = []
            if credits < 0:
                messages.append(f"credits are negative ({shown(credits)})")
            if reserved < 0:
                messages.append(f"reserved is negative ({shown(reserved)})")
            if total != credits:
                messages.append(
                    f"credits are {shown(credits)} but the ledger sums to {shown(total)}")
            if last_balance != credits:
                messages.append(f"credits are {shown(credits)} but the last ledger balance is "
                                f"{shown(last_balance)}")
            if in_flight != reserved:
                messages.append(f"reserved is {shown(reserved)} but calls in flight hold "
                                f"{shown(in_flight)}")
            if running != active:
                messages.append(f"active_calls is {active} but {running} calls are in flight")
            problems.extend(LedgerProblem(account_id, message) for message in messages)
        return problems

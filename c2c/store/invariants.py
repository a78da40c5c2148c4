"""The store's invariants, as queries: what `c2c check` verifies.

Each check is one SELECT, so it sees one consistent state of the rows it compares even while calls
are being accepted and settled (on MySQL each statement reads its own snapshot). They hold at every
commit, because every change they relate is made in one transaction (accept_call, Calls.settle,
Accounts.add_credits):

- accounts: credits and reserved are never negative; credits equal the sum of the account's ledger
  deltas and its newest balance_after; reserved equals the reserved_credits of its calls not ended
  (Ledger.check, the same rules, is reused for these);
- debits: a call is debited at most once, only once it ended, on its own account, and by its
  cost at its rates (``charged``; less only when the account ran dry, balance_after 0: credits
  never go negative);
  a call settled on an estimate may also have one correction row (``corrects`` names it, on its
  own account, once it says corrected_at): its debit and its correction together make its
  minutes;
- no call stays unsettled long past its deadline (the reconciler settles overdue calls);
- every ended call with a callback_url has its callbacks row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, or_, select, union_all

from c2c.domain.credits import format_credits
from c2c.domain.states import CallState
from c2c.store import Store, schema
from c2c.store.db import Database
from c2c.store.ledger import LedgerKind

ENDED = CallState.ENDED.value
DEBIT = LedgerKind.DEBIT.value
CORRECTION = LedgerKind.CORRECTION.value

# How long past its deadline an unsettled call may be before it counts as stuck: the reconciler
# runs every few seconds, so minutes mean it is not doing its job.
DEFAULT_STUCK_MARGIN = 300.0


@dataclass(frozen=True)
class Breach:
    invariant: str  # accounts, debits, stuck, callbacks
    subject: str  # "account 3", "call <id>", "ledger row 17"
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.subject}: {self.detail}"


def check_invariants(
    store: Store, *, now: float, stuck_margin: float = DEFAULT_STUCK_MARGIN
) -> list[Breach]:
    """Every breach of the invariants, accounts first; an empty list means all hold.

    Raises StoreError when the database cannot be read.
    """
    breaches = [
        Breach("accounts", f"account {problem.account_id}", problem.message)
        for problem in store.ledger.check()
    ]
    with Database(store.engine).read() as conn:
        breaches += _debits_without_a_settled_call(conn)
        breaches += _corrections_astray(conn)
        breaches += _settled_calls_debited_wrongly(conn)
        breaches += _stuck_calls(conn, cutoff=now - stuck_margin, now=now)
        breaches += _callbacks_missing(conn)
    return breaches


def _debits_without_a_settled_call(conn: Connection) -> list[Breach]:
    """Debit rows with no call, an unknown call, a call not ended, or another account's call."""
    lg, c = schema.ledger, schema.calls
    rows = conn.execute(
        select(
            lg.c.id,
            lg.c.call_id,
            lg.c.account_id,
            c.c.id.label("known"),
            c.c.state,
            c.c.account_id.label("call_account"),
        )
        .select_from(lg.outerjoin(c, c.c.id == lg.c.call_id))
        .where(
            lg.c.kind == DEBIT,
            or_(c.c.id.is_(None), c.c.state != ENDED, c.c.account_id != lg.c.account_id),
        )
        .order_by(lg.c.id)
    ).all()
    breaches = []
    for row in rows:
        if row.call_id is None:
            breaches.append(Breach("debits", f"ledger row {row.id}", "a debit without a call id"))
        elif row.known is None:
            breaches.append(
                Breach(
                    "debits",
                    f"call {row.call_id}",
                    f"debited (ledger row {row.id}) but no such call",
                )
            )
        elif row.state != ENDED:
            breaches.append(
                Breach(
                    "debits",
                    f"call {row.call_id}",
                    f"debited (ledger row {row.id}) but still {row.state}",
                )
            )
        else:
            breaches.append(
                Breach(
                    "debits",
                    f"call {row.call_id}",
                    f"debited from account {row.account_id} but placed by account {row.call_account}",
                )
            )
    return breaches


def _corrections_astray(conn: Connection) -> list[Breach]:
    """Rows correcting a call that is unknown, not ended, another account's, or not settled on
    an estimate and marked corrected."""
    lg, c = schema.ledger, schema.calls
    rows = conn.execute(
        select(lg.c.id, lg.c.corrects, lg.c.kind, lg.c.account_id, c.c.id.label("known"),
               c.c.state, c.c.account_id.label("call_account"), c.c.estimated,
               c.c.corrected_at)
        .select_from(lg.outerjoin(c, c.c.id == lg.c.corrects))
        .where(
            lg.c.corrects.is_not(None),
            or_(lg.c.kind != CORRECTION, c.c.id.is_(None), c.c.state != ENDED,
                c.c.account_id != lg.c.account_id, c.c.estimated.is_(None),
                c.c.estimated.is_(False), c.c.corrected_at.is_(None)),
        )
        .order_by(lg.c.id)
    ).all()
    breaches = []
    for row in rows:
        subject, what = f"call {row.corrects}", f"corrected (ledger row {row.id})"
        if row.kind != CORRECTION:
            detail = f"ledger row {row.id} names it as corrected but is a {row.kind}"
        elif row.known is None:
            detail = f"{what} but no such call"
        elif row.state != ENDED:
            detail = f"{what} but still {row.state}"
        elif row.call_account != row.account_id:
            detail = (f"corrected on account {row.account_id} but placed by account "
                      f"{row.call_account}")
        elif not row.estimated:
            detail = f"{what} but not settled on an estimate"
        else:
            detail = f"{what} but its row has no corrected_at"
        breaches.append(Breach("debits", subject, detail))
    return breaches


def _settled_calls_debited_wrongly(conn: Connection) -> list[Breach]:
    """Ended calls whose debit is doubled, or whose debit and correction do not make their
    minutes (less only when the account ran dry)."""
    lg, c = schema.ledger, schema.calls
    entries = union_all(
        select(lg.c.call_id.label("call_id"), lg.c.delta, lg.c.balance_after,
               literal(1).label("debit"))
        .where(lg.c.kind == DEBIT, lg.c.call_id.is_not(None)),
        select(lg.c.corrects.label("call_id"), lg.c.delta, lg.c.balance_after,
               literal(0).label("debit"))
        .where(lg.c.corrects.is_not(None)),
    ).subquery()
    debits = (
        select(
            entries.c.call_id,
            func.count().label("entries"),
            func.sum(entries.c.debit).label("rows"),
            func.sum(-entries.c.delta).label("debited"),
            func.min(entries.c.balance_after).label("balance_after"),
        )
        .group_by(entries.c.call_id)
        .subquery()
    )
    # What the call cost at its rates (its minutes, at the flat rate of 1 credit per minute).
    charged = func.coalesce(c.c.charged, 0)
    # What its billed minutes cost at its rates, never more than it reserved (Calls.settle).
    priced = (func.coalesce(c.c.minutes, 0) * c.c.rate
              + func.coalesce(c.c.caller_minutes, 0) * func.coalesce(c.c.caller_rate, 0))
    cost = case((priced > c.c.reserved_credits, c.c.reserved_credits), else_=priced)
    rows = conn.execute(
        select(
            c.c.id,
            charged.label("charged"),
            cost.label("cost"),
            debits.c.entries,
            debits.c.rows,
            debits.c.debited,
            debits.c.balance_after,
        )
        .select_from(c.outerjoin(debits, debits.c.call_id == c.c.id))
        .where(
            c.c.state == ENDED,
            or_(
                debits.c.rows > 1,
                cost != charged,
                and_(charged > 0,
                     or_(debits.c.entries.is_(None), debits.c.debited != charged)),
                # A debit of a call that costs nothing: wrong, unless a correction refunded it.
                and_(charged == 0, debits.c.entries.is_not(None),
                     or_(debits.c.debited != 0, debits.c.entries == debits.c.rows)),
            ),
        )
        .order_by(c.c.id)
    ).all()
    breaches = []
    shown = format_credits
    for row in rows:
        subject = f"call {row.id}"
        if row.rows is not None and row.rows > 1:
            breaches.append(Breach("debits", subject, f"debited {row.rows} times (settled twice?)"))
        elif row.cost != row.charged:
            breaches.append(Breach("debits", subject, f"charged {shown(row.charged)} but its "
                                   f"minutes at its rates cost {shown(row.cost)}"))
        elif row.entries is None:
            breaches.append(Breach("debits", subject,
                                   f"settled costing {shown(row.charged)} but never debited"))
        elif row.charged == 0:
            breaches.append(
                Breach("debits", subject, f"cost nothing but debited {shown(row.debited)}")
            )
        elif row.debited > row.charged:
            breaches.append(Breach("debits", subject, f"debited {shown(row.debited)} for a "
                                                      f"call costing {shown(row.charged)}"))
        elif row.balance_after != 0:
            # Less than the cost is right only when the credits ran out (never below 0).
            breaches.append(
                Breach(
                    "debits",
                    subject,
                    f"debited {shown(row.debited)} of {shown(row.charged)} with "
                    f"{shown(row.balance_after)} left",
                )
            )
    return breaches


def _stuck_calls(conn: Connection, *, cutoff: float, now: float) -> list[Breach]:
    c = schema.calls
    rows = conn.execute(
        select(c.c.id, c.c.state, c.c.switch, c.c.deadline_at)
        .where(c.c.state != ENDED, c.c.deadline_at < cutoff)
        .order_by(c.c.deadline_at)
    ).all()
    return [
        Breach(
            "stuck",
            f"call {row.id}",
            f"still {row.state} on {row.switch}, {now - row.deadline_at:.0f} s past its deadline",
        )
        for row in rows
    ]


def _callbacks_missing(conn: Connection) -> list[Breach]:
    c, cb = schema.calls, schema.callbacks
    rows = conn.execute(
        select(c.c.id)
        .select_from(c.outerjoin(cb, cb.c.call_id == c.c.id))
        .where(
            c.c.state == ENDED,
            c.c.callback_url.is_not(None),
            c.c.callback_url != "",
            cb.c.id.is_(None),
        )
        .order_by(c.c.id)
    ).all()
    return [
        Breach("callbacks", f"call {row.id}", "settled with a callback_url but no callback queued")
        for row in rows
    ]

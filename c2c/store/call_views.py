"""The customer's read queries: one call of an account, and a page of its calls, each with its
callback's delivery. Read-only, one statement each.

Every query names the account: a call of another account is simply not found. A page is a
keyset page, newest first on (created_at, id): the next page starts strictly after the last row
of this one, so calls accepted meanwhile (newer, on earlier pages) never shift it, and no row is
scanned twice (no OFFSET). It walks ``ix_calls_account_created``: on InnoDB a secondary index
ends with the primary key, so it is (account_id, created_at, id) and serves the ORDER BY as it
is; on SQLite rows tied on created_at (the same microsecond) are put in id order on the way.
A filter on an in-flight state walks ``ix_calls_state_switch`` instead (see _of_account), so no
new index was needed (EXPLAINed on both with 60,000 calls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.orm import aliased

from c2c.domain.call_status import PublicState, rows_in
from c2c.store import schema
from c2c.store.db import Database

MAX_PAGE = 1000  # a bound of the store's own; the API asks for far fewer


@dataclass(frozen=True)
class Position:
    """Where a page starts: strictly after (older than) the call with these values."""

    created_at: float
    call_id: str


_c, _cb, _at = schema.calls, schema.callbacks, schema.callback_attempts
_last = aliased(_at, name="last_attempt")
# The callback's latest attempt: attempts are recorded in the order they finish.
_LAST_ATTEMPT_ID = (
    select(func.max(_at.c.id)).where(_at.c.callback_id == _cb.c.id).scalar_subquery()
)

_COLUMNS = (
    _c.c.id,
    _c.c.state,
    _c.c.confirm,
    _c.c.caller_country_code,
    _c.c.caller_number,
    _c.c.callee_country_code,
    _c.c.callee_number,
    _c.c.created_at,
    _c.c.caller_answered_at,
    _c.c.bridged_at,
    _c.c.ended_at,
    _c.c.answered,
    _c.c.minutes,
    _c.c.reason,
    _c.c.estimated,
    _c.c.corrected_at,
    _c.c.max_minutes,
    _c.c.rate,
    _c.c.caller_rate,
    _c.c.charged,
    _c.c.switch,
    _c.c.caller_hangup_cause,
    _c.c.caller_sip_status,
    _c.c.callee_hangup_cause,
    _c.c.callee_sip_status,
    _c.c.callee_fate,
    _c.c.originate_error,
    _c.c.callback_url.is_not(None).label("has_callback"),
    _cb.c.status.label("callback_status"),
    _cb.c.attempts.label("callback_attempts"),
    _cb.c.delivered_at.label("callback_delivered_at"),
    _last.c.http_status.label("callback_last_http_status"),
    _last.c.at.label("callback_last_attempt_at"),
)


def _views() -> Select[Any]:
    return (
        select(*_COLUMNS)
        .select_from(_c)
        .outerjoin(_cb, _cb.c.call_id == _c.c.id)
        .outerjoin(_last, and_(_last.c.callback_id == _cb.c.id, _last.c.id == _LAST_ATTEMPT_ID))
    )


def _in_state(public: PublicState) -> ColumnElement[bool]:
    condition = rows_in(public)
    clause = _c.c.state == condition.state.value
    if condition.confirm_in is None:
        return clause
    values = sorted(v for v in condition.confirm_in if v is not None)
    confirm: ColumnElement[bool] = _c.c.confirm.in_(values)
    if None in condition.confirm_in:
        confirm = or_(confirm, _c.c.confirm.is_(None))
    return and_(clause, confirm)


def _of_account(account_id: int, state: PublicState | None) -> ColumnElement[bool]:
    if state is None or state is PublicState.ENDED:
        return _c.c.account_id == account_id
    # An in-flight state has few rows, however many calls the account made: walk those through
    # ix_calls_state_switch rather than the account's whole history through its index, which
    # SQLite would pick (it also serves the ORDER BY). "+ 0" keeps the planners off the latter.
    return (_c.c.account_id + 0) == account_id


def _after(position: Position) -> ColumnElement[bool]:
    t, call_id = position.created_at, position.call_id
    # The redundant first term gives both planners a plain range on the index's created_at.
    return and_(
        _c.c.created_at <= t,
        or_(_c.c.created_at < t, and_(_c.c.created_at == t, _c.c.id < call_id)),
    )


class CallViews:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, account_id: int, call_id: str) -> dict[str, Any] | None:
        """The account's call with this id, or None (another account's call is None too)."""
        query = _views().where(_c.c.id == call_id, _c.c.account_id == account_id)
        with self._db.read() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def page(
        self,
        account_id: int,
        *,
        limit: int,
        state: PublicState | None = None,
        since: float | None = None,
        after: Position | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` of the account's calls, newest first: those in ``state``, created at
        or after ``since``, older than ``after``; and whether more follow."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1..{MAX_PAGE}")
        query = (
            _views()
            .where(
                _of_account(account_id, state),
                true() if state is None else _in_state(state),
                true() if since is None else _c.c.created_at >= since,
                true() if after is None else _after(after),
            )
            .order_by(_c.c.created_at.desc(), _c.c.id.desc())
            .limit(limit + 1)
        )
        with self._db.read() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        return rows[:limit], len(rows) > limit

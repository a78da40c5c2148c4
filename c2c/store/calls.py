"""Call rows: lookups, forward-only state changes, the legs' ends, and settling exactly once.

Rows are returned as plain dicts keyed by column name (times are Unix seconds).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import Connection, Update, and_, bindparam, case, func, insert, or_, select, update

from c2c.domain.callback_url import build_callback_url
from c2c.domain.confirmation import Confirmation
from c2c.domain.credits import DEFAULT_RATE, cost, format_credits, started_minutes
from c2c.domain.progress import ProgressEvent, decode_events
from c2c.domain.states import IN_FLIGHT, CallState
from c2c.store import ledger, schema
from c2c.store.accept import utc_day
from c2c.store.callbacks import CallbackJob, claimed_jobs
from c2c.store.db import Database
from c2c.store.progress import Report, write_events

log = logging.getLogger(__name__)

_IN_FLIGHT = [s.value for s in IN_FLIGHT]

# What the request decided, and the billing: never changed by advance() or settle()'s extras.
_FIXED = frozenset(
    {
        "id",
        "account_id",
        "state",
        "caller_country_code",
        "caller_number",
        "callee_country_code",
        "callee_number",
        "caller_id",
        "callback_url",
        "secret",
        "max_minutes",
        "switch",
        "job_uuid",
        "caller_uuid",
        "callee_uuid",
        "created_at",
        "answered",
        "minutes",
        "reason",
        "ended_at",
        "estimated",
        "corrected_at",
        "status_callback_url",
        "status_events",
        "hangup_requested_at",  # only request_hangup() sets it
    }
)
SETTABLE_FIELDS = frozenset(schema.calls.c.keys()) - _FIXED

_LEG_COLUMNS = {
    "caller": ("caller_hangup_cause", "caller_sip_status", "caller_gone_at"),
    "callee": ("callee_hangup_cause", "callee_sip_status", "callee_gone_at"),
}

# Columns whose "not known yet" is a value, not NULL: filling one writes over that value, and never
# over NULL (for confirm, NULL means the caller was not asked, and no event changes that).
_UNDECIDED = {"confirm": Confirmation.REQUIRED.value}

CallbackUrlBuilder = Callable[[Mapping[str, Any]], str]


class Outcome(Protocol):
    """What settling records (c2c.calls.outcome.CallOutcome fits; so does SettledOutcome)."""

    @property
    def answered(self) -> bool: ...  # the two legs were bridged

    @property
    def minutes(self) -> int: ...  # billed minutes (capped at the call's max_minutes here too)

    @property
    def reason(self) -> int | None: ...  # c2c.domain.states.Reason; ignored when answered

    @property
    def billsec(self) -> int | None: ...  # seconds connected, as measured

    @property
    def confirm(self) -> str | None: ...  # the confirm column to record; None: leave it

    @property
    def estimated(self) -> bool: ...  # from what the store saw, the call's end never seen


@dataclass(frozen=True)
class SettledOutcome:
    """A plain Outcome, for callers without a CallOutcome (tests, tools)."""

    answered: bool
    minutes: int
    reason: int | None
    billsec: int | None
    confirm: str | None = None
    estimated: bool = False


OutcomeT = TypeVar("OutcomeT", bound=Outcome)

# What a leg's end (an event or a CDR arriving after an estimated settlement) measures: called
# with the ended row, its empty fields filled from the leg's end, and the fields the leg's end
# gave; returns the outcome as measured, or None when the call's end is still not known.
Remeasure = Callable[[Mapping[str, Any], Mapping[str, Any]], Outcome | None]


def _check_fields(fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - SETTABLE_FIELDS
    if unknown:
        raise ValueError(f"not settable on a call: {sorted(unknown)}")


def _state(value: CallState | str) -> CallState:
    return value if isinstance(value, CallState) else CallState(value)


def _empty(column: Any) -> Any:
    """SQL: the column still waits for its value (see _UNDECIDED)."""
    undecided = _UNDECIDED.get(column.key)
    return column.is_(None) if undecided is None else column == undecided


def _filled(column: Any, value: Any) -> Any:
    """SQL: the column's value after filling it with ``value`` if it is still empty."""
    undecided = _UNDECIDED.get(column.key)
    if undecided is None:
        return func.coalesce(column, value)
    return case((column == undecided, value), else_=column)


def _is_empty(name: str, current: Any) -> bool:
    """The same as _empty, of a value already read."""
    undecided = _UNDECIDED.get(name)
    return current is None if undecided is None else current == undecided


class Calls:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, call_id: str) -> dict[str, Any] | None:
        with self._db.read() as conn:
            row = conn.execute(_GET, {"b_id": call_id}).mappings().first()
        return dict(row) if row else None

    def find_by_job_uuid(self, job_uuid: str) -> dict[str, Any] | None:
        with self._db.read() as conn:
            row = conn.execute(_BY_JOB, {"b_job_uuid": job_uuid}).mappings().first()
        return dict(row) if row else None

    def in_flight_by_switch(self) -> dict[str, int]:
        """How many calls each switch has that are not yet settled."""
        c = schema.calls
        query = (
            select(c.c.switch, func.count()).where(c.c.state.in_(_IN_FLIGHT)).group_by(c.c.switch)
        )
        with self._db.read() as conn:
            return {switch: int(count) for switch, count in conn.execute(query)}

    def in_flight(self, switch: str) -> list[dict[str, Any]]:
        """The unsettled calls placed on ``switch``, oldest first (for reconciling)."""
        c = schema.calls
        query = (
            select(c)
            .where(c.c.state.in_(_IN_FLIGHT), c.c.switch == switch)
            .order_by(c.c.created_at)
        )
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def overdue(self, now: float, limit: int = 100) -> list[dict[str, Any]]:
        """Unsettled calls (on any switch) whose deadline has passed, oldest deadline first."""
        c = schema.calls
        query = (
            select(c)
            .where(c.c.state.in_(_IN_FLIGHT), c.c.deadline_at < now)
            .order_by(c.c.deadline_at)
            .limit(limit)
        )
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def advance(
        self,
        call_id: str,
        from_states: Iterable[CallState | str],
        to_state: CallState | str,
        *,
        fill: Mapping[str, Any] | None = None,
        requires: Iterable[str] = (),
        report: Report | None = None,
        now: float | None = None,
        unless_set: Iterable[str] = (),
        **fields: Any,
    ) -> bool:
        """Move the call to ``to_state`` (setting ``fields``) if it is in one of ``from_states``
        and every column named in ``requires`` is set; in the same UPDATE, fill the ``fill``
        fields that are still empty (as set_if_null), whether or not the state moves (so
        ``fill={"confirm": "confirmed"}`` costs no round trip of its own). A row on which a
        column named in ``unless_set`` is set is left alone altogether (its caller reads it
        then: for ``hangup_requested_at``, c2c.calls.listener; the common case stays one UPDATE).

        ``report``: the progress event this move reports. When the state moves and the call
        asked for that event, its webhook is written in the same transaction (_advance_asking).
        The UPDATE leaves such calls alone, so a call that asked for none (or for others) still
        costs this one statement; only when it changes nothing is the row read. ``now``: when
        the webhook is written (default: the clock).

        Forward only: every from-state must come before to_state, and 'ended' is reached only
        through settle(). Returns whether the row changed (False: nothing to do, e.g. the same
        event arrived twice).
        """
        target = _state(to_state)
        sources = {_state(s) for s in from_states}
        if target is CallState.ENDED:
            raise ValueError("a call ends only through settle()")
        if not sources or any(s.rank >= target.rank for s in sources):
            raise ValueError(
                f"not a forward move: {sorted(s.value for s in sources)} -> {target.value}"
            )
        given = {name: value for name, value in (fill or {}).items() if value is not None}
        required = tuple(sorted(requires))
        unless = tuple(sorted(unless_set))
        _check_fields({**fields, **given})
        _check_fields(dict.fromkeys(required))
        for name in unless:
            if name not in schema.calls.c:
                raise ValueError(f"not a column of calls: {name}")
        shape = (tuple(sorted(s.value for s in sources)), target.value, tuple(fields),
                 tuple(given), required, unless)
        statement = _advance_statement(*shape)
        params = {"b_id": call_id, **{f"b_set_{k}": v for k, v in fields.items()},
                  **{f"b_fill_{k}": v for k, v in given.items()}}
        with self._db.write() as conn:
            if report is None:
                changed = conn.execute(statement, params).rowcount
            else:
                changed = conn.execute(_advance_statement(*shape, unasked=report.event),
                                       params).rowcount
                if not changed:
                    changed = _advance_asking(conn, call_id, statement, params, sources,
                                              required, report,
                                              time.time() if now is None else now)
        if changed:
            log.debug("call %s -> %s", call_id, target.value)
        return bool(changed)

    def needing_attention(self, switch: str, now: float, *,
                          hangups_before: float | None = None) -> list[dict[str, Any]]:
        """Unsettled calls on ``switch`` that may be ready to settle or need a look: a leg's end
        or an originate error is recorded, the recheck time or the deadline has come, or (with
        ``hangups_before``) its hangup was requested before then. A superset: the caller
        decides (c2c.calls.settlement.readiness, c2c.calls.hangup)."""
        c = schema.calls
        hangups = ([] if hangups_before is None
                   else [c.c.hangup_requested_at <= hangups_before])
        query = (
            select(c)
            .where(
                c.c.state.in_(_IN_FLIGHT),
                c.c.switch == switch,
                or_(
                    c.c.caller_gone_at.is_not(None),
                    c.c.callee_gone_at.is_not(None),
                    c.c.originate_error.is_not(None),
                    c.c.recheck_at <= now,
                    c.c.deadline_at <= now,
                    *hangups,
                ),
            )
            .order_by(c.c.created_at)
        )
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def set_if_null(self, call_id: str, fields: Mapping[str, Any]) -> bool:
        """Fill bookkeeping fields (times, causes, recheck_at...) that are still empty.

        A field already set keeps its value and a None value sets nothing, so the first report
        wins and replaying an event or a CDR changes nothing. ``confirm`` is empty while it says
        'required' (and NULL is never filled: that caller was not asked). No state change.
        Returns whether anything was set.
        """
        _check_fields(fields)
        c = schema.calls
        given = {name: value for name, value in fields.items() if value is not None}
        if not given:
            return False
        values = {name: _filled(c.c[name], value) for name, value in given.items()}
        where = and_(c.c.id == call_id, or_(*(_empty(c.c[name]) for name in given)))
        with self._db.write() as conn:
            return bool(conn.execute(update(c).where(where).values(**values)).rowcount)

    def fill_and_settle_if(
        self,
        call_id: str,
        fields: Mapping[str, Any],
        decide: Callable[[Mapping[str, Any]], tuple[OutcomeT, float] | None],
        *,
        callback_url_builder: CallbackUrlBuilder = build_callback_url,
        now: float | None = None,
        remeasure: Remeasure | None = None,
    ) -> OutcomeT | None:
        """Fill the empty ``fields`` (as set_if_null) and, if ``decide`` of the row as it then
        stands returns (outcome, ended_at), settle the call with them (as settle) in the same
        transaction, the row locked throughout: one transaction for a leg's end, not three.

        An ended call gets its empty fields filled and nothing else, unless it was settled on
        an estimate that ``remeasure`` now measures: then it is corrected, once (_correct).
        Returns the outcome when this call settled it, else None (not ready, already ended, or
        unknown).
        """
        _check_fields(fields)
        now = time.time() if now is None else now

        def work(conn: Connection) -> OutcomeT | None:
            found = _fill_locked(conn, call_id, fields)
            if found is None:
                return None
            call, filled = found
            if call["state"] == CallState.ENDED.value:
                _fill_or_correct(conn, call, filled, fields, remeasure, now)
                return None
            decision = decide(call)
            if decision is None:
                if filled:
                    conn.execute(_UPDATE_CALL, {"b_id": call_id, **filled})
                return None
            outcome, ended_at = decision
            _settle_rows(conn, [_Settling(call, outcome, ended_at, filled)],
                         callback_url_builder, now)
            return outcome

        settled = self._db.write_retrying(work)
        if settled is not None:
            log.debug("call %s settled on a leg's end", call_id)
        return settled

    def fill_and_check(
        self,
        call_id: str,
        fields: Mapping[str, Any],
        ready: Callable[[Mapping[str, Any]], bool],
        *,
        remeasure: Remeasure | None = None,
        now: float | None = None,
    ) -> bool:
        """Fill the empty ``fields`` (as set_if_null), the row locked; returns ``ready`` of the
        row as it then stands (False for an ended or unknown call). For settling in groups:
        settle_ready then decides again, under its own lock. An ended call settled on an
        estimate is corrected as in fill_and_settle_if."""
        _check_fields(fields)
        now = time.time() if now is None else now
        # In a group, the row as this transaction's last fill of it left it (the other leg's
        # end, a moment before): locked already, so not read again.
        key = ("calls.fill", call_id)
        known = self._db.locked_row(key)
        kept: list[dict[str, Any]] = []

        def work(conn: Connection) -> bool:
            found = (_fill_locked(conn, call_id, fields) if known is None
                     else _filled_row(known, fields))
            if found is None:
                return False
            call, filled = found
            if call["state"] == CallState.ENDED.value:
                _fill_or_correct(conn, call, filled, fields, remeasure, now)
                return False
            if filled:
                conn.execute(_UPDATE_CALL, {"b_id": call_id, **filled})
            kept.append(call)
            return ready(call)

        # Only this call's row changes (a correction of an ended call is never kept).
        decided = self._db.write_retrying(work, keeps_rows=True)
        if kept:
            self._db.keep_locked_row(key, kept[-1])
        return decided

    def settle_ready(
        self,
        call_ids: Iterable[str],
        decide: Callable[[Mapping[str, Any]], tuple[OutcomeT, float] | None],
        *,
        callback_url_builder: CallbackUrlBuilder = build_callback_url,
        now: float | None = None,
        claim_callbacks: tuple[float, Callable[[list[CallbackJob]], None]] | None = None,
    ) -> list[tuple[str, OutcomeT]]:
        """Settle, in one transaction, every call of ``call_ids`` that is not ended and for
        which ``decide`` of its locked row gives (outcome, ended_at); as settle() does for one.

        Each account's row is locked once for the whole group, after the calls' rows: the hot
        row of a busy account is held for a few round trips per group, not per call.
        ``claim_callbacks``: (lease seconds, take): the callbacks it writes are written claimed
        for that long and, once committed, given to ``take`` as claim_due would return them
        (the dispatcher of this process sends them without claiming; if it never does, the
        claim expires and any dispatcher claims them). Returns (call id, outcome) of the calls
        this settled.
        """
        wanted = sorted(set(call_ids))
        now = time.time() if now is None else now
        claim_until = None if claim_callbacks is None else now + claim_callbacks[0]

        def work(conn: Connection) -> tuple[list[tuple[str, OutcomeT]], list[CallbackJob]]:
            if not wanted:
                return [], []
            items: list[_Settling] = []
            decided: list[tuple[str, OutcomeT]] = []
            for row in conn.execute(_GET_MANY_LOCKED, {"b_ids": wanted}).mappings():
                call = dict(row)
                decision = None if call["state"] == CallState.ENDED.value else decide(call)
                if decision is not None:
                    items.append(_Settling(call, decision[0], decision[1], {}))
                    decided.append((call["id"], decision[0]))
            if not items:
                return decided, []
            with_callbacks = _settle_rows(conn, items, callback_url_builder, now, claim_until)
            if claim_until is None:
                return decided, []
            return decided, claimed_jobs(conn, with_callbacks, now)

        settled, jobs = self._db.write_retrying(work)
        if settled:
            log.debug("%d call(s) settled in one transaction", len(settled))
        if jobs and claim_callbacks is not None:
            take = claim_callbacks[1]
            self._db.after_commit(lambda: take(jobs))
        return settled

    def mark_alive(self, call_ids: Iterable[str], at: float) -> int:
        """Record that these calls' channels were found alive at ``at`` (a reconciliation, a
        ``uuid_exists``): what an estimate bills up to if their end is never seen. Only moves
        alive_at forward, only on calls not ended; one UPDATE. Returns how many rows changed."""
        ids = sorted(set(call_ids))
        if not ids:
            return 0
        c = schema.calls
        statement = (
            update(c)
            .where(c.c.id.in_(ids), c.c.state.in_(_IN_FLIGHT),
                   or_(c.c.alive_at.is_(None), c.c.alive_at < at))
            .values(alive_at=at)
        )
        with self._db.write() as conn:
            return int(conn.execute(statement).rowcount)

    def request_hangup(self, call_id: str, account_id: int, at: float) -> bool:
        """Record that the account asked to end its call (POST /api/calls/{id}/hangup), once:
        only on a call not ended, not asked before, with no leg's end and no originate error
        recorded (such a call is ending by itself). Forward only: the first request's time
        stays. Returns whether this request recorded it."""
        c = schema.calls
        statement = (
            update(c)
            .where(
                c.c.id == call_id,
                c.c.account_id == account_id,
                c.c.state.in_(_IN_FLIGHT),
                c.c.hangup_requested_at.is_(None),
                c.c.caller_gone_at.is_(None),
                c.c.callee_gone_at.is_(None),
                c.c.originate_error.is_(None),
            )
            .values(hangup_requested_at=at)
        )
        with self._db.write() as conn:
            recorded = bool(conn.execute(statement).rowcount)
        if recorded:
            log.info("call %s: hangup requested", call_id)
        return recorded

    def set_fields(self, call_id: str, fields: Mapping[str, Any]) -> bool:
        """Overwrite bookkeeping fields (e.g. push recheck_at or deadline_at later), whatever
        the state. Returns whether the call exists."""
        _check_fields(fields)
        if not fields:
            return False
        c = schema.calls
        with self._db.write() as conn:
            return bool(conn.execute(update(c).where(c.c.id == call_id).values(**fields)).rowcount)

    def record_leg_gone(
        self,
        call_id: str,
        leg: Literal["caller", "callee"],
        cause: str | None,
        sip_status: str | None,
        at: float,
    ) -> bool:
        """Record that a leg's channel ended: its hangup cause, SIP status and time.

        Idempotent: each of the three is set only while still empty, so the first report (an
        event or a CDR) wins and a replay changes nothing. Returns whether anything was set.
        """
        cause_column, sip_column, gone_column = _LEG_COLUMNS[leg]
        return self.set_if_null(
            call_id,
            {
                gone_column: at,
                cause_column: cause[:64] if cause else None,
                sip_column: sip_status[:8] if sip_status else None,
            },
        )

    def settle(
        self,
        call_id: str,
        outcome: Outcome,
        *,
        ended_at: float,
        callback_url_builder: CallbackUrlBuilder = build_callback_url,
        now: float | None = None,
        extra_fields: Mapping[str, Any] | None = None,
    ) -> bool:
        """End the call exactly once, in one transaction; returns whether this call did it.

        Marks the row 'ended' with ``outcome`` (minutes capped at the call's max_minutes; reason
        None when answered) and any ``extra_fields``; debits the minutes from the account's
        credits (never below 0; a 'debit' ledger row when minutes > 0); releases the
        reservation; and, when the call has a callback_url, enqueues the callback with the full
        URL (``callback_url_builder`` of the settled row), due at ``now``. A call already ended,
        or unknown, changes nothing and returns False.
        """
        fields = dict(extra_fields or {})
        _check_fields(fields)
        now = time.time() if now is None else now

        def work(conn: Connection) -> bool:
            return _settle(conn, call_id, outcome, ended_at, callback_url_builder, now, fields)

        settled = self._db.write_retrying(work)
        if settled:
            log.info(
                "call %s settled: answered=%s minutes=%d reason=%s",
                call_id,
                outcome.answered,
                outcome.minutes,
                outcome.reason,
            )
        return settled

    # Named like the builtin, so it comes last: annotations above still mean the builtin.
    def list(
        self,
        limit: int = 50,
        state: CallState | str | None = None,
        account_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """The newest calls first, optionally only in one state or of one account."""
        c = schema.calls
        query = select(c).order_by(c.c.created_at.desc(), c.c.id).limit(limit)
        if state is not None:
            query = query.where(c.c.state == _state(state).value)
        if account_id is not None:
            query = query.where(c.c.account_id == account_id)
        with self._db.read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]


def _advance_asking(
    conn: Connection,
    call_id: str,
    statement: Update,
    params: Mapping[str, Any],
    sources: set[CallState],
    required: tuple[str, ...],
    report: Report,
    now: float,
) -> int:
    """advance() for a call its first UPDATE left alone: one that asked for ``report``'s event
    (or an event with nothing to change). Under the row's lock, the UPDATE again, and the
    webhook if the state moves (written at ``now``). Returns the rows changed."""
    call = conn.execute(_GET_LOCKED, {"b_id": call_id}).mappings().first()
    if call is None or report.event not in decode_events(call["status_events"]):
        return 0
    moves = _state(call["state"]) in sources and all(call[name] is not None
                                                      for name in required)
    changed = int(conn.execute(statement, params).rowcount)
    if moves and changed:  # not moved when the UPDATE left the row alone (``unless_set``)
        write_events(conn, [(dict(call), [report])], now)
    return changed


def _settle(
    conn: Connection,
    call_id: str,
    outcome: Outcome,
    ended_at: float,
    builder: CallbackUrlBuilder,
    now: float,
    fields: Mapping[str, Any],
) -> bool:
    call = conn.execute(_GET_LOCKED, {"b_id": call_id}).mappings().first()
    if call is None:
        log.warning("call %s: settle of an unknown call ignored", call_id)
        return False
    if call["state"] == CallState.ENDED.value:
        return False
    _settle_rows(conn, [_Settling(dict(call), outcome, ended_at, fields)], builder, now)
    return True


def _fill_locked(
    conn: Connection, call_id: str, fields: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Lock the call's row; (the row with the empty ``fields`` filled, what was filled)."""
    row = conn.execute(_GET_LOCKED, {"b_id": call_id}).mappings().first()
    return None if row is None else _filled_row(dict(row), fields)


def _filled_row(
    call: dict[str, Any], fields: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the row with the empty ``fields`` filled, what was filled)."""
    filled = {name: value for name, value in fields.items()
              if value is not None and _is_empty(name, call[name])}
    call.update(filled)
    return call, filled


@dataclass(frozen=True)
class _Settling:
    call: Mapping[str, Any]  # its row, locked by this transaction and not ended
    outcome: Outcome
    ended_at: float
    fields: Mapping[str, Any]  # written with the outcome


def _settle_rows(
    conn: Connection, items: list[_Settling], builder: CallbackUrlBuilder, now: float,
    claim_until: float | None = None,
) -> list[str]:
    """Settle calls whose rows this transaction has locked and found not ended: each row ended
    with its outcome, each account debited and its reservations released (its row locked once,
    in id order, after the calls'), the ledger rows and the callbacks written (claimed until
    ``claim_until`` when given). Returns the ids of the calls whose callback it wrote."""
    ended: list[tuple[Mapping[str, Any], dict[str, Any]]] = []
    for item in items:
        call = item.call
        answered = bool(item.outcome.answered)
        # Never more than the limit, whatever the switch measured; nothing if never connected.
        billable = (max(0, min(int(item.outcome.minutes), int(call["max_minutes"])))
                    if answered else 0)
        result = {
            **item.fields,
            "state": CallState.ENDED.value,
            "answered": answered,
            "minutes": billable,
            "reason": (None if answered or item.outcome.reason is None
                       else int(item.outcome.reason)),
            "billsec": item.outcome.billsec,
            "ended_at": item.ended_at,
        }
        confirm = item.outcome.confirm
        if confirm is not None:
            result["confirm"] = Confirmation(confirm).value  # refuses a value not ours
        if item.outcome.estimated:
            result["estimated"] = True
        result["charged"], result["caller_minutes"] = charge_of(call, result)
        conn.execute(_UPDATE_CALL, {"b_id": call["id"], **result})
        ended.append((call, result))

    account_ids = sorted({int(call["account_id"]) for call, _ in ended})
    balances = {int(row.id): _Balance.of(row)
                for row in conn.execute(_ACCOUNTS_LOCKED, {"b_ids": account_ids})}
    entries: list[dict[str, Any]] = []
    for call, result in ended:
        balance = balances[int(call["account_id"])]
        charge = result["charged"]
        debit = min(charge, balance.credits)  # credits never go negative
        balance.credits -= debit
        held = reserved_by(call)
        balance.reserved = max(Decimal(0), balance.reserved - held)
        balance.active_calls = max(0, balance.active_calls - 1)
        if balance.credits_day == utc_day(float(call["created_at"])):
            # The daily limit counts what calls cost: what this one held but did not use is back.
            balance.day_credits = max(Decimal(0), balance.day_credits - (held - charge))
        if charge > 0:
            entries.append(ledger.entry(
                account_id=call["account_id"],
                delta=-debit,
                balance_after=balance.credits,
                kind=ledger.LedgerKind.DEBIT,
                call_id=call["id"],
                note=None if debit == charge else (
                    f"{format_credits(charge)} used, {format_credits(debit)} left to debit"),
                now=now,
                rate=call_rate(call),
                caller_rate=call["caller_rate"],
            ))
    for account_id in account_ids:
        conn.execute(_UPDATE_ACCOUNT, {"b_id": account_id, **balances[account_id].values()})
    ledger.record_entries(conn, entries)
    callbacks = [
        {
            "call_id": call["id"],
            "account_id": call["account_id"],
            "url": builder({**call, **result}),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "claimed_until": claim_until,
        }
        for call, result in ended
        if call["callback_url"]
    ]
    if callbacks:
        conn.execute(_INSERT_CALLBACK, callbacks)
    reports = [({**call, **result}, _settlement_reports({**call, **result}))
               for call, result in ended if call["status_events"]]
    if reports:
        write_events(conn, reports, now)
    return [callback["call_id"] for callback in callbacks]


@dataclass
class _Balance:
    """An account's row as settlement changes it (locked by the settling transaction)."""

    credits: Decimal
    reserved: Decimal
    active_calls: int
    credits_day: int | None
    day_credits: Decimal

    @classmethod
    def of(cls, row: Any) -> _Balance:
        return cls(Decimal(row.credits), Decimal(row.reserved), int(row.active_calls or 0),
                   row.credits_day, Decimal(row.day_credits or 0))

    def values(self) -> dict[str, Any]:
        return {"credits": self.credits, "reserved": self.reserved,
                "active_calls": self.active_calls, "day_credits": self.day_credits}


def call_rate(call: Mapping[str, Any]) -> Decimal:
    """Credits per minute of the callee's talk, fixed at acceptance (1 for a call older than
    rates: its row was filled so by the schema upgrade, but say it once here)."""
    rate = call.get("rate")
    return DEFAULT_RATE if rate is None else Decimal(rate)


def reserved_by(call: Mapping[str, Any]) -> Decimal:
    """The credits the call's accept reserved."""
    held = call.get("reserved_credits")
    return Decimal(int(call["max_minutes"])) if held is None else Decimal(held)


def charge_of(call: Mapping[str, Any], result: Mapping[str, Any]) -> tuple[Decimal, int | None]:
    """What a call costs (its billed minutes at its rates, never more than it reserved) and the
    caller leg's billed minutes (None when that leg is not billed): every started minute from
    the caller's answer to the leg's end (its hangup, else the call's end)."""
    caller_rate = call.get("caller_rate")
    caller_minutes = None
    if caller_rate is not None:
        answered_at, end = call["caller_answered_at"], (call["caller_gone_at"]
                                                        or result.get("ended_at"))
        caller_minutes = (started_minutes(float(end) - float(answered_at))
                          if answered_at is not None and end is not None else 0)
    charge = cost(int(result["minutes"] or 0), call_rate(call), caller_minutes or 0,
                  None if caller_rate is None else Decimal(caller_rate))
    return min(charge, reserved_by(call)), caller_minutes


def _settlement_reports(call: Mapping[str, Any]) -> list[Report]:
    """What a settled row (``call`` with its result) reports: ``completed`` at its end, after
    ``answered`` and ``bridged`` when the row shows them (write_events keeps only those asked
    for and not yet written: events whose moment was never heard, say a listener that took
    over mid-call, go out before ``completed``, with the times the row recorded)."""
    reports = []
    if call["caller_answered_at"] is not None:
        reports.append(Report(ProgressEvent.ANSWERED, float(call["caller_answered_at"])))
    if call["answered"] and call["bridged_at"] is not None:
        reports.append(Report(ProgressEvent.BRIDGED, float(call["bridged_at"])))
    reports.append(Report(ProgressEvent.COMPLETED, float(call["ended_at"])))
    return reports


def _fill_or_correct(
    conn: Connection,
    call: Mapping[str, Any],
    filled: Mapping[str, Any],
    fields: Mapping[str, Any],
    remeasure: Remeasure | None,
    now: float,
) -> None:
    """An ended call's row (locked, ``filled`` applied to it): correct its estimate if the leg's
    end measures it, else write what was filled."""
    if (remeasure is not None and call["estimated"] and call["corrected_at"] is None):
        measured = remeasure(call, fields)
        if measured is not None:
            _correct(conn, call, filled, measured, now)
            return
    if filled:
        conn.execute(_UPDATE_CALL, {"b_id": call["id"], **filled})


def _correct(
    conn: Connection,
    call: Mapping[str, Any],
    filled: Mapping[str, Any],
    measured: Outcome,
    now: float,
) -> None:
    """Replace a settled estimate with what was measured, once (corrected_at, under the row's
    lock; the ledger's unique ``corrects`` backs it): the row gets the measured outcome and the
    last leg's end; the account is debited the minutes not yet debited, or credited those debited
    too many, in one 'correction' ledger row naming the call (credits never below 0). The
    callback was sent at settlement and is not sent again."""
    call_id, account_id = call["id"], int(call["account_id"])
    answered = bool(measured.answered)
    billable = max(0, min(int(measured.minutes), int(call["max_minutes"]))) if answered else 0
    result: dict[str, Any] = {
        **filled,
        "answered": answered,
        "minutes": billable,
        "reason": None if answered or measured.reason is None else int(measured.reason),
        "billsec": measured.billsec,
        "corrected_at": now,
    }
    if measured.confirm is not None:
        result["confirm"] = Confirmation(measured.confirm).value
    gone = [t for t in (call["caller_gone_at"], call["callee_gone_at"]) if t is not None]
    if gone:
        result["ended_at"] = max(gone)
    charge, result["caller_minutes"] = charge_of(call, {**result, "ended_at": result.get(
        "ended_at", call["ended_at"])})
    result["charged"] = charge
    conn.execute(_UPDATE_CALL, {"b_id": call_id, **result})
    debited = Decimal(conn.execute(_DEBITED, {"b_id": call_id}).scalar_one())
    wanted = charge - debited
    delta = Decimal(0)
    # A changed charge is written down even when no credit moves (a dry account's estimate
    # debited 0 and the call turned out to cost 0): the ledger must say why 0 was right.
    if wanted or charge != Decimal(call["charged"] or 0):
        account = conn.execute(_ACCOUNTS_LOCKED, {"b_ids": [account_id]}).one()
        credits = Decimal(account.credits)
        delta = -min(wanted, credits) if wanted > 0 else -wanted
        credits += delta
        conn.execute(_UPDATE_ACCOUNT, {"b_id": account_id, "credits": credits})
        note = f"estimated {call['minutes']} min, measured {billable} min"
        if wanted > 0 and -delta < wanted:
            note += f", {format_credits(wanted + delta)} left to debit"
        ledger.record_entries(conn, [ledger.entry(
            account_id=account_id, delta=delta, balance_after=credits,
            kind=ledger.LedgerKind.CORRECTION, corrects=call_id, note=note, now=now,
            rate=call_rate(call), caller_rate=call["caller_rate"])])
    log.info(
        "call %s: estimate corrected by its leg's end: answered=%s minutes=%d -> answered=%s "
        "minutes=%d (credits %s)",
        call_id, bool(call["answered"]), int(call["minutes"] or 0), answered, billable,
        format_credits(delta),
    )


# The statements of the event path, built once: building a statement costs more CPU than its
# round trip to the database (bench/). Values arrive as bound parameters; an UPDATE without
# values() sets the columns its parameters name. Bind names start with b_ so they never clash
# with a column of the SET.
_c, _a = schema.calls, schema.accounts
_GET = select(_c).where(_c.c.id == bindparam("b_id"))
_GET_LOCKED = _GET.with_for_update()
_BY_JOB = select(_c).where(_c.c.job_uuid == bindparam("b_job_uuid"))
_GET_MANY_LOCKED = (
    select(_c).where(_c.c.id.in_(bindparam("b_ids", expanding=True))).order_by(_c.c.id)
    .with_for_update()
)
_UPDATE_CALL = update(_c).where(_c.c.id == bindparam("b_id"))
_ACCOUNTS_LOCKED = (
    select(_a.c.id, _a.c.credits, _a.c.reserved, _a.c.active_calls, _a.c.credits_day,
           _a.c.day_credits)
    .where(_a.c.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(_a.c.id)
    .with_for_update()
)
_UPDATE_ACCOUNT = update(_a).where(_a.c.id == bindparam("b_id"))
# What a call's debit took (0 without one).
_DEBITED = select(func.coalesce(-func.sum(schema.ledger.c.delta), 0)).where(
    schema.ledger.c.call_id == bindparam("b_id"),
    schema.ledger.c.kind == ledger.LedgerKind.DEBIT.value,
)
_INSERT_CALLBACK = insert(schema.callbacks)


@functools.lru_cache(maxsize=64)
def _advance_statement(
    sources: tuple[str, ...],
    target: str,
    fields: tuple[str, ...],
    fill: tuple[str, ...],
    requires: tuple[str, ...],
    unless: tuple[str, ...] = (),
    unasked: ProgressEvent | None = None,
) -> Update:
    """The UPDATE of Calls.advance for one shape of arguments (a handful exist); with
    ``unasked``, only of a call that did not ask for that progress event."""
    c = _c
    movable = and_(c.c.state.in_(sources), *(c.c[name].is_not(None) for name in requires))
    where = and_(c.c.id == bindparam("b_id"), *(c.c[name].is_(None) for name in unless))
    if unasked is not None:
        # The names never contain one another, so a substring test is exact.
        where = and_(where, or_(c.c.status_events.is_(None),
                                c.c.status_events.not_like(f"%{unasked.value}%")))
    if not fill:
        values = {name: bindparam(f"b_set_{name}", type_=c.c[name].type) for name in fields}
        return update(c).where(where, movable).values(state=target, **values)
    # One UPDATE that fills and, where it may, moves. 'state' is assigned last: MySQL evaluates
    # SET left to right, so the CASEs before it still see the old state.
    assignments: list[tuple[Any, Any]] = [
        (c.c[name], _filled(c.c[name], bindparam(f"b_fill_{name}", type_=c.c[name].type)))
        for name in fill
    ]
    assignments += [
        (c.c[name], case((movable, bindparam(f"b_set_{name}", type_=c.c[name].type)),
                         else_=c.c[name]))
        for name in fields
    ]
    assignments.append((c.c.state, case((movable, target), else_=c.c.state)))
    return (
        update(c)
        .where(where, or_(movable, *(_empty(c.c[name]) for name in fill)))
        .ordered_values(*assignments)
    )

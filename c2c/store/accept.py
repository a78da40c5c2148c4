"""Accepting a call: the checks that need the store, the reservation, flood stamps and the call
row, all or nothing.

This is the one place where two requests can race for the same thing (an account's last minute,
a phone number's flood window), so it is one transaction, of five round trips (bench/ counts
them), that holds the account's row, which every accept and settle of the account wants, for
its last two only:

1. the flood stamps of the call's distinct E.164 numbers in one upsert, in ascending order so two
   transactions never wait on each other in a cycle: a new number gets our stamp, a stamp older
   than the window is renewed to ours, a younger one is left alone. The upsert locks the rows
   (an accept racing ours for a number waits here until ours ends). The account's own numbers
   (``call.flood_exempt``) are left out: in its requests they are neither stamped nor checked
   (DESIGN.md section 2), and a call with no other number skips this step;
2. one SELECT of the account row that also reads whether either number (own or not) is on the
   Do-Not-Call list and how many flood rows now carry our stamp. From it the codes are decided in
   DESIGN.md's order: 1 (gone), 5 (disabled), 3 (listed), 2 (no available minute), 6 (a
   number's stamp is not ours: used within the window). Any of them rolls the whole transaction
   back, stamps included;
3. the call row (state 'queued');
4. the reservation: an UPDATE guarded by what step 2 read (enabled, and the minutes still
   available), which locks the row until 5. COMMIT. When the guard fails (the account changed
   since step 2: a race for its last minutes) everything rolls back and runs again; after a
   few lost races, step 2 locks the row (SELECT ... FOR UPDATE) and the race cannot recur.

Several accepts of one account can share the transaction (accept_calls, c2c.calls.accept_groups):
each does steps 1-3 behind a savepoint, and step 4 reserves their sum, the row locked once.

On MySQL calls have no foreign key to accounts: its check would lock the account's row at step 3.

After the accept: cancel_call undoes it when the originate never reached a switch, and move_call
points the call at another switch when the first refused it before any leg existed
(c2c.calls.retry), guarded against that switch's event holder by record_originate_error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Executable,
    Integer,
    Select,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import mysql, sqlite

from c2c.domain.confirmation import Confirmation
from c2c.domain.credits import (
    DEFAULT_RATE,
    affordable_minutes,
    cost,
    format_credits,
    started_minutes,
)
from c2c.domain.progress import encode_events
from c2c.domain.states import CallState
from c2c.domain.timing import QUEUED_RECHECK_SECONDS
from c2c.errors import RequestRejected, StoreError
from c2c.store import schema
from c2c.store.db import Database

log = logging.getLogger(__name__)

# Accepts of one account race only when its available minutes run short of the reservation (or
# it is disabled meanwhile): after this many lost races, the read locks the row first.
OPTIMISTIC_ATTEMPTS = 3


class DialedNumber(Protocol):
    """What the store needs of a phone number (c2c.numbers.PhoneNumber fits)."""

    @property
    def country_code(self) -> str: ...

    @property
    def national(self) -> str: ...

    @property
    def e164_int(self) -> int: ...


@dataclass(frozen=True)
class NewCall:
    """A validated request plus the ids chosen before the call row exists."""

    id: str  # our call id (a UUID), also a channel variable on both legs
    account_id: int
    caller: DialedNumber
    callee: DialedNumber
    caller_id: str  # the number the callee sees
    callback_url: str | None
    secret: str
    max_duration: int | None  # the customer's limit in minutes; None: no limit of theirs
    switch: str  # name of the switch the call is placed on
    job_uuid: str  # the bgapi Job-UUID
    caller_uuid: str  # the A leg's channel UUID
    callee_uuid: str  # the B leg's channel UUID
    confirm: bool = False  # the caller must press 1 before the callee is dialed
    # E.164 digits of this call's numbers that are the account's own: no flood stamp for them.
    flood_exempt: frozenset[int] = frozenset()
    # Seconds the call may spend between the caller's answer and dialing the callee (press 1's
    # prompt and its timeout): added to the deadline, so no live call is swept as overdue.
    setup_seconds: int = 0
    # Progress webhooks (c2c.domain.progress): where to POST them and which events; none
    # without a URL.
    status_callback_url: str | None = None
    status_events: tuple[str, ...] = ()


@dataclass(frozen=True)
class AcceptedCall:
    id: str
    account_id: int
    max_minutes: int  # the call's hard time limit, in minutes of the callee's talk
    created_at: float
    deadline_at: float  # past this with no trace of the call, it settles as failed
    rate: Decimal = DEFAULT_RATE  # credits per minute of the callee's talk
    caller_rate: Decimal | None = None  # of the caller's leg, when it is billed
    reserved_credits: Decimal = Decimal(0)  # held until the call settles


@dataclass(frozen=True)
class Pricing:
    """How calls are priced: the rate of a number no prefix of the rate table matches, and
    whether the caller's leg is billed too (C2C_DEFAULT_RATE, C2C_BILL_CALLER_LEG)."""

    default_rate: Decimal = DEFAULT_RATE
    bill_caller_leg: bool = False


FLAT_PRICING = Pricing()  # no rate table, the caller's leg free: credits are minutes


def reservation_minutes(max_duration: int | None, max_call_minutes: int, available: int) -> int:
    """min(the customer's limit, the operator's cap, the minutes the credit pays for)."""
    limit = min(max_duration, max_call_minutes) if max_duration else max_call_minutes
    return max(0, min(limit, available))


def caller_setup_minutes(ring_timeout: int, setup_seconds: int) -> int:
    """The caller's leg outlasts the talk by the callee's ringing and press 1's prompt: the
    minutes a billed caller leg may run beyond the call's limit."""
    return started_minutes(ring_timeout + setup_seconds)


def accept_call(
    db: Database,
    account_id: int,
    call: NewCall,
    *,
    flood_seconds: int,
    max_call_minutes: int,
    ring_timeout: int,
    settle_grace: int,
    now: float,
    pricing: Pricing = FLAT_PRICING,
) -> AcceptedCall:
    """Reserve and record ``call`` or raise RequestRejected (1, 5, 3, 2 or 6) leaving nothing
    behind.

    deadline_at = now + 2 * ring_timeout + setup seconds + reserved minutes * 60 + settle_grace. A flood window of
    0 seconds turns flood protection off.
    """
    [result] = accept_calls(db, account_id, [(call, now)], flood_seconds=flood_seconds,
                            max_call_minutes=max_call_minutes, ring_timeout=ring_timeout,
                            settle_grace=settle_grace, pricing=pricing)
    if isinstance(result, RequestRejected):
        raise result
    return result


@dataclass
class _Taken:
    """What the calls before this one in the same transaction reserved (not yet written): in
    all, and per clock minute and UTC day (a group's calls, milliseconds apart, may still fall
    on both sides of a boundary: each counts in its own)."""

    credits: Decimal = Decimal(0)
    calls: int = 0
    by_minute: dict[int, int] = field(default_factory=dict)
    by_day: dict[int, Decimal] = field(default_factory=dict)

    def add(self, accepted: AcceptedCall, now: float) -> None:
        self.credits += accepted.reserved_credits
        self.calls += 1
        minute, day = clock_minute(now), utc_day(now)
        self.by_minute[minute] = self.by_minute.get(minute, 0) + 1
        self.by_day[day] = self.by_day.get(day, Decimal(0)) + accepted.reserved_credits

    def buckets(self) -> list[tuple[int, int, int, Decimal]]:
        """(minute, day, calls, credits) per clock minute, in time order: one guarded UPDATE
        each, so every call is counted in its own minute and day."""
        out: list[tuple[int, int, int, Decimal]] = []
        for minute in sorted(self.by_minute):
            out.append((minute, utc_day(minute * 60.0), self.by_minute[minute], Decimal(0)))
        # Credits go with the first minute of their day (a day's minutes are consecutive here).
        for day, credits in self.by_day.items():
            index = next(i for i, bucket in enumerate(out) if bucket[1] == day)
            minute, _, calls, held = out[index]
            out[index] = (minute, day, calls, held + credits)
        return out


def accept_calls(
    db: Database,
    account_id: int,
    calls: Sequence[tuple[NewCall, float]],
    *,
    flood_seconds: int,
    max_call_minutes: int,
    ring_timeout: int,
    settle_grace: int,
    pricing: Pricing = FLAT_PRICING,
) -> list[AcceptedCall | RequestRejected]:
    """Accept several calls of one account (each with its ``now``) in one transaction, in order,
    each as accept_call would, as if one after the other: the account's row is locked once for
    them all. A rejected call leaves nothing behind (a savepoint undoes its flood stamps); its
    rejection takes its place in the list returned.
    """
    if any(call.account_id != account_id for call, _ in calls):
        raise ValueError("call.account_id does not match account_id")
    # Stamps strictly increase within a group, so each call recognises its own flood stamps.
    stamps: list[float] = []
    for _, now in calls:
        stamps.append(max(now, stamps[-1] + 1e-6) if stamps else now)
    grouped = len(calls) > 1
    limits = dict(flood_seconds=flood_seconds, max_call_minutes=max_call_minutes,
                  ring_timeout=ring_timeout, settle_grace=settle_grace)

    def work(conn: Connection, locking: bool) -> list[AcceptedCall | RequestRejected]:
        results: list[AcceptedCall | RequestRejected] = []
        taken = _Taken()
        for index, ((call, _), now) in enumerate(zip(calls, stamps, strict=True)):
            if grouped:
                conn.exec_driver_sql("SAVEPOINT c2c_accept")
            try:
                accepted = _accept_one(conn, db.is_mysql, call, now, taken, pricing,
                                       lock=locking and index == 0, **limits)
            except RequestRejected as rejected:
                if not grouped:
                    raise
                conn.exec_driver_sql("ROLLBACK TO SAVEPOINT c2c_accept")
                results.append(rejected)
                continue
            taken.add(accepted, now)
            results.append(accepted)
        for minute, day, count, amount in taken.buckets():
            if not conn.execute(_RESERVE, {
                "account_id": account_id, "amount": amount, "count": count,
                "minute": minute, "day": day,
            }).rowcount:
                raise _BalanceMoved()
        return results

    for attempt in range(OPTIMISTIC_ATTEMPTS + 1):
        try:
            results = db.write_retrying(
                functools.partial(work, locking=attempt == OPTIMISTIC_ATTEMPTS))
            break
        except _BalanceMoved:
            log.debug("account %d changed under an accept; again", account_id)
    else:  # not even under the row lock: the account changed inside our own transaction
        raise StoreError("the account changed while locked")
    for result in results:
        if isinstance(result, AcceptedCall):
            log.debug("call %s recorded, %d min (%s credits) reserved", result.id,
                      result.max_minutes, format_credits(result.reserved_credits))
    return results


def clock_minute(now: float) -> int:
    """The clock minute a per-minute limit counts in (Unix seconds // 60)."""
    return int(now // 60)


def utc_day(now: float) -> int:
    """The UTC day a daily credit limit counts in (Unix seconds // 86400)."""
    return int(now // 86400)


def _accept_one(
    conn: Connection,
    is_mysql: bool,
    call: NewCall,
    now: float,
    taken: _Taken,
    pricing: Pricing,
    *,
    lock: bool,
    flood_seconds: int,
    max_call_minutes: int,
    ring_timeout: int,
    settle_grace: int,
) -> AcceptedCall:
    """Steps 1-3 of the module doc for one call; ``taken``: what calls before it in the same
    transaction reserved (not yet written to the account's row)."""
    numbers = sorted({call.caller.e164_int, call.callee.e164_int})  # sorted: one lock order
    # DNC checks every number; flood only those not the account's own.
    flooded = [n for n in numbers if n not in call.flood_exempt] if flood_seconds > 0 else []
    listed = {f"n{i}": number for i, number in enumerate(numbers)}
    stamped = {f"f{i}": number for i, number in enumerate(flooded)}
    if flooded:
        conn.execute(_flood_upsert(is_mysql, len(flooded)),
                     {**stamped, "now": now, "cutoff": now - flood_seconds})
    billed_legs = (call.callee, call.caller) if pricing.bill_caller_leg else (call.callee,)
    prefixes = {f"p{leg}_{i}": prefix for leg, number in enumerate(billed_legs)
                for i, prefix in enumerate(number_prefixes(number.e164_int))}
    checks = conn.execute(
        _checks(len(numbers), len(flooded), lock, len(billed_legs)),
        {**listed, **stamped, **prefixes, "now": now, "account_id": call.account_id},
    ).first()
    if checks is None:
        raise RequestRejected(1, "invalid api_key")
    if not checks.enabled:
        raise RequestRejected(5, "api_key is disabled")
    if checks.listed:
        raise RequestRejected(3, "a phone number is on the Do-Not-Call list")
    rate = pricing.default_rate if checks.rate is None else checks.rate
    caller_rate = None
    if pricing.bill_caller_leg:
        caller_rate = pricing.default_rate if checks.caller_rate is None else checks.caller_rate
    setup = caller_setup_minutes(ring_timeout, call.setup_seconds) if caller_rate else 0
    # Each minute of talk costs both legs' rates; the caller's setup minutes are paid first.
    affordable = affordable_minutes(
        _available(checks, taken, now) - cost(0, rate, setup, caller_rate),
        rate + (caller_rate or 0))
    if affordable < 1:
        raise RequestRejected(2, "no call credits")
    if flooded and checks.stamped != len(flooded):
        raise RequestRejected(
            6, "flood protection: this phone number was used less than a minute ago"
        )
    _check_call_limits(checks, taken, now)
    reserve = reservation_minutes(call.max_duration, max_call_minutes, affordable)
    reserved_credits = cost(reserve, rate, reserve + setup, caller_rate)
    deadline_at = now + 2 * ring_timeout + call.setup_seconds + reserve * 60 + settle_grace
    conn.execute(_INSERT_CALL, _call_row(call, reserve, now, deadline_at, rate, caller_rate,
                                         reserved_credits))
    return AcceptedCall(call.id, call.account_id, reserve, now, deadline_at, rate, caller_rate,
                        reserved_credits)


def _available(checks: Any, taken: _Taken, now: float) -> Decimal:
    """Credits the account can still reserve: its balance less what is reserved, and under a
    daily limit no more than what is left of the day's."""
    available: Decimal = checks.credits - checks.reserved - taken.credits
    if checks.daily_credits is not None:
        day = utc_day(now)
        used = (checks.day_credits or 0) if checks.credits_day == day else 0
        available = min(available, checks.daily_credits - used
                        - taken.by_day.get(day, Decimal(0)))
    return available


def _check_call_limits(checks: Any, taken: _Taken, now: float) -> None:
    """The key's limits on calls (6, like flood: retry later): in flight at once, per minute."""
    if (checks.max_concurrent is not None
            and (checks.active_calls or 0) + taken.calls + 1 > checks.max_concurrent):
        raise RequestRejected(6, "limit: too many calls in flight for this api_key")
    if checks.max_per_minute is not None:
        minute = clock_minute(now)
        counted = (checks.minute_count or 0) if checks.minute_window == minute else 0
        if counted + taken.by_minute.get(minute, 0) + 1 > checks.max_per_minute:
            raise RequestRejected(6, "limit: too many calls this minute for this api_key")


RATE_PREFIXES = 15  # E.164 has at most 15 digits


def number_prefixes(e164: int) -> list[str]:
    """Every leading run of a number's E.164 digits, the rate table's possible keys; always
    RATE_PREFIXES of them (the whole number repeated), so one statement shape serves all."""
    digits = str(e164)
    runs = [digits[:length] for length in range(1, min(len(digits), RATE_PREFIXES) + 1)]
    return runs + [runs[-1]] * (RATE_PREFIXES - len(runs))


class _BalanceMoved(Exception):
    """The account was disabled, or its available minutes fell below the reservation, between
    the accept's read and its update: the transaction is rolled back and run again."""


# The statements of the accept, built once (building one costs more CPU than its round trip):
# values arrive as bound parameters; a shape per count of distinct numbers (1 or 2) and of those
# flood-checked (0 to 2: the account's own are not).
_a = schema.accounts
_amount = bindparam("amount", type_=schema.Credits())
_count = bindparam("count", type_=Integer)
_minute, _day = bindparam("minute", type_=Integer), bindparam("day", type_=Integer)
_this_minute = case((_a.c.minute_window == _minute, func.coalesce(_a.c.minute_count, 0)),
                    else_=0)
_this_day = case((_a.c.credits_day == _day, func.coalesce(_a.c.day_credits, 0)), else_=0)
# The account's row is locked here, by the transaction's last statement before its COMMIT: the
# guard re-checks what the read decided on (enabled, the credits, the key's limits), now under
# the lock, and counts the calls into the limits' counters. The SET is ordered: MySQL evaluates
# it left to right, so a count is written before the window it is compared with moves.
_RESERVE = (
    update(_a)
    .where(
        _a.c.id == bindparam("account_id"),
        _a.c.enabled.is_(True),
        # A call that reserves nothing (rated 0) passes even an overdrawn account or a day
        # already over a lowered limit, as the read before it decided.
        or_(_amount == 0, _a.c.credits - _a.c.reserved >= _amount),
        or_(_a.c.max_concurrent.is_(None),
            func.coalesce(_a.c.active_calls, 0) + _count <= _a.c.max_concurrent),
        or_(_a.c.max_per_minute.is_(None), _this_minute + _count <= _a.c.max_per_minute),
        or_(_a.c.daily_credits.is_(None), _amount == 0,
            _this_day + _amount <= _a.c.daily_credits),
    )
    .ordered_values(
        (_a.c.reserved, _a.c.reserved + _amount),
        (_a.c.active_calls, func.coalesce(_a.c.active_calls, 0) + _count),
        (_a.c.minute_count, _this_minute + _count),
        (_a.c.minute_window, _minute),
        (_a.c.day_credits, _this_day + _amount),
        (_a.c.credits_day, _day),
    )
)
_INSERT_CALL = insert(schema.calls)


@functools.cache
def _flood_upsert(is_mysql: bool, count: int) -> Executable:
    """Stamp numbers f0.. with ``now`` unless one holds a stamp younger than ``cutoff``."""
    f = schema.flood
    rows: list[dict[str, Any]] = [
        {"number": bindparam(f"f{i}"), "stamped_at": bindparam("now")} for i in range(count)
    ]
    cutoff = bindparam("cutoff", type_=f.c.stamped_at.type)
    if is_mysql:
        upsert = mysql.insert(f).values(rows)
        return upsert.on_duplicate_key_update(
            stamped_at=func.if_(f.c.stamped_at <= cutoff, upsert.inserted.stamped_at,
                                f.c.stamped_at))
    lite = sqlite.insert(f).values(rows)
    return lite.on_conflict_do_update(
        index_elements=[f.c.number],
        set_={"stamped_at": case((f.c.stamped_at <= cutoff, lite.excluded.stamped_at),
                                 else_=f.c.stamped_at)})


@functools.cache
def _checks(count: int, flooded: int, locking: bool, billed_legs: int) -> Select[Any]:
    """The account row with the DNC answer for numbers n0.. and the flood answer for f0.. (none
    when ``flooded`` is 0) read beside it, and the rate of each billed leg (the callee's, then
    the caller's): the longest of its prefixes p<leg>_0.. in the rate table (NULL: none). Read
    without a lock (the reservation's guarded UPDATE settles a race), or, after repeated races,
    with one: SELECT ... FOR UPDATE (its subqueries do not lock: a locking clause applies to the
    outer table only)."""
    a, f, d, r = schema.accounts, schema.flood, schema.dnc, schema.rates
    numbers: list[Any] = [bindparam(f"n{i}") for i in range(count)]
    columns: list[Any] = [a.c.enabled, a.c.credits, a.c.reserved, a.c.max_concurrent,
                          a.c.max_per_minute, a.c.daily_credits, a.c.active_calls,
                          a.c.minute_window, a.c.minute_count, a.c.credits_day,
                          a.c.day_credits,
                          exists().where(d.c.number.in_(numbers)).label("listed")]
    for leg, name in zip(range(billed_legs), ("rate", "caller_rate"), strict=False):
        prefixes: list[Any] = [bindparam(f"p{leg}_{i}") for i in range(RATE_PREFIXES)]
        columns.append(
            select(r.c.rate).where(r.c.prefix.in_(prefixes))
            .order_by(func.length(r.c.prefix).desc()).limit(1)
            .scalar_subquery().label(name))
    if flooded:
        stamped = (
            select(func.count())
            .select_from(f)
            .where(f.c.number.in_([bindparam(f"f{i}") for i in range(flooded)]),
                   f.c.stamped_at == bindparam("now"))
            .scalar_subquery()
        )
        columns.append(stamped.label("stamped"))
    query = select(*columns).where(a.c.id == bindparam("account_id"))
    return query.with_for_update() if locking else query


def _call_row(call: NewCall, reserve: int, now: float, deadline_at: float, rate: Decimal,
              caller_rate: Decimal | None, reserved_credits: Decimal) -> dict[str, object]:
    asked = encode_events(call.status_events) if call.status_callback_url else None
    return {
        "id": call.id,
        "account_id": call.account_id,
        "state": CallState.QUEUED.value,
        "caller_country_code": call.caller.country_code,
        "caller_number": call.caller.national,
        "callee_country_code": call.callee.country_code,
        "callee_number": call.callee.national,
        "caller_id": call.caller_id,
        "callback_url": call.callback_url or None,
        "secret": call.secret or "",
        "max_minutes": reserve,
        "rate": rate,
        "caller_rate": caller_rate,
        "reserved_credits": reserved_credits,
        "switch": call.switch,
        "job_uuid": call.job_uuid,
        "caller_uuid": call.caller_uuid,
        "callee_uuid": call.callee_uuid,
        "confirm": Confirmation.REQUIRED.value if call.confirm else None,
        # NULL unless webhooks were asked for: the event path then pays nothing for the call.
        "status_callback_url": call.status_callback_url if asked else None,
        "status_events": asked,
        "created_at": now,
        "deadline_at": deadline_at,
        # If no event has moved the call by then, the listener looks for it on the switch.
        "recheck_at": now + QUEUED_RECHECK_SECONDS,
    }


def cancel_call(db: Database, call_id: str) -> bool:
    """Undo an accept whose originate never reached a switch: drop the call row, release its
    reservation and its flood stamps (those it wrote, i.e. stamped at its created_at), so the
    customer may retry at once. Only a call still 'queued' is cancelled; returns whether it was.
    """

    def work(conn: Connection) -> bool:
        c, a, f = schema.calls, schema.accounts, schema.flood
        call = conn.execute(
            select(
                c.c.account_id,
                c.c.state,
                c.c.reserved_credits,
                c.c.created_at,
                c.c.caller_country_code,
                c.c.caller_number,
                c.c.callee_country_code,
                c.c.callee_number,
            )
            .where(c.c.id == call_id)
            .with_for_update()
        ).first()
        if call is None or call.state != CallState.QUEUED.value:
            return False
        deleted = conn.execute(
            delete(c).where(c.c.id == call_id, c.c.state == CallState.QUEUED.value)
        ).rowcount
        if not deleted:
            return False
        # Its flood stamps before its account: the order an accept locks them in. A stamp is the
        # call's when it bears its created_at (stamps are unique per accept); an own number it
        # did not stamp (flood_exempt) bears another call's time, if any, and is left alone.
        numbers = sorted(
            {
                int(call.caller_country_code + call.caller_number),
                int(call.callee_country_code + call.callee_number),
            }
        )
        conn.execute(delete(f).where(f.c.number.in_(numbers), f.c.stamped_at == call.created_at))
        account = conn.execute(
            select(a.c.reserved, a.c.active_calls, a.c.credits_day, a.c.day_credits)
            .where(a.c.id == call.account_id).with_for_update()
        ).first()
        if account is not None:
            held = call.reserved_credits or Decimal(0)
            released: dict[str, Any] = {
                "reserved": max(Decimal(0), account.reserved - held),
                "active_calls": max(0, (account.active_calls or 0) - 1),
            }
            if account.credits_day == utc_day(call.created_at) and account.day_credits:
                released["day_credits"] = max(Decimal(0), account.day_credits - held)
            conn.execute(update(a).where(a.c.id == call.account_id).values(**released))
        return True

    cancelled = db.write_retrying(work)
    if cancelled:
        log.info("call %s cancelled before reaching a switch", call_id)
    return cancelled


@dataclass(frozen=True)
class Move:
    """Where a queued call goes when its switch refused it before any leg existed: the new switch
    and fresh ids (a switch refuses an origination_uuid it has seen, and each job is its own)."""

    switch: str
    job_uuid: str
    caller_uuid: str
    callee_uuid: str


def move_call(db: Database, call_id: str, from_job_uuid: str, move: Move, *,
              recheck_at: float) -> bool:
    """Point a call at another switch before its originate is sent there, so that the row names
    the switch that has the call (c2c.calls.retry). Only while it is still on ``from_job_uuid``
    with no trace of a caller leg: queued, not answered, not gone, no originate error recorded
    (record_originate_error pins a call to its job). One UPDATE, so a race with the first
    switch's event holder has one winner. Its created_at, reservation, flood stamps and deadline
    stay (the retry follows within milliseconds). Returns whether it moved."""
    c = schema.calls

    def work(conn: Connection) -> bool:
        moved = conn.execute(
            update(c)
            .where(
                c.c.id == call_id,
                c.c.job_uuid == from_job_uuid,
                c.c.state == CallState.QUEUED.value,
                c.c.originate_error.is_(None),
                c.c.caller_answered_at.is_(None),
                c.c.caller_gone_at.is_(None),
            )
            .values(switch=move.switch, job_uuid=move.job_uuid, caller_uuid=move.caller_uuid,
                    callee_uuid=move.callee_uuid, recheck_at=recheck_at)
        ).rowcount
        return bool(moved)

    moved = db.write_retrying(work)
    if moved:
        log.info("call %s moved to %s (job %s)", call_id, move.switch, move.job_uuid)
    return moved


def record_originate_error(db: Database, call_id: str, job_uuid: str, cause: str) -> bool:
    """Record a job's ``-ERR`` cause on the call, if the call is still on that job (one that
    moved to another switch is not failed by the first switch's refusal); the first cause
    recorded stays. From then on the call cannot move (move_call). Returns whether the call is
    on that job (MySQL counts rows matched, as SQLAlchemy asks it to)."""
    c = schema.calls

    def work(conn: Connection) -> bool:
        matched = conn.execute(
            update(c)
            .where(c.c.id == call_id, c.c.job_uuid == job_uuid)
            .values(originate_error=func.coalesce(c.c.originate_error, cause[:64]))
        ).rowcount
        return bool(matched)

    return db.write_retrying(work)


def prune_flood(db: Database, before: float) -> int:
    """Delete flood stamps older than ``before`` (they no longer block anything); returns how many.

    Call it now and then with ``now - flood_seconds``; the table then holds one window's numbers.
    """
    f = schema.flood
    with db.write() as conn:
        return conn.execute(delete(f).where(f.c.stamped_at < before)).rowcount

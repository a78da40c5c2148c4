"""Billing as a property (issue 14), on both stores: whatever accounts are created, rate tables
imported, limits set, calls accepted, answered, settled (one by one, in groups, on an estimate
later corrected) or cancelled, credits added or removed, and however the clock moves across
minutes and UTC days, `c2c check` stays clean, no balance goes negative, and every amount is the
one a model kept beside the store predicts, to the micro-credit.

A Hypothesis state machine drives a real store (a fresh database per example) next to a plain
model of the rules (DESIGN.md, c2c.store.accept, Calls.settle): what a call reserves at its
rates, what it may last, what it costs, what the key's limits and flood protection allow. The
model is written from the rules, not from the store's helpers, so that it checks them.

Bounded for CI: derandomized, 40 examples on SQLite and 10 on MySQL of up to 30 steps.
C2C_PROPERTY_SCALE=N runs N times as many, freshly random (a soak, not for CI).
"""

from __future__ import annotations

import copy
import io
import math
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from c2c.domain.states import Reason
from c2c.errors import RequestRejected
from c2c.store import AcceptedCall, NewCall, Pricing, SettledOutcome, Store, make_engine, schema
from c2c.store.accept import caller_setup_minutes
from c2c.store.accounts import KeyLimits
from c2c.store.invariants import check_invariants
from tests.conftest import ACCEPT_DEFAULTS, split_e164
from tests.support.mysql import temporary_database

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC: a minute and a day have just begun
RING_TIMEOUT, SETTLE_GRACE = 30, 120
SETUP = caller_setup_minutes(RING_TIMEOUT, 0)  # minutes a billed caller leg outlasts the talk
# Each accept gets its own instant: an accept knows its flood stamps by their time.
TICK = 0.01

PREFIXES = ("1", "44", "447", "4470")
# Numbers under every prefix and under none (33: the default rate); few, so flood bites.
CALLERS = ("15552104427", "447700900555", "442079460000", "33612345678")
CALLEES = ("15552100001", "442071234567", "447911123456", "447012345678", "33123456789")

SCALE = int(os.environ.get("C2C_PROPERTY_SCALE", "1"))
STEPS = 30

CREDITS = st.decimals(min_value=0, max_value=30, places=6)
RATES = st.decimals(min_value=0, max_value=2, places=6)
# Added or removed; now and then all taken away, calls in flight or not (never below 0).
AMOUNTS = st.integers(0, 5).flatmap(lambda n: st.just(Decimal(-1000)) if n == 0 else
                                    st.decimals(min_value=-30, max_value=60, places=6))
MINUTES = st.integers(min_value=0, max_value=200)  # over any call's limit: it must be capped
# Requests (caller, callee, the customer's max_duration) accepted in one step.
REQUESTS = st.lists(st.tuples(st.sampled_from(CALLERS), st.sampled_from(CALLEES),
                              st.none() | st.integers(1, 10)), min_size=1, max_size=3)


# --- the model ----------------------------------------------------------------------------

@dataclass
class AccountModel:
    credits: Decimal
    reserved: Decimal = Decimal(0)
    enabled: bool = True
    in_flight: set[str] = field(default_factory=set)
    # The limits' counters, as the schema documents them.
    minute_window: int | None = None
    minute_count: int = 0
    credits_day: int | None = None
    day_credits: Decimal = Decimal(0)
    max_concurrent: int | None = None
    max_per_minute: int | None = None
    daily_credits: Decimal | None = None


@dataclass
class CallModel:
    account_id: int
    numbers: tuple[int, ...]  # flood-checked (none when accepted with flood off)
    created_at: float
    rate: Decimal
    caller_rate: Decimal | None
    max_minutes: int
    reserved: Decimal
    state: str = "queued"  # queued, ended, cancelled (its row deleted)
    caller_answered_at: float | None = None
    caller_gone_at: float | None = None
    callee_gone_at: float | None = None
    ended_at: float | None = None
    answered: bool = False
    minutes: int = 0
    caller_minutes: int | None = None
    charged: Decimal = Decimal(0)
    estimated: bool = False
    corrected: bool = False
    debit: Decimal = Decimal(0)  # what its debit row took


@dataclass(frozen=True)
class Expected:
    """What the model says an accept does: refused with ``code``, or accepted (code 0)."""

    code: int
    rate: Decimal = Decimal(0)
    caller_rate: Decimal | None = None
    max_minutes: int = 0
    reserved: Decimal = Decimal(0)
    available: Decimal = Decimal(0)


def started_minutes(seconds: float) -> int:
    return math.ceil(seconds / 60) if seconds > 0 else 0


def rate_of(table: dict[str, Decimal], number: str, default: Decimal) -> Decimal:
    """The rate of the longest prefix of ``number`` in ``table``, else ``default``."""
    matching = [prefix for prefix in table if number.startswith(prefix)]
    return table[max(matching, key=len)] if matching else default


def affordable(available: Decimal, per_minute: Decimal) -> int | None:
    """Whole minutes ``available`` pays at ``per_minute``; None: free, no limit from credits."""
    if per_minute == 0:
        return None
    return max(0, math.floor(available / per_minute)) if available > 0 else 0


def charge(call: CallModel) -> Decimal:
    """What the call's billed minutes cost at its rates, never more than it reserved; sets its
    caller_minutes (every started minute from the caller's answer to its leg's end, else the
    call's end)."""
    total = call.minutes * call.rate
    call.caller_minutes = None
    if call.caller_rate is not None:
        end = call.caller_gone_at if call.caller_gone_at is not None else call.ended_at
        call.caller_minutes = (started_minutes(end - call.caller_answered_at)
                               if call.caller_answered_at is not None and end is not None
                               else 0)
        total += call.caller_minutes * call.caller_rate
    return min(total, call.reserved)


def new_call(account_id: int, caller: str, callee: str, max_duration: int | None) -> NewCall:
    return NewCall(id=str(uuid.uuid4()), account_id=account_id, caller=split_e164(caller),
                   callee=split_e164(callee), caller_id=caller[-10:], callback_url=None,
                   secret="", max_duration=max_duration, switch="fs1:8021",
                   job_uuid=str(uuid.uuid4()), caller_uuid=str(uuid.uuid4()),
                   callee_uuid=str(uuid.uuid4()))


def flooded_numbers(call: NewCall, flood_seconds: int) -> tuple[int, ...]:
    """The numbers an accept stamps and checks (none with flood protection off)."""
    return tuple(sorted({call.caller.e164_int, call.callee.e164_int})) if flood_seconds else ()


def utc_day(t: float) -> int:
    return int(t // 86_400)


def clock_minute(t: float) -> int:
    return int(t // 60)


# --- the machine --------------------------------------------------------------------------

class BillingMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")

    def __init__(self, database: Callable[[], AbstractContextManager[str]]) -> None:
        super().__init__()
        self._resources = ExitStack()
        engine = make_engine(self._resources.enter_context(database()))
        self._resources.callback(engine.dispose)  # before the database is dropped
        self.store = Store(engine)
        self.store.upgrade()
        self.now = NOW
        self.rates: dict[str, Decimal] = {}
        self.model_accounts: dict[int, AccountModel] = {}
        self.model_calls: dict[str, CallModel] = {}
        self.stamps: dict[int, float] = {}  # flood: E.164 number -> the accept that stamped it

    def teardown(self) -> None:
        self._resources.close()

    # accounts, rates, limits, credits

    @initialize(target=accounts, credits=st.decimals(min_value=10, max_value=1000, places=6))
    def first_account(self, credits: Decimal) -> int:
        return self.create_account(credits)

    @precondition(lambda self: len(self.model_accounts) < 3)  # else the steps go to accounts
    @rule(target=accounts, credits=CREDITS)
    def another_account(self, credits: Decimal) -> int:
        return self.create_account(credits)

    def create_account(self, credits: Decimal) -> int:
        created = self.store.accounts.create(f"acct{len(self.model_accounts)}", credits,
                                             now=self.now)
        self.model_accounts[created.id] = AccountModel(credits)
        return created.id

    @rule(rows=st.dictionaries(st.sampled_from(PREFIXES), RATES), replace=st.booleans())
    def import_rates(self, rows: dict[str, Decimal], replace: bool) -> None:
        text = "prefix,rate\n" + "".join(f"{p},{format(r, 'f')}\n" for p, r in rows.items())
        self.store.rates.import_csv(io.StringIO(text), replace=replace, now=self.now)
        if replace:
            self.rates.clear()
        self.rates.update(rows)

    @rule(account=accounts, changes=st.fixed_dictionaries({}, optional={
        "enabled": st.sampled_from([True, True, False]),  # a disabled key refuses all
        "max_concurrent": st.none() | st.integers(1, 3),
        "max_per_minute": st.none() | st.integers(1, 4),
        "daily_credits": st.none() | st.decimals(min_value=0, max_value=20, places=6),
    }))
    def change_key(self, account: int, changes: dict[str, Any]) -> None:
        """Disable or enable it, set or lift its limits."""
        limits = dict(changes)
        if "enabled" in limits:
            assert self.store.accounts.set_enabled(account, limits.pop("enabled")) is not None
        if limits or not changes:  # nothing at all to set: it changes nothing
            assert self.store.accounts.set_limits(account, **limits) is not None
        for name, value in changes.items():
            setattr(self.model_accounts[account], name, value)

    @rule(account=accounts, amount=AMOUNTS)
    def add_credits(self, account: int, amount: Decimal) -> None:
        after = self.store.accounts.add_credits(account, amount, note="property", now=self.now)
        model = self.model_accounts[account]
        model.credits = max(model.credits + amount, Decimal(0))  # never below 0
        assert after is not None and after.credits == model.credits

    # time

    @rule(step=st.sampled_from(["0.5 s", "59 s", "61 s", "a day", "to the minute's edge",
                                "to the day's edge"]))
    def time_passes(self, step: str) -> None:
        """Minute and UTC day boundaries matter to the limits; "to the edge": just before the
        next one, so that the next step's second tick (a group's second call) crosses it."""
        if step.startswith("to the"):
            unit = 60 if "minute" in step else 86_400
            edge = (math.floor(self.now / unit) + 1) * unit - 1.5 * TICK
            self.now = edge if edge > self.now else edge + unit  # time never runs back
        else:
            self.now += {"0.5 s": 0.5, "59 s": 59, "61 s": 61, "a day": 86_400}[step]

    # calls

    @rule(account=accounts, requests=REQUESTS, grouped=st.booleans(),
          max_call_minutes=st.sampled_from([3, 30, 120]), flood_seconds=st.sampled_from([0, 60]),
          default_rate=RATES, bill_caller_leg=st.booleans())
    def accept(self, account: int, requests: list[tuple[str, str, int | None]], grouped: bool,
               max_call_minutes: int, flood_seconds: int, default_rate: Decimal,
               bill_caller_leg: bool) -> None:
        """Requests one after the other, or as one group (accept_calls: one transaction, each
        call as if accepted after the one before)."""
        pricing = Pricing(default_rate=default_rate, bill_caller_leg=bill_caller_leg)
        config = dict(flood_seconds=flood_seconds, max_call_minutes=max_call_minutes,
                      ring_timeout=RING_TIMEOUT, settle_grace=SETTLE_GRACE)
        placed = []
        for caller, callee, max_duration in requests:
            self.now += TICK
            placed.append((new_call(account, caller, callee, max_duration), self.now))
        if grouped:
            self.accept_group(account, placed, pricing, config)
            return
        for call, at in placed:
            expected = self.expected_accept(call, at, max_call_minutes, flood_seconds, pricing)
            before = self.store.accounts.find(account)
            result: AcceptedCall | RequestRejected
            try:
                result = self.store.accept_call(account, call, now=at, pricing=pricing,
                                                **config)
            except RequestRejected as rejected:
                result = rejected
                # Refused: nothing left behind (the invariant compares stamps and counters).
                after = self.store.accounts.find(account)
                assert before is not None and after is not None
                assert (after.credits, after.reserved) == (before.credits, before.reserved)
            self.judge(call, at, expected, result, flood_seconds)

    def accept_group(self, account: int, placed: list[tuple[NewCall, float]], pricing: Pricing,
                     config: dict[str, Any]) -> None:
        max_call_minutes, flood_seconds = config["max_call_minutes"], config["flood_seconds"]
        # What the model expects of each call, one after the other, foreseen on a copy of it
        # (judge() records each accepted call again, as the store answers it).
        saved = copy.deepcopy((self.model_accounts, self.model_calls, self.stamps))
        expectations = []
        for call, at in placed:
            expected = self.expected_accept(call, at, max_call_minutes, flood_seconds, pricing)
            expectations.append(expected)
            if expected.code == 0:
                self.record_accept(call, at, expected, flood_seconds)
        self.model_accounts, self.model_calls, self.stamps = saved
        results: list[AcceptedCall | RequestRejected]
        try:
            results = list(self.store.accept_calls(account, placed, pricing=pricing, **config))
        except RequestRejected as rejected:  # a group of one raises, as accept_call does
            assert len(placed) == 1
            results = [rejected]
        for (call, at), expected, result in zip(placed, expectations, results, strict=True):
            self.judge(call, at, expected, result, flood_seconds)

    def judge(self, call: NewCall, at: float, expected: Expected,
              result: AcceptedCall | RequestRejected, flood_seconds: int) -> None:
        """An accept's result against the model's expectation; the model follows."""
        if isinstance(result, RequestRejected):
            event(f"accept refused with {result.code}")
            assert result.code == expected.code, (result, expected)
            assert self.store.calls.get(call.id) is None
            return
        event("accept: accepted")
        assert expected.code == 0, f"accepted, but the model refuses it: {expected}"
        assert (result.rate, result.caller_rate, result.max_minutes,
                result.reserved_credits) == (expected.rate, expected.caller_rate,
                                             expected.max_minutes, expected.reserved)
        # Never more than was available (a free call reserves nothing, whatever is left).
        assert result.reserved_credits <= max(expected.available, Decimal(0))
        self.record_accept(call, at, expected, flood_seconds)
        model = self.model_accounts[call.account_id]
        if model.max_concurrent is not None:
            assert len(model.in_flight) <= model.max_concurrent

    def record_accept(self, call: NewCall, at: float, expected: Expected,
                      flood_seconds: int) -> None:
        """The model of an accept: the reservation, the limits' counters, the flood stamps."""
        model = self.model_accounts[call.account_id]
        model.reserved += expected.reserved
        model.in_flight.add(call.id)
        minute, day = clock_minute(at), utc_day(at)
        model.minute_count = (model.minute_count if model.minute_window == minute else 0) + 1
        model.minute_window = minute
        model.day_credits = ((model.day_credits if model.credits_day == day else Decimal(0))
                             + expected.reserved)
        model.credits_day = day
        flooded = flooded_numbers(call, flood_seconds)
        for number in flooded:
            self.stamps[number] = at
        self.model_calls[call.id] = CallModel(call.account_id, flooded, at, expected.rate,
                                              expected.caller_rate, expected.max_minutes,
                                              expected.reserved)

    def expected_accept(self, call: NewCall, now: float, max_call_minutes: int,
                        flood_seconds: int, pricing: Pricing) -> Expected:
        """The codes in DESIGN.md's order: 5 disabled, 2 no minute affordable, 6 flood, then 6
        for the key's limits (in flight at once, per clock minute)."""
        caller, callee = str(call.caller.e164_int), str(call.callee.e164_int)
        model = self.model_accounts[call.account_id]
        if not model.enabled:
            return Expected(5)
        rate = rate_of(self.rates, callee, pricing.default_rate)
        caller_rate = (rate_of(self.rates, caller, pricing.default_rate)
                       if pricing.bill_caller_leg else None)
        available = model.credits - model.reserved
        if model.daily_credits is not None:
            used = model.day_credits if model.credits_day == utc_day(now) else 0
            available = min(available, model.daily_credits - used)
        setup_cost = SETUP * (caller_rate or 0)  # the caller's leg rings the callee first
        minutes = affordable(available - setup_cost, rate + (caller_rate or 0))
        if minutes is not None and minutes < 1:
            return Expected(2)
        if any(self.stamps.get(n, -math.inf) > now - flood_seconds
               for n in flooded_numbers(call, flood_seconds)):
            return Expected(6)
        if (model.max_concurrent is not None
                and len(model.in_flight) >= model.max_concurrent):
            return Expected(6)
        if model.max_per_minute is not None:
            counted = model.minute_count if model.minute_window == clock_minute(now) else 0
            if counted >= model.max_per_minute:
                return Expected(6)
        limit = (min(call.max_duration, max_call_minutes) if call.max_duration
                 else max_call_minutes)
        reserve = limit if minutes is None else min(limit, minutes)
        reserved = reserve * rate
        if caller_rate is not None:
            reserved += (reserve + SETUP) * caller_rate
        return Expected(0, rate, caller_rate, reserve, reserved, available)

    def pick(self, data: st.DataObject, wanted: Callable[[CallModel], bool]) -> str:
        """A call: mostly one ``wanted`` (a rule's interesting case, rare among all calls), else
        any (a call already ended or cancelled must be left alone)."""
        pool = [c for c, model in self.model_calls.items() if wanted(model)]
        if not pool or data.draw(st.integers(0, 3)) == 0:
            pool = list(self.model_calls)
        return data.draw(st.sampled_from(pool))

    @precondition(lambda self: any(m.state == "queued" for m in self.model_calls.values()))
    @rule(data=st.data(), answer_after=st.integers(0, 40),
          leg_lasts=st.sampled_from([None, 13_000]) | st.integers(0, 13_000))
    def caller_answers(self, data: st.DataObject, answer_after: int,
                       leg_lasts: int | None) -> None:
        """The caller's leg answered (and maybe ended): what its billed minutes count from.
        A leg of 13,000 s outlasts any call's limit: it costs more than the call reserved."""
        queued = [c for c, m in self.model_calls.items() if m.state == "queued"]
        billed = [c for c in queued if self.model_calls[c].caller_rate is not None]
        # Mostly a call whose caller leg is billed: for the others its times cost nothing.
        call = data.draw(st.sampled_from(billed if billed and data.draw(st.integers(0, 3))
                                         else queued))
        model = self.model_calls[call]
        answered_at = model.created_at + answer_after
        gone_at = None if leg_lasts is None else answered_at + leg_lasts
        assert self.store.calls.set_fields(call, {"caller_answered_at": answered_at,
                                                  "caller_gone_at": gone_at})
        model.caller_answered_at, model.caller_gone_at = answered_at, gone_at

    @precondition(lambda self: self.model_calls)
    @rule(data=st.data(), answered=st.booleans(), minutes=MINUTES, estimated=st.booleans(),
          on_leg_end=st.booleans())
    def settle(self, data: st.DataObject, answered: bool, minutes: int, estimated: bool,
               on_leg_end: bool) -> None:
        self.now += TICK
        call = self.pick(data, lambda model: model.state == "queued")
        outcome = outcome_of(answered, minutes, estimated)
        model = self.model_calls[call]
        if on_leg_end:  # as the listener does: the leg's end recorded and the call settled
            at = self.now
            settled = self.store.calls.fill_and_settle_if(
                call, {"callee_gone_at": at}, lambda row: (outcome, at), now=self.now) is not None
            if model.state != "cancelled" and model.callee_gone_at is None:
                model.callee_gone_at = at
        else:
            settled = self.store.calls.settle(call, outcome, ended_at=self.now, now=self.now)
        assert settled == (model.state == "queued"), "a call settles exactly once"
        if settled:
            self.settled([(call, outcome)])

    @precondition(lambda self: self.model_calls)
    @rule(data=st.data())
    def settle_group(self, data: st.DataObject) -> None:
        """As the listener settles calls (on their ends, or estimated: settle_decided)."""
        self.now += TICK
        picks = data.draw(st.lists(
            st.tuples(st.sampled_from(list(self.model_calls)), st.booleans(), MINUTES,
                      st.booleans()),
            min_size=1, max_size=4, unique_by=lambda pick: pick[0]))
        outcomes = {call: outcome_of(answered, minutes, estimated)
                    for call, answered, minutes, estimated in picks}
        at = self.now
        settled = self.store.calls.settle_ready(
            list(outcomes), lambda row: (outcomes[row["id"]], at), now=self.now)
        expected = sorted(c for c in outcomes if self.model_calls[c].state == "queued")
        assert sorted(call for call, _ in settled) == expected
        self.settled([(call, outcomes[call]) for call in expected])

    def settled(self, settled: list[tuple[str, SettledOutcome]]) -> None:
        """The model of settlement; a group debits its calls in id order (Calls.settle_ready)."""
        for call_id, outcome in sorted(settled, key=lambda item: item[0]):
            call = self.model_calls[call_id]
            account = self.model_accounts[call.account_id]
            call.state, call.ended_at, call.estimated = "ended", self.now, outcome.estimated
            call.answered = outcome.answered
            call.minutes = min(outcome.minutes, call.max_minutes) if outcome.answered else 0
            call.charged = charge(call)
            call.debit = min(call.charged, account.credits)  # credits never go negative
            event("settled: " + ("ran dry" if call.debit < call.charged else
                                 "capped at the reservation" if call.charged == call.reserved
                                 else "charged its minutes"))
            account.credits -= call.debit
            account.reserved -= call.reserved
            account.in_flight.discard(call_id)
            if account.credits_day == utc_day(call.created_at):
                # The day's limit counts what calls cost: what it held but did not use is back.
                account.day_credits = max(Decimal(0),
                                          account.day_credits - (call.reserved - call.charged))
            self.check_call(call_id)
            debits = [r for r in self.store.ledger.for_call(call_id) if r["kind"] == "debit"]
            assert [r["delta"] for r in debits] == ([-call.debit] if call.charged else [])

    @precondition(lambda self: self.model_calls)
    @rule(data=st.data(), answered=st.booleans(), minutes=MINUTES,
          callee_after=st.integers(0, 13_000))
    def callee_leg_ends(self, data: st.DataObject, answered: bool, minutes: int,
                        callee_after: int) -> None:
        """The callee leg's end (its CDR) arrives: it fills the row's gap and, for a call settled
        on an estimate, corrects it once."""
        self.now += TICK
        call = self.pick(data, lambda model: model.estimated and not model.corrected)
        model = self.model_calls[call]
        gone_at = model.created_at + callee_after
        measured = outcome_of(answered, minutes)
        remeasured: list[str] = []

        def remeasure(row: Any, fields: Any) -> SettledOutcome:
            remeasured.append(row["id"])
            return measured

        assert self.store.calls.fill_and_settle_if(
            call, {"callee_gone_at": gone_at}, lambda row: None, remeasure=remeasure,
            now=self.now) is None
        if model.state != "cancelled" and model.callee_gone_at is None:
            model.callee_gone_at = gone_at
        corrects = model.state == "ended" and model.estimated and not model.corrected
        assert remeasured == ([call] if corrects else [])
        if not corrects:
            return
        event("an estimate corrected")
        account = self.model_accounts[model.account_id]
        model.corrected = True
        model.answered = answered
        model.minutes = min(minutes, model.max_minutes) if answered else 0
        gone = [t for t in (model.caller_gone_at, model.callee_gone_at) if t is not None]
        if gone:
            model.ended_at = max(gone)
        estimated_charge, model.charged = model.charged, charge(model)
        wanted = model.charged - model.debit
        delta = -min(wanted, account.credits) if wanted > 0 else -wanted
        account.credits += delta
        self.check_call(call)
        corrections = [r["delta"] for r in self.store.ledger.for_call(call)
                       if r["kind"] == "correction"]
        # A changed charge is written down even when no credit moves (a dry debit of 0).
        changed = wanted or model.charged != estimated_charge
        assert corrections == ([delta] if changed else [])

    @precondition(lambda self: self.model_calls)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        call = self.pick(data, lambda model: model.state == "queued")
        model = self.model_calls[call]
        assert self.store.cancel_call(call) == (model.state == "queued")
        assert self.store.calls.get(call) is None or model.state != "queued"
        if model.state != "queued":
            return
        model.state = "cancelled"
        account = self.model_accounts[model.account_id]
        account.reserved -= model.reserved
        account.in_flight.discard(call)
        if account.credits_day == utc_day(model.created_at):
            account.day_credits = max(Decimal(0), account.day_credits - model.reserved)
        for number in model.numbers:  # the customer may retry at once
            if self.stamps.get(number) == model.created_at:
                del self.stamps[number]

    def check_call(self, call_id: str) -> None:
        """A settled row against the model, and its charge against its own columns."""
        model = self.model_calls[call_id]
        row = self.store.calls.get(call_id)
        assert row is not None and row["state"] == "ended"
        assert (row["answered"], row["minutes"], row["caller_minutes"], row["charged"],
                row["reserved_credits"], bool(row["estimated"])) == (
            model.answered, model.minutes, model.caller_minutes, model.charged, model.reserved,
            model.estimated)
        priced = row["minutes"] * row["rate"]
        if row["caller_rate"] is not None:
            priced += row["caller_minutes"] * row["caller_rate"]
        assert row["charged"] == min(priced, row["reserved_credits"])

    # after every step

    @invariant()
    def the_books_balance(self) -> None:
        # 'stuck' (a call unsettled long past its deadline) is about the reconciler keeping
        # time, not about money: here the clock jumps a day with calls left in flight on purpose.
        breaches = [b for b in check_invariants(self.store, now=self.now)
                    if b.invariant != "stuck"]
        assert breaches == [], [str(b) for b in breaches]
        assert self.store.ledger.check() == []
        a, f = schema.accounts, schema.flood
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(a.c.id, a.c.credits, a.c.reserved, a.c.active_calls,
                                       a.c.minute_window, a.c.minute_count, a.c.credits_day,
                                       a.c.day_credits)).all()
            stamps = dict(conn.execute(select(f.c.number, f.c.stamped_at)).all())
        assert {row.id for row in rows} == set(self.model_accounts)
        for row in rows:
            model = self.model_accounts[row.id]
            assert row.credits >= 0 and row.reserved >= 0
            assert (row.credits, row.reserved, row.active_calls or 0) == (
                model.credits, model.reserved, len(model.in_flight)), f"account {row.id}"
            assert (row.minute_window, row.minute_count or 0, row.credits_day,
                    row.day_credits or 0) == (model.minute_window, model.minute_count,
                                              model.credits_day, model.day_credits)
        assert stamps == self.stamps


def outcome_of(answered: bool, minutes: int, estimated: bool = False) -> SettledOutcome:
    return SettledOutcome(answered, minutes, None if answered else int(Reason.HUNG_UP),
                          minutes * 60 if answered else 0, estimated=estimated)


# --- on both stores -----------------------------------------------------------------------

@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="c2c-billing-") as folder:
        yield f"sqlite:///{folder}/c2c.sqlite3"


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def backend(request: pytest.FixtureRequest
            ) -> tuple[Callable[[], AbstractContextManager[str]], int]:
    """A maker of fresh databases (one per example) on each backend, and how many examples."""
    if request.param == "sqlite":
        return sqlite_database, 40
    server = request.getfixturevalue("mysql_server")
    return (lambda: temporary_database(server, "c2c_test_")), 10


def test_billing_holds_for_any_sequence_of_operations(backend):
    database, examples = backend
    run_state_machine_as_test(
        lambda: BillingMachine(database),
        settings=settings(max_examples=examples * SCALE, stateful_step_count=STEPS,
                          deadline=None, derandomize=SCALE == 1, database=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )


# --- what the property found, pinned as regressions --------------------------------------

def test_a_group_across_midnight_counts_each_call_in_its_own_day(store, make_call):
    """A group whose calls fall on both sides of midnight: the first call belongs to the day
    ending, not to the new day's limit (once, the group was counted in its last call's day and
    minute, and the first call's reservation never given back there)."""
    account = store.accounts.create("ten a day", 100, now=NOW)
    store.accounts.set_limits(account.id, daily_credits=10)
    midnight = (NOW // 86_400 + 1) * 86_400
    before, after = (make_call(account.id, f"1555210000{i}", f"4420712000{i}", max_duration=4)
                     for i in (1, 2))
    results = store.accept_calls(account.id, [(before, midnight - 0.5), (after, midnight + 0.5)],
                                 **ACCEPT_DEFAULTS)
    assert [r.max_minutes for r in results] == [4, 4]
    assert store.calls.settle(before.id, SettledOutcome(False, 0, int(Reason.HUNG_UP), 0),
                              ended_at=midnight + 5, now=midnight + 5)
    # The new day has one call of 4 credits in flight: 6 of its 10 are left.
    later = make_call(account.id, "15552100003", "442071200003", max_duration=10)
    assert store.accept_call(account.id, later, now=midnight + 10,
                             **ACCEPT_DEFAULTS).max_minutes == 6


def test_setting_no_limit_changes_nothing(store):
    """The CLI refuses `keys set` with nothing to set before it opens the store; the store's own
    method changes nothing (once, it ran an UPDATE without SET)."""
    account = store.accounts.create("unchanged", 5, now=NOW)
    assert store.accounts.set_limits(account.id).limits == KeyLimits()


def test_an_estimate_corrected_to_nothing_after_a_dry_debit_is_clean(store, make_call):
    """The account ran dry before its call settled on an estimate (the debit took 0 of the 1
    it cost); then the call's end measured it unanswered: it costs nothing, and nothing was
    taken. The books are right, and `c2c check` must say so."""
    account = store.accounts.create("dry", 10, now=NOW)
    call = make_call(account.id)
    store.accept_call(account.id, call, now=NOW, **ACCEPT_DEFAULTS)
    store.accounts.add_credits(account.id, -10, now=NOW + 1)
    assert store.calls.settle(call.id, SettledOutcome(True, 1, None, 60, estimated=True),
                              ended_at=NOW + 100, now=NOW + 100)
    assert [r["delta"] for r in store.ledger.for_call(call.id)] == [0]
    unanswered = SettledOutcome(False, 0, int(Reason.HUNG_UP), 0)
    store.calls.fill_and_settle_if(call.id, {"callee_gone_at": NOW + 50}, lambda row: None,
                                   remeasure=lambda row, fields: unanswered, now=NOW + 200)
    row = store.calls.get(call.id)
    assert (row["charged"], row["corrected_at"]) == (0, NOW + 200)
    assert store.accounts.find(account.id).credits == 0
    assert check_invariants(store, now=NOW + 300) == []


def test_a_free_call_of_an_overdrawn_account_is_accepted(store, make_call):
    """Credits taken away while a call is in flight leave the account with less than it holds.
    A call to a number rated 0 costs nothing and has no limit from credits: it is accepted,
    reserving nothing (once, the read accepted it, the guard refused it, and after the retries
    the request failed with a database error)."""
    store.rates.import_csv(io.StringIO("1,1\n44,0\n"), now=NOW)
    account = store.accounts.create("overdrawn", 10, now=NOW)
    store.accept_call(account.id, make_call(account.id, callee="15552100001"), now=NOW,
                      **ACCEPT_DEFAULTS)
    store.accounts.add_credits(account.id, -10, now=NOW + 1)
    free = make_call(account.id, caller="15552100002", callee="442071234567")
    accepted = store.accept_call(account.id, free, now=NOW + 2, **ACCEPT_DEFAULTS)
    assert (accepted.rate, accepted.reserved_credits) == (0, 0)
    assert check_invariants(store, now=NOW + 3) == []

"""Rates (issue 14): exact decimal credits, the rate table, what a call reserves, may last and
costs at its rates, on both stores; and that without a table every number is what it was."""

from __future__ import annotations

import io
import json
import random
from decimal import Decimal

import pytest

from c2c.domain.credits import (
    CreditsError,
    affordable_minutes,
    cost,
    format_credits,
    json_credits,
    parse_credits,
    started_minutes,
)
from c2c.store import Pricing, SettledOutcome
from c2c.store.accept import FLAT_PRICING, caller_setup_minutes, number_prefixes
from c2c.store.invariants import check_invariants
from c2c.store.rates import RateFileError, parse_rate_rows
from tests.conftest import ACCEPT_DEFAULTS

NOW = 1_800_000_000.0
RATES_CSV = """prefix,rate,description
44,0.02,United Kingdom
447,0.035,UK mobiles
4470,0.5,UK personal numbering
1,0.01,NANP
"""


# --- pure ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("1", Decimal(1)), ("0.035", Decimal("0.035")), ("12.500000", Decimal("12.5")),
    (7, Decimal(7)), (Decimal("0.000001"), Decimal("0.000001")), ("-3", Decimal(-3)),
])
def test_credits_parse_exactly(raw, expected):
    parsed = parse_credits(raw)
    assert parsed == expected and isinstance(parsed, Decimal)


@pytest.mark.parametrize("raw", [0.1, "0.0000001", "1e400", "NaN", "inf", "", "1,5", "abc",
                                 True, None, "1" * 14])
def test_credits_refuse_anything_inexact(raw):
    with pytest.raises(CreditsError):
        parse_credits(raw)


def test_credits_print_without_trailing_zeros_and_json_exactly():
    assert [format_credits(Decimal(x)) for x in ("5", "0.105", "1200", "4.200", "0")] == [
        "5", "0.105", "1200", "4.2", "0"]
    assert json.dumps([json_credits(Decimal("5")), json_credits(Decimal("0.105"))]) == \
        "[5, 0.105]"


def test_what_minutes_cost_and_buy():
    assert started_minutes(0) == 0 and started_minutes(0.2) == 1 and started_minutes(60) == 1
    assert started_minutes(61) == 2
    assert cost(3, Decimal("0.035")) == Decimal("0.105")
    assert cost(3, Decimal("0.035"), 4, Decimal("0.01")) == Decimal("0.145")
    assert affordable_minutes(Decimal(10), Decimal("0.035")) == 285  # 9.975, not 10.01
    assert affordable_minutes(Decimal("0.034999"), Decimal("0.035")) == 0
    assert caller_setup_minutes(30, 0) == 1 and caller_setup_minutes(30, 45) == 2


def test_number_prefixes_are_fifteen_leading_runs():
    runs = number_prefixes(447700900123)
    assert runs[:3] == ["4", "44", "447"] and runs[-1] == "447700900123" and len(runs) == 15


def test_the_rates_file_is_read_strictly():
    rows = list(parse_rate_rows(io.StringIO(RATES_CSV + "+49,0.04\n# a comment\n\n")))
    assert [(r.prefix, r.rate, r.description) for r in rows] == [
        ("44", Decimal("0.02"), "United Kingdom"), ("447", Decimal("0.035"), "UK mobiles"),
        ("4470", Decimal("0.5"), "UK personal numbering"), ("1", Decimal("0.01"), "NANP"),
        ("49", Decimal("0.04"), None)]
    for bad, message in [("44,0.1234567\n", "decimal places"), ("044,1\n", "E.164 prefix"),
                         ("44\n", "expected prefix,rate"), ("44,-1\n", "negative"),
                         ("44,abc\n", "not a decimal"), ("1234567890123456,1\n", "E.164")]:
        with pytest.raises(RateFileError, match=message):
            list(parse_rate_rows(io.StringIO(bad), "r.csv"))


# --- on both stores -----------------------------------------------------------------------

def accept(store, call, now=NOW, pricing=FLAT_PRICING, **overrides):
    return store.accept_call(call.account_id, call, now=now, pricing=pricing,
                             **{**ACCEPT_DEFAULTS, **overrides})


def settle(store, call_id, minutes, *, answered=True, billsec=None):
    outcome = SettledOutcome(answered, minutes, None if answered else 0,
                             billsec if billsec is not None else minutes * 60)
    assert store.calls.settle(call_id, outcome, ended_at=NOW + 500, now=NOW + 500)


def import_rates(store, text=RATES_CSV, replace=False):
    return store.rates.import_csv(io.StringIO(text), replace=replace, now=NOW)


def test_without_a_table_credits_are_minutes_as_before(store, make_call):
    account = store.accounts.create("flat", 10)
    call = make_call(account.id, max_duration=4)
    accepted = accept(store, call)
    assert (accepted.max_minutes, accepted.reserved_credits, accepted.rate) == (4, 4, 1)
    assert store.accounts.find(account.id).reserved == 4
    settle(store, call.id, 3)
    after = store.accounts.find(account.id)
    assert (after.credits, after.reserved) == (7, 0)
    assert str(after.credits) == "7"  # not 7.000000: the amounts people see stay as they were
    [debit] = store.ledger.for_call(call.id)
    assert (debit["delta"], debit["balance_after"], debit["rate"]) == (-3, 7, 1)
    row = store.calls.get(call.id)
    assert (row["minutes"], row["charged"], row["caller_minutes"]) == (3, 3, None)
    assert check_invariants(store, now=NOW + 600) == []


def test_the_longest_prefix_decides_and_the_call_keeps_its_rate(store, make_call):
    import_rates(store)
    assert store.rates.lookup(447012345678).rate == Decimal("0.5")
    assert store.rates.lookup(447911123456).rate == Decimal("0.035")
    assert store.rates.lookup(442071234567).rate == Decimal("0.02")
    assert store.rates.lookup(33123456789) is None
    account = store.accounts.create("rated", 10)
    call = make_call(account.id, callee="447911123456")
    accepted = accept(store, call)
    # 10 credits buy 285 minutes at 0.035; the operator's cap (120) is lower.
    assert (accepted.rate, accepted.max_minutes, accepted.reserved_credits) == (
        Decimal("0.035"), 120, Decimal("4.2"))
    assert store.accounts.find(account.id).reserved == Decimal("4.2")
    import_rates(store, "447,9\n")  # a new rate does not change a call already placed
    settle(store, call.id, 3)
    after = store.accounts.find(account.id)
    assert (after.credits, after.reserved) == (Decimal("9.895"), 0)
    [debit] = store.ledger.for_call(call.id)
    assert (debit["delta"], debit["rate"]) == (Decimal("-0.105"), Decimal("0.035"))
    assert check_invariants(store, now=NOW + 600) == []


def test_the_rate_sets_the_hard_time_limit(store, make_call):
    import_rates(store, "44,0.3\n")
    account = store.accounts.create("short", 1)
    accepted = accept(store, make_call(account.id))
    assert (accepted.max_minutes, accepted.reserved_credits) == (3, Decimal("0.9"))  # 1 / 0.3
    assert accepted.deadline_at == NOW + 2 * 30 + 3 * 60 + 120
    poor = store.accounts.create("poor", "0.29")
    with pytest.raises(Exception) as refused:
        accept(store, make_call(poor.id, caller="15552104499", callee="442071234599"))
    assert getattr(refused.value, "code", None) == 2  # not one minute's worth
    # Billed minutes never exceed the limit, whatever the switch measured.
    settle(store, accepted.id, 7)
    assert store.ledger.for_call(accepted.id)[0]["delta"] == Decimal("-0.9")


def test_the_caller_leg_is_billed_when_asked(store, make_call):
    import_rates(store)
    pricing = Pricing(bill_caller_leg=True)
    account = store.accounts.create("both legs", 5)
    call = make_call(account.id, caller="15552104427", callee="447911123456", max_duration=10)
    accepted = accept(store, call, pricing=pricing)
    # Talk: 10 min at 0.035 + 0.01; the caller's leg also rings the callee: one more minute.
    assert (accepted.rate, accepted.caller_rate) == (Decimal("0.035"), Decimal("0.01"))
    assert accepted.reserved_credits == Decimal("0.46")
    store.calls.set_fields(call.id, {"caller_answered_at": NOW + 5,
                                     "caller_gone_at": NOW + 5 + 200})
    settle(store, call.id, 3)  # the callee talked 3 minutes; the caller's leg ran 200 s: 4
    row = store.calls.get(call.id)
    assert (row["caller_minutes"], row["charged"]) == (4, Decimal("0.145"))
    [debit] = store.ledger.for_call(call.id)
    assert (debit["delta"], debit["caller_rate"]) == (Decimal("-0.145"), Decimal("0.01"))
    assert store.accounts.find(account.id).credits == Decimal("4.855")
    assert check_invariants(store, now=NOW + 600) == []


def test_import_replace_and_errors_leave_the_table_whole(store):
    import_rates(store)
    with pytest.raises(RateFileError, match="line 2"):
        import_rates(store, "49,0.04\n49x,1\n", replace=True)
    assert store.rates.count() == 4  # the bad file changed nothing, not even with --replace
    with pytest.raises(RateFileError, match="twice"):
        import_rates(store, "49,0.04\n49,0.05\n")
    import_rates(store, "44,0.025\n")  # without --replace: updated, the rest kept
    assert [(r.prefix, r.rate) for r in store.rates.list()] == [
        ("1", Decimal("0.01")), ("44", Decimal("0.025")), ("447", Decimal("0.035")),
        ("4470", Decimal("0.5"))]
    import_rates(store, "49,0.04\n", replace=True)
    assert [r.prefix for r in store.rates.list()] == ["49"]


def test_ten_thousand_calls_at_odd_rates_do_not_drift(store, make_call):
    """Accepted and settled in groups, as the API and the listener do: every credit reserved
    and debited adds up exactly, to the micro-credit."""
    rates = {"44": Decimal("0.013"), "447": Decimal("0.0333"), "1": Decimal("0.000007")}
    import_rates(store, "".join(f"{p},{r}\n" for p, r in rates.items()))
    start = Decimal("100000.000001")
    account = store.accounts.create("busy", start)
    pick = random.Random(14)
    expected = start
    calls = 10_000
    for group in range(calls // 200):
        batch = []
        for i in range(200):
            n = group * 200 + i
            callee = pick.choice(["4420", "4479", "1212"]) + f"{n:08d}"
            batch.append((make_call(account.id, caller=f"1555{n:07d}", callee=callee),
                          NOW + n * 0.001))
        results = store.accept_calls(account.id, batch, pricing=Pricing(), **ACCEPT_DEFAULTS)
        minutes = {call.id: pick.randint(0, 9) for call, _ in batch}
        for accepted in results:
            expected -= accepted.rate * min(minutes[accepted.id], accepted.max_minutes)

        def decide(row, minutes=minutes):
            return SettledOutcome(minutes[row["id"]] > 0, minutes[row["id"]], None,
                                  minutes[row["id"]] * 60), NOW + 900
        assert len(store.calls.settle_ready(list(minutes), decide, now=NOW + 900)) == 200
    after = store.accounts.find(account.id)
    assert (after.credits, after.reserved) == (expected, 0)
    debits = [row["delta"] for row in store.ledger.entries(account.id, limit=calls + 1)]
    assert sum(debits) == expected  # the grant and every debit
    assert check_invariants(store, now=NOW + 1000) == []

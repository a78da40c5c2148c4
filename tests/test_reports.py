"""`c2c report usage` on both stores: calls accepted and settled through the store (answered,
failed, estimated then corrected) over two days, a later month, two destinations and two
accounts; the groups and totals, and that the credits are the ledger's own sum."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, or_, select

from c2c.domain.states import CallState, Reason
from c2c.store import Pricing, SettledOutcome, Store, schema
from tests.conftest import ACCEPT_DEFAULTS

DAY1 = datetime(2027, 1, 14, tzinfo=UTC).timestamp()
DAY2 = DAY1 + 86400
FEB2 = datetime(2027, 2, 2, tzinfo=UTC).timestamp()
UK, US = "44", "1"
CHEAP = Pricing(default_rate=Decimal("0.035"))  # account A's calls: fractions of a credit


@dataclass
class Billing:
    """What the scenario placed: accounts' ids and keys, and call ids by name."""

    a: int
    a_key: str
    b: int
    calls: dict[str, str] = field(default_factory=dict)


def place(store: Store, make_call, account_id: int, callee_cc: str, at: float,
          pricing: Pricing = CHEAP) -> str:
    callee = "442071234567" if callee_cc == UK else "12125550123"
    call = make_call(account_id, "15552104427", callee)
    store.accept_call(account_id, call, now=at, pricing=pricing,
                      **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
    return call.id


def settle(store: Store, call_id: str, at: float, minutes: int = 0, billsec: int | None = None,
           *, reason: int | None = None, estimated: bool = False) -> None:
    outcome = SettledOutcome(minutes > 0 or billsec is not None, minutes, reason, billsec,
                             estimated=estimated)
    assert store.calls.settle(call_id, outcome, ended_at=at + 600, now=at + 600)


def correct(store: Store, call_id: str, at: float, minutes: int, billsec: int) -> None:
    """The estimate's correction, as a late CDR of the callee's leg makes it."""
    measured = SettledOutcome(True, minutes, None, billsec)
    store.calls.fill_and_check(call_id, {"callee_gone_at": at + 700}, lambda row: False,
                               remeasure=lambda row, fields: measured, now=at + 900)


def build_billing(store: Store, make_call) -> Billing:
    """Account A at 0.035/min, account B at 1/min:

    day 1 (2027-01-14): A to UK answered 3 min (150 s); A to US failed; B to US 2 min (95 s)
    day 2 (2027-01-15): A to UK estimated 5 min, corrected to 2 min (100 s); A to US 1 min
      (20 s); A to US still ringing (not ended: never counted); B to UK busy
    2027-02-02: B to UK 4 min (230 s);  2027-01-13 23:59:59: B to UK 1 min (60 s)
    """
    a = store.accounts.create("Acme", 1000, now=DAY1 - 86400)
    b = store.accounts.create("Bolt", 50, now=DAY1 - 86400)
    billing = Billing(a.id, a.api_key, b.id)
    flat = Pricing()
    plan = [
        ("a_uk", a.id, UK, DAY1 + 3600, CHEAP, dict(minutes=3, billsec=150)),
        ("a_us_failed", a.id, US, DAY1 + 7200, CHEAP, dict(reason=Reason.FAILED)),
        ("b_us", b.id, US, DAY1 + 10800, flat, dict(minutes=2, billsec=95)),
        ("a_uk_estimated", a.id, UK, DAY2 + 60, CHEAP,
         dict(minutes=5, billsec=300, estimated=True)),
        ("a_us", a.id, US, DAY2 + 86399.5, CHEAP, dict(minutes=1, billsec=20)),
        ("a_us_ringing", a.id, US, DAY2 + 5000, CHEAP, None),
        ("b_uk_busy", b.id, UK, DAY2 + 4000, flat, dict(reason=Reason.BUSY)),
        ("b_feb", b.id, UK, FEB2 + 100, flat, dict(minutes=4, billsec=230)),
        ("b_before", b.id, UK, DAY1 - 1, flat, dict(minutes=1, billsec=60)),
    ]
    for name, account_id, cc, at, pricing, result in plan:
        call_id = place(store, make_call, account_id, cc, at, pricing)
        billing.calls[name] = call_id
        if result is not None:
            settle(store, call_id, at, **result)
    correct(store, billing.calls["a_uk_estimated"], DAY2 + 60, minutes=2, billsec=100)
    return billing


@pytest.fixture
def billing(store, make_call) -> Billing:
    return build_billing(store, make_call)


@pytest.fixture
def c2c(store_url, store, monkeypatch, capsys):
    """c2c("report", "usage") -> (exit status, stdout, stderr), as the `c2c` command runs."""
    from c2c.cli.main import main

    monkeypatch.setenv("C2C_DATABASE_URL", store_url)
    monkeypatch.setenv("C2C_LOG_LEVEL", "WARNING")

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse: bad arguments
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


def report(c2c, *argv: str) -> dict:
    status, out, err = c2c("report", "usage", "--json", *argv)
    assert (status, err) == (0, "")
    return json.loads(out)


def ledger_sum(store: Store, call_ids: list[str]) -> Decimal:
    """Minus the ledger's own sum of the calls' debits and corrections."""
    ledger = schema.ledger
    with store.engine.connect() as conn:
        total = conn.execute(select(func.sum(ledger.c.delta)).where(
            or_(ledger.c.call_id.in_(call_ids), ledger.c.corrects.in_(call_ids)))).scalar()
    return -total


def test_the_scenario_is_what_the_report_sums(store, billing):
    """The settlement did what the expectations below assume (charged at the call's rate)."""
    calls = {name: store.calls.get(call_id) for name, call_id in billing.calls.items()}
    assert calls["a_uk"]["charged"] == Decimal("0.105")
    assert (calls["a_uk_estimated"]["minutes"], calls["a_uk_estimated"]["charged"]) == (
        2, Decimal("0.07"))
    assert calls["a_us_ringing"]["state"] == CallState.QUEUED.value
    kinds = [row["kind"] for row in store.ledger.for_call(billing.calls["a_uk_estimated"])]
    assert sorted(kinds) == ["correction", "debit"]


def test_usage_by_day_groups_and_totals(c2c, store, billing):
    data = report(c2c, "--from", "2027-01-14", "--to", "2027-01-15")
    assert (data["by"], data["from"], data["to"], data["account"]) == (
        "day", "2027-01-14", "2027-01-15", None)
    assert data["groups"] == [
        {"day": "2027-01-14", "calls": 3, "answered": 2, "asr": 0.6667,
         "avg_talk_s": 122.5, "minutes": 5, "credits": 2.105},
        # The estimate's 5 minutes were corrected to 2: its debit 0.175, its correction +0.105.
        {"day": "2027-01-15", "calls": 3, "answered": 2, "asr": 0.6667,
         "avg_talk_s": 60.0, "minutes": 3, "credits": 0.105},
    ]
    assert data["total"] == {"calls": 6, "answered": 4, "asr": 0.6667, "avg_talk_s": 91.3,
                             "minutes": 8, "credits": 2.21}
    # The total is the ledger's own sum for the ended calls of the period, to the micro-credit.
    in_period = [billing.calls[name] for name in (
        "a_uk", "a_us_failed", "b_us", "a_uk_estimated", "a_us", "b_uk_busy")]
    assert ledger_sum(store, in_period) == Decimal("2.21")
    assert Decimal(str(data["total"]["credits"])) == ledger_sum(store, in_period)


def test_total_credits_equal_the_ledger_for_every_period(c2c, store, billing):
    ended = {name: call_id for name, call_id in billing.calls.items()
             if name != "a_us_ringing"}
    everything = report(c2c)
    assert everything["total"]["calls"] == 8
    assert Decimal(str(everything["total"]["credits"])) == ledger_sum(store, list(ended.values()))
    day2 = report(c2c, "--from", "2027-01-15", "--to", "2027-01-15")
    assert Decimal(str(day2["total"]["credits"])) == ledger_sum(
        store, [ended["a_uk_estimated"], ended["a_us"], ended["b_uk_busy"]])
    # --to is the whole day: a call at 23:59:59.5 counts; --from starts at midnight.
    assert [g["day"] for g in day2["groups"]] == ["2027-01-15"] and day2["total"]["calls"] == 3
    before = report(c2c, "--to", "2027-01-13")
    assert (before["total"]["calls"], before["total"]["credits"]) == (1, 1)


def test_usage_of_one_key_by_month_and_by_destination(c2c, store, billing):
    for key in (billing.a_key, str(billing.a)):
        data = report(c2c, "--key", key, "--by", "month")
        assert data["account"] == {"id": billing.a, "name": "Acme"}
        assert data["groups"] == [
            {"month": "2027-01", "calls": 4, "answered": 3, "asr": 0.75, "avg_talk_s": 90.0,
             "minutes": 6, "credits": 0.21},
        ]
    months = report(c2c, "--key", str(billing.b), "--by", "month")
    assert [(g["month"], g["calls"], g["minutes"], g["credits"]) for g in months["groups"]] == [
        ("2027-01", 3, 3, 3), ("2027-02", 1, 4, 4)]
    assert months["total"]["credits"] == 7

    by_destination = report(c2c, "--by", "destination", "--from", "2027-01-14")
    assert by_destination["groups"] == [
        {"destination": "1", "calls": 3, "answered": 2, "asr": 0.6667, "avg_talk_s": 57.5,
         "minutes": 3, "credits": 2.035},
        {"destination": "44", "calls": 4, "answered": 3, "asr": 0.75, "avg_talk_s": 160.0,
         "minutes": 9, "credits": 4.175},
    ]
    assert by_destination["total"]["credits"] == 6.21


def test_usage_as_csv_and_as_a_table(c2c, billing):
    status, out, _ = c2c("report", "usage", "--csv", "--from", "2027-01-14", "--to",
                         "2027-01-15")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["day"] for r in rows] == ["2027-01-14", "2027-01-15", "total"]
    assert rows[0] == {"day": "2027-01-14", "calls": "3", "answered": "2", "asr": "0.6667",
                       "avg_talk_s": "122.5", "minutes": "5", "credits": "2.105"}
    assert (rows[2]["calls"], rows[2]["credits"]) == ("6", "2.21")

    status, out, _ = c2c("report", "usage", "--by", "destination", "--key", str(billing.b))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"ended calls of account {billing.b} (Bolt), the start to now (UTC), " \
        "by destination"
    assert lines[1].split() == ["destination", "calls", "answered", "asr", "avg_talk_s",
                                "minutes", "credits"]
    assert lines[-1].split() == ["total", "4", "3", "0.7500", "128.3", "7", "7"]


def test_an_empty_period_reports_zero(c2c, billing):
    data = report(c2c, "--from", "2026-01-01", "--to", "2026-12-31")
    assert data["groups"] == []
    assert data["total"] == {"calls": 0, "answered": 0, "asr": None, "avg_talk_s": None,
                             "minutes": 0, "credits": 0}


@pytest.mark.parametrize("bad", ["2027-13-01", "2027-02-30", "14/01/2027", "2027-1-5",
                                 "20270114", "yesterday", ""])
def test_a_bad_date_is_a_usage_error_without_traceback(c2c, bad):
    status, out, err = c2c("report", "usage", "--from", bad)
    assert (status, out) == (2, "")
    assert "is not a date: write it as YYYY-MM-DD (UTC)" in err
    assert "Traceback" not in err


def test_a_reversed_period_or_unknown_key_is_one_line(c2c, billing):
    assert c2c("report", "usage", "--from", "2027-01-15", "--to", "2027-01-14") == (
        1, "", "c2c: --from 2027-01-15 is after --to 2027-01-14\n")
    assert c2c("report", "usage", "--key", "no-such-key") == (1, "", "c2c: no such account\n")
    status, _, err = c2c("report", "usage", "--by", "week")
    assert status == 2 and "invalid choice: 'week'" in err

"""`c2c calls export` on both stores: one row per call of the period as the store has it, as CSV
and as JSON lines, filtered by period and key, and streamed: its memory does not grow with the
number of calls."""

from __future__ import annotations

import csv
import io
import json
import sys
import tracemalloc
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import insert

from c2c.cli.db import iso_time
from c2c.store import Store, schema
from tests.test_reports import DAY1, DAY2, build_billing

EXPORTED = ("id", "account_id", "created_at", "ended_at", "caller", "callee", "answered",
            "reason", "minutes", "billsec", "caller_minutes", "rate", "caller_rate", "charged",
            "estimated", "state")


@pytest.fixture
def c2c(store_url, store, monkeypatch, capsys):
    """c2c("calls", "export", ...) -> (exit status, stdout, stderr), as the `c2c` command runs."""
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


@pytest.fixture
def billing(store, make_call):
    return build_billing(store, make_call)


def export_csv(c2c, *argv: str) -> list[dict[str, str]]:
    status, out, err = c2c("calls", "export", *argv)
    assert (status, err) == (0, "")
    reader = csv.DictReader(io.StringIO(out))
    assert tuple(reader.fieldnames or ()) == EXPORTED
    return list(reader)


def export_jsonl(c2c, *argv: str) -> list[dict]:
    status, out, err = c2c("calls", "export", "--jsonl", *argv)
    assert (status, err) == (0, "")
    assert out.endswith("\n")
    return [json.loads(line) for line in out.splitlines()]


def text(value) -> str:
    return "" if value is None else str(value)


def test_csv_rows_are_the_calls_of_the_period_as_stored(c2c, store, billing):
    rows = export_csv(c2c, "--from", "2027-01-14", "--to", "2027-01-15")
    by_id = {row["id"]: row for row in rows}
    expected = [billing.calls[name] for name in (
        "a_uk", "a_us_failed", "b_us", "a_uk_estimated", "b_uk_busy", "a_us_ringing", "a_us")]
    assert [row["id"] for row in rows] == expected  # oldest first; unended calls too
    for call_id in expected:
        call, row = store.calls.get(call_id), by_id[call_id]
        assert row["account_id"] == str(call["account_id"])
        assert row["created_at"] == iso_time(call["created_at"])
        assert row["ended_at"] == text(iso_time(call["ended_at"]))
        assert row["caller"] == f"+{call['caller_country_code']}{call['caller_number']}"
        assert row["callee"] == f"+{call['callee_country_code']}{call['callee_number']}"
        assert row["answered"] == ("" if call["answered"] is None
                                   else "true" if call["answered"] else "false")
        for name in ("reason", "minutes", "billsec", "caller_minutes", "state"):
            assert row[name] == text(call[name]), name
        for name in ("rate", "caller_rate", "charged"):
            assert (Decimal(row[name]) if row[name] else None) == call[name], name
        assert row["estimated"] == ("true" if call["estimated"] else "false")
    corrected = by_id[billing.calls["a_uk_estimated"]]
    assert (corrected["minutes"], corrected["charged"], corrected["estimated"]) == (
        "2", "0.07", "true")
    assert by_id[billing.calls["a_uk"]]["created_at"] == "2027-01-14T01:00:00.000Z"
    ringing = by_id[billing.calls["a_us_ringing"]]
    assert (ringing["state"], ringing["answered"], ringing["ended_at"]) == ("queued", "", "")


def test_jsonl_rows_carry_exact_amounts_and_json_types(c2c, store, billing):
    rows = export_jsonl(c2c, "--from", "2027-01-14", "--to", "2027-01-15")
    assert len(rows) == 7 and all(tuple(row) == EXPORTED for row in rows)
    by_id = {row["id"]: row for row in rows}
    a_uk = by_id[billing.calls["a_uk"]]
    assert (a_uk["answered"], a_uk["minutes"], a_uk["billsec"], a_uk["reason"]) == (
        True, 3, 150, None)
    assert (a_uk["rate"], a_uk["charged"], a_uk["caller_rate"]) == (0.035, 0.105, None)
    busy = by_id[billing.calls["b_uk_busy"]]
    assert (busy["answered"], busy["reason"], busy["charged"], busy["rate"]) == (False, 5, 0, 1)
    for row in rows:
        call = store.calls.get(row["id"])
        assert row["account_id"] == call["account_id"] and row["state"] == call["state"]
        if call["charged"] is not None:
            assert Decimal(str(row["charged"])) == call["charged"]


def test_the_period_and_key_filter(c2c, store, billing):
    day2 = [row["id"] for row in export_csv(c2c, "--from", "2027-01-15", "--to", "2027-01-15")]
    # 00:01 through 23:59:59.5 of the day; not 23:59:59 of the day before, not the 14th.
    assert day2 == [billing.calls[name] for name in (
        "a_uk_estimated", "b_uk_busy", "a_us_ringing", "a_us")]
    day0 = export_jsonl(c2c, "--from", "2027-01-13", "--to", "2027-01-13")
    assert [row["id"] for row in day0] == [billing.calls["b_before"]]
    for key in (billing.a_key, str(billing.a)):
        mine = export_jsonl(c2c, "--from", "2027-01-01", "--to", "2027-03-01", "--key", key)
        assert {row["account_id"] for row in mine} == {billing.a} and len(mine) == 5
    nothing = export_csv(c2c, "--from", "2026-01-01", "--to", "2026-01-31")
    assert nothing == []


def test_bad_arguments_are_clear_errors(c2c, billing):
    status, out, err = c2c("calls", "export", "--from", "2027-01-14")
    assert (status, out) == (2, "") and "--to" in err and "required" in err
    status, out, err = c2c("calls", "export", "--from", "2027-01-32", "--to", "2027-02-01")
    assert (status, out) == (2, "") and "write it as YYYY-MM-DD" in err
    assert "Traceback" not in err
    assert c2c("calls", "export", "--from", "2027-01-15", "--to", "2027-01-14") == (
        1, "", "c2c: --from 2027-01-15 is after --to 2027-01-14\n")
    assert c2c("calls", "export", "--from", "2027-01-14", "--to", "2027-01-14", "--key",
               "nobody") == (1, "", "c2c: no such account\n")
    status, _, err = c2c("calls", "export", "--csv", "--jsonl", "--from", "2027-01-14",
                         "--to", "2027-01-14")
    assert status == 2 and "not allowed with argument" in err


# -- memory: the export streams --


class CountingSink(io.TextIOBase):
    """A stdout that keeps nothing: counts the lines and characters written."""

    def __init__(self) -> None:
        self.lines = 0
        self.chars = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        self.chars += len(text)
        return len(text)


def insert_calls(store: Store, account_id: int, count: int, start: float) -> None:
    """``count`` ended calls one second apart from ``start``, in a few bulk inserts."""
    rows = []
    for n in range(count):
        at = start + n
        rows.append({
            "id": str(uuid.uuid4()), "account_id": account_id, "state": "ended",
            "caller_country_code": "1", "caller_number": f"555{n:07d}",
            "callee_country_code": "44", "callee_number": f"20{n:08d}", "caller_id": "",
            "secret": "", "max_minutes": 10, "switch": "fs1:8021",
            "job_uuid": str(uuid.uuid4()), "caller_uuid": str(uuid.uuid4()),
            "callee_uuid": str(uuid.uuid4()), "created_at": at, "deadline_at": at + 3600,
            "ended_at": at + 200, "answered": True, "minutes": 3, "billsec": 150,
            "rate": Decimal("0.035"), "charged": Decimal("0.105"), "estimated": False,
        })
        if len(rows) == 5000:
            _insert(store, rows)
            rows = []
    _insert(store, rows)


def _insert(store: Store, rows: list[dict]) -> None:
    if rows:
        with store.engine.begin() as conn:
            conn.execute(insert(schema.calls), rows)


def export_peak(*argv: str) -> tuple[int, int]:
    """(lines written, the peak of Python memory traced) of one `c2c calls export` to a
    counting sink."""
    from c2c.cli.main import main

    sink, stdout = CountingSink(), sys.stdout
    sys.stdout = sink
    tracemalloc.start()
    try:
        assert main(["calls", "export", *argv]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        sys.stdout = stdout
    return sink.lines, peak


@pytest.mark.parametrize("form", ["--csv", "--jsonl"])
def test_memory_stays_the_same_for_ten_times_the_calls(store_url, store, monkeypatch, form):
    monkeypatch.setenv("C2C_DATABASE_URL", store_url)
    monkeypatch.setenv("C2C_LOG_LEVEL", "WARNING")
    account = store.accounts.create("Bulk", 0)
    insert_calls(store, account.id, 3_000, DAY1)  # all on 2027-01-14
    insert_calls(store, account.id, 30_000, DAY2)  # on 2027-01-15
    small = ("--from", "2027-01-14", "--to", "2027-01-14", form)
    large = ("--from", "2027-01-15", "--to", "2027-01-15", form)

    export_peak(*small)  # warm up: imports and statement caches
    small_lines, small_peak = export_peak(*small)
    large_lines, large_peak = export_peak(*large)
    header = 1 if form == "--csv" else 0
    assert (small_lines, large_lines) == (3_000 + header, 30_000 + header)
    # Holding the rows would take ~10x the memory for 10x the calls; streaming takes the same.
    assert large_peak < 2 * small_peak + 256 * 1024, (small_peak, large_peak)

"""Estimated settlements and their one correction, on both stores: the row, the ledger, `c2c
check`, replays (also concurrent ones), the schema step that holds it, and `c2c calls`."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, insert, inspect, select, update

from c2c.calls.estimate import settle_unseen
from c2c.calls.events import JobResult, LegEnd
from c2c.calls.listener import CallEventListener
from c2c.cli import calls as calls_cli
from c2c.domain.states import CallState
from c2c.store import SettledOutcome, Store, make_engine, migrations, schema
from c2c.store.invariants import check_invariants
from tests.conftest import ACCEPT_DEFAULTS

NOW = 1_800_000_000.0
BRIDGED = NOW + 10
LATER = NOW + 100_000  # past every deadline here: nothing may count as stuck


@pytest.fixture
def account(store):
    return store.accounts.create("acme", 100, now=NOW)


@pytest.fixture
def bridged_call(store, account, make_call) -> Callable[..., str]:
    """A call bridged at BRIDGED whose end is never seen: bridged_call(max_duration=5) -> id."""
    counter = iter(range(1, 10_000))

    def place(max_duration: int = 5, bridged: bool = True, **kwargs: Any) -> str:
        n = next(counter)
        call = make_call(account.id, f"1555{n:07d}", f"4420{n:08d}", max_duration=max_duration,
                         callback_url="https://cb.example/r", **kwargs)
        store.accept_call(account.id, call, now=NOW, **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
        store.calls.advance(call.id, [CallState.QUEUED], CallState.CALLER_ANSWERED,
                            caller_answered_at=NOW + 5)
        if bridged:
            store.calls.advance(call.id, [CallState.CALLER_ANSWERED], CallState.BRIDGED,
                                callee_answered_at=BRIDGED, bridged_at=BRIDGED)
        return call.id

    return place


def settle_estimated(store: Store, call_id: str, heard: float | None) -> dict[str, Any]:
    """What the owner does for a call of a switch out of reach (heard: its last sign of life)."""
    listener = CallEventListener(store)

    def decide(row):
        outcome, ended_at = settle_unseen(row, heard)
        return outcome, NOW + 1000 if ended_at is None else ended_at

    assert listener.settle_decided([call_id], decide) == 1
    return store.calls.get(call_id)


def callee_end(call_id: str, billsec: int, ended: float | None = None) -> LegEnd:
    """The callee leg's end as its CDR (or late HANGUP_COMPLETE) gives it."""
    return LegEnd(call_id, "callee", "NORMAL_CLEARING", "200", answered_at=BRIDGED,
                  bridged_at=BRIDGED, ended_at=ended or BRIDGED + billsec, billsec=billsec)


def caller_end(call_id: str, ended: float, bridged: float | None = BRIDGED) -> LegEnd:
    return LegEnd(call_id, "caller", "NORMAL_CLEARING", "200", answered_at=NOW + 5,
                  bridged_at=bridged, ended_at=ended, billsec=int(ended - NOW - 5))


def ledger_rows(store: Store, call_id: str) -> list[tuple[str, int, int, str | None, str | None]]:
    return [(r["kind"], r["delta"], r["balance_after"], r["call_id"], r["corrects"])
            for r in store.ledger.for_call(call_id)]


def test_an_estimated_settlement_is_marked_billed_and_called_back(store, account, bridged_call):
    call_id = bridged_call()
    row = settle_estimated(store, call_id, heard=BRIDGED + 130.5)
    assert (row["state"], row["answered"], row["minutes"], row["reason"], row["billsec"]) == (
        "ended", True, 3, None, 130)
    assert row["estimated"] and row["corrected_at"] is None
    assert row["ended_at"] == BRIDGED + 130
    assert ledger_rows(store, call_id) == [("debit", -3, 97, call_id, None)]
    after = store.accounts.find(account.id)
    assert (after.credits, after.reserved) == (97, 0)
    callback = store.callbacks.get_for_call(call_id)
    assert "answered=1" in callback["url"] and "minutes=3" in callback["url"]
    assert check_invariants(store, now=LATER) == []


def test_a_cdr_corrects_the_estimate_once(store, account, bridged_call):
    call_id = bridged_call()
    settle_estimated(store, call_id, heard=BRIDGED + 130.5)
    listener = CallEventListener(store)
    listener.leg_ended(callee_end(call_id, billsec=250))
    row = store.calls.get(call_id)
    assert (row["answered"], row["minutes"], row["billsec"]) == (True, 5, 250)
    assert row["estimated"] and row["corrected_at"] is not None
    assert row["ended_at"] == BRIDGED + 250 == row["callee_gone_at"]
    assert ledger_rows(store, call_id) == [
        ("debit", -3, 97, call_id, None),
        ("correction", -2, 95, None, call_id),
    ]
    (correction,) = [r for r in store.ledger.for_call(call_id) if r["kind"] == "correction"]
    assert correction["note"] == "estimated 3 min, measured 5 min"
    # Replayed, and then the other leg's CDR: nothing more changes.
    corrected = store.calls.get(call_id)
    listener.leg_ended(callee_end(call_id, billsec=250))
    listener.leg_ended(caller_end(call_id, ended=BRIDGED + 251))
    again = store.calls.get(call_id)
    assert {k: again[k] for k in ("minutes", "billsec", "corrected_at", "ended_at")} == {
        k: corrected[k] for k in ("minutes", "billsec", "corrected_at", "ended_at")}
    assert again["caller_gone_at"] == BRIDGED + 251  # the facts are still recorded
    assert len(ledger_rows(store, call_id)) == 2
    assert store.accounts.find(account.id).credits == 95
    with store.engine.connect() as conn:  # no second callback
        assert conn.execute(select(func.count()).select_from(schema.callbacks)).scalar() == 1
    assert check_invariants(store, now=LATER) == []


def test_a_shorter_measure_credits_the_difference_back(store, account, bridged_call):
    call_id = bridged_call()
    row = settle_estimated(store, call_id, heard=None)  # nothing better: its deadline
    assert (row["minutes"], row["billsec"]) == (5, 300)
    CallEventListener(store).leg_ended(caller_end(call_id, ended=BRIDGED + 42))
    row = store.calls.get(call_id)
    assert (row["minutes"], row["billsec"], row["ended_at"]) == (1, 42, BRIDGED + 42)
    assert ledger_rows(store, call_id) == [
        ("debit", -5, 95, call_id, None),
        ("correction", 4, 99, None, call_id),
    ]
    assert check_invariants(store, now=LATER) == []


def test_an_estimated_failure_that_was_answered_after_all(store, account, bridged_call):
    call_id = bridged_call(bridged=False)
    with store.engine.begin() as conn:  # as if the caller had never answered
        conn.execute(update(schema.calls).where(schema.calls.c.id == call_id)
                     .values(state="caller_ringing", caller_answered_at=None))
    row = settle_estimated(store, call_id, heard=NOW + 3)
    assert (row["answered"], row["minutes"], row["reason"], row["estimated"]) == (
        False, 0, 0, True)
    assert ledger_rows(store, call_id) == []
    # The switch thawed: the call had gone on, and its caller's end tells all.
    CallEventListener(store, group_settles=True).leg_ended(
        caller_end(call_id, ended=BRIDGED + 130))
    row = store.calls.get(call_id)
    assert (row["answered"], row["minutes"], row["reason"], row["billsec"]) == (
        True, 3, None, 130)
    assert ledger_rows(store, call_id) == [("correction", -3, 97, None, call_id)]
    assert check_invariants(store, now=LATER) == []


def test_a_correction_never_takes_credits_below_zero(store, bridged_call, account):
    call_id = bridged_call(max_duration=5)
    settle_estimated(store, call_id, heard=BRIDGED + 50)  # 1 minute
    store.accounts.add_credits(account.id, -98, note="taken away", now=NOW + 60)  # 1 left
    CallEventListener(store).leg_ended(callee_end(call_id, billsec=200))  # 4 minutes
    row = store.calls.get(call_id)
    assert row["minutes"] == 4
    rows = store.ledger.for_call(call_id)
    assert [(r["kind"], r["delta"], r["balance_after"]) for r in rows] == [
        ("debit", -1, 99), ("correction", -1, 0)]
    assert rows[1]["note"] == "estimated 1 min, measured 4 min, 2 left to debit"
    assert store.accounts.find(account.id).credits == 0
    assert check_invariants(store, now=LATER) == []


def test_a_measured_settlement_is_not_corrected(store, account, bridged_call):
    call_id = bridged_call()
    listener = CallEventListener(store)
    listener.leg_ended(callee_end(call_id, billsec=100))
    listener.leg_ended(caller_end(call_id, ended=BRIDGED + 100))
    row = store.calls.get(call_id)
    assert (row["state"], row["minutes"], row["estimated"], row["corrected_at"]) == (
        "ended", 2, None, None)
    listener.leg_ended(callee_end(call_id, billsec=290))  # a different story: ignored
    assert store.calls.get(call_id)["minutes"] == 2
    assert ledger_rows(store, call_id) == [("debit", -2, 98, call_id, None)]


def test_an_end_still_unseen_does_not_correct(store, account, bridged_call):
    call_id = bridged_call()
    settle_estimated(store, call_id, heard=BRIDGED + 70)
    listener = CallEventListener(store)
    # A late originate result says nothing of how long they talked.
    job = store.calls.get(call_id)["job_uuid"]
    listener.originate_failed(JobResult(job, False, "NORMAL_CLEARING"))
    row = store.calls.get(call_id)
    assert row["corrected_at"] is None and row["minutes"] == 2
    assert row["originate_error"] == "NORMAL_CLEARING"


def test_concurrent_replays_on_many_hosts_correct_once(store, store_url, account, bridged_call):
    call_id = bridged_call()
    settle_estimated(store, call_id, heard=BRIDGED + 30)
    stores = [Store(make_engine(store_url)) for _ in range(8)]
    for s in stores:
        s.ping()
    barrier = threading.Barrier(len(stores))
    errors: list[str] = []

    def replay(s: Store, index: int) -> None:
        barrier.wait(timeout=30)
        try:  # half with the callee's CDR, half with the caller's
            end = (callee_end(call_id, billsec=185) if index % 2
                   else caller_end(call_id, ended=BRIDGED + 185))
            CallEventListener(s, group_settles=bool(index % 3 == 0)).leg_ended(end)
        except Exception as exc:  # reported by the assertion below
            errors.append(repr(exc))

    threads = [threading.Thread(target=replay, args=(s, i)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.dispose()
    assert errors == []
    assert ledger_rows(store, call_id) == [
        ("debit", -1, 99, call_id, None),
        ("correction", -3, 96, None, call_id),
    ]
    assert store.calls.get(call_id)["minutes"] == 4
    assert check_invariants(store, now=LATER) == []


def test_the_ledger_refuses_a_second_correction_of_a_call(store, account, bridged_call):
    call_id = bridged_call()
    settle_estimated(store, call_id, heard=BRIDGED + 30)
    CallEventListener(store).leg_ended(callee_end(call_id, billsec=185))
    row = {"account_id": account.id, "delta": -1, "balance_after": 95, "kind": "correction",
           "corrects": call_id, "created_at": NOW}
    with pytest.raises(Exception, match="(?i)unique|duplicate"), store.engine.begin() as conn:
        conn.execute(insert(schema.ledger).values(**row))


def test_mark_alive_moves_forward_only_and_only_on_calls_in_flight(store, account, bridged_call):
    live, other, done = bridged_call(), bridged_call(), bridged_call()
    settle_estimated(store, done, heard=BRIDGED + 30)
    assert store.calls.mark_alive([live, other, done, "no-such-call"], NOW + 50) == 2
    assert store.calls.mark_alive([live], NOW + 40) == 0  # never backwards
    assert store.calls.mark_alive([], NOW + 60) == 0
    assert store.calls.mark_alive([live], NOW + 60) == 1
    assert [store.calls.get(i)["alive_at"] for i in (live, other, done)] == [
        NOW + 60, NOW + 50, None]
    with pytest.raises(ValueError):  # estimates are written by settling only
        store.calls.set_fields(live, {"estimated": True})


# --------------------------------------------------------------------------------------------
# `c2c check` understands corrections


def test_check_finds_a_correction_that_does_not_add_up(store, account, bridged_call):
    call_id = bridged_call()
    settle_estimated(store, call_id, heard=BRIDGED + 30)
    CallEventListener(store).leg_ended(callee_end(call_id, billsec=185))
    lg = schema.ledger
    with store.engine.begin() as conn:
        conn.execute(update(lg).where(lg.c.corrects == call_id)
                     .values(delta=-4, balance_after=95))
        conn.execute(update(schema.accounts).values(credits=95))
    details = [b.detail for b in check_invariants(store, now=LATER)]
    assert details == ["debited 5 for a call costing 4"]


def test_check_finds_corrections_of_calls_that_were_not_estimated(
    store, account, bridged_call, make_call
):
    measured = bridged_call()
    store.calls.settle(measured, SettledOutcome(True, 2, None, 100), ended_at=NOW + 110)
    ringing = bridged_call()
    lg = schema.ledger
    with store.engine.begin() as conn:
        for call_id in (measured, ringing, "00000000-0000-4000-8000-000000000000"):
            conn.execute(insert(lg).values(account_id=account.id, delta=0, balance_after=98,
                                           kind="correction", corrects=call_id, created_at=NOW))
    found = sorted((b.subject, b.detail) for b in check_invariants(store, now=LATER)
                   if b.invariant == "debits")
    rows = {r["corrects"]: r["id"] for r in store.ledger.entries(account.id) if r["corrects"]}
    unknown = "00000000-0000-4000-8000-000000000000"
    assert found == sorted([
        (f"call {measured}",
         f"corrected (ledger row {rows[measured]}) but not settled on an estimate"),
        (f"call {ringing}", f"corrected (ledger row {rows[ringing]}) but still bridged"),
        (f"call {unknown}", f"corrected (ledger row {rows[unknown]}) but no such call"),
    ])


# --------------------------------------------------------------------------------------------
# The schema step


def test_version_four_adds_the_correction_columns_to_a_version_three_database(engine):
    migrations.upgrade(engine)
    fresh = inspect(engine)
    fresh_calls = {c["name"]: str(c["type"]) for c in fresh.get_columns("calls")}
    fresh_ledger = {c["name"]: str(c["type"]) for c in fresh.get_columns("ledger")}
    fresh_index = {i["name"]: (i["column_names"], bool(i["unique"]))
                   for i in fresh.get_indexes("ledger")}
    assert fresh_index["uq_ledger_corrects"] == (["corrects"], True)
    with engine.begin() as conn:  # back to what version 3 made (of what this step adds)
        on = " ON ledger" if engine.dialect.name == "mysql" else ""
        conn.exec_driver_sql(f"DROP INDEX uq_ledger_corrects{on}")
        conn.exec_driver_sql("ALTER TABLE ledger DROP COLUMN corrects")
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN corrected_at")
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 3))
    assert migrations.upgrade(engine) == [4, 5, 6, 7]  # 5-7 find their changes made
    upgraded = inspect(engine)
    assert {c["name"]: str(c["type"]) for c in upgraded.get_columns("calls")} == fresh_calls
    assert {c["name"]: str(c["type"]) for c in upgraded.get_columns("ledger")} == fresh_ledger
    assert {i["name"]: (i["column_names"], bool(i["unique"]))
            for i in upgraded.get_indexes("ledger")} == fresh_index
    assert migrations.upgrade(engine) == []


# --------------------------------------------------------------------------------------------
# `c2c calls show|list`


def test_calls_show_and_list_an_estimate_and_its_correction(store, account, bridged_call, capsys):
    call_id = bridged_call()
    settle_estimated(store, call_id, heard=BRIDGED + 130.5)
    listing = argparse.Namespace(limit=5, state=None, account=None, json=False)
    assert calls_cli._list(listing, store) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith(call_id) and " yes   ~3  " in line
    CallEventListener(store).leg_ended(callee_end(call_id, billsec=250))
    assert calls_cli._list(listing, store) == 0
    assert " yes    5  " in capsys.readouterr().out.splitlines()[1]

    show = argparse.Namespace(call_id=call_id, json=True)
    assert calls_cli._show(show, store) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["estimated"], shown["minutes"], shown["billsec"]) == (True, 5, 250)
    assert shown["corrected_at"].endswith("Z") and shown["alive_at"] is None
    assert [(r["kind"], r["delta"], r["balance_after"]) for r in shown["ledger"]] == [
        ("debit", -3, 97), ("correction", -2, 95)]
    assert calls_cli._show(argparse.Namespace(call_id=call_id, json=False), store) == 0
    out = capsys.readouterr().out
    assert "estimated            True" in out
    assert "ledger               debit -3 credits at 1/min, balance 97" in out
    assert ("ledger               correction -2 credits at 1/min, balance 95" in out
            and "estimated 3 min, measured 5 min" in out)

"""`c2c check`: the store's invariants hold on a healthy store, and each breach is reported."""

from __future__ import annotations

import argparse
import json

import pytest
from sqlalchemy import delete, insert, update

from c2c.cli import check as check_cli
from c2c.config import Config
from c2c.store import SettledOutcome, schema
from c2c.store.invariants import Breach, check_invariants
from tests.conftest import ACCEPT_DEFAULTS

NOW = 1_800_000_000.0
LATER = NOW + 600  # after every settle; the ringing call is still within its deadline


@pytest.fixture
def world(store, make_call):
    """Two accounts: a settled answered call with a callback, a settled unanswered one, a call
    still ringing, and one that drained its account."""
    acme = store.accounts.create("acme", 100, now=NOW).id
    tiny = store.accounts.create("tiny", 2, now=NOW).id
    store.accounts.add_credits(acme, 5, note="top-up", now=NOW)
    calls = {}

    def place(name, account, max_duration, **kwargs):
        call = make_call(
            account,
            f"155521{len(calls):05d}",
            f"44207{len(calls):07d}",
            max_duration=max_duration,
            **kwargs,
        )
        store.accept_call(account, call, now=NOW, **ACCEPT_DEFAULTS)
        calls[name] = call.id

    place("answered", acme, 10, callback_url="https://example.com/cb?x=1")
    place("unanswered", acme, 10, callback_url="https://example.com/cb")
    place("ringing", acme, 10)
    place("drained", tiny, 2)
    store.calls.settle(calls["answered"], SettledOutcome(True, 3, None, 150), ended_at=NOW + 200)
    store.calls.settle(calls["unanswered"], SettledOutcome(False, 0, 5, 0), ended_at=NOW + 30)
    # The operator took credits away mid-call: the call's 2 minutes find only 1 to debit.
    store.accounts.add_credits(tiny, -1, note="correction", now=NOW + 10)
    store.calls.settle(calls["drained"], SettledOutcome(True, 2, None, 100), ended_at=NOW + 120)
    return {"acme": acme, "tiny": tiny, **calls}


def breaches(store, now=LATER, **kwargs) -> list[Breach]:
    return check_invariants(store, now=now, **kwargs)


def execute(store, statement) -> None:
    with store.engine.begin() as conn:
        conn.execute(statement)


def test_a_healthy_store_has_no_breach(store, world):
    assert breaches(store) == []
    assert store.accounts.find(world["tiny"]).credits == 0  # the shortfall is not a breach


def test_an_empty_store_has_no_breach(store):
    assert breaches(store) == []


def test_tampered_balance(store, world):
    a = schema.accounts
    execute(store, update(a).where(a.c.id == world["acme"]).values(credits=a.c.credits + 7))
    found = breaches(store)
    assert {(b.invariant, b.subject) for b in found} == {("accounts", f"account {world['acme']}")}
    assert any("ledger sums to" in b.detail for b in found)


def test_negative_balance(store, world):
    a = schema.accounts
    execute(store, update(a).where(a.c.id == world["tiny"]).values(credits=-1))
    assert any(
        b.subject == f"account {world['tiny']}" and "negative" in b.detail for b in breaches(store)
    )


def test_reserved_not_matching_the_calls_in_flight(store, world):
    a = schema.accounts
    execute(store, update(a).where(a.c.id == world["acme"]).values(reserved=0))
    assert any(
        b.invariant == "accounts" and "reserved is 0 but calls in flight hold 10" in b.detail
        for b in breaches(store)
    )


def test_missing_callback_row(store, world):
    cb = schema.callbacks
    execute(store, delete(cb).where(cb.c.call_id == world["answered"]))
    assert breaches(store) == [
        Breach(
            "callbacks",
            f"call {world['answered']}",
            "settled with a callback_url but no callback queued",
        )
    ]


def test_stuck_call(store, world):
    deadline = store.calls.get(world["ringing"])["deadline_at"]
    assert breaches(store, now=deadline + 299) == []  # inside the margin: the reconciler's time
    found = breaches(store, now=deadline + 301)
    assert [(b.invariant, b.subject) for b in found] == [("stuck", f"call {world['ringing']}")]
    assert "still queued" in found[0].detail
    assert breaches(store, now=deadline + 301, stuck_margin=600) == []


def test_debit_not_matching_the_minutes(store, world):
    c = schema.calls
    execute(store, update(c).where(c.c.id == world["answered"]).values(minutes=4))
    found = breaches(store)
    assert [(b.invariant, b.subject) for b in found] == [("debits", f"call {world['answered']}")]
    assert found[0].detail == "charged 3 but its minutes at its rates cost 4"

    execute(store, update(c).where(c.c.id == world["answered"]).values(minutes=4, charged=4))
    assert breaches(store)[0].detail == "debited 3 of 4 with 102 left"

    execute(store, update(c).where(c.c.id == world["answered"]).values(minutes=2, charged=2))
    assert breaches(store)[0].detail == "debited 3 for a call costing 2"


def test_charge_not_matching_the_rate(store, world):
    """A call charged at a rate other than its own: found, whatever its ledger says."""
    c = schema.calls
    execute(store, update(c).where(c.c.id == world["answered"]).values(rate="0.5"))
    found = breaches(store)
    assert [b.detail for b in found] == ["charged 3 but its minutes at its rates cost 1.5"]


def test_settled_call_never_debited(store, world):
    lg = schema.ledger
    execute(store, delete(lg).where(lg.c.call_id == world["answered"]))
    found = breaches(store)
    assert (
        Breach("debits", f"call {world['answered']}", "settled costing 3 but never debited")
        in found
    )
    assert any(b.invariant == "accounts" for b in found)  # and the ledger no longer sums up


def test_debit_for_a_call_not_ended_or_unknown(store, world):
    lg = schema.ledger
    rows = [
        {"call_id": world["ringing"], "note": None},
        {"call_id": "00000000-0000-4000-8000-000000000000", "note": None},
        {"call_id": None, "note": "orphan"},
    ]
    for row in rows:
        execute(
            store,
            insert(lg).values(
                account_id=world["acme"],
                delta=0,
                balance_after=102,
                kind="debit",
                created_at=NOW,
                **row,
            ),
        )
    details = {b.detail.split(" (")[0] for b in breaches(store) if b.invariant == "debits"}
    assert details == {"debited", "a debit without a call id"}
    subjects = {b.subject for b in breaches(store) if b.invariant == "debits"}
    assert f"call {world['ringing']}" in subjects
    assert "call 00000000-0000-4000-8000-000000000000" in subjects


def test_unanswered_call_debited(store, world):
    lg = schema.ledger
    execute(
        store,
        insert(lg).values(
            account_id=world["acme"],
            delta=0,
            balance_after=102,
            kind="debit",
            call_id=world["unanswered"],
            created_at=NOW,
        ),
    )
    assert breaches(store) == [
        Breach("debits", f"call {world['unanswered']}", "cost nothing but debited 0")
    ]


def test_debit_on_another_account(store, world):
    lg = schema.ledger
    execute(
        store, update(lg).where(lg.c.call_id == world["answered"]).values(account_id=world["tiny"])
    )
    assert any(b.invariant == "debits" and "placed by account" in b.detail for b in breaches(store))


# --------------------------------------------------------------------------------------------
# The command


def run_check(store, capsys, *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    check_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["check", *argv])
    config = Config.defaults(database_url=store.engine.url.render_as_string(hide_password=False))
    status = args.func(args, config)
    return status, capsys.readouterr().out


def settle_the_ringing_call(store, world) -> None:
    """The command checks at the wall-clock time, by which the ringing call may look stuck."""
    store.calls.settle(world["ringing"], SettledOutcome(False, 0, 3, 0), ended_at=NOW + 60)


def test_command_on_a_healthy_store(store, world, capsys):
    settle_the_ringing_call(store, world)
    status, out = run_check(store, capsys)
    assert (status, out.strip()) == (0, "ok: every invariant holds")
    status, out = run_check(store, capsys, "--json")
    assert status == 0
    assert json.loads(out)["ok"] is True


def test_command_prints_each_breach_and_exits_1(store, world, capsys):
    settle_the_ringing_call(store, world)
    cb, a = schema.callbacks, schema.accounts
    execute(store, delete(cb).where(cb.c.call_id == world["answered"]))
    execute(store, update(a).where(a.c.id == world["tiny"]).values(credits=5))
    status, out = run_check(store, capsys)
    assert status == 1
    lines = out.strip().splitlines()
    assert lines[-1] == "3 breach(es)"
    assert (
        f"BREACH [callbacks] call {world['answered']}: settled with a callback_url but no "
        "callback queued" in lines
    )
    assert sum(line.startswith(f"BREACH [accounts] account {world['tiny']}") for line in lines) == 2

    status, out = run_check(store, capsys, "--json")
    result = json.loads(out)
    assert (status, result["ok"], len(result["breaches"])) == (1, False, 3)
    assert {"invariant", "subject", "detail"} == set(result["breaches"][0])


def test_command_without_a_schema_fails(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    check_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["check"])
    status = args.func(args, Config.defaults(database_url=f"sqlite:///{tmp_path / 'empty.db'}"))
    assert status == 1
    assert "c2c db upgrade" in capsys.readouterr().err

"""Call rows after the accept: forward-only moves, the legs' ends, and settling exactly once."""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import func, select

from c2c.domain.states import CallState, Reason
from c2c.store import SettledOutcome, Store, make_engine, schema
from tests.conftest import ACCEPT_DEFAULTS

NOW = 1_800_000_000.0


@pytest.fixture
def account(store):
    return store.accounts.create("acme", 100)


@pytest.fixture
def placed(store, account, make_call):
    """Place a call: placed(**make_call kwargs) -> its id."""
    counter = iter(range(1, 10_000))

    def place(max_duration=1, callback_url=None, secret="", switch="fs1:8021", now=NOW):
        n = next(counter)
        call = make_call(
            account.id,
            f"1555{n:07d}",
            f"4420{n:08d}",
            max_duration=max_duration,
            callback_url=callback_url,
            secret=secret,
            switch=switch,
        )
        store.accept_call(account.id, call, now=now, **ACCEPT_DEFAULTS)
        return call.id

    return place


def answered(minutes, billsec=None):
    return SettledOutcome(True, minutes, None, billsec if billsec is not None else minutes * 60)


def test_advance_moves_forward_once(store, placed):
    call_id = placed()
    assert store.calls.advance(call_id, [CallState.QUEUED], CallState.CALLER_RINGING)
    assert not store.calls.advance(call_id, [CallState.QUEUED], CallState.CALLER_RINGING)
    assert store.calls.advance(
        call_id,
        ["queued", "caller_ringing"],
        "caller_answered",
        caller_answered_at=NOW + 3,
    )
    row = store.calls.get(call_id)
    assert (row["state"], row["caller_answered_at"]) == ("caller_answered", NOW + 3)
    assert not store.calls.advance("no-such-call", [CallState.QUEUED], CallState.BRIDGED)


def test_advance_refuses_backward_moves_ending_and_fixed_fields(store, placed):
    call_id = placed()
    with pytest.raises(ValueError):
        store.calls.advance(call_id, [CallState.BRIDGED], CallState.CALLER_RINGING)
    with pytest.raises(ValueError):
        store.calls.advance(call_id, [CallState.BRIDGED], CallState.BRIDGED)
    with pytest.raises(ValueError):
        store.calls.advance(call_id, [CallState.BRIDGED], CallState.ENDED)
    with pytest.raises(ValueError):
        store.calls.advance(call_id, [CallState.QUEUED], CallState.BRIDGED, minutes=3)


def test_advance_with_fill_sets_the_time_once_and_moves_when_it_may(store, placed):
    call_id = placed()
    answer = {"caller_answered_at": NOW + 3}
    assert store.calls.advance(call_id, ["queued", "caller_ringing"], "caller_answered",
                               fill=answer, recheck_at=None)
    row = store.calls.get(call_id)
    assert (row["state"], row["caller_answered_at"], row["recheck_at"]) == (
        "caller_answered", NOW + 3, None)
    # The same event again changes nothing; a later report does not overwrite the first.
    assert not store.calls.advance(call_id, ["queued", "caller_ringing"], "caller_answered",
                                   fill=answer, recheck_at=None)
    assert not store.calls.advance(call_id, ["queued"], "caller_ringing",
                                   fill={"caller_answered_at": NOW + 9})
    assert store.calls.get(call_id)["caller_answered_at"] == NOW + 3


def test_advance_with_fill_fills_even_when_the_state_is_past(store, placed):
    call_id = placed()
    store.calls.advance(call_id, ["queued"], "bridged", bridged_at=NOW + 5)
    # A late caller answer: the time is recorded, the state and the move's fields stay.
    assert store.calls.advance(call_id, ["queued", "caller_ringing"], "caller_answered",
                               fill={"caller_answered_at": NOW + 2}, recheck_at=NOW + 99)
    row = store.calls.get(call_id)
    assert (row["state"], row["caller_answered_at"], row["bridged_at"]) == (
        "bridged", NOW + 2, NOW + 5)
    assert row["recheck_at"] != NOW + 99


def test_advance_requires_a_column_set(store, placed):
    call_id = placed()
    assert not store.calls.advance(call_id, ["queued"], "bridged",
                                   requires=("callee_answered_at",), bridged_at=NOW + 4)
    assert store.calls.get(call_id)["state"] == "queued"
    store.calls.set_if_null(call_id, {"callee_answered_at": NOW + 4})
    assert store.calls.advance(call_id, ["queued"], "bridged",
                               requires=("callee_answered_at",), bridged_at=NOW + 4)
    assert store.calls.get(call_id)["state"] == "bridged"


def test_fill_and_settle_if_fills_then_settles_in_one_go(store, account, placed):
    call_id = placed(callback_url="https://example.com/cb")
    seen = []

    def decide(row):
        seen.append(dict(row))
        if row["caller_gone_at"] is None or row["callee_gone_at"] is None:
            return None
        return answered(1, billsec=42), max(row["caller_gone_at"], row["callee_gone_at"])

    assert store.calls.fill_and_settle_if(call_id, {"caller_gone_at": NOW + 50,
                                                    "caller_hangup_cause": None}, decide) is None
    assert seen[-1]["caller_gone_at"] == NOW + 50
    row = store.calls.get(call_id)
    assert (row["state"], row["caller_gone_at"]) == ("queued", NOW + 50)

    outcome = store.calls.fill_and_settle_if(
        call_id, {"callee_gone_at": NOW + 60, "caller_gone_at": NOW + 70}, decide)
    assert outcome == answered(1, billsec=42)
    row = store.calls.get(call_id)
    # The first report of the caller's end stayed; the callee's was filled in the settling write.
    assert (row["state"], row["minutes"], row["billsec"]) == ("ended", 1, 42)
    assert (row["caller_gone_at"], row["callee_gone_at"], row["ended_at"]) == (
        NOW + 50, NOW + 60, NOW + 60)
    assert store.accounts.find(account.id).reserved == 0
    assert store.accounts.find(account.id).credits == 99
    assert store.callbacks.get_for_call(call_id)["status"] == "pending"
    # Ended: nothing more is decided, what is missing is still recorded, nothing overwritten.
    count = len(seen)
    assert store.calls.fill_and_settle_if(
        call_id, {"billsec": 5, "originate_error": "NO_ANSWER"}, decide) is None
    row = store.calls.get(call_id)
    assert len(seen) == count and (row["billsec"], row["originate_error"]) == (42, "NO_ANSWER")
    assert store.calls.fill_and_settle_if("no-such-call", {}, decide) is None


def test_settle_ready_settles_a_group_once_with_one_running_balance(store, account, placed):
    ids = [placed(max_duration=2, callback_url="https://example.com/cb") for _ in range(3)]
    waiting = placed()
    for call_id in ids:
        assert store.calls.fill_and_check(call_id, {"caller_gone_at": NOW + 60},
                                          lambda row: row["caller_gone_at"] is not None)
    store.accounts.add_credits(account.id, -97)  # 3 left: the third call can pay only 1 of 2

    def decide(row):
        return (answered(2, billsec=90), NOW + 60) if row["caller_gone_at"] else None

    settled = store.calls.settle_ready([*ids, waiting, "no-such-call", ids[0]], decide)
    assert sorted(call_id for call_id, _ in settled) == sorted(ids)
    assert store.calls.settle_ready(ids, decide) == []  # once
    assert store.calls.get(waiting)["state"] == "queued"
    account_now = store.accounts.find(account.id)
    assert (account_now.credits, account_now.reserved) == (0, 1)  # the waiting call's 1
    with store.engine.connect() as conn:
        debits = conn.execute(
            select(schema.ledger.c.call_id, schema.ledger.c.delta, schema.ledger.c.balance_after)
            .where(schema.ledger.c.kind == "debit").order_by(schema.ledger.c.id)).all()
    assert [(d.delta, d.balance_after) for d in debits] == [(-2, 1), (-1, 0), (0, 0)]
    assert {d.call_id for d in debits} == set(ids)
    for call_id in ids:
        row = store.calls.get(call_id)
        assert (row["state"], row["minutes"], row["ended_at"]) == ("ended", 2, NOW + 60)
        assert store.callbacks.get_for_call(call_id)["status"] == "pending"


def test_fill_and_check_fills_and_says_whether_ready(store, placed):
    call_id = placed()
    def ready(row):
        return row["callee_gone_at"] is not None
    assert not store.calls.fill_and_check(call_id, {"caller_gone_at": NOW + 1}, ready)
    assert store.calls.fill_and_check(call_id, {"callee_gone_at": NOW + 2,
                                                "caller_gone_at": NOW + 9}, ready)
    row = store.calls.get(call_id)
    assert (row["caller_gone_at"], row["callee_gone_at"], row["state"]) == (
        NOW + 1, NOW + 2, "queued")
    assert not store.calls.fill_and_check("no-such-call", {}, ready)


def test_set_if_null_keeps_the_first_value(store, placed):
    call_id = placed()
    assert store.calls.get(call_id)["recheck_at"] is not None  # accept asks for a first look
    store.calls.set_fields(call_id, {"recheck_at": None})
    assert store.calls.set_if_null(call_id, {"callee_fate": "USER_BUSY", "recheck_at": NOW + 2})
    assert not store.calls.set_if_null(call_id, {"callee_fate": "OTHER", "recheck_at": NOW + 9})
    assert not store.calls.set_if_null(call_id, {"originate_error": None})
    row = store.calls.get(call_id)
    assert (row["callee_fate"], row["recheck_at"]) == ("USER_BUSY", NOW + 2)
    assert store.calls.set_fields(call_id, {"recheck_at": NOW + 7, "deadline_at": NOW + 60})
    row = store.calls.get(call_id)
    assert (row["recheck_at"], row["deadline_at"]) == (NOW + 7, NOW + 60)
    with pytest.raises(ValueError):
        store.calls.set_fields(call_id, {"account_id": 2})


def test_record_leg_gone_is_idempotent_and_fills_gaps(store, placed):
    call_id = placed()
    assert store.calls.record_leg_gone(call_id, "callee", "USER_BUSY", None, NOW + 5)
    assert store.calls.record_leg_gone(call_id, "callee", "NORMAL_CLEARING", "486", NOW + 6)
    assert not store.calls.record_leg_gone(call_id, "callee", "X", "500", NOW + 7)
    row = store.calls.get(call_id)
    assert (row["callee_hangup_cause"], row["callee_sip_status"], row["callee_gone_at"]) == (
        "USER_BUSY",
        "486",
        NOW + 5,
    )
    assert row["caller_gone_at"] is None


def test_lists_and_in_flight_counts(store, placed):
    a = placed(switch="fs1:8021", now=NOW)
    b = placed(switch="fs2:8021", now=NOW + 1)
    c = placed(switch="fs2:8021", now=NOW + 2)
    store.calls.settle(a, answered(0), ended_at=NOW + 5)
    assert store.calls.in_flight_by_switch() == {"fs2:8021": 2}
    assert [r["id"] for r in store.calls.in_flight("fs2:8021")] == [b, c]
    assert [r["id"] for r in store.calls.list()] == [c, b, a]
    assert [r["id"] for r in store.calls.list(limit=1)] == [c]
    assert [r["id"] for r in store.calls.list(state="ended")] == [a]
    assert store.calls.list(account_id=999) == []


def test_needing_attention_and_overdue(store, placed):
    quiet = placed(switch="fs1")
    gone = placed(switch="fs1")
    recheck = placed(switch="fs1")
    store.calls.record_leg_gone(gone, "caller", "NORMAL_CLEARING", None, NOW + 1)
    store.calls.set_fields(recheck, {"recheck_at": NOW + 2})
    ids = {r["id"] for r in store.calls.needing_attention("fs1", NOW + 3)}
    assert ids == {gone, recheck}
    assert quiet not in {r["id"] for r in store.calls.needing_attention("fs1", NOW + 3)}
    deadline = store.calls.get(quiet)["deadline_at"]
    assert quiet in {r["id"] for r in store.calls.needing_attention("fs1", deadline)}
    assert store.calls.overdue(deadline - 1) == []
    assert {r["id"] for r in store.calls.overdue(deadline + 1)} == {quiet, gone, recheck}


def test_settle_debits_releases_and_enqueues_the_callback(store, account, placed):
    call_id = placed(max_duration=10, callback_url="https://example.com/cb?x=1", secret="a b&c")
    assert store.accounts.find(account.id).reserved == 10
    assert store.calls.settle(call_id, answered(3, 150), ended_at=NOW + 200, now=NOW + 201)

    row = store.calls.get(call_id)
    assert (row["state"], row["answered"], row["minutes"], row["reason"]) == (
        "ended",
        True,
        3,
        None,
    )
    assert (row["billsec"], row["ended_at"]) == (150, NOW + 200)
    after = store.accounts.find(account.id)
    assert (after.credits, after.reserved) == (97, 0)
    debit = store.ledger.entries(account.id)[0]
    assert (debit["kind"], debit["delta"], debit["balance_after"], debit["call_id"]) == (
        "debit",
        -3,
        97,
        call_id,
    )
    assert store.ledger.check() == []

    callback = store.callbacks.get_for_call(call_id)
    assert (callback["status"], callback["attempts"], callback["next_attempt_at"]) == (
        "pending",
        0,
        NOW + 201,
    )
    url = urlsplit(callback["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "example.com", "/cb")
    assert parse_qsl(url.query, keep_blank_values=True) == [
        ("x", "1"),
        ("caller_phone_number", row["caller_number"]),
        ("callee_phone_number", row["callee_number"]),
        ("minutes", "3"),
        ("secret", "a b&c"),
        ("answered", "1"),
        ("reason", ""),
    ]


def test_settle_happens_once(store, account, placed):
    call_id = placed(max_duration=10)
    assert store.calls.settle(call_id, answered(2), ended_at=NOW + 100)
    assert not store.calls.settle(call_id, answered(5), ended_at=NOW + 300)
    assert store.calls.get(call_id)["minutes"] == 2
    assert store.accounts.find(account.id).credits == 98
    assert not store.calls.settle("no-such-call", answered(1), ended_at=NOW)


def test_an_unanswered_call_bills_nothing_and_reports_its_reason(store, account, placed):
    call_id = placed(callback_url="http://cb.example/")
    outcome = SettledOutcome(False, 4, Reason.BUSY, 0)  # minutes are ignored when not answered
    assert store.calls.settle(call_id, outcome, ended_at=NOW + 20)
    row = store.calls.get(call_id)
    assert (row["answered"], row["minutes"], row["reason"]) == (False, 0, 5)
    assert store.accounts.find(account.id).credits == 100
    assert [e["kind"] for e in store.ledger.entries(account.id)] == ["grant"]
    query = dict(parse_qsl(urlsplit(store.callbacks.get_for_call(call_id)["url"]).query, True))
    assert (query["answered"], query["reason"], query["minutes"]) == ("0", "5", "0")


def test_minutes_are_capped_at_the_calls_limit(store, account, placed):
    call_id = placed(max_duration=2)
    store.calls.settle(call_id, answered(3), ended_at=NOW + 200)
    assert store.calls.get(call_id)["minutes"] == 2
    assert store.accounts.find(account.id).credits == 98


def test_credits_removed_meanwhile_never_go_negative(store, account, placed):
    call_id = placed(max_duration=10)
    store.accounts.add_credits(account.id, -99)  # 1 left, 10 reserved
    store.calls.settle(call_id, answered(5), ended_at=NOW + 300)
    after = store.accounts.find(account.id)
    assert (after.credits, after.reserved) == (0, 0)
    debit = store.ledger.entries(account.id)[0]
    assert (debit["delta"], debit["balance_after"]) == (-1, 0)
    assert store.ledger.check() == []


def test_settle_extra_fields(store, placed):
    call_id = placed()
    store.calls.settle(
        call_id,
        SettledOutcome(False, 0, Reason.FAILED, None),
        ended_at=NOW,
        extra_fields={"originate_error": "GATEWAY_DOWN"},
    )
    assert store.calls.get(call_id)["originate_error"] == "GATEWAY_DOWN"


def test_concurrent_settles_settle_once(store, store_url, account, placed):
    call_id = placed(max_duration=10, callback_url="http://cb.example/")
    stores = [Store(make_engine(store_url)) for _ in range(12)]
    for s in stores:
        s.ping()
    barrier = threading.Barrier(len(stores))
    results: list[object] = []

    def run(s: Store) -> None:
        barrier.wait(timeout=30)
        try:
            results.append(s.calls.settle(call_id, answered(4), ended_at=NOW + 300))
        except Exception as exc:  # reported by the assertion below
            results.append(repr(exc))

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.dispose()

    assert sorted(results, key=str) == [False] * 11 + [True]
    after = store.accounts.find(account.id)
    assert (after.credits, after.reserved) == (96, 0)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.callbacks)).scalar() == 1
    assert store.ledger.check() == []


def test_confirm_is_filled_over_required_only(store, placed):
    """Press 1: 'required' is the undecided value a fill writes over, once; NULL (not asked)
    is never filled, in each of the ways a fill happens."""
    asked, not_asked = placed(), placed()
    store.calls.set_fields(asked, {"confirm": "required"})
    assert store.calls.get(not_asked)["confirm"] is None

    # advance's fill: the callee's answer, one UPDATE.
    for call_id in (asked, not_asked):
        store.calls.advance(call_id, ["queued"], "bridged", bridged_at=NOW + 5,
                            fill={"callee_answered_at": NOW + 5, "confirm": "confirmed"})
    assert [store.calls.get(i)["confirm"] for i in (asked, not_asked)] == ["confirmed", None]
    # Decided: nothing writes over it, a moving advance included.
    assert not store.calls.set_if_null(asked, {"confirm": "unconfirmed"})
    assert not store.calls.advance(asked, ["queued"], "caller_ringing",
                                   fill={"confirm": "unconfirmed"})
    assert not store.calls.fill_and_check(asked, {"confirm": "unconfirmed"}, lambda row: False)
    assert store.calls.get(asked)["confirm"] == "confirmed"

    # set_if_null and the locked fills.
    first, second = placed(), placed()
    store.calls.set_fields(first, {"confirm": "required"})
    store.calls.set_fields(second, {"confirm": "required"})
    assert store.calls.set_if_null(first, {"confirm": "unconfirmed"})
    assert not store.calls.set_if_null(not_asked, {"confirm": "unconfirmed"})
    store.calls.fill_and_check(second, {"confirm": "confirmed", "caller_gone_at": NOW + 9},
                               lambda row: row["confirm"] == "confirmed")
    assert [store.calls.get(i)["confirm"] for i in (first, second, not_asked)] == [
        "unconfirmed", "confirmed", None]


def test_settling_records_the_confirm_state(store, account, placed):
    unconfirmed, untouched = placed(), placed()
    for call_id in (unconfirmed, untouched):
        store.calls.set_fields(call_id, {"confirm": "required"})
    assert store.calls.settle(unconfirmed, SettledOutcome(False, 0, Reason.RING_TIMEOUT, 0,
                                                          "unconfirmed"), ended_at=NOW + 20)
    assert store.calls.settle(untouched, SettledOutcome(False, 0, Reason.FAILED, 0),
                              ended_at=NOW + 20)
    got = store.calls.get(unconfirmed)
    assert (got["confirm"], got["reason"], got["minutes"], got["answered"]) == (
        "unconfirmed", 3, 0, False)
    assert store.calls.get(untouched)["confirm"] == "required"  # None: leave it as it is
    # An ended call still records what it was missing: a late leg's word on it.
    assert store.calls.fill_and_check(untouched, {"confirm": "unconfirmed"},
                                      lambda row: True) is False
    assert store.calls.get(untouched)["confirm"] == "unconfirmed"
    assert store.accounts.find(account.id).credits == 100
    with pytest.raises(ValueError):
        store.calls.settle(placed(), SettledOutcome(False, 0, 3, 0, "maybe"), ended_at=NOW)

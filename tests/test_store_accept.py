"""Accepting calls: the checks made in the transaction, the reservation, flood protection, and
that a rejected request leaves nothing behind, also under concurrency."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from c2c.domain.states import CallState
from c2c.errors import RequestRejected
from c2c.store import Store, make_engine, schema
from tests.conftest import ACCEPT_DEFAULTS

NOW = 1_800_000_000.0
REPO_ROOT = str(Path(__file__).resolve().parents[1])


def accept(store, call, now=NOW, **overrides):
    return store.accept_call(call.account_id, call, now=now, **{**ACCEPT_DEFAULTS, **overrides})


def table_count(store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def flood_numbers(store) -> set[int]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(schema.flood.c.number)).scalars())


def assert_nothing_left(store, account_id, reserved=0, calls=0, flood=frozenset()):
    assert store.accounts.find(account_id).reserved == reserved
    assert table_count(store, schema.calls) == calls
    assert flood_numbers(store) == set(flood)


def test_an_accepted_call_is_recorded_with_its_reservation(store, make_call):
    account = store.accounts.create("acme", 500)
    call = make_call(account.id, callback_url="https://example.com/cb", secret="s3")
    accepted = accept(store, call)
    assert accepted.id == call.id and accepted.max_minutes == 120
    assert accepted.deadline_at == NOW + 2 * 30 + 120 * 60 + 120

    row = store.calls.get(call.id)
    assert row["state"] == CallState.QUEUED.value
    assert (row["caller_country_code"], row["caller_number"]) == ("1", "5552104427")
    assert (row["callee_country_code"], row["callee_number"]) == ("44", "2071234567")
    assert (row["job_uuid"], row["caller_uuid"], row["callee_uuid"]) == (
        call.job_uuid,
        call.caller_uuid,
        call.callee_uuid,
    )
    assert (row["switch"], row["max_minutes"], row["created_at"]) == ("fs1:8021", 120, NOW)
    assert (row["callback_url"], row["secret"]) == ("https://example.com/cb", "s3")
    assert store.accounts.find(account.id).reserved == 120
    assert flood_numbers(store) == {15552104427, 442071234567}
    assert store.calls.find_by_job_uuid(call.job_uuid)["id"] == call.id


@pytest.mark.parametrize(
    ("credits", "max_duration", "cap", "reserved"),
    [
        (500, None, 120, 120),  # the operator's cap
        (500, 10, 120, 10),  # the customer's limit
        (500, 300, 120, 120),  # the cap bounds the customer's limit too
        (7, None, 120, 7),  # what is available
        (7, 5, 120, 5),
        (1, None, 120, 1),
    ],
)
def test_the_reservation_is_the_smallest_limit(
    store, make_call, credits, max_duration, cap, reserved
):
    account = store.accounts.create("acme", credits)
    accepted = accept(store, make_call(account.id, max_duration=max_duration), max_call_minutes=cap)
    assert accepted.max_minutes == reserved
    assert store.accounts.find(account.id).reserved == reserved


def test_running_calls_hold_credit(store, make_call):
    account = store.accounts.create("acme", 15)
    accept(store, make_call(account.id, "15550000001", "15550000002", max_duration=10))
    second = accept(store, make_call(account.id, "15550000003", "15550000004"))
    assert second.max_minutes == 5  # 15 - 10 available
    with pytest.raises(RequestRejected) as rejected:
        accept(store, make_call(account.id, "15550000005", "15550000006"))
    assert rejected.value.code == 2
    assert_nothing_left(
        store,
        account.id,
        reserved=15,
        calls=2,
        flood={15550000001, 15550000002, 15550000003, 15550000004},
    )


def test_no_credit_is_code_2_and_leaves_nothing(store, make_call):
    account = store.accounts.create("acme", 0)
    with pytest.raises(RequestRejected) as rejected:
        accept(store, make_call(account.id))
    assert rejected.value.code == 2
    assert_nothing_left(store, account.id)


def test_disabled_is_code_5_and_unknown_is_code_1(store, make_call):
    account = store.accounts.create("acme", 10)
    store.accounts.set_enabled(account.id, False)
    with pytest.raises(RequestRejected) as rejected:
        accept(store, make_call(account.id))
    assert rejected.value.code == 5
    with pytest.raises(RequestRejected) as rejected:
        accept(store, make_call(account.id + 1000))
    assert rejected.value.code == 1
    assert_nothing_left(store, account.id)


def test_flood_is_code_6_for_caller_or_callee_and_leaves_nothing(store, make_call):
    account = store.accounts.create("acme", 500)
    first = accept(store, make_call(account.id, "15550000001", "15550000002"))
    # The callee of the first call is the caller here; the other number is fresh.
    for caller, callee in (("15550000002", "15550000009"), ("15550000009", "15550000001")):
        with pytest.raises(RequestRejected) as rejected:
            accept(store, make_call(account.id, caller, callee), now=NOW + 59)
        assert rejected.value.code == 6
    assert_nothing_left(
        store, account.id, reserved=first.max_minutes, calls=1, flood={15550000001, 15550000002}
    )


def test_a_listed_number_is_code_3_and_leaves_nothing(store, make_call):
    account = store.accounts.create("acme", 500)
    store.dnc.add([15550000002])
    for caller, callee in (("15550000002", "15550000009"), ("15550000009", "15550000002")):
        with pytest.raises(RequestRejected) as rejected:
            accept(store, make_call(account.id, caller, callee))
        assert rejected.value.code == 3
    assert_nothing_left(store, account.id)


def test_the_transaction_decides_3_then_2_then_6(store, make_call):
    account = store.accounts.create("acme", 1)
    accept(store, make_call(account.id, "15550000001", "15550000002", max_duration=1))
    # Flooded (6), out of credit (2) and listed (3) at once: 3 wins; unlisted, 2 wins.
    store.dnc.add([15550000001])
    with pytest.raises(RequestRejected) as rejected:
        accept(store, make_call(account.id, "15550000001", "15550000003"), now=NOW + 1)
    assert rejected.value.code == 3
    store.dnc.remove([15550000001])
    with pytest.raises(RequestRejected) as rejected:
        accept(store, make_call(account.id, "15550000001", "15550000003"), now=NOW + 2)
    assert rejected.value.code == 2
    store.accounts.add_credits(account.id, 10)
    with pytest.raises(RequestRejected) as rejected:
        accept(store, make_call(account.id, "15550000001", "15550000003"), now=NOW + 3)
    assert rejected.value.code == 6
    # Nothing of the three rejections stayed: the first call's stamps only, unrenewed.
    with store.engine.connect() as conn:
        stamps = dict(conn.execute(select(schema.flood.c.number, schema.flood.c.stamped_at)).all())
    assert stamps == {15550000001: NOW, 15550000002: NOW}


def test_a_renewed_stamp_is_the_new_call_s(store, make_call):
    account = store.accounts.create("acme", 500)
    accept(store, make_call(account.id, "15550000001", "15550000002", max_duration=1))
    accept(store, make_call(account.id, "15550000001", "15550000003", max_duration=1),
           now=NOW + 61)
    with store.engine.connect() as conn:
        stamps = dict(conn.execute(select(schema.flood.c.number, schema.flood.c.stamped_at)).all())
    assert stamps == {15550000001: NOW + 61, 15550000002: NOW, 15550000003: NOW + 61}


def test_the_window_passes(store, make_call):
    account = store.accounts.create("acme", 500)
    accept(store, make_call(account.id, "15550000001", "15550000002", max_duration=1))
    accepted = accept(store, make_call(account.id, "15550000001", "15550000003"), now=NOW + 60)
    assert accepted.created_at == NOW + 60
    with pytest.raises(RequestRejected):
        accept(store, make_call(account.id, "15550000001", "15550000004"), now=NOW + 119)


def test_a_zero_window_turns_flood_protection_off(store, make_call):
    account = store.accounts.create("acme", 500)
    for _ in range(3):
        accept(store, make_call(account.id, max_duration=1), flood_seconds=0)
    assert table_count(store, schema.calls) == 3
    assert flood_numbers(store) == set()


def test_calling_yourself_is_one_number(store, make_call):
    account = store.accounts.create("acme", 500)
    accept(store, make_call(account.id, "15550000001", "15550000001"))
    assert flood_numbers(store) == {15550000001}


def test_a_mismatched_account_is_a_programming_error(store, make_call):
    account = store.accounts.create("acme", 5)
    call = make_call(account.id)
    with pytest.raises(ValueError):
        store.accept_call(account.id + 1, call, now=NOW, **ACCEPT_DEFAULTS)


def test_cancel_undoes_an_accept_that_never_reached_a_switch(store, make_call):
    account = store.accounts.create("acme", 500)
    kept = accept(store, make_call(account.id, "15550000001", "15550000002", max_duration=3))
    call = make_call(account.id, "15550000003", "15550000004")
    accept(store, call, now=NOW + 1)
    assert store.cancel_call(call.id) is True
    assert store.cancel_call(call.id) is False
    assert_nothing_left(
        store, account.id, reserved=kept.max_minutes, calls=1, flood={15550000001, 15550000002}
    )
    accept(store, make_call(account.id, "15550000003", "15550000004"), now=NOW + 2)  # retry works


def test_cancel_leaves_a_call_the_switch_has_seen(store, make_call):
    account = store.accounts.create("acme", 500)
    call = make_call(account.id)
    accept(store, call)
    store.calls.advance(call.id, [CallState.QUEUED], CallState.CALLER_RINGING)
    assert store.cancel_call(call.id) is False
    assert store.calls.get(call.id) is not None


def test_prune_flood_drops_only_old_stamps(store, make_call):
    account = store.accounts.create("acme", 500)
    accept(store, make_call(account.id, "15550000001", "15550000002", max_duration=1))
    accept(
        store, make_call(account.id, "15550000003", "15550000004", max_duration=1), now=NOW + 100
    )
    assert store.prune_flood(NOW + 50) == 2
    assert flood_numbers(store) == {15550000003, 15550000004}


# -- concurrency ------------------------------------------------------------------------------

SHARED = "15559990000"


def _race(store_url, make_call, account_ids):
    """One accept per account, all at once, each from its own thread and engine with a warm
    connection; the shared number is the caller for half of them and the callee for the rest."""
    stores = [Store(make_engine(store_url)) for _ in account_ids]
    for s in stores:
        s.ping()  # connect now, so that the accepts start together
    barrier = threading.Barrier(len(account_ids))
    outcomes: list[object] = [None] * len(account_ids)

    def run(i: int, account_id: int) -> None:
        other = f"1555{i:07d}"
        caller, callee = (SHARED, other) if i % 2 == 0 else (other, SHARED)
        call = make_call(account_id, caller, callee, max_duration=3)
        barrier.wait(timeout=30)
        try:
            outcomes[i] = accept(stores[i], call, now=time.time()).id
        except RequestRejected as exc:
            outcomes[i] = exc.code
        except Exception as exc:  # reported by the assertion below
            outcomes[i] = repr(exc)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(account_ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for s in stores:
        s.dispose()
    return outcomes


def _assert_one_winner(store, outcomes, account_ids):
    winners = [o for o in outcomes if isinstance(o, str)]
    assert len(winners) == 1, outcomes
    assert sorted(o for o in outcomes if not isinstance(o, str)) == [6] * (len(outcomes) - 1)
    # The losers left nothing: one call, its reservation, its two flood stamps.
    assert table_count(store, schema.calls) == 1
    assert sum(store.accounts.find(a).reserved for a in set(account_ids)) == 3
    winner = store.calls.get(winners[0])
    numbers = {
        int(winner["caller_country_code"] + winner["caller_number"]),
        int(winner["callee_country_code"] + winner["callee_number"]),
    }
    assert int(SHARED) in numbers
    assert flood_numbers(store) == numbers


def test_fifty_simultaneous_accepts_from_different_accounts_admit_one(store, store_url, make_call):
    account_ids = [store.accounts.create(f"a{i}", 10).id for i in range(50)]
    outcomes = _race(store_url, make_call, account_ids)
    _assert_one_winner(store, outcomes, account_ids)


def test_fifty_simultaneous_accepts_on_one_account_admit_one(store, store_url, make_call):
    account_id = store.accounts.create("a", 1000).id
    outcomes = _race(store_url, make_call, [account_id] * 50)
    _assert_one_winner(store, outcomes, [account_id])


_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time, uuid
    from c2c.errors import RequestRejected
    from c2c.numbers import PhoneNumber
    from c2c.store import NewCall, Store
    url, shared, first, accounts = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    stores = [Store.from_url(url) for _ in accounts]
    for store in stores:
        store.ping()  # connect before the start
    go = threading.Event()
    results = [None] * len(accounts)
    def run(i, account_id):
        other = PhoneNumber("1", f"555{first + i:07d}")
        me = PhoneNumber("1", shared[1:])
        caller, callee = (me, other) if i % 2 else (other, me)
        call = NewCall(id=str(uuid.uuid4()), account_id=account_id, caller=caller, callee=callee,
                       caller_id="5550000000", callback_url=None, secret="", max_duration=3,
                       switch="fs1", job_uuid=str(uuid.uuid4()), caller_uuid=str(uuid.uuid4()),
                       callee_uuid=str(uuid.uuid4()))
        go.wait(60)
        try:
            results[i] = stores[i].accept_call(account_id, call, flood_seconds=60,
                                               max_call_minutes=120, ring_timeout=30,
                                               settle_grace=120, now=time.time()).id
        except RequestRejected as exc:
            results[i] = exc.code
        except Exception as exc:
            results[i] = repr(exc)
    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(accounts)]
    [t.start() for t in threads]
    print("ready", flush=True)
    sys.stdin.readline()  # the parent says go once every process is ready
    go.set()
    [t.join(60) for t in threads]
    print(json.dumps(results), flush=True)
    """
)


def test_fifty_simultaneous_accepts_from_five_processes_admit_one(store, store_url):
    account_ids = [store.accounts.create(f"a{i}", 10).id for i in range(50)]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _PROCESS_SCRIPT,
                store_url,
                SHARED,
                str(p * 10),
                json.dumps(account_ids[p * 10 : p * 10 + 10]),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for p in range(5)
    ]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = []
        for process in processes:
            out, _ = process.communicate(timeout=120)
            assert process.returncode == 0
            outcomes.extend(json.loads(out))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    _assert_one_winner(store, outcomes, account_ids)


@pytest.mark.mysql
@pytest.mark.parametrize(("credits_meanwhile", "code", "reserved"), [(5, None, 5), (0, 2, None)])
def test_a_balance_that_moves_under_the_accept_is_read_again(
    mysql_url, make_call, credits_meanwhile, code, reserved
):
    """Between the accept's read and its guarded reservation another connection takes the
    account's credits: the guard fails, the accept runs again and decides on what is there."""
    from sqlalchemy import event, update

    store = Store(make_engine(mysql_url))
    other = make_engine(mysql_url)
    try:
        store.upgrade()
        account = store.accounts.create("acme", 500)
        raced = []

        def race(conn, cursor, statement, parameters, context, executemany):
            if statement.startswith("UPDATE accounts SET reserved") and not raced:
                raced.append(True)
                with other.begin() as c:
                    c.execute(update(schema.accounts).values(credits=credits_meanwhile))

        event.listen(store.engine, "before_cursor_execute", race)
        call = make_call(account.id)
        if code is None:
            assert accept(store, call).max_minutes == reserved
            assert_nothing_left(store, account.id, reserved=reserved, calls=1,
                                flood={15552104427, 442071234567})
        else:
            with pytest.raises(RequestRejected) as rejected:
                accept(store, call)
            assert rejected.value.code == code
            assert_nothing_left(store, account.id)
        assert raced
    finally:
        store.dispose()
        other.dispose()


def test_a_group_of_accepts_is_decided_call_by_call_in_one_transaction(store, make_call):
    account = store.accounts.create("acme", 6)
    store.dnc.add([15550000066])
    calls = [
        make_call(account.id, "15550000001", "15550000002", max_duration=2),  # accepted
        make_call(account.id, "15550000002", "15550000003", max_duration=1),  # 6: 2 just used
        make_call(account.id, "15550000066", "15550000004", max_duration=1),  # 3
        make_call(account.id, "15550000005", "15550000006", max_duration=3),  # accepted
        make_call(account.id, "15550000007", "15550000008", max_duration=3),  # 1 min left: 1
        make_call(account.id, "15550000009", "15550000010", max_duration=1),  # 2: none left
    ]
    results = store.accept_calls(account.id, [(c, NOW + i * 0.001) for i, c in enumerate(calls)],
                                 **ACCEPT_DEFAULTS)
    codes = [r.code if isinstance(r, RequestRejected) else r.max_minutes for r in results]
    assert codes == [2, 6, 3, 3, 1, 2]  # reserved minutes where accepted, else the code
    assert [r.id for r in results if not isinstance(r, RequestRejected)] == [
        calls[0].id, calls[3].id, calls[4].id]
    # The rejected left nothing behind: their numbers are unstamped, their rows absent.
    assert_nothing_left(store, account.id, reserved=6, calls=3, flood={
        15550000001, 15550000002, 15550000005, 15550000006, 15550000007, 15550000008})
    # One stamp per call, each its own.
    assert store.calls.get(calls[3].id)["created_at"] == NOW + 0.003


def test_a_group_with_the_same_moment_still_floods_a_repeated_number(store, make_call):
    account = store.accounts.create("acme", 100)
    first = make_call(account.id, "15550000001", "15550000002", max_duration=1)
    again = make_call(account.id, "15550000001", "15550000003", max_duration=1)
    results = store.accept_calls(account.id, [(first, NOW), (again, NOW)], **ACCEPT_DEFAULTS)
    assert not isinstance(results[0], RequestRejected)
    assert isinstance(results[1], RequestRejected) and results[1].code == 6
    assert flood_numbers(store) == {15550000001, 15550000002}


# -- an account's own numbers: exempt from flood protection in its own requests ---------------

SALES = "15557770000"  # the account's own number (its sales line)


def own_numbers_applied(store, call):
    """The call as the API builds it: flood_exempt from the account's own numbers (all of them:
    numbers the call does not use change nothing)."""
    account = store.accounts.find(call.account_id)
    return dataclasses.replace(call, flood_exempt=account.own_numbers)


def accept_as_api(store, call, now=NOW, **overrides):
    return accept(store, own_numbers_applied(store, call), now=now, **overrides)


def flood_codes(store, calls, now=NOW):
    """Accept each call at now, now + 1, ...: the reserved minutes, or the rejection's code."""
    outcomes = []
    for i, call in enumerate(calls):
        try:
            outcomes.append(accept_as_api(store, call, now=now + i).max_minutes)
        except RequestRejected as exc:
            outcomes.append(exc.code)
    return outcomes


@pytest.fixture
def business(store):
    account = store.accounts.create("shop", 500)
    store.own_numbers.add(account.id, int(SALES))
    store.own_numbers.add(account.id, 15557770001)
    return account


def test_visitors_calling_the_own_number_within_the_window_are_all_accepted(
    store, make_call, business
):
    calls = [make_call(business.id, f"1555000000{i}", SALES, max_duration=1) for i in range(3)]
    assert flood_codes(store, calls) == [1, 1, 1]
    # The visitors' numbers are stamped; the sales line is not.
    assert flood_numbers(store) == {15550000000, 15550000001, 15550000002}


def test_the_own_number_is_exempt_as_caller_too(store, make_call, business):
    calls = [make_call(business.id, SALES, f"1555000000{i}", max_duration=1) for i in range(2)]
    assert flood_codes(store, calls) == [1, 1]
    assert flood_numbers(store) == {15550000000, 15550000001}


def test_the_other_number_of_the_pair_is_still_flood_checked(store, make_call, business):
    calls = [
        make_call(business.id, "15550000001", SALES, max_duration=1),
        make_call(business.id, "15550000001", SALES, max_duration=1),  # the visitor again: 6
        make_call(business.id, SALES, "15550000001", max_duration=1),  # the other way round: 6
        make_call(business.id, "15550000002", "15550000003", max_duration=1),
        make_call(business.id, "15550000003", SALES, max_duration=1),  # 3 just used: 6
    ]
    assert flood_codes(store, calls) == [1, 6, 6, 1, 6]
    assert flood_numbers(store) == {15550000001, 15550000002, 15550000003}
    # The window passes for the visitor as usual.
    call = make_call(business.id, "15550000001", SALES, max_duration=1)
    assert accept_as_api(store, call, now=NOW + 60).max_minutes == 1


def test_a_call_between_two_own_numbers_skips_the_flood_stamps(store, make_call, business):
    calls = [make_call(business.id, SALES, "15557770001", max_duration=1) for _ in range(3)]
    assert flood_codes(store, calls) == [1, 1, 1]
    assert flood_numbers(store) == set()
    assert table_count(store, schema.calls) == 3


def test_another_account_s_requests_to_that_number_are_still_flood_checked(
    store, make_call, business
):
    other = store.accounts.create("someone else", 500)
    accept_as_api(store, make_call(business.id, "15550000001", SALES, max_duration=1))
    # The business's call left no stamp on its line: the other account's first call passes...
    accept_as_api(store, make_call(other.id, "15550000002", SALES, max_duration=1), now=NOW + 1)
    assert flood_numbers(store) == {15550000001, 15550000002, int(SALES)}
    # ...and stamps it, so its second within the window is refused, the number being not its own.
    with pytest.raises(RequestRejected) as rejected:
        accept_as_api(store, make_call(other.id, "15550000003", SALES), now=NOW + 2)
    assert rejected.value.code == 6
    # The business still calls its line, and leaves the other account's stamp as it was.
    accept_as_api(store, make_call(business.id, "15550000004", SALES, max_duration=1), now=NOW + 3)
    with store.engine.connect() as conn:
        stamp = conn.execute(
            select(schema.flood.c.stamped_at).where(schema.flood.c.number == int(SALES))
        ).scalar()
    assert stamp == NOW + 1


def test_the_do_not_call_list_still_applies_to_an_own_number(store, make_call, business):
    store.dnc.add([int(SALES)])
    for caller, callee in ((SALES, "15550000001"), ("15550000001", SALES), (SALES, "15557770001")):
        with pytest.raises(RequestRejected) as rejected:
            accept_as_api(store, make_call(business.id, caller, callee))
        assert rejected.value.code == 3
    assert_nothing_left(store, business.id)


def test_a_rejected_call_with_an_own_number_leaves_nothing(store, make_call, business):
    store.accounts.add_credits(business.id, -500)
    with pytest.raises(RequestRejected) as rejected:
        accept_as_api(store, make_call(business.id, "15550000001", SALES))
    assert rejected.value.code == 2
    assert_nothing_left(store, business.id)


def test_a_removed_own_number_is_flood_checked_again(store, make_call, business):
    accept_as_api(store, make_call(business.id, "15550000001", SALES, max_duration=1))
    store.own_numbers.remove(business.id, int(SALES))
    accept_as_api(store, make_call(business.id, "15550000002", SALES, max_duration=1), now=NOW + 1)
    with pytest.raises(RequestRejected) as rejected:
        accept_as_api(store, make_call(business.id, "15550000003", SALES), now=NOW + 2)
    assert rejected.value.code == 6


def test_cancel_of_a_call_with_an_own_number_leaves_other_stamps_on_it(
    store, make_call, business
):
    other = store.accounts.create("someone else", 500)
    accept_as_api(store, make_call(other.id, "15550000009", SALES, max_duration=1))
    call = own_numbers_applied(store, make_call(business.id, "15550000001", SALES, max_duration=2))
    accept(store, call, now=NOW + 1)
    assert store.cancel_call(call.id) is True
    assert_nothing_left(store, business.id, calls=1, flood={15550000009, int(SALES)})
    assert store.accounts.find(other.id).reserved == 1


def test_a_group_of_accepts_exempts_own_numbers_call_by_call(store, make_call, business):
    calls = [
        make_call(business.id, "15550000001", SALES, max_duration=1),
        make_call(business.id, "15550000002", SALES, max_duration=1),
        make_call(business.id, "15550000002", "15557770001", max_duration=1),  # 6: 2 just used
        make_call(business.id, SALES, "15557770001", max_duration=1),
    ]
    results = store.accept_calls(
        business.id,
        [(own_numbers_applied(store, c), NOW) for c in calls],
        **ACCEPT_DEFAULTS,
    )
    codes = [r.code if isinstance(r, RequestRejected) else r.max_minutes for r in results]
    assert codes == [1, 1, 6, 1]
    assert_nothing_left(store, business.id, reserved=3, calls=3,
                        flood={15550000001, 15550000002})


def test_the_exemption_costs_no_round_trip_and_both_own_saves_one(store, make_call, business):
    """What the accept says to the database (bench/ counts the same on the wire): one own
    number leaves the statements as they were; two skip the flood upsert."""
    calls = [
        own_numbers_applied(store, make_call(business.id, caller, callee, max_duration=1))
        for caller, callee in (("15550000001", "15550000002"), ("15550000003", SALES),
                               (SALES, "15557770001"))
    ]
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split(None, 1)[0].upper())

    shapes = []
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        for i, call in enumerate(calls):
            statements.clear()
            accept(store, call, now=NOW + i)
            shapes.append([s for s in statements if s != "BEGIN"])  # SQLite's BEGIN IMMEDIATE
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    plain, one_own, both_own = shapes
    assert plain == ["INSERT", "SELECT", "INSERT", "UPDATE"]  # flood upsert, checks, call, reserve
    assert one_own == plain
    assert both_own == ["SELECT", "INSERT", "UPDATE"]


# -- press 1 to connect --------------------------------------------------------------------------


@pytest.mark.parametrize(("confirm", "stored"), [(True, "required"), (False, None)])
def test_the_call_row_says_whether_the_caller_must_press_1(store, make_call, confirm, stored):
    account = store.accounts.create("acme", 10)
    call = dataclasses.replace(make_call(account.id, max_duration=1), confirm=confirm)
    accept(store, call)
    assert store.calls.get(call.id)["confirm"] == stored
    grouped = [dataclasses.replace(
        make_call(account.id, f"1555000000{i}", f"1555000001{i}", max_duration=1),
        confirm=confirm) for i in range(2)]
    results = store.accept_calls(account.id, [(c, NOW + 1) for c in grouped], **ACCEPT_DEFAULTS)
    assert [r.id for r in results] == [c.id for c in grouped]
    assert [store.calls.get(c.id)["confirm"] for c in grouped] == [stored, stored]


def test_a_call_with_press_1_gets_its_setup_time_on_its_deadline(store, make_call):
    """Press 1 keeps the caller's leg up to the confirm timeout (and a margin) before the callee
    is dialed: the deadline past which a call with no trace is swept allows for it."""
    account = store.accounts.create("acme", 500)
    plain = make_call(account.id, "15550000001", "15550000002")
    asked = dataclasses.replace(make_call(account.id, "15550000003", "15550000004"),
                                confirm=True, setup_seconds=15)
    first = accept(store, plain)
    second = accept(store, asked)
    assert second.deadline_at - first.deadline_at == pytest.approx(15)

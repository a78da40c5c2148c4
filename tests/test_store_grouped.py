"""Store calls grouped in one transaction (Store.grouped): committed together or not at all, seen
by others only once committed, one COMMIT for the group, hooks run only after it."""

from __future__ import annotations

import gevent
import pytest
from sqlalchemy import event, text

from c2c.domain.states import CallState
from c2c.errors import StoreError
from tests.conftest import ACCEPT_DEFAULTS

NOW = 1_800_000_000.0


@pytest.fixture
def calls(store, make_call):
    """Two accepted calls' ids."""
    account = store.accounts.create("acme", 100)
    ids = []
    for n in range(2):
        call = make_call(account.id, f"1555210{n:04d}", f"44207123{n:04d}", max_duration=1)
        store.accept_call(account.id, call, now=NOW, **ACCEPT_DEFAULTS)
        ids.append(call.id)
    return ids


def _ring(store, call_id):
    return store.calls.advance(call_id, [CallState.QUEUED], CallState.CALLER_RINGING)


def _commits_of_this_greenlet(store):
    me, commits = gevent.getcurrent(), []
    event.listen(store.engine, "commit",
                 lambda conn: commits.append(1) if gevent.getcurrent() is me else None)
    return commits


def _state(store, call_id):
    return store.calls.get(call_id)["state"]


def test_a_group_commits_once_and_others_see_it_only_then(store, calls):
    commits = _commits_of_this_greenlet(store)
    seen_inside = {}
    hooks = []
    with store.grouped():
        assert _ring(store, calls[0])
        assert store.calls.fill_and_check(calls[1], {"caller_gone_at": NOW + 5},
                                          lambda call: call["caller_gone_at"] == NOW + 5)
        assert _state(store, calls[0]) == "caller_ringing"  # this greenlet reads its writes
        # Another greenlet (its own transaction) sees the rows as they were.
        reader = gevent.spawn(lambda: {c: store.calls.get(c) for c in calls})
        seen_inside = reader.get(timeout=10)
        store.after_commit(lambda: hooks.append(len(commits)))
        assert hooks == []  # not before the commit
    assert seen_inside[calls[0]]["state"] == "queued"
    assert seen_inside[calls[1]]["caller_gone_at"] is None
    assert len(commits) == 1
    assert hooks == [1]  # after it
    assert _state(store, calls[0]) == "caller_ringing"
    assert store.calls.get(calls[1])["caller_gone_at"] == NOW + 5


def test_a_failed_group_leaves_nothing_and_runs_no_hook(store, calls):
    hooks = []
    with pytest.raises(RuntimeError), store.grouped():
        assert _ring(store, calls[0])
        store.after_commit(lambda: hooks.append("ran"))
        raise RuntimeError("the listener's bug")
    assert _state(store, calls[0]) == "queued"
    assert hooks == []
    # The store is usable afterwards, grouped or not.
    with store.grouped():
        assert _ring(store, calls[0])
    assert _state(store, calls[0]) == "caller_ringing"


def test_a_database_error_in_a_group_is_a_store_error_and_rolls_it_back(store, calls):
    with pytest.raises(StoreError), store.grouped():
        assert _ring(store, calls[0])
        with store._db.write() as conn:  # as any store call's statement that fails
            conn.execute(text("UPDATE no_such_table SET x = 1"))
    assert _state(store, calls[0]) == "queued"


def test_outside_a_group_a_hook_runs_at_once_and_a_nested_group_joins(store, calls):
    hooks = []
    store.after_commit(lambda: hooks.append("now"))
    assert hooks == ["now"]
    commits = _commits_of_this_greenlet(store)
    with store.grouped():
        with store.grouped():
            assert _ring(store, calls[0])
        assert _ring(store, calls[1])
    assert len(commits) == 1
    assert {_state(store, c) for c in calls} == {"caller_ringing"}


def _selects_of_this_greenlet(store):
    me, selects = gevent.getcurrent(), []

    def seen(conn, cursor, statement, parameters, context, executemany):
        if gevent.getcurrent() is me and statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    return selects


def _both_gone(call):
    return call["caller_gone_at"] is not None and call["callee_gone_at"] is not None


def test_a_group_reads_a_row_once_for_both_legs_ends(store, calls):
    selects = _selects_of_this_greenlet(store)
    with store.grouped():
        assert not store.calls.fill_and_check(calls[0], {"callee_gone_at": NOW + 5}, _both_gone)
        assert not store.calls.fill_and_check(calls[1], {"callee_gone_at": NOW + 5}, _both_gone)
        assert store.calls.fill_and_check(calls[0], {"caller_gone_at": NOW + 6}, _both_gone)
    assert len(selects) == 2  # one per call, not one per leg's end
    row = store.calls.get(calls[0])
    assert (row["callee_gone_at"], row["caller_gone_at"]) == (NOW + 5, NOW + 6)


def test_any_other_write_in_the_group_makes_it_read_the_row_again(store, calls):
    selects = _selects_of_this_greenlet(store)
    with store.grouped():
        assert not store.calls.fill_and_check(calls[0], {"callee_gone_at": NOW + 5},
                                              lambda call: call["state"] == "caller_ringing")
        assert _ring(store, calls[0])
        # The row as the move left it, not as the first fill saw it.
        assert store.calls.fill_and_check(calls[0], {"caller_gone_at": NOW + 6},
                                          lambda call: call["state"] == "caller_ringing")
    assert len(selects) == 2


def test_outside_a_group_every_fill_reads_its_row(store, calls):
    selects = _selects_of_this_greenlet(store)
    store.calls.fill_and_check(calls[0], {"callee_gone_at": NOW + 5}, _both_gone)
    assert store.calls.fill_and_check(calls[0], {"caller_gone_at": NOW + 6}, _both_gone)
    assert len(selects) == 2

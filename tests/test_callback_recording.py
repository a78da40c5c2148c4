"""Callback outcomes recorded in groups: tries that end together share one transaction, each is
counted once, and a group that fails is recorded try by try, nothing lost."""

from __future__ import annotations

import contextlib
import time

import pytest
from sqlalchemy import event

from c2c.callbacks.dispatcher import CallbackDispatcher
from c2c.config import Config
from c2c.errors import StoreError
from c2c.store import SettledOutcome
from tests.callback_receiver import CallbackReceiver

ANSWERED = SettledOutcome(answered=True, minutes=1, reason=None, billsec=42)


@pytest.fixture
def receiver():
    with CallbackReceiver() as running:
        yield running


@pytest.fixture
def settled(store, make_call):
    """settled(n, url) -> ids of n calls settled with a callback to ``url``, due now."""
    account = store.accounts.create("acme", credits=1000, now=time.time() - 3600)

    def settle(n: int, url: str) -> list[str]:
        ids = []
        for i in range(n):
            call = make_call(account.id, f"1555210{i:04d}", f"44207123{i:04d}",
                             callback_url=url, secret="s3")
            store.accept_call(account.id, call, flood_seconds=0, max_call_minutes=120,
                              ring_timeout=30, settle_grace=120, now=time.time() - 60)
            assert store.calls.settle(call.id, ANSWERED, ended_at=time.time())
            ids.append(call.id)
        return ids

    return settle


def _dispatcher(store, counted: list[str]) -> CallbackDispatcher:
    config = Config.defaults(callback_allow_private=True, callback_timeout=2.0)
    return CallbackDispatcher(store, config, concurrency=8, on_attempt=counted.append)


def _groups(store, wrap=None):
    """Count the groups the store opens (and optionally wrap each)."""
    opened = []
    real = store.grouped

    @contextlib.contextmanager
    def grouped():
        opened.append(1)
        with real():
            yield
            if wrap is not None:
                wrap()

    store.grouped = grouped
    return opened


def test_tries_that_end_together_are_recorded_in_one_transaction(store, settled, receiver):
    ids = settled(6, receiver.url("/cb"))
    opened = _groups(store)
    commits = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    counted: list[str] = []
    assert _dispatcher(store, counted).run_once() == 6
    commits_made = len(commits)
    assert len(receiver.requests) == 6
    assert counted == ["delivered"] * 6
    for call_id in ids:
        callback = store.callbacks.get_for_call(call_id)
        assert callback["status"] == "delivered" and callback["attempts"] == 1
        assert len(store.callbacks.list_for_call(call_id)) == 1
    assert 1 <= len(opened) < 6
    # The claim's look and claim, then fewer than one per outcome.
    assert commits_made < 2 + 6


def test_a_failed_group_is_recorded_try_by_try_and_counted_once(store, settled, receiver):
    ids = settled(6, receiver.url("/cb"))
    failures = []

    def lose_the_first_commit() -> None:
        if not failures:
            failures.append(1)
            raise StoreError("connection lost at COMMIT")

    _groups(store, wrap=lose_the_first_commit)
    counted: list[str] = []
    assert _dispatcher(store, counted).run_once() == 6
    assert failures
    assert counted == ["delivered"] * 6  # the failed group's hooks never ran
    for call_id in ids:
        callback = store.callbacks.get_for_call(call_id)
        assert callback["status"] == "delivered" and callback["attempts"] == 1
        assert len(store.callbacks.list_for_call(call_id)) == 1


def _claimed(store, n, url="https://hooks.example.com/cb", settled=None):
    settled(n, url)
    return store.callbacks.claim_due(time.time() + 1, n, 60)


def test_deliveries_marked_together_are_each_finished_with_their_own_try(store, settled):
    jobs = _claimed(store, 3, settled=settled)
    base = time.time()
    with store.grouped():
        store.callbacks.mark_delivered_many(
            [(job.id, base + n, 200 + n) for n, job in enumerate(jobs)])
    for n, job in enumerate(jobs):
        callback = store.callbacks.get_for_call(job.call_id)
        assert callback["status"] == "delivered" and callback["attempts"] == 1
        assert callback["claimed_until"] is None
        assert callback["delivered_at"] == pytest.approx(base + n)
        assert [(a["at"], a["http_status"]) for a in store.callbacks.list_for_call(
            job.call_id)] == [(pytest.approx(base + n), 200 + n)]


def test_a_row_finished_meanwhile_fails_the_whole_group(store, settled):
    from c2c.store.callbacks import NotAllPending

    jobs = _claimed(store, 3, settled=settled)
    assert store.callbacks.mark_delivered(jobs[1].id, at=time.time(), http_status=200)
    with pytest.raises(NotAllPending), store.grouped():
        store.callbacks.mark_delivered_many([(job.id, time.time(), 200) for job in jobs])
    # Rolled back: the others still pending, with no try recorded; the finished one as it was.
    for job in (jobs[0], jobs[2]):
        assert store.callbacks.get_for_call(job.call_id)["status"] == "pending"
        assert store.callbacks.list_for_call(job.call_id) == []
    assert len(store.callbacks.list_for_call(jobs[1].call_id)) == 1

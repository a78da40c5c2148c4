"""The callbacks outbox: claiming, finishing attempts, and two claimers never sharing a row."""

from __future__ import annotations

import threading

import pytest

from c2c.store import SettledOutcome, Store, make_engine
from tests.conftest import ACCEPT_DEFAULTS

NOW = 1_800_000_000.0


@pytest.fixture
def settled(store, make_call):
    """settled(n) -> ids of n settled calls with a callback_url, due at NOW."""
    account = store.accounts.create("acme", 10_000)

    def make(n: int) -> list[str]:
        ids = []
        for i in range(n):
            call = make_call(account.id, f"1555{i:07d}", f"4420{i:08d}", callback_url="http://x/")
            store.accept_call(account.id, call, now=NOW, **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
            store.calls.settle(call.id, SettledOutcome(True, 1, None, 30), ended_at=NOW, now=NOW)
            ids.append(call.id)
        return ids

    make.account = account
    return make


def test_claim_due_hands_a_row_out_once_per_lease(store, settled):
    (call_id,) = settled(1)
    assert store.callbacks.claim_due(NOW - 1, 10, 30) == []  # not due yet
    (job,) = store.callbacks.claim_due(NOW, 10, 30)
    assert (job.call_id, job.account_id, job.attempts) == (call_id, settled.account.id, 0)
    assert job.url.startswith("http://x/?caller_phone_number=")
    assert job.webhook_secret == store.accounts.find(settled.account.id).webhook_secret
    assert job.webhook_secret not in repr(job)
    assert store.callbacks.claim_due(NOW + 29, 10, 30) == []  # claimed
    (again,) = store.callbacks.claim_due(NOW + 31, 10, 30)  # the claim expired: due again
    assert again.id == job.id


def test_reschedule_then_deliver(store, settled):
    (call_id,) = settled(1)
    (job,) = store.callbacks.claim_due(NOW, 10, 30)
    assert store.callbacks.reschedule(
        job.id, at=NOW + 1, next_attempt_at=NOW + 60, error="HTTP 503", http_status=503
    )
    assert store.callbacks.claim_due(NOW + 59, 10, 30) == []
    (job,) = store.callbacks.claim_due(NOW + 60, 10, 30)
    assert job.attempts == 1
    assert store.callbacks.mark_delivered(job.id, at=NOW + 61, http_status=200)
    assert not store.callbacks.mark_delivered(job.id, at=NOW + 62, http_status=200)
    assert store.callbacks.claim_due(NOW + 1000, 10, 30) == []

    row = store.callbacks.get_for_call(call_id)
    assert (row["status"], row["attempts"], row["delivered_at"], row["last_error"]) == (
        "delivered",
        2,
        NOW + 61,
        None,
    )
    attempts = store.callbacks.list_for_call(call_id)
    assert [(a["at"], a["http_status"], a["error"]) for a in attempts] == [
        (NOW + 1, 503, "HTTP 503"),
        (NOW + 61, 200, None),
        (NOW + 62, 200, None),
    ]
    assert store.callbacks.counts() == {"delivered": 1}


def test_mark_failed_stops_retries(store, settled):
    (call_id,) = settled(1)
    (job,) = store.callbacks.claim_due(NOW, 10, 30)
    assert store.callbacks.mark_failed(job.id, at=NOW + 1, error="x" * 1000)
    assert store.callbacks.claim_due(NOW + 10_000, 10, 30) == []
    row = store.callbacks.get_for_call(call_id)
    assert (row["status"], len(row["last_error"])) == ("failed", 255)


def test_claims_come_oldest_first_up_to_the_limit(store, settled):
    settled(5)
    first = store.callbacks.claim_due(NOW, 2, 30)
    second = store.callbacks.claim_due(NOW, 10, 30)
    assert len(first) == 2 and len(second) == 3
    assert {j.id for j in first}.isdisjoint(j.id for j in second)


def test_concurrent_claimers_never_get_the_same_row(store, store_url, settled):
    ids = settled(40)
    stores = [Store(make_engine(store_url)) for _ in range(4)]
    for s in stores:
        s.ping()
    barrier = threading.Barrier(len(stores))
    claimed: list[list[int]] = [[] for _ in stores]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            while jobs := stores[i].callbacks.claim_due(NOW, 3, 300):
                claimed[i].extend(job.id for job in jobs)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.dispose()
    every = [job_id for per_claimer in claimed for job_id in per_claimer]
    assert errors == []
    assert len(every) == len(set(every)) == len(ids)



def test_a_claim_without_looking_first_claims_the_same(store, settled):
    """look_first=False (the dispatcher was just woken by a settlement) skips only the read."""
    settled(3)
    assert store.callbacks.claim_due(NOW - 1, 10, 30, look_first=False) == []  # not due yet
    jobs = store.callbacks.claim_due(NOW, 2, 30, look_first=False)
    assert len(jobs) == 2
    (last,) = store.callbacks.claim_due(NOW, 10, 30, look_first=False)
    assert last.id not in {job.id for job in jobs}
    assert store.callbacks.claim_due(NOW, 10, 30, look_first=False) == []

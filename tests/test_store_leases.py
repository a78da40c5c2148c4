"""Leases: one holder at a time, renewals, expiry, release, and a race."""

from __future__ import annotations

import threading

from c2c.store import Store, make_engine

NOW = 1_800_000_000.0


def test_one_holder_until_expiry(store):
    leases = store.leases
    assert leases.acquire_or_renew("switch:fs1", "worker-a", 6, NOW)
    assert not leases.acquire_or_renew("switch:fs1", "worker-b", 6, NOW + 1)
    assert leases.acquire_or_renew("switch:fs1", "worker-a", 6, NOW + 3)  # renewed to NOW + 9
    assert not leases.acquire_or_renew("switch:fs1", "worker-b", 6, NOW + 8)
    assert leases.holder_of("switch:fs1", NOW + 8) == "worker-a"
    assert leases.holder_of("switch:fs1", NOW + 10) is None  # expired
    assert leases.acquire_or_renew("switch:fs1", "worker-b", 6, NOW + 10)
    assert leases.holder_of("switch:fs1") == "worker-b"
    assert leases.get("switch:fs1").expires_at == NOW + 16
    assert not leases.acquire_or_renew("switch:fs1", "worker-a", 6, NOW + 11)


def test_leases_are_independent_and_release_frees(store):
    leases = store.leases
    assert leases.acquire_or_renew("switch:fs1", "a", 6, NOW)
    assert leases.acquire_or_renew("switch:fs2", "b", 6, NOW)
    assert not leases.release("switch:fs1", "b")  # not b's to release
    assert leases.release("switch:fs1", "a")
    assert leases.holder_of("switch:fs1") is None
    assert leases.acquire_or_renew("switch:fs1", "b", 6, NOW + 1)


def test_racing_workers_get_one_lease(store, store_url):
    stores = [Store(make_engine(store_url)) for _ in range(10)]
    for s in stores:
        s.ping()
    barrier = threading.Barrier(len(stores))
    results: list[object] = [None] * len(stores)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = stores[i].leases.acquire_or_renew("switch:fs1", f"w{i}", 6, NOW)
        except Exception as exc:  # reported by the assertion below
            results[i] = repr(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for s in stores:
        s.dispose()
    assert sorted(results, key=str) == [False] * 9 + [True]
    winner = results.index(True)
    assert store.leases.holder_of("switch:fs1") == f"w{winner}"

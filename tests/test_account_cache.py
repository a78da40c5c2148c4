"""The api_key cache: hits within the TTL, misses after, negative entries, bounded size."""

from __future__ import annotations

import pytest

from c2c.calls.account_cache import AccountCache
from c2c.errors import StoreError
from c2c.store import Account


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _account(enabled: bool = True) -> Account:
    return Account(id=1, name="a", enabled=enabled, credits=5, reserved=0, webhook_secret="s")


def test_hits_within_the_ttl_and_looks_again_after():
    lookups: list[str] = []
    state = {"enabled": True}

    def lookup(key: str) -> Account | None:
        lookups.append(key)
        return _account(state["enabled"]) if key == "good" else None

    clock = Clock()
    cache = AccountCache(lookup, ttl=2.0, clock=clock)
    assert cache.get("good").enabled and cache.get("good").enabled
    assert cache.get("bad") is None and cache.get("bad") is None  # negative entries too
    assert lookups == ["good", "bad"]
    state["enabled"] = False
    clock.now += 2.0
    assert not cache.get("good").enabled
    assert lookups == ["good", "bad", "good"]


def test_zero_ttl_always_looks_up():
    lookups: list[str] = []
    cache = AccountCache(lambda key: lookups.append(key) or None, ttl=0)
    cache.get("k")
    cache.get("k")
    assert lookups == ["k", "k"]


def test_bounded_and_store_errors_are_not_cached():
    calls = {"n": 0}

    def lookup(key: str) -> Account | None:
        calls["n"] += 1
        if key == "down":
            raise StoreError("down")
        return None

    cache = AccountCache(lookup, ttl=60, max_entries=3, clock=Clock())
    for key in ("a", "b", "c", "d"):
        cache.get(key)
    assert len(cache._entries) == 3 and "a" not in cache._entries
    for _ in range(2):
        with pytest.raises(StoreError):
            cache.get("down")
    assert calls["n"] == 6

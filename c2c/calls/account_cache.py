"""A short-lived, bounded, in-process cache of api_key -> account (or "no such key").

Every request starts with the key lookup, and the reject paths (codes 1, 4, 5) would otherwise
cost a database transaction each. A few seconds of staleness is safe: the accept transaction
re-reads the account under its row lock (enabled, credits) before it reserves anything, so a
cached account only decides codes 1 and 5 a moment late after `c2c keys disable|enable`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from c2c.store import Account

MAX_ENTRIES = 10_000  # keys sprayed at random only churn the oldest entries
V = TypeVar("V")


class TtlCache(Generic[V]):
    """What ``lookup`` answered for a key (None too), for ``ttl`` seconds; the oldest entries
    go first past ``max_entries``."""

    def __init__(self, lookup: Callable[[str], V | None], ttl: float,
                 max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V | None]] = OrderedDict()

    def get(self, key: str) -> V | None:
        if self._ttl <= 0:
            return self._lookup(key)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now < entry[0]:
            return entry[1]
        value = self._lookup(key)  # a StoreError propagates and caches nothing
        self._entries[key] = (now + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return value


class AccountCache(TtlCache[Account]):
    """api_key -> the account (or None: no such key)."""

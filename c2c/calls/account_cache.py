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

from c2c.store import Account

MAX_ENTRIES = 10_000  # keys sprayed at random only churn the oldest entries


class AccountCache:
    def __init__(self, lookup: Callable[[str], Account | None], ttl: float,
                 max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Account | None]] = OrderedDict()

    def get(self, api_key: str) -> Account | None:
        if self._ttl <= 0:
            return self._lookup(api_key)
        now = self._clock()
        entry = self._entries.get(api_key)
        if entry is not None and now < entry[0]:
            return entry[1]
        account = self._lookup(api_key)  # a StoreError propagates and caches nothing
        self._entries[api_key] = (now + self._ttl, account)
        self._entries.move_to_end(api_key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return account

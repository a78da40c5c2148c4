"""Counters kept by this worker (exported at /metrics by a later change)."""

from __future__ import annotations

from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self.requests_by_code: Counter[int] = Counter()

    def request_code(self, code: int) -> None:
        self.requests_by_code[code] += 1

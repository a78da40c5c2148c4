"""SQL text normalised for counting: literals become ``?``, value lists ``(?, ...)``."""

from __future__ import annotations

import re

_LITERALS = [
    (re.compile(r"'(?:[^'\\]|\\.)*'"), "?"),
    (re.compile(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b", re.IGNORECASE), "?"),
    (re.compile(r"\(\?(?:, \?)+\)"), "(?, ...)"),
    (re.compile(r"(?:\(\?, \.\.\.\)(?:, )?)+"), "(?, ...)"),
    (re.compile(r"\s+"), " "),
]


def normalise(sql: str) -> str:
    for pattern, replacement in _LITERALS:
        sql = pattern.sub(replacement, sql)
    return sql.strip()

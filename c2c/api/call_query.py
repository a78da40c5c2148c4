"""The parameters of `GET /api/calls` (state, since, limit, cursor), validated (pure).

Each is given at most once; unknown parameters are ignored, as the click-to-call endpoint does.
A bad value raises a 400 Problem naming the parameter (never echoing what was sent).

The cursor is opaque to clients: ``c1.`` and the base64url of the last call's created_at (as
float.hex, exact) and id. It marks a position only; the filters come with every request.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from c2c.api.problems import INVALID_PARAMETER, Problem
from c2c.domain.call_status import PublicState
from c2c.store.call_views import Position

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 200

STATE, SINCE, LIMIT, CURSOR = "state", "since", "limit", "cursor"
_NAMES = (STATE, SINCE, LIMIT, CURSOR)

# RFC 3339 date-time (a zone required), or a full date (midnight UTC).
_DATE_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:[Tt](?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?P<fraction>\.[0-9]+)?"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2}))?"
)
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")
_CURSOR_PREFIX = "c1."
_CURSOR_BODY = re.compile(r"(?P<t>[-+0-9a-fA-Fx.p]{1,40})~(?P<id>[0-9A-Za-z-]{1,36})")


@dataclass(frozen=True)
class CallQuery:
    limit: int = DEFAULT_LIMIT
    state: PublicState | None = None
    since: float | None = None  # Unix seconds
    after: Position | None = None


def _bad(name: str, rule: str) -> Problem:
    return Problem(INVALID_PARAMETER, f"{name}: {rule}")


def parse_call_query(params: Sequence[tuple[str, str]]) -> CallQuery:
    values: dict[str, str] = {}
    for name, value in params:
        if name not in _NAMES:
            continue
        if name in values:
            raise _bad(name, "given more than once")
        values[name] = value
    return CallQuery(
        limit=_limit(values.get(LIMIT)),
        state=_state(values.get(STATE)),
        since=_since(values.get(SINCE)),
        after=_cursor(values.get(CURSOR)),
    )


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not _LIMIT.fullmatch(value) or int(value) > MAX_LIMIT:
        raise _bad(LIMIT, f"an integer 1..{MAX_LIMIT}")
    return int(value)


def _state(value: str | None) -> PublicState | None:
    if value is None:
        return None
    try:
        return PublicState(value)
    except ValueError:
        raise _bad(STATE, "one of " + ", ".join(s.value for s in PublicState)) from None


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    found = _DATE_TIME.fullmatch(value)
    rule = "an RFC 3339 date-time with its offset (2025-01-31T09:00:00Z) or a date (2025-01-31)"
    if found is None:
        raise _bad(SINCE, rule)
    try:
        day = date.fromisoformat(found["date"])
        if found["time"] is None:
            return datetime.combine(day, time(), UTC).timestamp()
        # At most microseconds; a leap second (:60) is not a moment Python can name.
        fraction = (found["fraction"] or "")[:7]
        zone = "+00:00" if found["zone"] in ("Z", "z") else found["zone"]
        moment = datetime.fromisoformat(f"{found['date']}T{found['time']}{fraction}{zone}")
        return moment.timestamp()
    except (ValueError, OverflowError):
        raise _bad(SINCE, rule) from None


def encode_cursor(position: Position) -> str:
    body = f"{float(position.created_at).hex()}~{position.call_id}"
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(body.encode("ascii")).decode("ascii").rstrip("=")


def _cursor(value: str | None) -> Position | None:
    if value is None:
        return None
    rule = "a next_cursor this endpoint returned"
    if len(value) > MAX_CURSOR_LENGTH or not value.isascii() or not value.startswith(_CURSOR_PREFIX):
        raise _bad(CURSOR, rule)
    encoded = value[len(_CURSOR_PREFIX):]
    try:
        body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("ascii")
        found = _CURSOR_BODY.fullmatch(body)
        if found is None:
            raise ValueError("not a cursor")
        created_at = float.fromhex(found["t"])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad(CURSOR, rule) from None
    if not math.isfinite(created_at):
        raise _bad(CURSOR, rule)
    return Position(created_at, found["id"])

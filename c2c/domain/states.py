"""A call's states and the public reason codes, stored as strings / small ints."""

from __future__ import annotations

from enum import Enum, IntEnum


class CallState(str, Enum):
    """Forward-only life of a call row (an UPDATE only ever moves it down this list)."""

    QUEUED = "queued"  # row committed, originate sent or about to be
    CALLER_RINGING = "caller_ringing"  # the switch accepted the originate
    CALLER_ANSWERED = "caller_answered"  # the caller picked up; the callee is being dialed
    BRIDGED = "bridged"  # both people connected
    ENDED = "ended"  # settled: minutes, reason, debit and callback are final

    @property
    def rank(self) -> int:
        return _ORDER.index(self)


_ORDER = list(CallState)

IN_FLIGHT = tuple(s for s in CallState if s is not CallState.ENDED)


class Reason(IntEnum):
    """The callback's ``reason`` when the call was not answered (DESIGN.md section 2)."""

    FAILED = 0
    HUNG_UP = 1
    RING_TIMEOUT = 3
    BUSY = 5
    CONGESTION = 8

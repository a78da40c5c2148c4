"""A call's state as the customer's API tells it, read from the row (pure).

The row's CallState has one state, ``caller_answered``, for two moments a customer tells apart:
the caller is on the press-1 prompt (the callee not dialed yet), or the callee is being dialed.
The row does not record the callee's leg being created (the listener applies no event of the
callee's before its answer), so the choice rests on what it does record, ``confirm``:

- not asked (NULL): FreeSWITCH runs the ``&bridge`` the moment the caller answers, so the callee
  is being dialed from that moment: ``dialing_callee``;
- ``confirmed`` (the callee's leg was seen; the caller pressed 1): ``dialing_callee``;
- ``required`` (the caller has not been seen to press 1) or ``unconfirmed`` (never did; the call
  is about to settle): ``caller_answered``. With press 1 on, a caller who pressed 1 while the
  callee still rings shows ``caller_answered`` until the callee answers (``bridged``) or its leg
  ends: the store learns of the key press only from the callee's leg.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from c2c.domain.confirmation import Confirmation
from c2c.domain.states import CallState


class PublicState(str, Enum):
    """Forward-only, like CallState, in this order."""

    QUEUED = "queued"  # accepted; the caller's phone has not been seen ringing
    DIALING_CALLER = "dialing_caller"  # the caller's phone rings
    CALLER_ANSWERED = "caller_answered"  # the caller answered and must press 1 first
    DIALING_CALLEE = "dialing_callee"  # the callee's phone is being dialed
    BRIDGED = "bridged"  # both people are connected
    ENDED = "ended"  # settled: answered, minutes and reason are final


# The confirm values under which a caller_answered row still waits for the key (None: not asked).
_WAITS_FOR_KEY = frozenset({Confirmation.REQUIRED.value, Confirmation.UNCONFIRMED.value})

_DIRECT = {
    CallState.QUEUED: PublicState.QUEUED,
    CallState.CALLER_RINGING: PublicState.DIALING_CALLER,
    CallState.BRIDGED: PublicState.BRIDGED,
    CallState.ENDED: PublicState.ENDED,
}


def public_state(state: CallState | str, confirm: str | None) -> PublicState:
    """The public state of a row with this ``state`` and ``confirm`` column."""
    row_state = state if isinstance(state, CallState) else CallState(state)
    direct = _DIRECT.get(row_state)
    if direct is not None:
        return direct
    return PublicState.CALLER_ANSWERED if confirm in _WAITS_FOR_KEY else PublicState.DIALING_CALLEE


@dataclass(frozen=True)
class RowCondition:
    """Which rows are in a public state: ``state`` is this, and (when ``confirm_in`` is given)
    the confirm column is one of those values, None meaning NULL."""

    state: CallState
    confirm_in: frozenset[str | None] | None = None


def rows_in(public: PublicState) -> RowCondition:
    """The inverse of public_state, for a query."""
    for row_state, mapped in _DIRECT.items():
        if mapped is public:
            return RowCondition(row_state)
    waiting: frozenset[str | None] = frozenset(_WAITS_FOR_KEY)
    if public is PublicState.CALLER_ANSWERED:
        return RowCondition(CallState.CALLER_ANSWERED, waiting)
    others = {c.value for c in Confirmation} - _WAITS_FOR_KEY
    return RowCondition(CallState.CALLER_ANSWERED, frozenset({None, *others}))

"""Press 1 to connect: what a call row's ``confirm`` column says (stored as these strings)."""

from __future__ import annotations

from enum import Enum


class Confirmation(str, Enum):
    """NULL on the row: the caller was not asked. Otherwise it moves REQUIRED -> one of the
    other two, once."""

    REQUIRED = "required"  # from the accept: the caller must press 1 before the callee is dialed
    CONFIRMED = "confirmed"  # the caller pressed 1; the callee was dialed
    UNCONFIRMED = "unconfirmed"  # the caller never pressed 1; the callee was never dialed

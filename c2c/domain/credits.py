"""Credits as exact decimals: parsing, printing and what a call costs at its rates.

A credit amount is a Decimal with at most six decimal places (a micro-credit is the unit the
store keeps, as an integer: c2c.store.schema.Credits), never a float. A rate is credits per
started minute of a leg. With the default rate of 1 credit per minute a call costs its minutes,
which is what credits meant before rates existed.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

PLACES = 6
MICRO = 10**PLACES
DEFAULT_RATE = Decimal(1)
# The largest amount a BIGINT of micro-credits holds, with room for sums of a few of them.
MAX_AMOUNT = Decimal(10**12)


class CreditsError(ValueError):
    """Not an exact amount of credits (a float, too many decimals, not a number, too big)."""


def parse_credits(value: object, *, what: str = "credits") -> Decimal:
    """An exact amount from an int, a Decimal or decimal text ('0.035', '12'); refuses floats,
    more than six decimal places, exponents out of range, NaN and infinities."""
    if isinstance(value, bool) or isinstance(value, float):
        raise CreditsError(f"{what}: {value!r} is not an exact decimal")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        if not text or any(ch not in "0123456789.-+" for ch in text):
            raise CreditsError(f"{what}: {value!r} is not a decimal number")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise CreditsError(f"{what}: {value!r} is not a decimal number") from None
    else:
        raise CreditsError(f"{what}: {value!r} is not a decimal number")
    if not amount.is_finite():
        raise CreditsError(f"{what}: {value!r} is not a finite number")
    if abs(amount) >= MAX_AMOUNT:
        raise CreditsError(f"{what}: {value!r} is too large")
    if amount != amount.quantize(Decimal(1).scaleb(-PLACES)):
        raise CreditsError(f"{what}: {value!r} has more than {PLACES} decimal places")
    return from_micro(to_micro(amount))


def to_micro(amount: Decimal | int) -> int:
    """Micro-credits of an exact amount (raises CreditsError if it is not exact)."""
    scaled = Decimal(amount) * MICRO
    if scaled != scaled.to_integral_value():
        raise CreditsError(f"{amount!r} has more than {PLACES} decimal places")
    return int(scaled)


def from_micro(micro: int) -> Decimal:
    """The amount of an integer of micro-credits, with no trailing zeros (5, 0.105)."""
    return Decimal(int(micro)) / MICRO


def format_credits(amount: Decimal | int) -> str:
    """Plain decimal text without trailing zeros or exponent: 5, 0.105, 1200."""
    text = format(Decimal(amount).normalize(), "f")
    return "0" if text in ("-0", "") else text


def json_credits(amount: Decimal | int) -> int | float:
    """A JSON number for an amount: an int when whole (today's output, bit for bit), else the
    float whose shortest repr is the amount's decimal text (six places and under 10**12 are
    within a double's 15 exact digits)."""
    amount = Decimal(amount)
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)


def started_minutes(seconds: float) -> int:
    """Whole minutes, every started one counted (0 for 0 seconds)."""
    return max(0, math.ceil(seconds / 60)) if seconds > 0 else 0


def affordable_minutes(available: Decimal, per_minute: Decimal) -> int:
    """How many whole minutes ``available`` credits pay at ``per_minute`` (a free rate: no
    limit from credits, reported as a large number)."""
    if per_minute <= 0:
        return 10**9
    if available <= 0:
        return 0
    return int(available // per_minute)


def cost(minutes: int, rate: Decimal, caller_minutes: int = 0,
         caller_rate: Decimal | None = None) -> Decimal:
    """What a call's minutes cost: the callee's talk at ``rate``, plus the caller's leg at
    ``caller_rate`` when that leg is billed."""
    total = rate * minutes
    if caller_rate is not None:
        total += caller_rate * caller_minutes
    return total

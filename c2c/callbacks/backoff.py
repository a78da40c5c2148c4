"""When to try a failed callback again, and when to stop trying (pure).

Delays grow exponentially with "equal jitter": the n-th retry waits between half and all of
``min(CAP, BASE * 2**(n-1))`` seconds, so the first retry comes after 1-2 s, the next after 2-4 s,
and so on up to 5-10 minutes. The random half spreads retries of callbacks that failed together
(a customer's endpoint down for everyone) instead of sending them all again in the same second.
"""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_SECONDS = 2.0
CAP_SECONDS = 600.0
_MAX_EXPONENT = 30  # 2**30 * BASE is far past the cap; avoids huge floats for huge counts


def next_delay(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempts``-th failed try (1 for the first failure)."""
    exponent = min(max(attempts, 1) - 1, _MAX_EXPONENT)
    ceiling = min(CAP_SECONDS, BASE_SECONDS * 2.0**exponent)
    return ceiling / 2 + (ceiling / 2) * rng()


def should_give_up(created_at: float, now: float, horizon: float) -> bool:
    """True once ``horizon`` seconds have passed since the callback was created."""
    return now - created_at >= horizon

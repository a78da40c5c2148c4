"""When FreeSWITCH's originate timeouts fire: whole-second arithmetic on epoch seconds.

Pure functions of epoch times (seconds). switch_ivr_originate keeps ``start`` as whole epoch
seconds and compares whole-second elapsed times, so every timeout ends just after a wall-clock
second boundary (the recordings' end stamps all fall 12-50 ms past one):

- ``originate_timeout`` T (and the positional or default 60 s): ``elapsed >= T``, so it fires at
  ``floor(start) + T``: 9.3 s after the originate in recording 20, 4.96 s in 06a.
- ``leg_timeout`` L: ``elapsed > L``, so ``floor(start) + L + 1``: 5.98 s for L=5 (06d), 5.02 s
  for L=4 (16d), 15.5 s for L=15 (20b).
- ``group_confirm_timeout`` G replaces the leg's limit when it answers with ``elapsed at the
  answer + G``, still compared with ``>``: ``floor(answer) + G + 1`` (20b: answered at 1.03 s
  past the boundary, ended 16.5 s after the originate for G=15).
"""

from __future__ import annotations

import math

# How long after the second boundary the originate loop notices (it polls every 20 ms); it also
# keeps a deadline from landing a float rounding error before the boundary.
LAG = 0.012


def originate_deadline(start: float, seconds: int) -> float:
    """Epoch time at which ``originate_timeout`` (NO_ANSWER) fires."""
    return math.floor(start) + seconds + LAG


def leg_deadline(start: float, seconds: int) -> float:
    """Epoch time at which ``leg_timeout`` (ALLOTTED_TIMEOUT) fires."""
    return math.floor(start) + seconds + 1 + LAG


def confirm_deadline(answered: float, seconds: int) -> float:
    """Epoch time at which ``group_confirm_timeout`` (ALLOTTED_TIMEOUT) fires, counted from the
    answer of the leg that must confirm."""
    return math.floor(answered) + seconds + 1 + LAG

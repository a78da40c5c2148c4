"""Early media and ringback rules of switch_ivr_originate, as pure decisions.

``EarlyMedia.of(variables)`` reads one originate's settings (a leg's own ``{}``/``[]`` values plus
what it inherited from the caller's channel, finding 17):

- ``ignore_early_media=true`` (also ``consume``, ``ring_ready``): a 183 is not an answer and its
  media goes nowhere. It overrides ``bridge_early_media`` (17).
- ``bridge_early_media=true`` without it: a 183 is not an answer either (17b: CHANNEL_BRIDGE only
  after the 200 OK), but the callee's early media reaches the caller, and wins over any ringback
  (17c). From the source (early_thread_run, not recorded): the pass-through stops as soon as the
  callee is ring-ready, so a 180 before or after the 183 leaves the caller with the ringback.
- neither: the 183 counts as an answer (``originate_early_media=true``), and a bridge leg in early
  media is bridged at once.

``ringback_source`` picks what FreeSWITCH plays to the caller while a bridge leg rings: the
caller's ``transfer_ringback`` once the caller has answered, else its ``ringback`` (16, 16b).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

_IGNORING = {"true", "consume", "ring_ready"}

Lookup = Callable[[str], "str | None"]


def is_true(value: str | None) -> bool:
    """switch_true: yes, on, true, enabled, active, allow, or a non-zero number."""
    if value is None:
        return False
    text = value.strip().lower()
    if text in ("yes", "on", "true", "t", "enabled", "active", "allow"):
        return True
    try:
        return float(text) != 0
    except ValueError:
        return False


@dataclass(frozen=True)
class EarlyMedia:
    """How one originate treats its leg's early media (183 with SDP)."""

    counts_as_answer: bool  # oglobals.early_ok
    passes_through: bool  # bridge_early_media in effect (ignore_early_media == 3)

    @classmethod
    def of(cls, get: Lookup) -> EarlyMedia:
        bridge = is_true(get("bridge_early_media"))
        ignore = (get("ignore_early_media") or "").strip().lower()
        ignoring = ignore in _IGNORING or is_true(ignore)
        monitored = get("monitor_early_media_ring") is not None or (
            get("monitor_early_media_fail") is not None
        )
        return cls(
            counts_as_answer=not (bridge or ignoring or monitored),
            passes_through=bridge and not ignoring,
        )


@dataclass(frozen=True)
class Ringback:
    """The caller variable FreeSWITCH plays as ringback, and its value."""

    variable: str  # transfer_ringback | ringback
    value: str


def ringback_source(get: Lookup, caller_answered: bool) -> Ringback | None:
    """The caller channel's ringback for a bridge it is dialling; None when it has none."""
    if caller_answered:
        value = get("transfer_ringback")
        if value is not None:
            return Ringback("transfer_ringback", value)
    value = get("ringback")
    return Ringback("ringback", value) if value is not None else None

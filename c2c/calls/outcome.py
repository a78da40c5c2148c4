"""The outcome of a finished call: minutes and the callback's reason (DESIGN.md section 2; pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from c2c.domain.confirmation import Confirmation
from c2c.domain.states import Reason

_REASON_BY_CAUSE: dict[str, Reason] = {
    "USER_BUSY": Reason.BUSY,
    "NO_ANSWER": Reason.RING_TIMEOUT,
    "NO_USER_RESPONSE": Reason.RING_TIMEOUT,
    "RECOVERY_ON_TIMER_EXPIRE": Reason.RING_TIMEOUT,
    # Only ever judged on the leg that did not connect, so this is "before answer": leg_timeout
    # expiry (06c/06d). The limit's own sched_hangup happens on a bridged call, which has no reason.
    "ALLOTTED_TIMEOUT": Reason.RING_TIMEOUT,
    "NORMAL_CIRCUIT_CONGESTION": Reason.CONGESTION,
    "SWITCH_CONGESTION": Reason.CONGESTION,
    "NORMAL_TEMPORARY_FAILURE": Reason.CONGESTION,  # what a SIP 503 becomes (05)
    # A person hanging up or declining before the bridge.
    "ORIGINATOR_CANCEL": Reason.HUNG_UP,
    "NORMAL_CLEARING": Reason.HUNG_UP,
    "CALL_REJECTED": Reason.HUNG_UP,
}

# Values of originate_disposition that are not a hangup cause (the originate succeeded).
_NOT_A_CAUSE = frozenset({"", "SUCCESS", "CALL ACCEPTED", "ANSWER", "EARLY"})


def minutes_from_seconds(seconds: int) -> int:
    """Whole minutes, rounded up: 0 -> 0, 1 -> 1, 60 -> 1, 61 -> 2."""
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    return -(-seconds // 60)


def billable_minutes(bridged_seconds: int, limit_minutes: int | None) -> int:
    """Minutes to bill: rounded up, never above the call's limit (so never above what it reserved).

    Negative seconds (clock skew between legs) bill 0 rather than stopping a settlement.
    """
    minutes = minutes_from_seconds(max(0, bridged_seconds))
    return minutes if limit_minutes is None else min(minutes, max(0, limit_minutes))


def reason_for_cause(cause: str | None) -> Reason:
    """The reason one hangup cause stands for; anything unlisted (or missing) is FAILED."""
    return _REASON_BY_CAUSE.get((cause or "").strip().upper(), Reason.FAILED)


def reason_for(
    caller_cause: str | None,
    callee_cause: str | None,
    caller_answered: bool,
    bridged: bool,
    caller_vars: Mapping[str, str] | None = None,
    *,
    unconfirmed: bool = False,
) -> Reason | None:
    """The callback's reason; None when the two people were connected.

    ``bridged`` means the callee answered and the legs were bridged. The deciding leg is the
    caller's if the caller never answered (``caller_cause`` may be the BACKGROUND_JOB's ``-ERR``
    cause when no channel was created), else the callee's. The caller's leg usually ends
    NORMAL_CLEARING whatever befell the callee, so when the callee's channel never existed its fate
    is read from the caller leg's variables (names with or without the ``variable_`` prefix).

    ``unconfirmed``: the caller answered but never pressed the key, so the callee was never
    dialed: ring timeout (no person took the call), whatever ended the caller's leg (the
    prompt's timeout as NO_ANSWER or ALLOTTED_TIMEOUT, or a mailbox hanging up during it).
    """
    if bridged:
        return None
    if unconfirmed:
        return Reason.RING_TIMEOUT
    if not caller_answered:
        return reason_for_cause(caller_cause)
    cause = callee_cause or _callee_fate_from_caller(caller_vars or {}) or caller_cause
    return reason_for_cause(cause)


def _callee_fate_from_caller(caller_vars: Mapping[str, str]) -> str | None:
    for name in ("originate_disposition", "last_bridge_hangup_cause", "originate_failed_cause"):
        value = caller_vars.get(name) or caller_vars.get("variable_" + name) or ""
        if value.strip().upper() not in _NOT_A_CAUSE:
            return value
    return None


@dataclass(frozen=True)
class CallFacts:
    """Where a settled call ran and how each leg ended, as its row says: what the metrics count
    it under (switch, route, hangup cause, SIP status), carried with the outcome so that counting
    costs no read of the row."""

    switch: str
    caller_digits: str  # E.164 digits, no '+'
    callee_digits: str
    caller_cause: str | None
    callee_cause: str | None
    caller_sip_status: str | None
    callee_sip_status: str | None

    @classmethod
    def of(cls, call: Mapping[str, Any]) -> CallFacts:
        """From a call row (a partial one, as some tests build, gives blanks)."""
        get = call.get
        return cls(
            switch=str(get("switch") or ""),
            caller_digits=f"{get('caller_country_code') or ''}{get('caller_number') or ''}",
            callee_digits=f"{get('callee_country_code') or ''}{get('callee_number') or ''}",
            caller_cause=get("caller_hangup_cause") or get("originate_error"),
            callee_cause=get("callee_hangup_cause"),
            caller_sip_status=get("caller_sip_status"),
            callee_sip_status=get("callee_sip_status"),
        )


@dataclass(frozen=True)
class CallOutcome:
    """What settlement records and the callback reports."""

    answered: bool  # both people answered and were bridged
    minutes: int  # billed, rounded up, capped at the limit; 0 if never connected
    reason: Reason | None  # None when answered
    billsec: int  # seconds the two were connected, as measured
    # Press 1 to connect, as settling records it (a Confirmation value); None: leave as it is.
    confirm: str | None = None
    # Decided from what the store saw, the call's end never seen (c2c.calls.estimate); a leg's
    # end arriving later corrects it once.
    estimated: bool = False
    # The row's facts, for the metrics (None when the outcome was not decided from a row).
    facts: CallFacts | None = field(default=None, compare=False, repr=False)

    @classmethod
    def decide(
        cls,
        *,
        caller_cause: str | None,
        callee_cause: str | None,
        caller_answered: bool,
        bridged: bool,
        bridged_seconds: int,
        limit_minutes: int | None,
        caller_vars: Mapping[str, str] | None = None,
        confirm: Confirmation | None = None,
    ) -> CallOutcome:
        """``confirm``: the call's press-1 state as far as known (None: not asked)."""
        seconds = max(0, bridged_seconds) if bridged else 0
        unconfirmed = confirm is Confirmation.UNCONFIRMED
        return cls(
            answered=bridged,
            minutes=billable_minutes(seconds, limit_minutes),
            reason=reason_for(caller_cause, callee_cause, caller_answered, bridged, caller_vars,
                              unconfirmed=unconfirmed),
            billsec=seconds,
            confirm=None if confirm is None else confirm.value,
        )

"""When a call can be settled, and with what outcome (pure functions of the call row).

A call settles once both legs are gone. The callee's channel only exists after the caller answered,
so a caller that never answered settles alone. A caller that answered but whose callee's end has not
been seen waits: normally the callee's HANGUP_COMPLETE is a few milliseconds away; when the callee's
channel never existed (gateway down, bad number) the switch is asked (`uuid_exists`) at `recheck_at`.

Press 1 to connect: a caller that answered and never pressed the key has no callee, and never will
(the originate ends with ``-ERR`` before the caller's own HANGUP_COMPLETE, recording 20), so that
call is complete at the caller's end: it settles then, without waiting for a callee or asking the
switch, as ring timeout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import Any

from c2c.calls.hangup import as_requested
from c2c.calls.outcome import CallFacts, CallOutcome
from c2c.domain.confirmation import Confirmation
from c2c.domain.states import CallState, Reason


class Readiness(str, Enum):
    WAIT = "wait"  # legs still up, or the callee's end may still arrive
    SETTLE = "settle"  # everything needed is known
    ASK_SWITCH = "ask_switch"  # caller gone, callee unknown: does its channel still exist?
    OVERDUE = "overdue"  # past the deadline with legs unaccounted for
    FIND_CALLER = "find_caller"  # no event yet for a call placed a while ago: is it on the switch?


def readiness(call: Mapping[str, Any], now: float) -> Readiness:
    if call["state"] == CallState.ENDED.value:
        return Readiness.WAIT
    caller_gone = call["caller_gone_at"] is not None
    callee_gone = call["callee_gone_at"] is not None
    caller_answered = call["caller_answered_at"] is not None
    if caller_gone and (callee_gone or not caller_answered):
        return Readiness.SETTLE
    if confirm_state(call) is Confirmation.UNCONFIRMED and (
        caller_gone or call["recheck_at"] is None or now >= call["recheck_at"]
    ):
        # No callee will ever come. Known from the originate's -ERR alone, the caller's end (its
        # cause and time) is a moment behind (recording 20): wait for it until recheck_at.
        return Readiness.SETTLE
    if call["originate_error"] and not caller_answered and not callee_gone:
        # -ERR from the originate: the caller's channel failed or never existed. Its
        # HANGUP_COMPLETE (if it existed) comes before the BACKGROUND_JOB, so nothing more is due.
        return Readiness.SETTLE
    if now >= call["deadline_at"]:
        return Readiness.OVERDUE
    if call["recheck_at"] is not None and now >= call["recheck_at"]:
        if caller_gone:
            return Readiness.ASK_SWITCH
        if call["state"] == CallState.QUEUED.value:
            return Readiness.FIND_CALLER
    return Readiness.WAIT


def outcome_of(call: Mapping[str, Any]) -> CallOutcome:
    """The outcome from what the row records about both legs."""
    caller_answered = call["caller_answered_at"] is not None
    bridged = caller_answered and call["callee_answered_at"] is not None
    caller_cause = call["caller_hangup_cause"] or call["originate_error"]
    outcome = CallOutcome.decide(
        confirm=confirm_state(call),
        caller_cause=caller_cause,
        callee_cause=call["callee_hangup_cause"],
        caller_answered=caller_answered,
        bridged=bridged,
        bridged_seconds=bridged_seconds(call),
        limit_minutes=int(call["max_minutes"]),
        caller_vars={"last_bridge_hangup_cause": call["callee_fate"] or ""},
    )
    # A call the customer ended before the bridge: reason 1 (c2c.calls.hangup).
    return as_requested(call, dataclasses.replace(outcome, facts=CallFacts.of(call)))


# Columns only the callee's leg (or the caller's, once bridged) fills.
_CALLEE_TRACES = ("callee_answered_at", "callee_gone_at", "bridged_at")


def confirm_state(call: Mapping[str, Any]) -> Confirmation | None:
    """Press 1 to connect, as the row shows it: None when the caller was not asked.

    A row still REQUIRED is decided by what else it holds: any trace of the callee's leg means
    the caller confirmed (that leg is dialed only then); the originate's -ERR after the caller
    answered means the caller never did (without confirmation the job says +OK at the answer).
    """
    stored = call.get("confirm")
    if not stored:
        return None
    try:
        state = Confirmation(stored)
    except ValueError:
        return None  # not ours to interpret: settle as a call that was not asked
    if state is not Confirmation.REQUIRED:
        return state
    if any(call[name] is not None for name in _CALLEE_TRACES):
        return Confirmation.CONFIRMED
    if call["caller_answered_at"] is not None and call["originate_error"]:
        return Confirmation.UNCONFIRMED
    return state


def bridged_seconds(call: Mapping[str, Any]) -> int:
    """The callee leg's billsec; when its end was never seen (its hangup event fell into a
    listener gap and its CDR is still spooled) the bridge cannot have outlasted the caller's leg,
    so from the bridge to the caller's end, in whole seconds as FreeSWITCH counts them."""
    if call["billsec"] is not None:
        return int(call["billsec"])
    start = call["bridged_at"] or call["callee_answered_at"]
    end = call["caller_gone_at"]
    if start is None or end is None:
        return 0
    return max(0, int(end) - int(start))


def failed_outcome() -> CallOutcome:
    """A call whose legs cannot be accounted for: failed, reason 0, nothing billed."""
    return CallOutcome(answered=False, minutes=0, reason=Reason.FAILED, billsec=0)

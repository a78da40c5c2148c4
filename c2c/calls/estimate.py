"""A call whose end was never seen, settled from what the store saw (pure functions of the row).

A call's end goes unseen when its switch dies or freezes (no event, no CDR), or when its hangup
events fall into a gap between two event holders and its CDR never comes. Such a call is not
simply failed: its row records how far it got.

- A leg's end was seen (the caller's, or the callee's with its billsec): the usual outcome from
  it (outcome_of); not an estimate.
- Bridged (the callee answered): answered, billed from the bridge to the last time the call was
  known alive, in whole seconds (at least one: the two were connected), rounded up to minutes as
  usual and never beyond its reservation (max_minutes). Estimated.
- The caller answered, no bridge: not answered, the reason from what is known (usually 0).
  Estimated.
- Nothing seen (the caller never answered): failed, reason 0, as before. Estimated.

"Known alive" is the latest of the last sign of life of its switch, when the switch fell silent
with the call on it (a heartbeat or any event the holder heard: events arrive in order, so a call
with no hangup before the last one heard was still up then), and the last time its channel was
found (calls.alive_at: a reconciliation, ``uuid_exists``). Only with neither, its deadline.

A leg's end arriving later (a CDR, or the late event of a switch that thawed) replaces the
estimate, once (remeasured; c2c.store.calls corrects the row and the ledger).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from c2c.calls.outcome import CallOutcome
from c2c.calls.settlement import failed_outcome, outcome_of


def bridged(call: Mapping[str, Any]) -> bool:
    """Both people answered (as outcome_of reads it)."""
    return call["caller_answered_at"] is not None and call["callee_answered_at"] is not None


def end_seen(call: Mapping[str, Any]) -> bool:
    """Whether the row records the call's end: the caller's end (which ends the bridge too), or
    the callee's (with its measured billsec when it was bridged)."""
    if call["caller_gone_at"] is not None:
        return True
    if call["callee_gone_at"] is None:
        return False
    return not bridged(call) or call["billsec"] is not None


def known_alive_until(call: Mapping[str, Any], switch_heard_at: float | None = None) -> float | None:
    """The last time the call is known to have been up: the latest of ``switch_heard_at`` (its
    switch's last sign of life, given when the switch fell silent with the call on it) and the
    last time its channel was found (alive_at). None when neither is known."""
    known = [t for t in (switch_heard_at, call["alive_at"]) if t is not None]
    return max(known) if known else None


def estimated_seconds(call: Mapping[str, Any], alive_until: float | None) -> int:
    """Seconds billed for a bridged call whose end was never seen: from the bridge to
    ``alive_until`` (its deadline when None), whole seconds, at least 1, at most the reservation."""
    start = call["bridged_at"] or call["callee_answered_at"]
    end = call["deadline_at"] if alive_until is None else alive_until
    seconds = max(1, int(end - start))
    return min(seconds, int(call["max_minutes"]) * 60)


def settle_unseen(
    call: Mapping[str, Any], switch_heard_at: float | None = None
) -> tuple[CallOutcome, float | None]:
    """(outcome, ended_at) of a call whose legs are gone, or out of reach, without its end having
    been seen (see the module's rules); ended_at None: no better time than now."""
    alive = known_alive_until(call, switch_heard_at)
    if end_seen(call):
        return outcome_of(call), None
    if bridged(call):
        seconds = estimated_seconds(call, alive)
        start = call["bridged_at"] or call["callee_answered_at"]
        outcome = outcome_of({**call, "billsec": seconds})
        return dataclasses.replace(outcome, estimated=True), start + seconds
    if call["caller_answered_at"] is not None:
        return dataclasses.replace(outcome_of(call), estimated=True), alive
    return dataclasses.replace(failed_outcome(), estimated=True), alive


def remeasured(call: Mapping[str, Any], fields: Mapping[str, Any]) -> CallOutcome | None:
    """The measured outcome of a call settled on an estimate, once a leg's end (its ``fields``,
    already filled into ``call``) shows how it ended; None while it still does not. The row's
    billsec is the estimate's: only the leg's own billsec counts."""
    row = {**call, "billsec": fields.get("billsec")}
    if not end_seen(row):
        return None
    return outcome_of(row)

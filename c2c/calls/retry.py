"""Retry before anyone rang: what an originate's first word means, and whether a refusal may go
to another switch (pure).

A switch that cannot take a session refuses an originate before any channel exists: paused
(``fsctl pause``, recording 22), over its sessions-per-second (23, calls 2-6) or at max-sessions
(23b, calls 2 and 3) all answer the BACKGROUND_JOB ``-ERR DESTINATION_OUT_OF_ORDER`` about 2 ms
later and fire no channel event. (The same cause marks a duplicate origination_uuid; every
attempt has fresh UUIDs.) No phone rang, so the call is sent once more, to another switch.

Once the caller's leg existed a phone may have rung, and the call is never retried, whatever the
cause: in 23 call 1 the leg was created and its phone refused (``-ERR
NORMAL_TEMPORARY_FAILURE``); in 22b the caller answered and the callee's leg was refused (``+OK``,
then the caller's end says DESTINATION_OUT_OF_ORDER); and a carrier may itself answer with Q.850
cause 27 (DESTINATION_OUT_OF_ORDER) after our INVITE went out. The sign that the leg existed is
its CHANNEL_CREATE: FreeSWITCH fires it as the channel's thread starts (switch_core_session_run,
CS_INIT, recording 23), before the endpoint sends anything, so it comes before any answer from
a phone and before any ``-ERR`` that follows one, a network round trip at least.

Other failures without a channel (GATEWAY_DOWN, INVALID_GATEWAY: a route's gateway) are not
retried: the route's own failover list (``|``) is the place for another gateway, and they settle
as failed calls, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from c2c.calls.events import JobResult
from c2c.domain.states import CallState

# What a switch answers when its core will not create the caller's session (recordings 22-23b).
REFUSAL_CAUSES = frozenset({"DESTINATION_OUT_OF_ORDER"})

# How long the event holder of the switch that refused keeps the refusal before applying it
# (c2c.calls.listener): the placing worker, which heard the same -ERR at the same moment, moves
# the call to another switch within milliseconds. Which of the two writes first is decided by
# the store either way (a moved call is not on the refused job any more; a call whose refusal
# was recorded is not moved), so this only makes the retry win when it can.
HOLD_SECONDS = 3.0


class Verdict(str, Enum):
    TAKEN = "taken"  # the caller's leg exists (or the job already succeeded): the call stays
    REFUSED = "refused"  # refused before any leg existed: it may go to another switch, once
    FAILED = "failed"  # failed before any leg for another reason: settles as a failed call
    UNHEARD = "unheard"  # nothing within the wait: kept; events or reconciliation settle it


def verdict(leg_created: bool, job: JobResult | None) -> Verdict:
    """The originate's first word: its caller leg's CHANNEL_CREATE seen (``leg_created``), else
    its BACKGROUND_JOB's result (``job``), else nothing."""
    if leg_created:
        return Verdict.TAKEN
    if job is None:
        return Verdict.UNHEARD
    if job.ok:
        return Verdict.TAKEN
    if job.cause in REFUSAL_CAUSES:
        return Verdict.REFUSED
    return Verdict.FAILED


def may_move(call: Mapping[str, Any]) -> bool:
    """Whether the call row still shows no trace of a caller leg, so that it may go to another
    switch: queued, its caller neither answered nor gone, no originate error recorded. The store's
    move checks the same in its UPDATE (c2c.store.accept.move_call)."""
    return (
        call["state"] == CallState.QUEUED.value
        and call["caller_answered_at"] is None
        and call["caller_gone_at"] is None
        and call["originate_error"] is None
    )


def may_be_retried(cause: str | None, call: Mapping[str, Any]) -> bool:
    """For the event holder: whether the job's ``-ERR cause`` of ``call`` is a refusal the placing
    worker may be sending to another switch right now (so that it is held back a moment)."""
    return cause in REFUSAL_CAUSES and may_move(call)

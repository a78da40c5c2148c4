"""Ending a call on the customer's request (``POST /api/calls/{call_id}/hangup``).

The store is the truth. The request is recorded on the row first (``hangup_requested_at``, set
once, and only on a call not ended whose legs are all up as far as the store knows; otherwise
the call is ending by itself), then the legs that exist are ended on the call's switch, from
whichever worker took the request (every worker has a command connection to every switch).
The outcome then settles as usual, from the legs' ends, with these rules:

- **The reason.** A call whose hangup was requested and that was not bridged settles reason 1
  (hung up), whatever the switch's causes say: a caller killed on the press-1 prompt would
  otherwise read as never pressed (3), a call that never reached a switch as failed (0). A
  bridged call has no reason; its minutes are the minutes talked (the callee leg's billsec).
- **The kill.** ``uuid_kill`` of the caller's channel, then of the callee's when the caller had
  answered (it may exist). The caller's end ends the rest: a callee being dialed is cancelled
  (ORIGINATOR_CANCEL), a bridge cleared (both legs NORMAL_CLEARING, recording 24). Causes: a
  leg not answered yet ORIGINATOR_CANCEL (a CANCEL to the phone), an answered one
  NORMAL_CLEARING (recordings 07, 07c); both read as reason 1 anyway.
- **A leg that did not exist when asked** (the originate still on its way, the call moved to
  another switch, a callee not dialed yet) is killed when it appears: the switch's event holder
  finds the request on the row when it applies the leg's CHANNEL_PROGRESS or CHANNEL_ANSWER
  (c2c.calls.listener), even on a call already settled.
- **Looked at again.** The event holder looks at a call still not ended ``LOOK_AGAIN_SECONDS``
  after its request, and every as long after: legs still up are killed again (the requesting
  worker could not reach the switch, or a kill was lost); a call none of whose channels is on
  the switch and of which nothing was ever seen (no ringing, no leg's end, no originate result)
  settles at once, answered 0, minutes 0, reason 1, instead of waiting for its deadline: should
  its originate still create a leg, that leg is killed on sight (above). A call on a switch out
  of reach settles as any call there does (``C2C_SETTLE_GRACE``), with reason 1 if not bridged.

Repeating the request changes nothing: only the request that recorded it sends kills.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from c2c.calls.outcome import CallFacts, CallOutcome
from c2c.domain.states import IN_FLIGHT, CallState, Reason
from c2c.errors import SwitchError
from c2c.esl.connection import EslConnection
from c2c.store import Store

log = logging.getLogger(__name__)

LOOK_AGAIN_SECONDS = 5.0
UNANSWERED_CAUSE = "ORIGINATOR_CANCEL"
ANSWERED_CAUSE = "NORMAL_CLEARING"
# What may follow "uuid_kill " in a command: our own UUIDs, never anything that ends a line.
_CHANNEL = re.compile(r"[0-9A-Za-z-]{1,64}")
_IN_FLIGHT = frozenset(state.value for state in IN_FLIGHT)


@dataclass(frozen=True)
class Kill:
    channel: str
    cause: str


def requested(call: Mapping[str, Any]) -> bool:
    return call.get("hangup_requested_at") is not None


def kills(call: Mapping[str, Any]) -> tuple[Kill, ...]:
    """The channels to end for the call as its row stands, the caller's first."""
    caller_answered = call["caller_answered_at"] is not None or call["state"] in (
        CallState.CALLER_ANSWERED.value, CallState.BRIDGED.value)
    if not caller_answered:
        return (Kill(call["caller_uuid"], UNANSWERED_CAUSE),)
    bridged = call["callee_answered_at"] is not None or call["bridged_at"] is not None
    return (Kill(call["caller_uuid"], ANSWERED_CAUSE),
            Kill(call["callee_uuid"], ANSWERED_CAUSE if bridged else UNANSWERED_CAUSE))


def as_requested(call: Mapping[str, Any], outcome: CallOutcome) -> CallOutcome:
    """``outcome`` as it settles for this call: reason 1 when its hangup was requested and it
    was not bridged."""
    if outcome.answered or not requested(call) or outcome.reason is Reason.HUNG_UP:
        return outcome
    return dataclasses.replace(outcome, reason=Reason.HUNG_UP)


def untraced(call: Mapping[str, Any]) -> bool:
    """Nothing of the call was ever seen: not ringing, no leg's end, no originate result."""
    return (call["state"] == CallState.QUEUED.value and call["caller_gone_at"] is None
            and call["callee_gone_at"] is None and call["originate_error"] is None)


def cancelled_outcome(call: Mapping[str, Any]) -> CallOutcome:
    """A requested hangup of a call never seen on its switch: nothing was dialed."""
    return CallOutcome(answered=False, minutes=0, reason=Reason.HUNG_UP, billsec=0,
                       facts=CallFacts.of(call))


def end_legs(connection: EslConnection, call: Mapping[str, Any]) -> bool:
    """``uuid_kill`` the call's channels (kills()) on ``connection``; whether any was there
    (``+OK``; ``-ERR No such channel!`` when not). Raises SwitchError when the switch cannot be
    asked."""
    found = False
    for kill in kills(call):
        if not _CHANNEL.fullmatch(kill.channel or ""):
            log.error("call %s: channel id %r not sent to the switch", call["id"], kill.channel)
            continue
        reply = connection.api(f"uuid_kill {kill.channel} {kill.cause}", check=False).strip()
        there = reply.startswith("+OK")
        found = found or there
        log.info("call %s: hangup requested: uuid_kill %s %s: %s", call["id"], kill.channel,
                 kill.cause, reply or "(no reply text)")
    return found


class Answer(str, Enum):
    """What a hangup request found."""

    NO_CALL = "no_call"  # the account has no call with this id
    ENDED = "ended"  # the call had already ended (settled)
    REQUESTED = "requested"  # this request recorded it (and ended the legs it could)
    IN_PROGRESS = "in_progress"  # asked before, or the call is ending by itself


class Hangups:
    """The customer's side: record the request, then end the legs that exist."""

    def __init__(self, store: Store, connection_for: Callable[[str], EslConnection],
                 clock: Callable[[], float] = time.time) -> None:
        """``connection_for(switch)``: this worker's command connection to a switch (KeyError
        for a switch not configured here)."""
        self._store = store
        self._connection_for = connection_for
        self._clock = clock

    def request(self, account_id: int, call_id: str) -> Answer:
        calls = self._store.calls
        if calls.request_hangup(call_id, account_id, self._clock()):
            call = calls.get(call_id)
            if call is not None:
                self._end_legs(call)
            return Answer.REQUESTED
        call = calls.get(call_id)
        if call is None or int(call["account_id"]) != account_id:
            return Answer.NO_CALL
        if call["state"] not in _IN_FLIGHT:
            return Answer.ENDED
        return Answer.IN_PROGRESS

    def _end_legs(self, call: Mapping[str, Any]) -> None:
        try:
            connection = self._connection_for(call["switch"])
        except KeyError:
            log.warning("call %s: hangup recorded; its switch %s is not configured here",
                        call["id"], call["switch"])
            return
        try:
            end_legs(connection, call)
        except SwitchError as exc:
            # Recorded all the same: the switch's event holder ends the legs it sees
            # (LOOK_AGAIN_SECONDS), or the call settles as its switch's calls do.
            log.warning("call %s: hangup recorded; its legs not ended from here: %s",
                        call["id"], exc)

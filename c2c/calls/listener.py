"""Applies one switch's events to the store, and settles calls whose legs are all gone.

Runs only in the worker that holds the switch's lease, off the connection's read loop. Every write
is a forward-only UPDATE, so an event seen twice (or after a CDR) changes nothing the second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from c2c.calls import events as ev
from c2c.calls.outcome import CallOutcome
from c2c.calls.settlement import CALLEE_RECHECK_SECONDS, Readiness, outcome_of, readiness
from c2c.calls.states import CallState
from c2c.esl.protocol import Event
from c2c.store import Store

log = logging.getLogger(__name__)

# The events the listener subscribes to. CHANNEL_PROGRESS marks the caller's phone ringing.
SUBSCRIBED_EVENTS = (
    "CHANNEL_PROGRESS",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_HANGUP_COMPLETE",
    "BACKGROUND_JOB",
)

# Only our channels (they carry the call id variable) and originate results pass the switch's
# filter; without the second filter BACKGROUND_JOB would be dropped (recording 10).
EVENT_FILTERS = (
    (f"variable_{ev.CALL_ID_VARIABLE}", "/^[0-9a-f-]{36}$/"),
    ("Event-Name", "BACKGROUND_JOB"),
)

_ANSWER_FIELD = {ev.CALLER: "caller_answered_at", ev.CALLEE: "callee_answered_at"}


class CallEventListener:
    def __init__(self, store: Store,
                 on_settled: Callable[[str, CallOutcome], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._on_settled = on_settled
        self._clock = clock

    def handle(self, event: Event) -> None:
        name = event.name
        if name == "CHANNEL_HANGUP_COMPLETE":
            end = ev.leg_end(event)
            if end is not None:
                self.leg_ended(end)
        elif name == "BACKGROUND_JOB":
            result = ev.job_result(event)
            if result is not None and not result.ok:
                self.originate_failed(result)
        elif name in ("CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_BRIDGE"):
            moment = ev.leg_moment(event)
            if moment is not None:
                self.leg_moment(moment)

    def leg_moment(self, moment: ev.LegMoment) -> None:
        calls = self._store.calls
        at = moment.at or self._clock()
        if moment.event_name == "CHANNEL_PROGRESS" and moment.leg == ev.CALLER:
            calls.advance(moment.call_id, [CallState.QUEUED], CallState.CALLER_RINGING,
                          recheck_at=None)
        elif moment.event_name == "CHANNEL_ANSWER":
            calls.set_if_null(moment.call_id, {_ANSWER_FIELD[moment.leg]: at})
            if moment.leg == ev.CALLER:
                calls.advance(moment.call_id, [CallState.QUEUED, CallState.CALLER_RINGING],
                              CallState.CALLER_ANSWERED, recheck_at=None)
            else:
                # The callee answering is what connects the two people; CHANNEL_BRIDGE alone can
                # fire on early media before anyone answered.
                self._bridged(moment.call_id, at)
        elif moment.event_name == "CHANNEL_BRIDGE":
            call = calls.get(moment.call_id)
            if call is not None and call["callee_answered_at"] is not None:
                self._bridged(moment.call_id, at)

    def _bridged(self, call_id: str, at: float) -> None:
        moved = self._store.calls.advance(
            call_id,
            [CallState.QUEUED, CallState.CALLER_RINGING, CallState.CALLER_ANSWERED],
            CallState.BRIDGED,
            bridged_at=at,
        )
        if moved:
            log.info("call %s: bridged", call_id)

    def leg_ended(self, end: ev.LegEnd) -> None:
        fields: dict[str, object] = {
            f"{end.leg}_gone_at": end.ended_at or self._clock(),
            f"{end.leg}_hangup_cause": end.cause,
            f"{end.leg}_sip_status": end.sip_status,
        }
        if end.answered_at is not None:
            fields[_ANSWER_FIELD[end.leg]] = end.answered_at
        if end.leg == ev.CALLEE:
            fields["billsec"] = end.billsec
            if end.bridged_at is not None and end.answered_at is not None:
                fields["bridged_at"] = max(end.bridged_at, end.answered_at)
        else:
            fields["callee_fate"] = end.bridge_failure_cause
            fields["recheck_at"] = self._clock() + CALLEE_RECHECK_SECONDS
            if end.bridged_at is not None:
                # The caller's leg was bridged, which (early media ignored on both legs) happens
                # only once the callee answered; a failed &bridge leaves bridge_uepoch 0
                # (recordings 06b, 06c). Recorded here because the callee's own answer and end
                # may have been lost (a listener gap, the store down) with its CDR still
                # spooled, and the call would settle as not answered. Its own times win.
                fields["callee_answered_at"] = end.bridged_at
                fields["bridged_at"] = end.bridged_at
        self._store.calls.set_if_null(end.call_id, fields)
        log.info("call %s: %s leg ended %s", end.call_id, end.leg, end.cause)
        self.try_settle(end.call_id)

    def originate_failed(self, result: ev.JobResult) -> None:
        call = self._store.calls.find_by_job_uuid(result.job_uuid)
        if call is None:
            return  # another application's originate, or a call already forgotten
        self._store.calls.set_if_null(call["id"], {"originate_error": result.cause})
        log.info("call %s: originate failed: %s", call["id"], result.cause)
        self.try_settle(call["id"])

    def try_settle(self, call_id: str) -> bool:
        call = self._store.calls.get(call_id)
        if call is None or readiness(call, self._clock()) is not Readiness.SETTLE:
            return False
        return self.settle(call_id, outcome_of(call), call)

    def settle(self, call_id: str, outcome: CallOutcome, call: Mapping[str, Any] | None = None) -> bool:
        """Settle once; the end time is the last leg's end when known."""
        gone = [t for t in (call["caller_gone_at"], call["callee_gone_at"]) if t] if call else []
        ended_at = max(gone) if gone else self._clock()
        settled = self._store.calls.settle(call_id, outcome, ended_at=ended_at)
        if settled:
            log.info("call %s: settled answered=%s minutes=%d reason=%s", call_id,
                     outcome.answered, outcome.minutes,
                     "" if outcome.reason is None else int(outcome.reason))
            if self._on_settled is not None:
                self._on_settled(call_id, outcome)
        return settled

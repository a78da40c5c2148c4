"""Applies one switch's events to the store, and settles calls whose legs are all gone.

Runs only in the worker that holds the switch's lease, off the connection's read loop. Every write
is a forward-only UPDATE, so an event seen twice (or after a CDR) changes nothing the second time.
Each move names the progress event it reports (ringing, answered, bridged): the store writes its
webhook with the move, for a call that asked for it (c2c.store.progress).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import gevent

from c2c.calls import events as ev
from c2c.calls import hangup
from c2c.calls.estimate import remeasured
from c2c.calls.outcome import CallOutcome
from c2c.calls.retry import HOLD_SECONDS, may_be_retried
from c2c.calls.settle_batch import SettleBatcher
from c2c.calls.settlement import Readiness, outcome_of, readiness
from c2c.domain.confirmation import Confirmation
from c2c.domain.progress import ProgressEvent
from c2c.domain.states import CallState
from c2c.domain.timing import CALLEE_RECHECK_SECONDS
from c2c.errors import C2CError
from c2c.esl.protocol import Event
from c2c.store import Report, Store

log = logging.getLogger(__name__)

# The events the listener subscribes to. CHANNEL_PROGRESS marks the caller's phone ringing.
# CHANNEL_BRIDGE is not among them: it can fire on early media before anyone answered, so the
# callee's CHANNEL_ANSWER (on the same lane, in order) is what marks the two people connected,
# which left a BRIDGE nothing to change; and a leg's HANGUP_COMPLETE carries its bridge time.
SUBSCRIBED_EVENTS = (
    "CHANNEL_PROGRESS",
    "CHANNEL_ANSWER",
    "CHANNEL_HANGUP_COMPLETE",
    "BACKGROUND_JOB",
)

# Only our channels (they carry the call id variable) and originate results pass the switch's
# filter; without the second filter BACKGROUND_JOB would be dropped (recording 10).
EVENT_FILTERS = (
    (f"variable_{ev.CALL_ID_VARIABLE}", "/^[0-9a-f-]{36}$/"),
    ("Event-Name", "BACKGROUND_JOB"),
)

HELD_ATTEMPTS = 3  # a held refusal the store refused is tried again this many times in all

_ANSWER_FIELD = {ev.CALLER: "caller_answered_at", ev.CALLEE: "callee_answered_at"}
# The callee's leg is dialed only once the caller pressed the key, so any event of it says the
# caller confirmed. Filled only over 'required' (c2c.store.calls), so a call that was not asked
# pays nothing for it: it rides in the UPDATE the event makes anyway.
_CONFIRMED = {"confirm": Confirmation.CONFIRMED.value}
# Press 1: the caller leg's events carry group_confirm_key while the caller is asked (recording
# 19). Calls whose caller answered so are remembered until their callee's leg is heard from: its
# CHANNEL_PROGRESS then records 'confirmed' (GET /api/calls shows dialing_callee), with no round
# trip for the callee legs of calls that were not asked. At most this many are remembered; a
# call forgotten (or answered before this worker held the events) is confirmed by its callee's
# answer or end, as before.
_ASKS_KEY = "variable_group_confirm_key"
MAX_ASKED = 50_000
# A leg's event on a call the customer asked to end: the UPDATE leaves it alone, the row is
# read, and the leg ended (c2c.calls.hangup).
_UNLESS_HANGUP = ("hangup_requested_at",)


class CallbackTaker(Protocol):
    """Where calls settled in groups send their callbacks (CallbackDispatcher.take_claimed)."""

    lease_seconds: float

    def accepts_handover(self) -> bool: ...

    def take_claimed(self, jobs: list[Any]) -> None: ...


class CallEventListener:
    def __init__(self, store: Store,
                 on_settled: Callable[[str, CallOutcome], None] | None = None,
                 clock: Callable[[], float] = time.time, group_settles: bool = False,
                 end_legs: Callable[[Mapping[str, Any]], None] | None = None,
                 callbacks: CallbackTaker | None = None) -> None:
        """``group_settles``: a call its leg ends complete is settled a moment later, with the
        others completed meanwhile, in one transaction (c2c.calls.settle_batch); for the
        switch's event stream. Otherwise at once, before the handler returns. ``end_legs``:
        ends a call's legs on this switch (a call whose hangup was requested: its legs that
        appear are ended on sight). ``callbacks``: the callbacks of calls settled in groups
        are written claimed for it and handed to it (no claim round trips)."""
        self._store = store
        self._callbacks = callbacks
        self._end_legs = end_legs
        self._asked_key: dict[str, None] = {}  # insertion-ordered: the oldest go first
        self._on_settled = on_settled
        self._clock = clock
        self._batcher = SettleBatcher(self._settle_group) if group_settles else None

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
        elif name in ("CHANNEL_PROGRESS", "CHANNEL_ANSWER"):
            moment = ev.leg_moment(event)
            if moment is not None:
                if name == "CHANNEL_ANSWER" and moment.leg == ev.CALLER and event.get(_ASKS_KEY):
                    self._remember_asked(moment.call_id)
                self.leg_moment(moment)

    def _remember_asked(self, call_id: str) -> None:
        self._asked_key[call_id] = None
        if len(self._asked_key) > MAX_ASKED:
            del self._asked_key[next(iter(self._asked_key))]

    def leg_moment(self, moment: ev.LegMoment) -> None:
        # One UPDATE per event: the moment's time filled in and the state moved together.
        at = moment.at or self._clock()
        if moment.event_name == "CHANNEL_PROGRESS" and moment.leg == ev.CALLER:
            self._advance(moment.call_id, [CallState.QUEUED], CallState.CALLER_RINGING,
                          recheck_at=None, report=Report(ProgressEvent.RINGING, at),
                          now=self._clock())
        elif moment.event_name == "CHANNEL_PROGRESS":
            # The callee's phone rings: the caller pressed 1 (only a caller asked is remembered).
            if moment.call_id in self._asked_key:
                del self._asked_key[moment.call_id]
                self._store.calls.set_if_null(moment.call_id, _CONFIRMED)
        elif moment.event_name == "CHANNEL_ANSWER":
            fill = {_ANSWER_FIELD[moment.leg]: at}
            if moment.leg == ev.CALLER:
                self._advance(moment.call_id, [CallState.QUEUED, CallState.CALLER_RINGING],
                              CallState.CALLER_ANSWERED, fill=fill, recheck_at=None,
                              report=Report(ProgressEvent.ANSWERED, at), now=self._clock())
            else:
                self._asked_key.pop(moment.call_id, None)
                # The callee answering is what connects the two people; CHANNEL_BRIDGE alone can
                # fire on early media before anyone answered.
                self._bridged(moment.call_id, at, fill={**fill, **_CONFIRMED})

    def _bridged(self, call_id: str, at: float, *,
                 fill: Mapping[str, object] | None = None) -> None:
        changed = self._advance(
            call_id,
            [CallState.QUEUED, CallState.CALLER_RINGING, CallState.CALLER_ANSWERED],
            CallState.BRIDGED,
            fill=fill,
            bridged_at=at,
            report=Report(ProgressEvent.BRIDGED, at),
            now=self._clock(),
        )
        if changed:
            log.debug("call %s: bridged", call_id)

    def _advance(self, call_id: str, *args: Any, **kwargs: Any) -> bool:
        """Calls.advance for an event saying a leg is there, on a call whose hangup was not
        requested. On one whose hangup was, that UPDATE changes nothing and the row is read
        (only then, and for an event seen twice): the move is made all the same (what the
        switch says stays true: a bridge is billed as talked) and the legs are ended, also on a
        call already settled (c2c.calls.hangup)."""
        calls = self._store.calls
        if calls.advance(call_id, *args, unless_set=_UNLESS_HANGUP, **kwargs):
            return True
        call = calls.get(call_id)
        if call is None or not hangup.requested(call):
            return False
        changed = call["state"] != CallState.ENDED.value and calls.advance(call_id, *args,
                                                                            **kwargs)
        if self._end_legs is not None:
            said = {**(kwargs.get("fill") or {}), **kwargs}
            ending = {**call, **{k: v for k, v in said.items() if k in call}}
            end_legs = self._end_legs
            # Not while a group of events holds its transaction open (it waits on the switch).
            self._store.after_commit(lambda: end_legs(ending))
        return changed

    def leg_ended(self, end: ev.LegEnd) -> None:
        self._asked_key.pop(end.call_id, None)
        fields: dict[str, object] = {
            f"{end.leg}_gone_at": end.ended_at or self._clock(),
            f"{end.leg}_hangup_cause": end.cause,
            f"{end.leg}_sip_status": end.sip_status,
        }
        if end.answered_at is not None:
            fields[_ANSWER_FIELD[end.leg]] = end.answered_at
        if end.leg == ev.CALLEE:
            fields.update(_CONFIRMED)
            fields["billsec"] = end.billsec
            if end.bridged_at is not None and end.answered_at is not None:
                fields["bridged_at"] = max(end.bridged_at, end.answered_at)
        else:
            fields["callee_fate"] = end.bridge_failure_cause
            # Press 1: the leg's own word, confirmed or not (None: not asked, or not answered).
            fields["confirm"] = None if end.confirm is None else end.confirm.value
            fields["recheck_at"] = self._clock() + CALLEE_RECHECK_SECONDS
            if end.bridged_at is not None:
                # The caller's leg was bridged, which (early media ignored on both legs) happens
                # only once the callee answered; a failed &bridge leaves bridge_uepoch 0
                # (recordings 06b, 06c). Recorded here because the callee's own answer and end
                # may have been lost (a listener gap, the store down) with its CDR still
                # spooled, and the call would settle as not answered. Its own times win.
                fields["callee_answered_at"] = end.bridged_at
                fields["bridged_at"] = end.bridged_at
        log.info("call %s: %s leg ended %s", end.call_id, end.leg, end.cause)
        self._fill_and_try_settle(end.call_id, fields)

    def originate_failed(self, result: ev.JobResult, *, held: int = 0) -> None:
        call = self._store.calls.find_by_job_uuid(result.job_uuid)
        if call is None:
            return  # another application's, a call moved to another switch, or forgotten
        if may_be_retried(result.cause, call):
            # Refused before any leg existed: the worker that placed it may be sending it to
            # another switch (c2c.calls.retry). Applied a moment later, and only if the call is
            # still on this job; once recorded, it cannot move any more.
            if not held:
                gevent.spawn_later(HOLD_SECONDS, self._apply_held, result, 1)
                return
            if not self._store.record_originate_error(call["id"], result.job_uuid,
                                                      result.cause or "UNKNOWN"):
                return  # moved meanwhile
        log.info("call %s: originate failed: %s", call["id"], result.cause)
        # recheck_at: after a caller who answered and never pressed 1, the -ERR comes just
        # before the caller's end (recording 20); settlement waits for that end until then.
        self._fill_and_try_settle(call["id"], {
            "originate_error": result.cause,
            "recheck_at": self._clock() + CALLEE_RECHECK_SECONDS,
        })

    def _apply_held(self, result: ev.JobResult, attempt: int) -> None:
        try:
            self.originate_failed(result, held=attempt)
        except C2CError as exc:  # tried again; past that, the call's recheck finds it no trace
            log.warning("job %s: refusal not applied (attempt %d): %s", result.job_uuid,
                        attempt, exc)
            if attempt < HELD_ATTEMPTS:
                gevent.spawn_later(HOLD_SECONDS, self._apply_held, result, attempt + 1)

    def _fill_and_try_settle(self, call_id: str, fields: Mapping[str, Any]) -> bool:
        """Record what is known and settle if that completes the call: at once, in the same
        transaction (the row locked throughout), or handed to the group settler. Returns
        whether the call was settled here. A call already settled on an estimate is corrected
        by what this leg's end measures (once; c2c.calls.estimate)."""
        calls = self._store.calls
        if self._batcher is not None:
            if calls.fill_and_check(call_id, fields, self._ready, remeasure=remeasured):
                # Settled once its leg's end is committed (events may be applied in groups).
                batcher = self._batcher
                self._store.after_commit(lambda: batcher.submit(call_id))
            return False
        outcome = calls.fill_and_settle_if(call_id, fields, self._decide, remeasure=remeasured)
        if outcome is None:
            return False
        self._announce(call_id, outcome)
        return True

    @property
    def settles_waiting(self) -> int:
        """Calls whose legs are all gone, handed to the settle batcher and not yet settled."""
        return self._batcher.pending() if self._batcher is not None else 0

    def _settle_group(self, call_ids: list[str]) -> None:
        self.settle_decided(call_ids, self._decide)

    def _claim_for(self) -> tuple[float, Callable[[list[Any]], None]] | None:
        taker = self._callbacks
        if taker is None or not taker.accepts_handover():
            return None  # written unclaimed: the dispatcher's claim loop sends them
        return taker.lease_seconds, taker.take_claimed

    def stop(self) -> None:
        """Stop the group settler, if any (calls it held are settled by the owner's sweep)."""
        if self._batcher is not None:
            self._batcher.stop()

    def _ready(self, call: Mapping[str, Any]) -> bool:
        return readiness(call, self._clock()) is Readiness.SETTLE

    def _decide(self, call: Mapping[str, Any]) -> tuple[CallOutcome, float] | None:
        if readiness(call, self._clock()) is not Readiness.SETTLE:
            return None
        return outcome_of(call), self._ended_at(call)

    def _ended_at(self, call: Mapping[str, Any] | None) -> float:
        """The last leg's end when known."""
        gone = [t for t in (call["caller_gone_at"], call["callee_gone_at"]) if t] if call else []
        return max(gone) if gone else self._clock()

    def settle_decided(
        self,
        call_ids: list[str],
        decide: Callable[[Mapping[str, Any]], tuple[CallOutcome, float] | None],
    ) -> int:
        """Settle those of ``call_ids`` for which ``decide`` of its row, locked and not ended,
        gives (outcome, ended_at): in one transaction, decided on the rows as they are then
        (an event applied meanwhile is not overlooked). Returns how many it settled."""
        settled = self._store.calls.settle_ready(call_ids, decide,
                                                 claim_callbacks=self._claim_for())
        for call_id, outcome in settled:
            self._announce(call_id, outcome)
        return len(settled)

    def settle(self, call_id: str, outcome: CallOutcome, call: Mapping[str, Any] | None = None) -> bool:
        """Settle once; the end time is the last leg's end when known."""
        settled = self._store.calls.settle(call_id, outcome, ended_at=self._ended_at(call))
        if settled:
            self._announce(call_id, outcome)
        return settled

    def _announce(self, call_id: str, outcome: CallOutcome) -> None:
        log.info("call %s: settled answered=%s minutes=%d reason=%s%s", call_id,
                 outcome.answered, outcome.minutes,
                 "" if outcome.reason is None else int(outcome.reason),
                 " (estimated)" if outcome.estimated else "")
        if self._on_settled is not None:
            self._on_settled(call_id, outcome)

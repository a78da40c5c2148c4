"""One event listener per switch across every worker and host, chosen through a lease in the store.

Each worker runs a SwitchOwner per switch. The one holding the lease keeps an event connection open
and feeds the CallEventListener; it also sweeps the calls that need a look (caller gone but callee
unseen, or past their deadline). On taking over (and after every reconnect of the event connection,
since events in the gap are lost) it reconciles every call the store believes in flight there.

The holder also hears the switch's HEARTBEATs (every 20 s; the call-id filter would drop them, so
they get a filter of their own, recordings 10 and 21) and its SHUTDOWN. An event connection silent
for C2C_ESL_LIVENESS_SECONDS is dropped and reconnected, and the reconnect reconciles as any gap
does. Each heartbeat, connect and loss is reported to the store's switch_states, from the lease's
greenlet, so that every worker and `c2c switches list` see it.

A call whose end is never seen settles from what the store saw (c2c.calls.estimate): at its
deadline as before, and also once its switch is out of reach (neither the event nor the command
connection live: refused, or silent for the liveness window) and has not been heard from for
C2C_SETTLE_GRACE: the calls of a dead or frozen switch settle within minutes, not at their hard
limit hours later.
What the switch was last heard to say bounds the estimate: any event or heartbeat (events come in
order, so a call with no hangup before the last one heard was still up then), and each call's
alive_at, written whenever a reconciliation or ``uuid_exists`` finds its channel. A switch back in
time is reconciled as after any gap: a call whose channel it still has is marked alive, not
settled.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import gevent

from c2c.calls import hangup
from c2c.calls.estimate import bridged, settle_unseen
from c2c.calls.lanes import GROUPED_LANES, EventLanes
from c2c.calls.listener import (
    EVENT_FILTERS,
    SUBSCRIBED_EVENTS,
    CallbackTaker,
    CallEventListener,
)
from c2c.calls.originate import confirm_setup_seconds
from c2c.calls.outcome import CallOutcome
from c2c.calls.settlement import Readiness, outcome_of, readiness
from c2c.config import Config, SwitchAddress
from c2c.errors import C2CError, SwitchError
from c2c.esl.connection import EslConnection, SwitchState
from c2c.esl.health import SwitchHealth
from c2c.esl.protocol import Event
from c2c.esl.status import load_from_heartbeat
from c2c.store import Store

log = logging.getLogger(__name__)

SWEEP_INTERVAL = 1.0
# Reconciliation leaves alone calls younger than this: their channel may not exist yet.
NEW_CALL_SECONDS = 5.0
# What the holder hears about the switch itself, besides our calls' events.
SWITCH_EVENTS = ("HEARTBEAT", "SHUTDOWN")
# Calls of an unreachable switch settled per transaction.
UNREACHABLE_GROUP = 200


def new_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_name(switch: str) -> str:
    """The lease whose holder listens to ``switch``'s events."""
    return f"switch:{switch}"


class SwitchOwner:
    def __init__(self, config: Config, address: SwitchAddress, store: Store,
                 command_connection: Callable[[], EslConnection], holder: str,
                 on_settled: Callable[[str, CallOutcome], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 health: SwitchHealth | None = None,
                 callbacks: CallbackTaker | None = None) -> None:
        """``health``: this worker's knowledge of the switch (Switches.health), which the
        heartbeats feed while this worker holds the events. ``callbacks``: this process's
        dispatcher, handed the callbacks of the calls this settles (CallEventListener)."""
        self._config = config
        self._address = address
        self._store = store
        self._commands = command_connection
        self._holder = holder
        self._clock = clock
        self._lease_name = lease_name(address.name)
        self.health = health or SwitchHealth(address.name, clock=clock)
        self.listener = CallEventListener(store, on_settled=on_settled, clock=clock,
                                          group_settles=True, end_legs=self._end_legs,
                                          callbacks=callbacks)
        # Calls whose hangup was requested and which are still not ended: when to look again
        # (rebuilt by every sweep, so it holds only those; c2c.calls.hangup).
        self._hangup_looks: dict[str, float] = {}
        self._events: EslConnection | None = None
        self._lanes: EventLanes | None = None
        self._loop: gevent.Greenlet | None = None
        self._lease_loop: gevent.Greenlet | None = None
        self._reconcile_due = False
        # The switch's last sign of life: a connect, a HEARTBEAT or any other event.
        self._heard_at: float | None = None
        self._gap_began: float | None = None  # _heard_at when the last connection was lost
        self._listening_since: float | None = None
        self._report_due = False
        self._reported_connected: bool | None = None

    @property
    def name(self) -> str:
        return self._address.name

    @property
    def holding(self) -> bool:
        return self._events is not None

    @property
    def events_waiting(self) -> int:
        """Events heard and not yet applied (the store refused them, or they are queued)."""
        return self._lanes.pending() if self._lanes is not None else 0

    def start(self) -> None:
        # The lease is renewed in its own greenlet: a sweep that waits on a slow switch or store
        # must not let the lease lapse (a second worker would start listening).
        if self._loop is None:
            self._lease_loop = gevent.spawn(self._keep_lease)
            self._loop = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._loop is not None:
            gevent.killall([self._loop, self._lease_loop], block=True, timeout=5)
            self._loop = self._lease_loop = None
        self._let_go()
        if self._lanes is not None:  # kept across a lost lease (see lanes.py), not beyond this
            self._lanes.stop()
            self._lanes = None
        try:
            self._store.leases.release(self._lease_name, self._holder)
        except C2CError as exc:
            log.warning("could not release the lease on %s: %s", self._address.name, exc)

    def _keep_lease(self) -> None:
        renew_every = max(0.5, self._config.lease_seconds / 3)
        while True:
            self._renew(self._clock())
            self._report()
            gevent.sleep(renew_every)

    def _run(self) -> None:
        while True:
            if self.holding:
                try:
                    if self._reconcile_due and self._switch_reachable():
                        # Cleared first: a reconcile that cannot reach the switch sets it again.
                        self._reconcile_due = False
                        try:
                            self.reconcile()
                        except C2CError:
                            self._reconcile_due = True
                            raise
                    self.sweep()
                except C2CError as exc:
                    log.warning("sweeping %s failed: %s", self._address.name, exc)
            gevent.sleep(SWEEP_INTERVAL)

    def _renew(self, now: float) -> None:
        try:
            held = self._store.leases.acquire_or_renew(
                self._lease_name, self._holder, self._config.lease_seconds, now)
        except C2CError as exc:
            # Without the store we cannot prove we still hold it: stop listening so that two
            # workers never both apply events.
            log.warning("lease on %s not renewed (%s); letting go", self._address.name, exc)
            held = False
        if held and not self.holding:
            log.info("took over the events of switch %s", self._address.name)
            self._listen()
        elif not held and self.holding:
            log.info("lost the lease on switch %s", self._address.name)
            self._let_go()

    def _listen(self) -> None:
        if self._lanes is None:
            self._lanes = EventLanes(self.listener.handle, GROUPED_LANES,
                                     on_overflow=self._events_dropped,
                                     group=self._store.grouped)
        lanes = self._lanes
        self._listening_since = self._clock()
        # What the previous holder last heard (its report): where a gap before us began.
        stored = self._stored_heard_at()
        if stored is not None and (self._heard_at is None or stored > self._heard_at):
            self._heard_at = stored
        self._events = EslConnection(
            self._address,
            timeout=self._config.esl_timeout,
            events=(*SUBSCRIBED_EVENTS, *SWITCH_EVENTS),
            filters=[*EVENT_FILTERS, *(("Event-Name", name) for name in SWITCH_EVENTS)],
            on_event=functools.partial(self._on_event, lanes),
            on_connected=self._connected,
            liveness=self._config.esl_liveness_seconds,
        )
        self._reported_connected = None  # a new holder reports at once
        self._events.start()

    def _stored_heard_at(self) -> float | None:
        try:
            record = self._store.switch_states.get(self._address.name)
        except C2CError as exc:
            log.warning("cannot read the state of %s: %s", self._address.name, exc)
            return None
        return record.heard_at if record is not None else None

    def _events_dropped(self) -> None:
        # Events were lost for want of room while the store was down: look at every call again.
        self._reconcile_due = True

    def _connected(self) -> None:
        # Events that fired while we were not subscribed are lost: look at every call again.
        self._reconcile_due = True
        self._gap_began = self._heard_at
        self._heard_at = self._clock()
        self._report_due = True

    def _on_event(self, lanes: EventLanes, event: Event) -> None:
        now = self._clock()
        self._heard_at = now  # any event is a sign of life, and of every call still up
        if event.name not in SWITCH_EVENTS:
            lanes.put(event)
            return
        if event.name == "HEARTBEAT":
            self.health.note_load(load_from_heartbeat(event), now)
        else:
            log.warning("switch %s is shutting down", self._address.name)
            self.health.note_shutting_down(now)
        self._report_due = True

    def _report(self) -> None:
        """Write what the holder knows to the store: after a heartbeat, a connect or a loss."""
        events = self._events
        if events is None:
            return
        connected = events.state is SwitchState.CONNECTED
        if not self._report_due and connected == self._reported_connected:
            return
        self._report_due = False
        try:
            self._store.switch_states.report(
                self._address.name,
                holder=self._holder,
                connected=connected,
                heard_at=self._heard_at,
                load=self.health.load,
                load_at=self.health.load_at,
            )
            self._reported_connected = connected
        except C2CError as exc:
            self._report_due = True
            log.warning("cannot report the state of %s: %s", self._address.name, exc)

    def _let_go(self) -> None:
        # The lanes stay: events heard but not yet applied (the store is down, which is why the
        # lease is lost) are applied when it is back.
        if self._events is not None:
            self._events.stop()
            self._events = None
        self.listener.stop()

    # -- reconciliation and sweeping -------------------------------------------------------

    def reconcile(self) -> None:
        """Check every call the store believes in flight on this switch.

        Events were missed (we were not listening): a call whose caller channel is no longer on
        the switch, and whose end no event recorded, has a CDR's grace to be explained (by a CDR
        posted or replayed), then settles from what is known (c2c.calls.estimate). A call whose
        channels are there is recorded alive now: what an estimate may bill up to.
        """
        calls = self._store.calls.in_flight(self._address.name)
        log.info("reconciling %d call(s) in flight on %s", len(calls), self._address.name)
        try:
            live = self._channels()
        except SwitchError as exc:
            log.warning("cannot list the channels of %s (%s); reconciling later",
                        self._address.name, exc)
            self._reconcile_due = True
            return
        now = self._clock()
        self._store.calls.mark_alive(
            [c["id"] for c in calls if c["caller_uuid"] in live or c["callee_uuid"] in live], now)
        # A call accepted a moment ago may not have its channel yet.
        settled_in = now - NEW_CALL_SECONDS
        for call in calls:
            if (call["caller_gone_at"] is None and call["caller_uuid"] not in live
                    and call["created_at"] < settled_in):
                self._no_trace(call)
            else:
                self._examine(call, ask_switch=True)

    def _channels(self) -> set[str]:
        """The UUIDs of every channel on the switch, in one round trip."""
        reply = self._commands().api("show channels as json")
        try:
            rows = json.loads(reply).get("rows") or []
        except (ValueError, AttributeError) as exc:
            raise SwitchError(f"unreadable channel list: {exc}") from exc
        return {str(row["uuid"]) for row in rows if isinstance(row, dict) and row.get("uuid")}

    def _no_trace(self, call: Mapping[str, Any]) -> None:
        """The caller's channel is not on the switch and no event said it ended: its originate
        never ran, or it ended while nobody listened. Give a CDR the grace to explain it, then
        the deadline path settles it from what is known (c2c.calls.estimate). A bridged call
        was still up when the gap began (its hangup would have been heard before): that is the
        last time it is known alive."""
        deadline = min(call["deadline_at"], self._clock() + self._config.settle_grace)
        fields: dict[str, Any] = {"deadline_at": deadline, "recheck_at": None}
        gap = self._gap_began
        if gap is not None and bridged(call) and (call["alive_at"] is None
                                                  or call["alive_at"] < gap):
            fields["alive_at"] = gap
        self._store.calls.set_fields(call["id"], fields)
        log.warning("call %s: caller channel not on %s and no end recorded; settling by %s",
                    call["id"], self._address.name, time.strftime("%H:%M:%S", time.gmtime(deadline)))

    def sweep(self) -> None:
        silent_since = self._silent_since(self._clock())
        if silent_since is not None:
            self._settle_unreachable(silent_since)
        looks: dict[str, float] = {}
        now = self._clock()
        for call in self._store.calls.needing_attention(
                self._address.name, now, hangups_before=now - hangup.LOOK_AGAIN_SECONDS):
            if hangup.requested(call) and self._hangup_look_due(call["id"], looks):
                self._look_at_hangup(call)
            else:
                self._examine(call, ask_switch=False)
        self._hangup_looks = looks

    # -- a call the customer asked to end (c2c.calls.hangup) ---------------------------------

    def _end_legs(self, call: Mapping[str, Any]) -> None:
        """End the call's legs here: one of its legs appeared after its hangup was requested."""
        try:
            hangup.end_legs(self._commands(), call)
        except SwitchError as exc:  # looked at again by the sweep
            log.warning("call %s: hangup requested, its leg not ended: %s", call["id"], exc)

    def _hangup_look_due(self, call_id: str, looks: dict[str, float]) -> bool:
        """Whether to look at this call now, every LOOK_AGAIN_SECONDS at most (no kill storm)."""
        now = self._clock()
        due_at = self._hangup_looks.get(call_id, now)
        looks[call_id] = due_at if now < due_at else now + hangup.LOOK_AGAIN_SECONDS
        return now >= due_at

    def _look_at_hangup(self, call: Mapping[str, Any]) -> None:
        """The call is still not ended a while after its hangup was requested: end its legs
        again, or settle it now when none is on the switch and nothing of it was ever seen."""
        if readiness(call, self._clock()) is Readiness.SETTLE or not self._switch_reachable():
            self._examine(call, ask_switch=False)
            return
        try:
            found = hangup.end_legs(self._commands(), call)
        except SwitchError as exc:
            log.warning("call %s: hangup requested, its legs not ended: %s", call["id"], exc)
            return
        if found:
            log.warning("call %s: hangup requested a while ago, a leg was still up: ended",
                        call["id"])
        elif hangup.untraced(call):
            # Its originate never reached the switch (or is lost): nothing was dialed. Should a
            # leg of it still appear, the listener ends it on sight.
            self.listener.settle_decided([call["id"]], self._cancelled)
        elif call["caller_gone_at"] is None:
            if call["deadline_at"] > self._clock() + self._config.settle_grace:
                self._no_trace(call)
        else:
            self._examine(call, ask_switch=True)

    def _cancelled(self, call: Mapping[str, Any]) -> tuple[CallOutcome, float] | None:
        """Decided on the row as locked: a trace recorded meanwhile is not overlooked."""
        if not hangup.untraced(call):
            return None
        return hangup.cancelled_outcome(call), self._clock()

    # -- a switch out of reach ---------------------------------------------------------------

    def unreachable_bound(self) -> float:
        """Seconds a switch out of reach may go unheard before its calls settle from what is
        known. A frozen switch is out of reach only once the liveness window has passed, so its
        calls settle after the longer of the two."""
        return float(self._config.settle_grace)

    def _switch_reachable(self) -> bool:
        """Whether the switch answers now: the event connection or the command one is live."""
        events = self._events
        if events is not None and events.live:
            return True
        return bool(self._commands().live)

    def _silent_since(self, now: float) -> float | None:
        """When the switch was last heard from, if that is longer ago than the bound and it is
        out of reach now; None otherwise, and while this worker does not hold its events."""
        if self._events is None:
            return None
        heard = [t for t in (self._heard_at, self._listening_since) if t is not None]
        last = max(heard) if heard else now
        if now - last <= self.unreachable_bound() or self._switch_reachable():
            return None
        return last

    def _settle_unreachable(self, silent_since: float) -> None:
        """Settle, from what is known, every call on the switch not heard of for the bound
        (the switch's silence, the call's own age and alive_at all count), each decided on its
        row as it is when locked."""
        now, bound, heard = self._clock(), self.unreachable_bound(), self._heard_at

        def quiet(call: Mapping[str, Any]) -> bool:
            latest = max(silent_since, call["created_at"], call["alive_at"] or 0.0)
            return now - latest > bound

        def decide(call: Mapping[str, Any]) -> tuple[CallOutcome, float] | None:
            if not quiet(call):
                return None
            outcome, ended_at = settle_unseen(call, heard)
            return hangup.as_requested(call, outcome), now if ended_at is None else ended_at

        ids = [call["id"] for call in self._store.calls.in_flight(self._address.name)
               if quiet(call)]
        if not ids:
            return
        log.warning("switch %s: out of reach, not heard from for %.0f s: settling %d call(s) "
                    "from what is known", self._address.name, now - silent_since, len(ids))
        for start in range(0, len(ids), UNREACHABLE_GROUP):
            self.listener.settle_decided(ids[start : start + UNREACHABLE_GROUP], decide)

    # -- one call ----------------------------------------------------------------------------

    def _examine(self, call: Mapping[str, Any], ask_switch: bool) -> None:
        state = readiness(call, self._clock())
        if state is Readiness.SETTLE:
            self.listener.settle(call["id"], outcome_of(call), call)
            return
        if state is Readiness.WAIT and not (ask_switch and call["caller_gone_at"] is not None):
            return
        if not self._switch_reachable():
            return  # nothing to ask it: its calls settle once it has been silent for the bound
        if state is Readiness.ASK_SWITCH:
            self._settle_if_callee_gone(call)
        elif state is Readiness.OVERDUE:
            self._settle_overdue(call)
        elif state is Readiness.FIND_CALLER:
            self._find_caller(call)
        elif ask_switch and call["caller_gone_at"] is not None:
            self._settle_if_callee_gone(call)

    def _exists(self, channel_uuid: str) -> bool:
        reply = self._commands().api(f"uuid_exists {channel_uuid}")
        return reply.strip() == "true"

    def _settle_if_callee_gone(self, call: Mapping[str, Any]) -> None:
        try:
            alive = self._exists(call["callee_uuid"])
        except SwitchError as exc:
            log.warning("call %s: cannot ask the switch about the callee: %s", call["id"], exc)
            return
        if alive:
            now = self._clock()
            self._store.calls.set_fields(call["id"], {"recheck_at": now + 5, "alive_at": now})
            return
        # The callee's end may have been recorded while we asked (its HANGUP_COMPLETE comes as
        # its channel goes): decide on the row as it is now, not as it was read before.
        fresh = self._store.calls.get(call["id"]) or call
        self.listener.settle(call["id"], outcome_of(fresh), fresh)

    def _natural_deadline(self, call: Mapping[str, Any]) -> float:
        """Ring both legs, press 1 if asked, talk the whole limit, plus the grace: no live call
        outlasts it (the accept's deadline, c2c.store.accept)."""
        config = self._config
        setup = confirm_setup_seconds(config.confirm_timeout) if call.get("confirm") else 0
        return float(call["created_at"] + 2 * config.ring_timeout + setup
                     + call["max_minutes"] * 60 + config.settle_grace)

    def _find_caller(self, call: Mapping[str, Any]) -> None:
        try:
            alive = self._exists(call["caller_uuid"])
        except SwitchError as exc:
            log.warning("call %s: cannot ask the switch about the caller: %s", call["id"], exc)
            return
        if alive:  # events will come
            self._store.calls.set_fields(call["id"], {"recheck_at": None,
                                                      "alive_at": self._clock()})
        else:
            fresh = self._store.calls.get(call["id"]) or call
            if fresh["state"] == "queued" and fresh["caller_gone_at"] is None:
                self._no_trace(fresh)

    def _settle_overdue(self, call: Mapping[str, Any]) -> None:
        try:
            alive = [u for u in (call["caller_uuid"], call["callee_uuid"]) if self._exists(u)]
        except SwitchError as exc:
            log.warning("call %s: overdue, switch unreachable (%s); will retry", call["id"], exc)
            return
        natural = self._natural_deadline(call)
        now = self._clock()
        if alive:
            self._store.calls.mark_alive([call["id"]], now)
        if alive and now < natural:
            # The deadline was brought forward when the caller was not found, yet its channel is
            # there now: it is a live call, not one to end.
            self._store.calls.set_fields(call["id"], {"deadline_at": natural})
            return
        if alive:
            # Past its hard limit: the switch should have ended it. End it now; its hangup events
            # settle it.
            for channel in alive:
                log.warning("call %s: overdue, killing channel %s", call["id"], channel)
                try:
                    self._commands().api(f"uuid_kill {channel} ALLOTTED_TIMEOUT")
                except SwitchError as exc:
                    log.warning("call %s: uuid_kill failed: %s", call["id"], exc)
            self._store.calls.set_fields(call["id"], {"deadline_at": self._clock() + 30})
            return
        # Decided on the row as it is when locked: an end recorded meanwhile is not overlooked.
        # The caller's end is enough to decide, as when the callee's channel is found gone;
        # without it, from what the store saw (the switch answers, so its heartbeats say
        # nothing of this call: only the call's own alive_at counts).
        def decide(row: Mapping[str, Any]) -> tuple[CallOutcome, float]:
            outcome, ended_at = settle_unseen(row)
            outcome = hangup.as_requested(row, outcome)
            return outcome, self._ended_at(row) if ended_at is None else ended_at

        log.warning("call %s: legs gone without a full trace; settling from what is known",
                    call["id"])
        self.listener.settle_decided([call["id"]], decide)

    def _ended_at(self, call: Mapping[str, Any]) -> float:
        gone = [t for t in (call["caller_gone_at"], call["callee_gone_at"]) if t is not None]
        return max(gone) if gone else self._clock()

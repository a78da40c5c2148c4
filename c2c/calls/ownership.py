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

from c2c.calls.lanes import EventLanes
from c2c.calls.listener import EVENT_FILTERS, SUBSCRIBED_EVENTS, CallEventListener
from c2c.calls.outcome import CallOutcome
from c2c.calls.settlement import Readiness, failed_outcome, outcome_of, readiness
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
                 health: SwitchHealth | None = None) -> None:
        """``health``: this worker's knowledge of the switch (Switches.health), which the
        heartbeats feed while this worker holds the events."""
        self._config = config
        self._address = address
        self._store = store
        self._commands = command_connection
        self._holder = holder
        self._clock = clock
        self._lease_name = lease_name(address.name)
        self.health = health or SwitchHealth(address.name, clock=clock)
        self.listener = CallEventListener(store, on_settled=on_settled, clock=clock,
                                          group_settles=True)
        self._events: EslConnection | None = None
        self._lanes: EventLanes | None = None
        self._loop: gevent.Greenlet | None = None
        self._lease_loop: gevent.Greenlet | None = None
        self._reconcile_due = False
        self._heard_at: float | None = None  # the last connect or HEARTBEAT
        self._report_due = False
        self._reported_connected: bool | None = None

    @property
    def name(self) -> str:
        return self._address.name

    @property
    def holding(self) -> bool:
        return self._events is not None

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
                    if self._reconcile_due:
                        self.reconcile()
                        self._reconcile_due = False
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
        lanes = self._lanes = EventLanes(self.listener.handle)
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

    def _connected(self) -> None:
        # Events that fired while we were not subscribed are lost: look at every call again.
        self._reconcile_due = True
        self._heard_at = self._clock()
        self._report_due = True

    def _on_event(self, lanes: EventLanes, event: Event) -> None:
        if event.name not in SWITCH_EVENTS:
            lanes.put(event)
            return
        now = self._clock()
        if event.name == "HEARTBEAT":
            self._heard_at = now
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
        if self._events is not None:
            self._events.stop()
            self._events = None
        if self._lanes is not None:
            self._lanes.stop()
            self._lanes = None
        self.listener.stop()

    # -- reconciliation and sweeping -------------------------------------------------------

    def reconcile(self) -> None:
        """Check every call the store believes in flight on this switch.

        Events were missed (we were not listening): a call whose caller channel is no longer on
        the switch, and whose end no event recorded, has a CDR's grace to be explained (by a CDR
        posted or replayed), then settles from what is known, or as failed.
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
        # A call accepted a moment ago may not have its channel yet.
        settled_in = self._clock() - NEW_CALL_SECONDS
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
        the deadline path settles it from what is known (failed, if nothing is)."""
        deadline = min(call["deadline_at"], self._clock() + self._config.settle_grace)
        self._store.calls.set_fields(call["id"], {"deadline_at": deadline, "recheck_at": None})
        log.warning("call %s: caller channel not on %s and no end recorded; settling by %s",
                    call["id"], self._address.name, time.strftime("%H:%M:%S", time.gmtime(deadline)))

    def sweep(self) -> None:
        for call in self._store.calls.needing_attention(self._address.name, self._clock()):
            self._examine(call, ask_switch=False)

    def _examine(self, call: Mapping[str, Any], ask_switch: bool) -> None:
        state = readiness(call, self._clock())
        if state is Readiness.SETTLE:
            self.listener.settle(call["id"], outcome_of(call), call)
        elif state is Readiness.ASK_SWITCH:
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
            self._store.calls.set_fields(call["id"], {"recheck_at": self._clock() + 5})
            return
        # The callee's end may have been recorded while we asked (its HANGUP_COMPLETE comes as
        # its channel goes): decide on the row as it is now, not as it was read before.
        fresh = self._store.calls.get(call["id"]) or call
        self.listener.settle(call["id"], outcome_of(fresh), fresh)

    def _natural_deadline(self, call: Mapping[str, Any]) -> float:
        """Ring both legs, talk the whole limit, plus the grace: no live call outlasts it."""
        config = self._config
        return float(call["created_at"] + 2 * config.ring_timeout + call["max_minutes"] * 60
                     + config.settle_grace)

    def _find_caller(self, call: Mapping[str, Any]) -> None:
        try:
            alive = self._exists(call["caller_uuid"])
        except SwitchError as exc:
            log.warning("call %s: cannot ask the switch about the caller: %s", call["id"], exc)
            return
        if alive:
            self._store.calls.set_fields(call["id"], {"recheck_at": None})  # events will come
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
        if alive and self._clock() < natural:
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
        call = self._store.calls.get(call["id"]) or call  # as it is now (see above)
        # The caller's end is enough to decide, as when the callee's channel is found gone.
        known = call["caller_gone_at"] is not None
        outcome = outcome_of(call) if known else failed_outcome()
        log.warning("call %s: legs gone without a full trace; settling as %s", call["id"],
                    "recorded" if known else "failed")
        self.listener.settle(call["id"], outcome, call)

"""The composition root: builds the store, the switch connections, the call placer, the event
owners and the callback dispatcher from a Config. Building opens nothing; start() (run in each
gunicorn worker after the fork, or by `c2c demo`) connects and spawns the background greenlets.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

import gevent

from c2c.api.metrics import OTHER_SWITCH, Metrics
from c2c.callbacks.dispatcher import CallbackDispatcher
from c2c.calls.idempotent import KEY_TTL_SECONDS
from c2c.calls.listener import CallEventListener
from c2c.calls.outcome import CallFacts, CallOutcome
from c2c.calls.ownership import SwitchOwner, new_holder_id
from c2c.calls.placement import CallPlacer
from c2c.calls.routes import DEFAULT_ROUTE, RouteTable
from c2c.config import Config
from c2c.errors import C2CError
from c2c.esl.switches import Switches
from c2c.store import Store

log = logging.getLogger(__name__)

GAUGE_REFRESH_SECONDS = 2.0
HOUSEKEEPING_SECONDS = 60.0


class Runtime:
    def __init__(self, config: Config, store: Store, switches: Switches,
                 on_settled: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.switches = switches
        # Every worker re-reads the drain flags and the event holders' reports (off requests).
        switches.follow(store.switch_states.all)
        self.metrics = Metrics()
        self.routes = RouteTable.build(config.routes, config.dial_string)
        self._switch_names = frozenset(address.name for address in config.switches)
        self.placer = CallPlacer(config, store, switches, on_retry=self.metrics.originate_retry)
        self.dispatcher = CallbackDispatcher(store, config,
                                             on_attempt=self.metrics.callback_attempt,
                                             on_progress_attempt=self.metrics.progress_attempt)
        self._on_settled_hook = on_settled
        # For the CDR endpoint (any worker): the same idempotent path as the events.
        self.listener = CallEventListener(store, on_settled=self.on_settled)
        holder = new_holder_id()
        self.owners = [
            SwitchOwner(config, address, store,
                        command_connection=functools.partial(switches.__getitem__, address.name),
                        holder=holder, on_settled=self.on_settled,
                        health=switches.health(address.name), callbacks=self.dispatcher)
            for address in config.switches
        ]
        self._started = False
        self._background = True
        self._gauges: gevent.Greenlet | None = None
        self._housekeeping: gevent.Greenlet | None = None

    @classmethod
    def build(cls, config: Config, on_settled: Callable[[str], None] | None = None) -> Runtime:
        return cls(config, Store.from_url(config.database_url), Switches(config), on_settled)

    def on_settled(self, call_id: str, outcome: CallOutcome) -> None:
        reason = None if outcome.reason is None else int(outcome.reason)
        self.metrics.call_settled(outcome.answered, reason)
        self._count_facts(call_id, outcome, reason)
        self.dispatcher.wake(call_id)
        if self._on_settled_hook is not None:
            self._on_settled_hook(call_id)

    def _count_facts(self, call_id: str, outcome: CallOutcome, reason: int | None) -> None:
        """The settled call by switch, by each leg's route, hangup cause and SIP status. The
        facts come with the outcome (decided from the row); only an outcome decided without the
        row costs a read by primary key."""
        facts = outcome.facts
        if facts is None:
            try:
                call = self.store.calls.get(call_id)
            except C2CError as exc:  # the call is settled; only these counts are lost
                log.warning("call %s: not counted by switch and route: %s", call_id, exc)
                return
            if call is None:
                return
            facts = CallFacts.of(call)
        # Bounded by the configuration: a row may name a switch no longer configured.
        switch = facts.switch if facts.switch in self._switch_names else OTHER_SWITCH
        self.metrics.call_settled_on_switch(switch, outcome.answered, reason, outcome.estimated)
        if facts.caller_cause:
            self.metrics.leg_ended(switch, "caller", facts.caller_cause, facts.caller_sip_status)
        if facts.callee_cause:
            self.metrics.leg_ended(switch, "callee", facts.callee_cause, facts.callee_sip_status)
        caller = callee = DEFAULT_ROUTE
        if len(self.routes):
            caller = self.routes.choose_digits(facts.caller_digits).name
            callee = self.routes.choose_digits(facts.callee_digits).name
        self.metrics.call_settled_on_routes(caller, callee, outcome.answered, reason)

    def start(self, background: bool = True) -> None:
        """Connect to the switches; with ``background`` (C2C_BACKGROUND=workers, and in `c2c
        worker`) also compete for their events and deliver callbacks. Without it, this process
        only places calls and answers requests: a `c2c worker` does the rest."""
        if self._started:
            return
        self._started = True
        self.switches.start()
        if background:
            for owner in self.owners:
                owner.start()
            self.dispatcher.start()
            self._housekeeping = gevent.spawn(self._keep_house)
        self._background = background
        self._gauges = gevent.spawn(self._refresh_gauges)
        log.info("c2c started: %d switch(es)%s", len(self.owners),
                 "" if background else "; events and callbacks left to `c2c worker`")

    def _refresh_gauges(self) -> None:
        # Multiprocess gauges are per worker: each keeps its own up to date.
        while True:
            self.metrics.set_switch_views(self.switches.views())
            for owner in self.owners if self._background else ():
                self.metrics.set_listener(owner.name, owner.holding, owner.events_waiting,
                                          owner.listener.settles_waiting)
            gevent.sleep(GAUGE_REFRESH_SECONDS)

    def _keep_house(self) -> None:
        # Flood stamps older than the window decide nothing any more; without pruning the table
        # grows by two rows per call. Every worker may do it: the DELETE is idempotent.
        while True:
            gevent.sleep(HOUSEKEEPING_SECONDS)
            try:
                self.store.prune_flood(time.time() - self.config.flood_seconds)
            except C2CError as exc:
                log.warning("pruning flood stamps failed: %s", exc)
            # Idempotency keys count for 24 hours (older rows are never matched); then they go.
            try:
                self.store.idempotency.prune(time.time() - KEY_TTL_SECONDS)
            except C2CError as exc:
                log.warning("pruning idempotency keys failed: %s", exc)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for greenlet in (self._gauges, self._housekeeping):
            if greenlet is not None:
                greenlet.kill(block=False)
        self._gauges = self._housekeeping = None
        if self._background:
            self.dispatcher.stop()
            for owner in self.owners:
                owner.stop()
        self.switches.stop()

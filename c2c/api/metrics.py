"""c2c's Prometheus instruments, correct across gunicorn workers.

Under gunicorn, gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the
workers fork, so prometheus_client keeps every worker's values in files there and any worker can
render the sum (multiprocess mode). Without it (tests, `c2c demo`) each Metrics keeps a plain
registry of its own. The API is the same either way; `render()` yields the right view.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from c2c.domain.hangup_causes import HANGUP_CAUSES
from c2c.domain.states import Reason
from c2c.esl.choice import SwitchView, refusal

log = logging.getLogger(__name__)

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
RESPONSE_CODES = range(12)  # DESIGN.md section 1: 0..11
SETTLED_OUTCOMES = ("answered", *(reason.name.lower() for reason in Reason))
CALLBACK_RESULTS = ("delivered", "retry", "failed")
# c2c.calls.sending: moved to another switch; no other switch could take it (11); refused there
# too (11); the row could not be moved (the refusal recorded first, or the store slow): failed.
RETRY_RESULTS = ("moved", "no_other_switch", "refused_again", "not_moved")
OTHER_CAUSE = "OTHER"
OTHER_SWITCH = "other"
# clicktocall answers in milliseconds unless the store or a switch is slow; 1 s is already bad.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def multiprocess_enabled() -> bool:
    """Whether prometheus_client is writing values to PROMETHEUS_MULTIPROC_DIR in this process.

    prometheus_client picks its value class once, at import: the variable must be set before
    anything imports it (gunicorn.conf.py imports it only lazily, for that reason).
    """
    in_files = values.ValueClass is not values.MutexValue
    if os.environ.get(MULTIPROC_DIR_ENV) and not in_files:
        log.warning(
            "%s is set but prometheus_client was imported before it was: "
            "metrics are this process's only",
            MULTIPROC_DIR_ENV,
        )
    return in_files


@dataclass(frozen=True)
class _Instruments:
    requests: Counter
    request_duration: Histogram
    calls_settled: Counter
    calls_settled_by_route: Counter
    calls_settled_by_switch: Counter
    leg_ends: Counter
    calls_estimated: Counter
    originate_retries: Counter
    callback_attempts: Counter
    callbacks_failed: Counter
    progress_attempts: Counter
    widget_requests: Counter
    switch_connected: Gauge
    switch_live: Gauge
    switch_usable: Gauge
    switch_draining: Gauge
    switch_sessions: Gauge
    switch_max_sessions: Gauge
    switch_listener: Gauge
    listener_backlog: Gauge


def _build(registry: CollectorRegistry | None) -> _Instruments:
    instruments = _Instruments(
        requests=Counter(
            "c2c_requests_total",
            "clicktocall answers, by response code",
            ["code"],
            registry=registry,
        ),
        request_duration=Histogram(
            "c2c_request_duration_seconds",
            "Time to answer a clicktocall request",
            buckets=DURATION_BUCKETS,
            registry=registry,
        ),
        calls_settled=Counter(
            "c2c_calls_settled_total",
            "Calls settled, by outcome: answered or the callback's reason",
            ["outcome"],
            registry=registry,
        ),
        # Each call counts once per leg, under that leg's route (C2C_ROUTES_FILE's prefixes and
        # "default": a bounded set). No zero series up front: a routes file may list hundreds.
        calls_settled_by_switch=Counter(
            "c2c_calls_settled_by_switch_total",
            "Calls settled, by the switch they ran on and outcome",
            ["switch", "outcome"],
            registry=registry,
        ),
        # One per leg that ended with a cause, at settlement. Both labels are bounded: the cause by
        # FreeSWITCH's list (anything else "OTHER"), the SIP status by 100-699 ("none" else).
        leg_ends=Counter(
            "c2c_leg_ends_total",
            "Legs of settled calls, by switch, leg, hangup cause and final SIP status",
            ["switch", "leg", "cause", "sip_status"],
            registry=registry,
        ),
        calls_estimated=Counter(
            "c2c_calls_estimated_total",
            "Calls settled from what the store saw, their end never seen (by switch)",
            ["switch"],
            registry=registry,
        ),
        originate_retries=Counter(
            "c2c_originate_retries_total",
            "Originates refused before any leg existed, by what became of the call",
            ["result"],
            registry=registry,
        ),
        calls_settled_by_route=Counter(
            "c2c_calls_settled_by_route_total",
            "Calls settled, once per leg under that leg's route, by outcome",
            ["leg", "route", "outcome"],
            registry=registry,
        ),
        callback_attempts=Counter(
            "c2c_callback_attempts_total",
            "Callback delivery attempts, by result (delivered, retry, failed)",
            ["result"],
            registry=registry,
        ),
        callbacks_failed=Counter(
            "c2c_callbacks_failed_total",
            "Callbacks given up on after the retry horizon",
            registry=registry,
        ),
        progress_attempts=Counter(
            "c2c_progress_webhook_attempts_total",
            "Progress webhook delivery attempts, by result (delivered, retry, failed)",
            ["result"],
            registry=registry,
        ),
        widget_requests=Counter(
            "c2c_widget_requests_total",
            "Calls asked for through widgets, by result (placed, or the refusal's error)",
            ["result"],
            registry=registry,
        ),
        # livemax: 1 when ANY live worker is connected; a dead worker's 1 is dropped by
        # mark_process_dead (plain 'max' would keep it forever).
        switch_connected=Gauge(
            "c2c_switch_connected",
            "1 when a worker has its command connection to the switch up",
            ["switch"],
            multiprocess_mode="livemax",
            registry=registry,
        ),
        switch_live=Gauge(
            "c2c_switch_live",
            "1 when a worker's connection to the switch answered within the liveness window",
            ["switch"],
            multiprocess_mode="livemax",
            registry=registry,
        ),
        switch_usable=Gauge(
            "c2c_switch_usable",
            "1 when a worker would place a call there (live, not paused, draining or full)",
            ["switch"],
            multiprocess_mode="livemax",
            registry=registry,
        ),
        switch_draining=Gauge(
            "c2c_switch_draining",
            "1 while an operator has drained the switch (`c2c switches drain`)",
            ["switch"],
            multiprocess_mode="livemax",
            registry=registry,
        ),
        # Every worker reads the same figures (status probes, the holder's heartbeats).
        switch_sessions=Gauge(
            "c2c_switch_sessions",
            "Sessions up on the switch (two per call), as it last said",
            ["switch"],
            multiprocess_mode="livemostrecent",
            registry=registry,
        ),
        switch_max_sessions=Gauge(
            "c2c_switch_max_sessions",
            "The switch's max-sessions, as it last said",
            ["switch"],
            multiprocess_mode="livemostrecent",
            registry=registry,
        ),
        # livesum: normally 1; 2 or more would mean two workers think they hold the lease.
        switch_listener=Gauge(
            "c2c_switch_listener",
            "Workers holding the switch's event lease (this host)",
            ["switch"],
            multiprocess_mode="livesum",
            registry=registry,
        ),
        listener_backlog=Gauge(
            "c2c_listener_backlog",
            "What a switch's event holder has not yet written: events heard and not applied "
            "(queue=events, in its lanes, the store's refusals included) and calls ended and "
            "not yet settled (queue=settle); a growing one is callbacks about to lag",
            ["switch", "queue"],
            multiprocess_mode="livesum",
            registry=registry,
        ),
    )
    # Zero series from the start, so rate() and alerts see every label before its first event.
    for code in RESPONSE_CODES:
        instruments.requests.labels(code=str(code))
    for outcome in SETTLED_OUTCOMES:
        instruments.calls_settled.labels(outcome=outcome)
    for result in CALLBACK_RESULTS:
        instruments.callback_attempts.labels(result=result)
        instruments.progress_attempts.labels(result=result)
    for result in RETRY_RESULTS:
        instruments.originate_retries.labels(result=result)
    return instruments


@cache
def _shared_instruments() -> _Instruments:
    # In multiprocess mode values live in per-process files keyed by metric name: two sets of
    # instruments in one process would overwrite each other's totals, so there is one per process.
    return _build(None)


class _Chain:
    """A collector that yields from several (generate_latest takes any object with collect())."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self._collectors = tuple(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = multiprocess_enabled()
        self._registry: CollectorRegistry | None = None
        if self.multiprocess:
            self._instruments = _shared_instruments()
        else:
            self._registry = CollectorRegistry()
            self._instruments = _build(self._registry)

    def request_code(self, code: int) -> None:
        self._instruments.requests.labels(code=str(code)).inc()

    def observe_request(self, seconds: float) -> None:
        self._instruments.request_duration.observe(seconds)

    def call_settled(self, answered: bool, reason: int | None) -> None:
        self._instruments.calls_settled.labels(outcome=settled_outcome(answered, reason)).inc()

    def call_settled_on_switch(self, switch: str, answered: bool, reason: int | None,
                               estimated: bool) -> None:
        """``switch``: a configured switch's name or OTHER_SWITCH (the caller bounds it)."""
        outcome = settled_outcome(answered, reason)
        self._instruments.calls_settled_by_switch.labels(switch=switch, outcome=outcome).inc()
        if estimated:
            self._instruments.calls_estimated.labels(switch=switch).inc()

    def leg_ended(self, switch: str, leg: str, cause: str | None, sip_status: str | None) -> None:
        self._instruments.leg_ends.labels(
            switch=switch, leg=leg, cause=cause_label(cause), sip_status=sip_label(sip_status)
        ).inc()

    def originate_retry(self, result: str) -> None:
        self._instruments.originate_retries.labels(result=result).inc()

    def call_settled_on_routes(self, caller_route: str, callee_route: str, answered: bool,
                               reason: int | None) -> None:
        """A settled call under each leg's route name (c2c.calls.routes: a prefix of the routes
        file or "default", so the label set is bounded by the file)."""
        outcome = settled_outcome(answered, reason)
        counter = self._instruments.calls_settled_by_route
        counter.labels(leg="caller", route=caller_route, outcome=outcome).inc()
        counter.labels(leg="callee", route=callee_route, outcome=outcome).inc()

    def callback_attempt(self, result: str) -> None:
        if not _known_result(result, "callback"):
            return
        self._instruments.callback_attempts.labels(result=result).inc()
        if result == "failed":
            self._instruments.callbacks_failed.inc()

    def progress_attempt(self, result: str) -> None:
        """One try of a progress webhook (the dispatcher's on_progress_attempt hook)."""
        if _known_result(result, "progress webhook"):
            self._instruments.progress_attempts.labels(result=result).inc()

    def widget_request(self, result: str) -> None:
        """A visitor's call request through a widget: 'placed' or the error it got."""
        if result in WIDGET_RESULTS:
            self._instruments.widget_requests.labels(result=result).inc()

    def switch_state_changed(self, name: str, connected: bool) -> None:
        """This worker's view of one switch (each worker has its own command connection)."""
        self._instruments.switch_connected.labels(switch=name).set(1 if connected else 0)

    def set_switch_views(self, views: Iterable[SwitchView]) -> None:
        """This worker's view of every switch, from Switches.views(); names come from the config,
        so the label set is bounded."""
        instruments = self._instruments
        for view in views:
            name = view.name
            instruments.switch_connected.labels(switch=name).set(1 if view.connected else 0)
            instruments.switch_live.labels(switch=name).set(1 if view.live else 0)
            instruments.switch_usable.labels(switch=name).set(0 if refusal(view) else 1)
            instruments.switch_draining.labels(switch=name).set(1 if view.draining else 0)
            load = view.load
            if load is not None and load.sessions is not None:
                instruments.switch_sessions.labels(switch=name).set(load.sessions)
            if load is not None and load.max_sessions is not None:
                instruments.switch_max_sessions.labels(switch=name).set(load.max_sessions)

    def set_listener(self, name: str, holding: bool, events: int = 0, settles: int = 0) -> None:
        """Whether this worker holds the switch's events, and its backlog of them."""
        self._instruments.switch_listener.labels(switch=name).set(1 if holding else 0)
        self._instruments.listener_backlog.labels(switch=name, queue="events").set(events)
        self._instruments.listener_backlog.labels(switch=name, queue="settle").set(settles)

    def render(self, *extra: Collector) -> bytes:
        """Text format 0.0.4: every worker's sums (or this process's), then ``extra``."""
        own: Collector
        if self.multiprocess:
            # Read at every scrape, as prometheus_client documents: other workers write meanwhile.
            own = MultiProcessCollector(None)
        else:
            assert self._registry is not None
            own = self._registry
        return generate_latest(_Chain((own, *extra)))


WIDGET_RESULTS = frozenset({
    "placed", "invalid_number", "challenge_failed", "origin_not_allowed", "unknown_widget",
    "not_supported", "try_later", "unavailable",
})


def _known_result(result: str, what: str) -> bool:
    if result in CALLBACK_RESULTS:
        return True
    # A metric must never break a delivery; an unknown label would grow the series set.
    log.warning("unknown %s result %r not counted", what, result)
    return False


def settled_outcome(answered: bool, reason: int | None) -> str:
    """The outcome label: "answered", or the reason's name (failed, hung_up, ring_timeout, ...)."""
    if answered:
        return "answered"
    try:
        return Reason(0 if reason is None else reason).name.lower()
    except ValueError:
        log.warning("unknown reason %r counted as failed", reason)
        return Reason.FAILED.name.lower()


def cause_label(cause: str | None) -> str:
    """A hangup cause as a label: one of FreeSWITCH's names, else OTHER (a bounded set)."""
    name = (cause or "NONE").strip().upper()
    return name if name in HANGUP_CAUSES else OTHER_CAUSE


def sip_label(status: str | None) -> str:
    """A final SIP status as a label: '100'..'699', else 'none' (a bounded set)."""
    text = (status or "").strip()
    return text if len(text) == 3 and text.isdigit() and 100 <= int(text) <= 699 else "none"

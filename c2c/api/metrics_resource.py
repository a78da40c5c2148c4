"""`GET /metrics`: Prometheus text format 0.0.4, summed over every gunicorn worker.

Values kept by the workers come from Metrics; what the store knows (calls in flight per switch,
the outboxes' backlog and delivery lag) is read once per scrape, so it is the same whichever
worker answers and never summed over workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import falcon
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from c2c.api.metrics import Metrics
from c2c.errors import StoreError
from c2c.esl.switches import Switches
from c2c.store import Store
from c2c.store.backlog import LAG_WINDOW_SECONDS, Backlog, BacklogSnapshot

log = logging.getLogger(__name__)


class StoreSnapshot:
    """The scrape-time metrics read from the store: c2c_store_up, c2c_calls_in_flight, and the
    outboxes' backlog and lag."""

    def __init__(self, in_flight: dict[str, int] | None, switch_names: list[str],
                 backlog: BacklogSnapshot | None = None) -> None:
        self._in_flight = in_flight  # None: the store could not be read
        self._switch_names = switch_names
        self._backlog = backlog

    @classmethod
    def read(cls, store: Store, switch_names: list[str], backlog: Backlog | None = None,
             now: float | None = None) -> StoreSnapshot:
        try:
            in_flight = store.calls.in_flight_by_switch()
            owed = None if backlog is None else backlog.read(time.time() if now is None else now)
        except StoreError as exc:
            # A scrape must still answer: the store's absence is itself the thing to alert on.
            log.warning("metrics: store unreachable: %s", exc)
            return cls(None, switch_names)
        return cls(in_flight, switch_names, owed)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "c2c_store_up",
            "1 when the store answered this scrape",
            value=0 if self._in_flight is None else 1,
        )
        if self._in_flight is None:
            return
        in_flight = GaugeMetricFamily(
            "c2c_calls_in_flight", "Unsettled calls, by switch", labels=["switch"]
        )
        # Every configured switch (0 when idle), plus any switch the store still has calls on.
        counts = dict.fromkeys(self._switch_names, 0) | self._in_flight
        for name, count in sorted(counts.items()):
            in_flight.add_metric([name], count)
        yield in_flight
        if self._backlog is not None:
            yield from backlog_gauges(self._backlog)


def backlog_gauges(backlog: BacklogSnapshot) -> Iterator[Metric]:
    callbacks, progress = backlog.callbacks, backlog.progress
    yield _gauge("c2c_callbacks_pending",
                 "Final callbacks not yet delivered or given up (due now or retrying later)",
                 callbacks.pending)
    yield _gauge("c2c_callbacks_due",
                 "Final callbacks due now: being sent, or waiting for a free sender",
                 callbacks.due)
    yield _gauge("c2c_callback_oldest_due_seconds",
                 "How long the earliest due final callback has been due (0: none is)",
                 callbacks.oldest_due_seconds)
    yield _gauge("c2c_progress_webhooks_pending",
                 "Progress webhooks next in line for their call, not yet delivered or given up",
                 progress.pending)
    yield _gauge("c2c_progress_webhooks_waiting",
                 "Progress webhooks waiting behind an earlier unfinished one of their call",
                 progress.waiting)
    yield _gauge("c2c_progress_webhooks_due",
                 "Progress webhooks due now: being sent, or waiting for a free sender",
                 progress.due)
    yield _gauge("c2c_progress_webhook_oldest_due_seconds",
                 "How long the earliest due progress webhook has been due (0: none is)",
                 progress.oldest_due_seconds)
    lag = backlog.lag
    window = f"the last {LAG_WINDOW_SECONDS / 60:g} min"
    if lag is None:  # nothing delivered lately: no figure rather than a made-up 0
        return
    yield _gauge("c2c_callback_delivery_lag_median_seconds",
                 f"Hangup to delivered callback, median over those delivered in {window}",
                 lag.median_seconds)
    yield _gauge("c2c_callback_delivery_lag_max_seconds",
                 f"Hangup to delivered callback, longest of those delivered in {window}",
                 lag.max_seconds)
    yield _gauge("c2c_callback_delivery_lag_callbacks",
                 "How many delivered callbacks the delivery lag figures cover",
                 lag.delivered)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class MetricsResource:
    def __init__(self, metrics: Metrics, store: Store, switches: Switches,
                 backlog: Backlog | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``backlog``: the outboxes' scrape-time reader (default: on the store's engine)."""
        self._metrics = metrics
        self._store = store
        self._switches = switches
        self._backlog = Backlog.on(store.engine) if backlog is None else backlog
        self._clock = clock

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        views = self._switches.views()
        # The scraping worker's own view is refreshed now; the others' every couple of seconds.
        self._metrics.set_switch_views(views)
        snapshot = StoreSnapshot.read(self._store, [view.name for view in views],
                                      self._backlog, self._clock())
        resp.content_type = CONTENT_TYPE_PLAIN_0_0_4
        resp.data = self._metrics.render(snapshot)

"""`GET /metrics`: Prometheus text format 0.0.4, summed over every gunicorn worker.

Values kept by the workers come from Metrics; what the store knows (calls in flight per switch) is
read once per scrape, so it is the same whichever worker answers and never summed over workers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import falcon
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from c2c.api.metrics import Metrics
from c2c.errors import StoreError
from c2c.esl.switches import Switches
from c2c.store import Store

log = logging.getLogger(__name__)


class StoreSnapshot:
    """The scrape-time metrics read from the store: c2c_calls_in_flight and c2c_store_up."""

    def __init__(self, in_flight: dict[str, int] | None, switch_names: list[str]) -> None:
        self._in_flight = in_flight  # None: the store could not be read
        self._switch_names = switch_names

    @classmethod
    def read(cls, store: Store, switch_names: list[str]) -> StoreSnapshot:
        try:
            return cls(store.calls.in_flight_by_switch(), switch_names)
        except StoreError as exc:
            # A scrape must still answer: the store's absence is itself the thing to alert on.
            log.warning("metrics: store unreachable: %s", exc)
            return cls(None, switch_names)

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


class MetricsResource:
    def __init__(self, metrics: Metrics, store: Store, switches: Switches) -> None:
        self._metrics = metrics
        self._store = store
        self._switches = switches

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        views = self._switches.views()
        # The scraping worker's own view is refreshed now; the others' every couple of seconds.
        self._metrics.set_switch_views(views)
        snapshot = StoreSnapshot.read(self._store, [view.name for view in views])
        resp.content_type = CONTENT_TYPE_PLAIN_0_0_4
        resp.data = self._metrics.render(snapshot)

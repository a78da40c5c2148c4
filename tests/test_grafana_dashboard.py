"""scripts/grafana/c2c-dashboard.json: every query names series /metrics really exports, and the
JSON has what Grafana needs to import it into any instance (a datasource input, unique panel ids,
grid positions, targets with refIds).

The exported names come from the real endpoint (MetricsResource over a real SQLite store) after
every instrument was exercised once, so labelled series exist; a query's names are matched
against sample names, as Prometheus stores them (c2c_requests_total, ..._bucket), not families.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import pytest
from prometheus_client.parser import text_string_to_metric_families

from c2c.api.metrics import Metrics
from c2c.api.metrics_resource import MetricsResource
from c2c.domain.switch_state import SwitchLoad
from c2c.esl.choice import SwitchView
from c2c.store import SettledOutcome, Store
from tests.conftest import ACCEPT_DEFAULTS, CallFactory

DASHBOARD = Path(__file__).resolve().parent.parent / "scripts" / "grafana" / "c2c-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SWITCH = "fs1:8021"

# -- a query's metric names and label references, the way PromQL reads them --

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_SELECTOR = re.compile(r'([a-zA-Z_:][\w:]*)\s*\{((?:"(?:[^"\\]|\\.)*"|[^}"])*)\}')
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on",
                       "ignoring", "group_left", "group_right", "inf", "nan"})


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers left once strings, label matchers,
    range and subquery brackets, grouping clauses and function calls are taken out."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def matchers(expr: str) -> Iterator[tuple[str, str, str, str]]:
    """(metric, label, operator, value) for every label matcher written after a metric name."""
    for metric, body in _SELECTOR.findall(expr):
        for label, operator, value in _MATCHER.findall(body):
            yield metric, label, operator, value


def grouping_labels(expr: str) -> set[str]:
    """Labels named in by (...), without (...), on (...), ignoring (...) and group_x (...)."""
    text = _STRING.sub('""', expr)
    return {label.strip() for _, labels in _GROUPING.findall(text)
            for label in labels.split(",") if label.strip()}


def test_the_extractor_reads_promql_as_prometheus_does() -> None:
    expr = ('histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{job=~"$job", x="{y}"}'
            '[$__rate_interval])))\n/ on (instance) group_left (code) b_total offset 5m '
            '> bool 1e3 and c:recorded[5m:1m] unless max without (switch) (d)')
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c:recorded", "d"}
    assert grouping_labels(expr) == {"le", "instance", "code", "switch"}
    assert list(matchers(expr)) == [("a_seconds_bucket", "job", "=~", "$job"),
                                    ("a_seconds_bucket", "x", "=", "{y}")]


# -- the dashboard --


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def every_panel(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, with the ones inside rows (a collapsed row keeps its panels in its own)."""
    for panel in panels:
        yield panel
        yield from every_panel(panel.get("panels", []))


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in every_panel(dashboard["panels"]) if panel["type"] != "row"]


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel."""
    return [(panel["title"], target["expr"]) for panel in query_panels(dashboard)
            for target in panel["targets"]]


def variable_metrics(variable: dict[str, Any]) -> set[str]:
    """label_values(selector, label): the selector's metric names, not the label."""
    query = variable["query"]["query"]
    inner = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query, re.S)
    assert inner, f"variable {variable['name']}: not a label_values() query: {query}"
    return metric_names(inner.group(1))


def test_the_walk_reaches_panels_inside_collapsed_rows() -> None:
    nested = [{"id": 1, "type": "row", "panels": [{"id": 2, "type": "stat"}]},
              {"id": 3, "type": "timeseries"}]
    assert [panel["id"] for panel in every_panel(nested)] == [1, 2, 3]


# -- what /metrics exports, rendered for real --


class SwitchesSaying:
    """Switches whose views are given (a connected, live switch with its load)."""

    def __init__(self, *views: SwitchView) -> None:
        self._views = list(views)

    def views(self) -> list[SwitchView]:
        return self._views


def exercise_every_instrument(metrics: Metrics) -> None:
    metrics.request_code(0)
    metrics.observe_request(0.01)
    metrics.call_settled(True, None)
    metrics.call_settled_on_switch(SWITCH, False, 5, estimated=True)
    metrics.call_settled_on_routes("default", "44", True, None)
    metrics.leg_ended(SWITCH, "callee", "USER_BUSY", "486")
    metrics.originate_retry("moved")
    metrics.callback_attempt("failed")
    metrics.progress_attempt("delivered")
    metrics.widget_request("try_later")
    metrics.set_listener(SWITCH, True, 2, 1)


def fill_the_outboxes(store: Store, make_call: CallFactory, now: float) -> None:
    """A delivered callback (for the delivery lag), one still due, and a progress webhook."""
    account = store.accounts.create("acme", credits=100)
    settings = {**ACCEPT_DEFAULTS, "flood_seconds": 0}
    for index in range(2):
        call = dataclasses.replace(
            make_call(account.id, f"1555210442{index}", callback_url="http://example.com/cb"),
            status_callback_url="http://example.com/progress", status_events=("completed",))
        store.accept_call(account.id, call, now=now - 60, **settings)
        assert store.calls.settle(call.id, SettledOutcome(True, 1, None, 30),
                                  ended_at=now - 20, now=now - 20)
    delivered = store.callbacks.claim_due(now - 20, 1, 30)
    assert len(delivered) == 1
    assert store.callbacks.mark_delivered(delivered[0].id, at=now - 18, http_status=200)


Exported = dict[str, list[dict[str, str]]]  # sample name -> the labels of each of its samples


@pytest.fixture
def exported(tmp_path: Path, make_call: CallFactory) -> Exported:
    """Every sample /metrics exports once each instrument and the outboxes have something."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'c2c.sqlite3'}")
    store.upgrade()
    try:
        fill_the_outboxes(store, make_call, time.time())
        metrics = Metrics()
        exercise_every_instrument(metrics)
        switches = SwitchesSaying(SwitchView(
            SWITCH, connected=True, live=True, load=SwitchLoad(sessions=4, max_sessions=100)))
        app = falcon.App()
        app.add_route("/metrics", MetricsResource(metrics, store, switches))
        result = falcon.testing.TestClient(app).simulate_get("/metrics")
    finally:
        store.dispose()
    assert result.status_code == 200
    samples: Exported = {}
    for family in text_string_to_metric_families(result.text):
        assert family.samples, f"{family.name}: exported without a sample"
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample.labels)
    return samples


def label_names(exported: Exported, name: str) -> set[str]:
    return {label for labels in exported.get(name, []) for label in labels}


def test_every_query_names_a_series_the_app_exports(dashboard, exported) -> None:
    named = set()
    for title, expr in queries(dashboard):
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        missing = names - set(exported)
        assert not missing, f"{title}: {sorted(missing)} not exported by /metrics ({expr!r})"
        named |= names
    for variable in dashboard["templating"]["list"]:
        missing = variable_metrics(variable) - set(exported)
        assert not missing, f"variable {variable['name']}: {sorted(missing)} not exported"
    # The panels the operators asked for, each over its metric.
    assert {"c2c_calls_settled_total", "c2c_switch_sessions", "c2c_switch_max_sessions",
            "c2c_switch_usable", "c2c_switch_live", "c2c_switch_draining",
            "c2c_callbacks_pending", "c2c_progress_webhooks_pending",
            "c2c_callback_oldest_due_seconds", "c2c_callback_delivery_lag_median_seconds",
            "c2c_callback_attempts_total", "c2c_request_duration_seconds_bucket",
            "c2c_requests_total"} <= named


def test_every_label_a_query_names_is_on_its_series(dashboard, exported) -> None:
    for title, expr in queries(dashboard):
        on_these = set().union(*(label_names(exported, name) for name in metric_names(expr)))
        unknown = grouping_labels(expr) - on_these
        assert not unknown, f"{title}: grouped by {sorted(unknown)}, not labels of {expr!r}"
        for metric, label, operator, value in matchers(expr):
            if label in ("job", "instance"):  # added by Prometheus at scrape time
                assert value.startswith("$"), f"{title}: {label} fixed to {value!r}"
                continue
            assert label in label_names(exported, metric), f"{title}: {metric} has no {label!r}"
            if operator in ("=", "!=") and "$" not in value:
                seen = {labels.get(label) for labels in exported[metric]}
                assert value in seen, f"{title}: no {metric}{{{label}={value!r}}} series"


def test_the_dashboard_imports_into_any_grafana(dashboard) -> None:
    assert dashboard["title"] and isinstance(dashboard["title"], str)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard.get("id") is None  # an import must not overwrite someone's dashboard id
    (source,) = dashboard["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == (
        "DS_PROMETHEUS", "datasource", "prometheus")
    # Every ${DS_...} reference in the file is declared as an input.
    assert set(re.findall(r"\$\{(DS_\w+)\}", DASHBOARD.read_text())) == {"DS_PROMETHEUS"}

    panels = list(every_panel(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert all(isinstance(panel_id, int) for panel_id in ids)
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    required = {item["id"] for item in dashboard["__requires"] if item["type"] == "panel"}
    for panel in panels:
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("h", "w", "x", "y")), panel["title"]
        assert grid["h"] > 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in required, f"{panel['title']}: {panel['type']} not in __requires"
        assert panel["title"] and panel.get("description"), panel["id"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']}: no unit"
        targets = panel["targets"]
        assert targets, f"{panel['title']}: no query"
        refs = [target["refId"] for target in targets]
        assert all(refs) and len(refs) == len(set(refs)), panel["title"]
        assert all(target["datasource"] == DATASOURCE for target in targets), panel["title"]
        assert all(target["expr"].strip() for target in targets), panel["title"]
    assert_no_overlap(panels)

    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert set(variables) == {"job", "instance"}
    assert all(variable["datasource"] == DATASOURCE for variable in variables.values())
    # Every query is narrowed by both variables.
    for title, expr in queries(dashboard):
        for metric in metric_names(expr):
            selected = {(label, value) for name, label, _, value in matchers(expr)
                        if name == metric}
            assert {("job", "$job"), ("instance", "$instance")} <= selected, (title, metric)


def assert_no_overlap(panels: list[dict[str, Any]]) -> None:
    """No two panels share a grid cell (Grafana would push one down, out of its row)."""
    taken: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]

"""`/metrics`: counters, scrape-time store values, and sums across gunicorn workers.

Three tiers: one process through falcon's TestClient (a plain registry); separate processes sharing
a PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode); real gunicorn with two gevent
workers, where every scrape must report every worker's answers.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import falcon
import falcon.testing
import pytest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from c2c.api.app import create_app
from c2c.api.metrics import Metrics, settled_outcome
from c2c.api.metrics_resource import MetricsResource
from c2c.api.runtime import Runtime
from c2c.config import Config
from c2c.domain.switch_state import SwitchLoad
from c2c.errors import StoreError
from c2c.esl.choice import SwitchView
from c2c.store import SettledOutcome, Store, backlog
from c2c.store.backlog import LAG_WINDOW_SECONDS, Backlog, BacklogSnapshot
from tests.callback_receiver import CallbackReceiver
from tests.conftest import ACCEPT_DEFAULTS, CallFactory

REPO = Path(__file__).resolve().parent.parent
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by (name, labels); fails the test if the text does not parse."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


# -- one process: a plain registry, through falcon's TestClient --


class FakeSwitches:
    """Switches' views as the test sets them: a state name, or a whole SwitchView."""

    def __init__(self, states: dict[str, str | SwitchView]) -> None:
        self._states = states

    def views(self) -> list[SwitchView]:
        views = []
        for index, (name, state) in enumerate(self._states.items()):
            if isinstance(state, SwitchView):
                views.append(dataclasses.replace(state, name=name, index=index))
                continue
            up = state == "connected"
            views.append(SwitchView(name=name, index=index, connected=up, live=up))
        return views


class BrokenCalls:
    def in_flight_by_switch(self) -> dict[str, int]:
        raise StoreError("database is gone")


class BrokenStore:
    calls = BrokenCalls()


class BrokenBacklog:
    def read(self, now: float) -> BacklogSnapshot:
        raise StoreError("database is gone")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'c2c.sqlite3'}")
    store.upgrade()
    yield store
    store.dispose()


def metrics_client(
    metrics: Metrics, store, states: dict[str, str | SwitchView], backlog=None
) -> falcon.testing.TestClient:
    app = falcon.App()
    app.add_route("/metrics", MetricsResource(metrics, store, FakeSwitches(states), backlog))
    return falcon.testing.TestClient(app)


def scrape(client: falcon.testing.TestClient) -> Samples:
    result = client.simulate_get("/metrics")
    assert result.status_code == 200
    assert result.headers["Content-Type"] == CONTENT_TYPE
    return parse(result.text)


def test_counters_move_and_the_text_parses(sqlite_store: Store) -> None:
    metrics = Metrics()
    assert not metrics.multiprocess
    client = metrics_client(metrics, sqlite_store, {"fs1:8021": "connected"})
    before = scrape(client)
    # Every label is there from the start, at zero, so rate() sees the first event.
    assert all(value(before, "c2c_requests_total", code=str(code)) == 0 for code in range(12))
    assert value(before, "c2c_calls_settled_total", outcome="ring_timeout") == 0
    assert value(before, "c2c_callback_attempts_total", result="retry") == 0

    metrics.request_code(1)
    metrics.request_code(1)
    metrics.request_code(0)
    metrics.observe_request(0.003)
    metrics.observe_request(0.2)
    metrics.call_settled(True, None)
    metrics.call_settled(False, 5)
    metrics.call_settled(False, 3)
    metrics.callback_attempt("retry")
    metrics.callback_attempt("delivered")
    metrics.callback_attempt("failed")
    metrics.set_listener("fs1:8021", True)

    after = scrape(client)
    assert value(after, "c2c_requests_total", code="1") == 2
    assert value(after, "c2c_requests_total", code="0") == 1
    assert value(after, "c2c_request_duration_seconds_count") == 2
    assert value(after, "c2c_request_duration_seconds_bucket", le="0.005") == 1
    assert value(after, "c2c_request_duration_seconds_bucket", le="0.25") == 2
    assert value(after, "c2c_request_duration_seconds_bucket", le="1.0") == 2
    assert value(after, "c2c_calls_settled_total", outcome="answered") == 1
    assert value(after, "c2c_calls_settled_total", outcome="busy") == 1
    assert value(after, "c2c_calls_settled_total", outcome="ring_timeout") == 1
    assert value(after, "c2c_callback_attempts_total", result="retry") == 1
    assert value(after, "c2c_callback_attempts_total", result="delivered") == 1
    assert value(after, "c2c_callback_attempts_total", result="failed") == 1
    assert value(after, "c2c_callbacks_failed_total") == 1
    assert value(after, "c2c_switch_connected", switch="fs1:8021") == 1
    assert value(after, "c2c_switch_listener", switch="fs1:8021") == 1
    assert value(after, "c2c_store_up") == 1


def test_each_metrics_has_its_own_registry_without_a_multiprocess_dir() -> None:
    # Tests and `c2c demo` build several apps in one process: their counts must not mix.
    first, second = Metrics(), Metrics()
    first.request_code(4)
    assert value(parse(first.render().decode()), "c2c_requests_total", code="4") == 1
    assert value(parse(second.render().decode()), "c2c_requests_total", code="4") == 0


def test_switch_states_are_read_at_scrape_time(sqlite_store: Store) -> None:
    states = {"fs1:8021": "connected", "fs2:8021": "reconnecting"}
    client = metrics_client(Metrics(), sqlite_store, states)
    samples = scrape(client)
    assert value(samples, "c2c_switch_connected", switch="fs1:8021") == 1
    assert value(samples, "c2c_switch_connected", switch="fs2:8021") == 0
    states["fs1:8021"] = "failed"
    states["fs2:8021"] = "connected"
    samples = scrape(client)
    assert value(samples, "c2c_switch_connected", switch="fs1:8021") == 0
    assert value(samples, "c2c_switch_connected", switch="fs2:8021") == 1


def test_each_switch_has_its_live_usable_draining_and_session_gauges(sqlite_store: Store) -> None:
    states: dict[str, str | SwitchView] = {
        "fs1:8021": SwitchView(
            "", connected=True, live=True, load=SwitchLoad(sessions=40, max_sessions=1000)
        ),
        "fs2:8021": SwitchView("", connected=True, live=False),  # answers nothing any more
        "fs3:8021": SwitchView("", connected=True, live=True, draining=True),
    }
    client = metrics_client(Metrics(), sqlite_store, states)
    samples = scrape(client)
    expected = {  # connected, live, usable, draining
        "fs1:8021": (1, 1, 1, 0),
        "fs2:8021": (1, 0, 0, 0),
        "fs3:8021": (1, 1, 0, 1),
    }
    for name, figures in expected.items():
        gauges = ("c2c_switch_connected", "c2c_switch_live", "c2c_switch_usable",
                  "c2c_switch_draining")
        assert tuple(value(samples, gauge, switch=name) for gauge in gauges) == figures, name
    assert value(samples, "c2c_switch_sessions", switch="fs1:8021") == 40
    assert value(samples, "c2c_switch_max_sessions", switch="fs1:8021") == 1000
    assert value(samples, "c2c_switch_sessions", switch="fs2:8021") is None  # never said
    # the switch names are the only label, and only configured names appear
    switch_samples = [labels for name, labels in samples if name.startswith("c2c_switch_")]
    assert {dict(labels)["switch"] for labels in switch_samples} == set(states)
    assert all(set(dict(labels)) == {"switch"} for labels in switch_samples)
    states["fs1:8021"] = SwitchView("", load=SwitchLoad(sessions=2, max_sessions=1000))
    samples = scrape(client)
    assert value(samples, "c2c_switch_sessions", switch="fs1:8021") == 2
    assert value(samples, "c2c_switch_live", switch="fs1:8021") == 0


def test_calls_in_flight_come_from_the_store(sqlite_store: Store, make_call: CallFactory) -> None:
    account = sqlite_store.accounts.create("acme", credits=10)
    sqlite_store.accept_call(
        account.id, make_call(account.id, switch="fs1:8021"), now=time.time(), **ACCEPT_DEFAULTS
    )
    client = metrics_client(
        Metrics(), sqlite_store, {"fs1:8021": "connected", "fs2:8021": "failed"}
    )
    samples = scrape(client)
    assert value(samples, "c2c_calls_in_flight", switch="fs1:8021") == 1
    assert value(samples, "c2c_calls_in_flight", switch="fs2:8021") == 0  # configured, idle


def test_a_store_error_is_reported_not_a_500() -> None:
    metrics = Metrics()
    metrics.request_code(1)
    samples = scrape(metrics_client(metrics, BrokenStore(), {"fs1:8021": "connected"},
                                    BrokenBacklog()))
    assert value(samples, "c2c_store_up") == 0
    assert not any(name == "c2c_calls_in_flight" for name, _ in samples)
    assert value(samples, "c2c_requests_total", code="1") == 1  # the rest is still there


def test_a_backlog_that_cannot_be_read_marks_the_store_down(sqlite_store: Store) -> None:
    samples = scrape(metrics_client(Metrics(), sqlite_store, {"fs1:8021": "connected"},
                                    BrokenBacklog()))
    assert value(samples, "c2c_store_up") == 0
    read_from_store = {"c2c_calls_in_flight", "c2c_callbacks_pending", "c2c_callbacks_due",
                       "c2c_progress_webhooks_pending"}
    assert not read_from_store & {name for name, _ in samples}


def test_settled_outcome_names() -> None:
    assert settled_outcome(True, None) == "answered"
    assert [settled_outcome(False, r) for r in (0, 1, 3, 5, 8)] == [
        "failed",
        "hung_up",
        "ring_timeout",
        "busy",
        "congestion",
    ]
    assert settled_outcome(False, None) == "failed"
    assert settled_outcome(False, 42) == "failed"  # logged, never raised into a settlement


def test_an_unknown_callback_result_is_not_counted() -> None:
    metrics = Metrics()
    metrics.callback_attempt("exploded")
    metrics.progress_attempt("exploded")
    samples = parse(metrics.render().decode())
    assert not any(dict(labels).get("result") == "exploded" for _, labels in samples)


def test_progress_webhook_attempts_are_counted_apart_from_callbacks() -> None:
    metrics = Metrics()
    before = parse(metrics.render().decode())
    assert all(value(before, "c2c_progress_webhook_attempts_total", result=result) == 0
               for result in ("delivered", "retry", "failed"))
    metrics.progress_attempt("retry")
    metrics.progress_attempt("failed")
    samples = parse(metrics.render().decode())
    assert value(samples, "c2c_progress_webhook_attempts_total", result="retry") == 1
    assert value(samples, "c2c_progress_webhook_attempts_total", result="failed") == 1
    # A progress webhook given up is not a final callback given up.
    assert value(samples, "c2c_callbacks_failed_total") == 0
    assert value(samples, "c2c_callback_attempts_total", result="failed") == 0


def test_the_app_routes_metrics_and_counts_clicktocall_answers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c2c.sqlite3'}"
    Store.from_url(url).upgrade()
    runtime = Runtime.build(Config.defaults(database_url=url))  # built, never started
    client = falcon.testing.TestClient(create_app(runtime))
    for _ in range(3):
        assert client.simulate_get("/api/clicktocall/", params={"api_key": "nope"}).text == "1"
    samples = scrape(client)
    assert value(samples, "c2c_requests_total", code="1") == 3
    assert value(samples, "c2c_switch_connected", switch="127.0.0.1:8021") == 0
    runtime.store.dispose()


# -- several processes sharing one PROMETHEUS_MULTIPROC_DIR --

PROCESS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from c2c.api.metrics import Metrics

    actions = json.loads(sys.argv[1])
    metrics = Metrics()
    assert metrics.multiprocess
    for code in actions.get("codes", []):
        metrics.request_code(code)
    for seconds in actions.get("durations", []):
        metrics.observe_request(seconds)
    for answered, reason in actions.get("settled", []):
        metrics.call_settled(answered, reason)
    for result in actions.get("callbacks", []):
        metrics.callback_attempt(result)
    for result in actions.get("progress", []):
        metrics.progress_attempt(result)
    for name, connected in actions.get("connected", {}).items():
        metrics.switch_state_changed(name, connected)
    for name, holding in actions.get("listening", {}).items():
        metrics.set_listener(name, holding, *actions.get("backlog", {}).get(name, (0, 0)))
    if actions.get("render"):
        sys.stdout.write(metrics.render().decode())
    else:
        print(os.getpid())
""")


def in_process(metrics_dir: Path, **actions) -> str:
    """Run PROCESS_SCRIPT in a new Python process writing to ``metrics_dir``; its stdout."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    done = subprocess.run(
        [sys.executable, "-c", PROCESS_SCRIPT, json.dumps(actions)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_separate_processes_are_summed(tmp_path: Path) -> None:
    first = int(
        in_process(
            tmp_path,
            codes=[1, 1, 1],
            durations=[0.004],
            settled=[[True, None]],
            callbacks=["delivered", "failed"],
            progress=["retry"],
            connected={"fs1:8021": True, "fs2:8021": False},
            listening={"fs1:8021": True},
            backlog={"fs1:8021": [12, 3]},
        )
    )
    in_process(
        tmp_path,
        codes=[1, 1, 1, 1, 0],
        durations=[0.3],
        settled=[[True, None], [False, 8]],
        callbacks=["failed"],
        progress=["retry", "delivered"],
        connected={"fs1:8021": False, "fs2:8021": False},
        listening={"fs1:8021": False},
    )

    samples = parse(in_process(tmp_path, render=True))
    assert value(samples, "c2c_requests_total", code="1") == 7
    assert value(samples, "c2c_requests_total", code="0") == 1
    assert value(samples, "c2c_requests_total", code="11") == 0
    assert value(samples, "c2c_request_duration_seconds_count") == 2
    assert value(samples, "c2c_request_duration_seconds_bucket", le="0.005") == 1
    assert value(samples, "c2c_calls_settled_total", outcome="answered") == 2
    assert value(samples, "c2c_calls_settled_total", outcome="congestion") == 1
    assert value(samples, "c2c_callback_attempts_total", result="failed") == 2
    assert value(samples, "c2c_callbacks_failed_total") == 2
    assert value(samples, "c2c_progress_webhook_attempts_total", result="retry") == 2
    assert value(samples, "c2c_progress_webhook_attempts_total", result="delivered") == 1
    # Connected if ANY live worker is; one listener on this host.
    assert value(samples, "c2c_switch_connected", switch="fs1:8021") == 1
    assert value(samples, "c2c_switch_connected", switch="fs2:8021") == 0
    assert value(samples, "c2c_switch_listener", switch="fs1:8021") == 1
    # The holder's backlog: events not yet applied, calls not yet settled (a non-holder: 0).
    assert value(samples, "c2c_listener_backlog", switch="fs1:8021", queue="events") == 12
    assert value(samples, "c2c_listener_backlog", switch="fs1:8021", queue="settle") == 3

    # gunicorn's child_exit marks a dead worker: its gauges go, its counts stay.
    mark_process_dead(first, str(tmp_path))
    samples = parse(in_process(tmp_path, render=True))
    assert value(samples, "c2c_switch_connected", switch="fs1:8021") == 0
    assert value(samples, "c2c_switch_listener", switch="fs1:8021") == 0
    assert value(samples, "c2c_listener_backlog", switch="fs1:8021", queue="events") == 0
    assert value(samples, "c2c_requests_total", code="1") == 7


# -- real gunicorn, two gevent workers --


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, server: subprocess.Popen, log: Path
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        if condition():
            return
        time.sleep(0.05)
    ended = "" if server.poll() is None else f" (gunicorn exited {server.returncode})"
    pytest.fail(f"{what} within {timeout} s{ended}; gunicorn said:\n{log.read_text()}")


def answered_by_worker(metrics_dir: Path) -> dict[str, float]:
    """code-1 answers counted by each worker, from its own counter file."""
    counts = {}
    for path in glob.glob(str(metrics_dir / "counter_*.db")):
        for family in MultiProcessCollector.merge([path]):
            for sample in family.samples:
                if sample.name == "c2c_requests_total" and sample.labels == {"code": "1"}:
                    counts[path] = sample.value
    return counts


def test_gunicorn_workers_report_one_sum(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'c2c.sqlite3'}"
    store = Store.from_url(database_url)
    store.upgrade()
    store.dispose()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    in_process(metrics_dir, codes=[1] * 50)  # a previous run's values: gunicorn must wipe them
    port, unused_switch_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "C2C_DATABASE_URL": database_url,
        "C2C_SWITCHES": f"esl://:ClueCon@127.0.0.1:{unused_switch_port}",
        "C2C_BIND": f"127.0.0.1:{port}",
        "C2C_WORKERS": "2",
        "C2C_METRICS_DIR": str(metrics_dir),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "gunicorn.log"
    with log.open("w") as log_file:
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "c2c.wsgi:app"],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            try:
                return get(f"{base}/healthz") == "ok"
            except OSError:
                return False

        wait_for(healthy, 30, "no answer on /healthz", gunicorn, log)
        # Each worker creates its counter file when it builds the app.
        wait_for(
            lambda: len(answered_by_worker(metrics_dir)) == 2, 30, "not two workers", gunicorn, log
        )

        def bad_key(_: int) -> str:
            return get(f"{base}/api/clicktocall/?api_key=not-a-key")

        sent = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            # Until both workers have answered some, so the sum really spans two processes.
            while sent < 400 and not all(answered_by_worker(metrics_dir).values()):
                assert set(pool.map(bad_key, range(20))) == {"1"}
                sent += 20
        assert all(answered_by_worker(metrics_dir).values()), "one worker answered every request"

        for _ in range(6):  # whichever worker answers the scrape
            samples = parse(get(f"{base}/metrics"))
            assert value(samples, "c2c_requests_total", code="1") == sent
            assert value(samples, "c2c_requests_total", code="0") == 0
            switch = f"127.0.0.1:{unused_switch_port}"
            assert value(samples, "c2c_switch_connected", switch=switch) == 0
            assert value(samples, "c2c_calls_in_flight", switch=switch) == 0
            assert value(samples, "c2c_store_up") == 1
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        try:
            gunicorn.wait(timeout=40)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
            gunicorn.wait()


def test_labels_of_causes_and_sip_statuses_are_bounded() -> None:
    from c2c.api.metrics import cause_label, sip_label

    assert cause_label("USER_BUSY") == "USER_BUSY"
    assert cause_label(" normal_clearing ") == "NORMAL_CLEARING"
    assert cause_label("WHATEVER_A_SWITCH_SAYS") == "OTHER"
    assert cause_label("'; DROP") == "OTHER"
    assert cause_label(None) == "NONE"
    assert sip_label("486") == "486"
    assert (sip_label("99"), sip_label("700"), sip_label("48x"), sip_label(None)) == (
        "none", "none", "none", "none")


def test_a_settled_call_counts_by_switch_leg_cause_and_sip_status(sqlite_store: Store) -> None:
    """The runtime counts each settled call under its switch (a switch no longer configured is
    "other") and each ended leg under its cause and SIP status, from the facts that come with
    the outcome: no read of the row."""
    from c2c.calls.outcome import CallFacts
    from c2c.calls.settlement import outcome_of
    from c2c.esl.switches import Switches

    config = Config.defaults(switches=Config.from_env(
        {"C2C_SWITCHES": "esl://:pw@fs1:8021"}).switches)
    runtime = Runtime(config, sqlite_store, Switches(config))
    row = {
        "switch": "fs1:8021", "caller_country_code": "1", "caller_number": "2125550123",
        "callee_country_code": "44", "callee_number": "2079460188",
        "caller_hangup_cause": "USER_BUSY", "callee_hangup_cause": "USER_BUSY",
        "caller_sip_status": None, "callee_sip_status": "486", "originate_error": None,
        "caller_answered_at": 1.0, "callee_answered_at": None, "callee_gone_at": 2.0,
        "bridged_at": None, "billsec": 0, "max_minutes": 5, "callee_fate": None,
        "confirm": None, "caller_gone_at": 2.0,
    }
    busy = outcome_of(row)
    assert busy.facts == CallFacts.of(row)
    runtime.on_settled("c1", busy)
    elsewhere = dataclasses.replace(outcome_of({**row, "switch": "old:8021"}), estimated=True)
    runtime.on_settled("c2", elsewhere)
    samples = parse(runtime.metrics.render().decode())
    assert value(samples, "c2c_calls_settled_by_switch_total", switch="fs1:8021",
                 outcome="busy") == 1
    assert value(samples, "c2c_calls_settled_by_switch_total", switch="other", outcome="busy") == 1
    assert value(samples, "c2c_calls_estimated_total", switch="other") == 1
    assert value(samples, "c2c_leg_ends_total", switch="fs1:8021", leg="callee",
                 cause="USER_BUSY", sip_status="486") == 1
    assert value(samples, "c2c_leg_ends_total", switch="fs1:8021", leg="caller",
                 cause="USER_BUSY", sip_status="none") == 1


def test_each_refused_originate_is_counted_by_what_became_of_it() -> None:
    metrics = Metrics()
    metrics.originate_retry("moved")
    samples = parse(metrics.render().decode())
    assert value(samples, "c2c_originate_retries_total", result="moved") == 1
    assert value(samples, "c2c_originate_retries_total", result="no_other_switch") == 0


# -- the outboxes' backlog and delivery lag, read from the store at scrape time --

NOW = 1_800_000_000.0
PROGRESS_URL = "http://127.0.0.1:9/progress"  # never sent to here


@pytest.fixture
def outbox_calls(store: Store, make_call: CallFactory):
    """settled(ended_at, settled_at, callback=..., progress=...) -> the id of a settled call."""
    account = store.accounts.create("acme", credits=10_000)
    numbers = iter(range(1_000_000))

    def settled(ended_at: float, settled_at: float, *, callback: bool = True,
                progress: tuple[str, ...] = ()) -> str:
        index = next(numbers)
        call = dataclasses.replace(
            make_call(account.id, f"1555{index:07d}", f"4420{index:08d}",
                      callback_url="http://example.com/cb" if callback else None),
            status_callback_url=PROGRESS_URL if progress else None, status_events=progress)
        store.accept_call(account.id, call, now=ended_at - 60,
                          **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
        if "bridged" in progress:
            store.calls.set_fields(call.id, {"caller_answered_at": ended_at - 50,
                                             "bridged_at": ended_at - 45})
        assert store.calls.settle(call.id, SettledOutcome(True, 1, None, 30), ended_at=ended_at,
                                  now=settled_at)
        return call.id

    return settled


def deliver_now(store: Store, at: float, delivered_at: float) -> None:
    """Claim the one callback due at ``at`` and record its delivery at ``delivered_at``."""
    (job,) = store.callbacks.claim_due(at, 10, 30)
    assert store.callbacks.mark_delivered(job.id, at=delivered_at, http_status=200)


def test_the_backlog_of_an_empty_store_is_zero_with_no_lag(store: Store) -> None:
    snapshot = Backlog.on(store.engine).read(NOW)
    for outbox in (snapshot.callbacks, snapshot.progress):
        assert (outbox.pending, outbox.due, outbox.oldest_due_seconds, outbox.waiting) == (
            0, 0, 0.0, 0)
    assert snapshot.lag is None


def test_the_backlog_counts_open_rows_and_how_long_the_earliest_is_overdue(
    store: Store, outbox_calls
) -> None:
    # Delivered long ago (out of the lag's window), and twice lately: 10 s and 4 s after hangup.
    outbox_calls(NOW - 1000, NOW - 1000)
    deliver_now(store, NOW - 1000, NOW - 900)
    outbox_calls(NOW - 40, NOW - 38)
    deliver_now(store, NOW - 38, NOW - 30)
    outbox_calls(NOW - 20, NOW - 20)
    deliver_now(store, NOW - 20, NOW - 16)
    # Failed once, tried again in a minute: pending, not due.
    outbox_calls(NOW - 30, NOW - 30)
    (job,) = store.callbacks.claim_due(NOW - 30, 10, 30)
    assert store.callbacks.reschedule(job.id, at=NOW - 29, next_attempt_at=NOW + 60,
                                      error="HTTP 503", http_status=503)
    # Given up: no longer owed.
    outbox_calls(NOW - 70, NOW - 70)
    (job,) = store.callbacks.claim_due(NOW - 70, 10, 30)
    assert store.callbacks.mark_failed(job.id, at=NOW - 69, error="HTTP 410", http_status=410)
    # Due 50 s and 10 s ago, not yet sent.
    outbox_calls(NOW - 55, NOW - 50)
    outbox_calls(NOW - 10, NOW - 10)
    # Progress: one call's first webhook due 25 s ago with two behind it; another's not yet due.
    outbox_calls(NOW - 25, NOW - 25, callback=False, progress=("answered", "bridged", "completed"))
    outbox_calls(NOW - 1, NOW + 5, callback=False, progress=("completed",))

    snapshot = Backlog.on(store.engine).read(NOW)
    callbacks, progress = snapshot.callbacks, snapshot.progress
    assert (callbacks.pending, callbacks.due, callbacks.oldest_due_seconds) == (3, 2, 50.0)
    assert (progress.pending, progress.due, progress.waiting) == (2, 1, 2)
    assert progress.oldest_due_seconds == 25.0
    assert snapshot.lag is not None
    assert (snapshot.lag.delivered, snapshot.lag.median_seconds, snapshot.lag.max_seconds) == (
        2, 7.0, 10.0)
    # Past the window, nothing delivered lately: no lag at all rather than a made-up one.
    assert Backlog.on(store.engine).read(NOW + LAG_WINDOW_SECONDS).lag is None


def test_the_lag_reads_only_the_newest_callbacks(store: Store, outbox_calls,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A bounded read: a delivery older than the newest LAG_SAMPLE_ROWS callbacks is not seen,
    however recent."""
    monkeypatch.setattr(backlog, "LAG_SAMPLE_ROWS", 3)
    outbox_calls(NOW - 100, NOW - 100)
    deliver_now(store, NOW - 100, NOW - 40)  # 60 s late
    for _ in range(2):
        outbox_calls(NOW - 5, NOW + 3600)  # not due for an hour
    lag = Backlog.on(store.engine).read(NOW).lag
    assert lag is not None and lag.max_seconds == 60.0
    outbox_calls(NOW - 5, NOW + 3600)
    assert Backlog.on(store.engine).read(NOW).lag is None


def test_the_scrape_reports_the_backlog_and_the_lag(sqlite_store: Store,
                                                     make_call: CallFactory) -> None:
    now = time.time()
    account = sqlite_store.accounts.create("acme", credits=100)
    ids = []
    for index in range(2):
        call = make_call(account.id, f"155521044{index:02d}", callback_url="http://x.example/")
        sqlite_store.accept_call(account.id, call, now=now - 60,
                                 **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
        assert sqlite_store.calls.settle(call.id, SettledOutcome(True, 1, None, 30),
                                         ended_at=now - 12, now=now - 10)
        ids.append(call.id)
    deliver_now_one = sqlite_store.callbacks.claim_due(now - 10, 1, 30)
    assert sqlite_store.callbacks.mark_delivered(deliver_now_one[0].id, at=now - 9,
                                                 http_status=200)
    samples = scrape(metrics_client(Metrics(), sqlite_store, {"fs1:8021": "connected"}))
    assert value(samples, "c2c_store_up") == 1
    assert value(samples, "c2c_callbacks_pending") == 1
    assert value(samples, "c2c_callbacks_due") == 1
    assert 10 <= value(samples, "c2c_callback_oldest_due_seconds") < 60
    assert value(samples, "c2c_progress_webhooks_pending") == 0
    assert value(samples, "c2c_progress_webhooks_waiting") == 0
    assert value(samples, "c2c_progress_webhooks_due") == 0
    assert value(samples, "c2c_progress_webhook_oldest_due_seconds") == 0
    assert value(samples, "c2c_callback_delivery_lag_median_seconds") == pytest.approx(3.0)
    assert value(samples, "c2c_callback_delivery_lag_max_seconds") == pytest.approx(3.0)
    assert value(samples, "c2c_callback_delivery_lag_callbacks") == 1


def test_the_scrape_has_no_lag_when_nothing_was_delivered(sqlite_store: Store) -> None:
    samples = scrape(metrics_client(Metrics(), sqlite_store, {"fs1:8021": "connected"}))
    assert value(samples, "c2c_callbacks_pending") == 0
    assert not any("delivery_lag" in name for name, _ in samples)


def test_the_runtime_counts_progress_webhook_attempts(sqlite_store: Store,
                                                      make_call: CallFactory) -> None:
    from c2c.esl.switches import Switches

    config = Config.defaults(callback_allow_private=True, callback_timeout=2.0)
    runtime = Runtime(config, sqlite_store, Switches(config))
    account = sqlite_store.accounts.create("acme", credits=100)
    with CallbackReceiver() as receiver:
        call = dataclasses.replace(make_call(account.id),
                                   status_callback_url=receiver.url("/progress"),
                                   status_events=("completed",))
        now = time.time()
        sqlite_store.accept_call(account.id, call, now=now, **ACCEPT_DEFAULTS)
        assert sqlite_store.calls.settle(call.id, SettledOutcome(True, 1, None, 30),
                                         ended_at=now, now=now)
        assert runtime.dispatcher.run_once(now + 1) == 1
        assert [request.path for request in receiver.requests] == ["/progress"]
    samples = parse(runtime.metrics.render().decode())
    assert value(samples, "c2c_progress_webhook_attempts_total", result="delivered") == 1
    assert value(samples, "c2c_callback_attempts_total", result="delivered") == 0

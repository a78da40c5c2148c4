"""A fleet of switches that fails safe, over real TCP against the simulator, on a real store:
liveness (a frozen switch is given up within the liveness window, reconnected, and its calls
reconciled), capacity (a stalled or full switch gets no calls), drain (across workers sharing a
store, within seconds), the event holder's reports, and `c2c switches`.

Everything runs in this process on gevent without monkey patching, as the AppHarness explains:
waits yield (gevent.sleep), never time.sleep. Liveness windows are a second or less.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import falcon.testing
import gevent
import pytest

from c2c.api.app import create_app
from c2c.api.runtime import Runtime
from c2c.cli.main import main
from c2c.config import Config, SwitchAddress
from c2c.errors import ConfigError
from c2c.esl.choice import choose, refusal
from c2c.esl.connection import EslConnection, SwitchState
from c2c.esl.protocol import Event
from c2c.esl.status import load_from_heartbeat
from c2c.esl.switches import SHARED_REFRESH_SECONDS, Switches, probe_interval
from c2c.fakeswitch.server import FakeSwitch
from c2c.store import Store, make_engine
from tests.conftest import ACCEPT_DEFAULTS, CallFactory
from tests.support.app_harness import AppHarness, gevent_wait

PASSWORD = "fleet-pw"
LIVENESS = 1.0


def simulator(heartbeat: float | None = 0.1, **kwargs: Any) -> FakeSwitch:
    return FakeSwitch("127.0.0.1", 0, PASSWORD, heartbeat=heartbeat, **kwargs).start()


def address(switch: FakeSwitch) -> SwitchAddress:
    return SwitchAddress("127.0.0.1", switch.port, PASSWORD)


def wait(predicate: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
    return gevent_wait(predicate, timeout, message=message)


_exchanges = itertools.count(200)


def long_call() -> dict[str, str]:
    """Fresh numbers the default scenario answers after 1 s and never hangs up (suffix 0999)."""
    return {
        "caller_phone_number": f"646{next(_exchanges) % 1000:03d}0999",
        "caller_country_code": "1",
        "callee_phone_number": f"646{next(_exchanges) % 1000:03d}0999",
        "callee_country_code": "1",
    }


# -- the connection: a frozen switch is given up and reconnected ------------------------------


@pytest.fixture
def switch() -> Iterator[FakeSwitch]:
    fake = simulator()
    yield fake
    fake.stop()


@pytest.fixture
def connections() -> Iterator[list[EslConnection]]:
    made: list[EslConnection] = []
    yield made
    for connection in made:
        connection.stop()


def test_an_event_connection_hears_heartbeats_through_its_filter(switch, connections) -> None:
    heard: list[Event] = []
    events = EslConnection(
        address(switch), 1.0, events=("CHANNEL_ANSWER", "HEARTBEAT"),
        filters=[("variable_c2c_call_id", "/^[0-9a-f-]{36}$/"), ("Event-Name", "HEARTBEAT")],
        on_event=heard.append, liveness=LIVENESS,
    )
    connections.append(events)
    events.start()
    wait(lambda: len(heard) >= 3, 5, "three heartbeats")
    load = load_from_heartbeat(heard[-1])
    assert load.ready is None and load.max_sessions == 10_000 and load.sessions == 0
    started = time.monotonic()
    while time.monotonic() - started < 2.5 * LIVENESS:  # heartbeats keep it up
        assert events.live
        gevent.sleep(0.05)
    assert events.connects == 1


@pytest.mark.parametrize("kind", ["event connection", "command connection"])
def test_a_frozen_switch_is_given_up_within_the_liveness_window_then_reconnected(
    switch, connections, kind: str
) -> None:
    if kind == "event connection":  # silence: no HEARTBEAT any more
        kwargs: dict[str, Any] = {"events": ("HEARTBEAT",), "on_event": lambda event: None}
    else:  # the `status` probe goes unanswered
        kwargs = {"probe_every": LIVENESS / 3}
    connection = EslConnection(address(switch), 0.5, liveness=LIVENESS, **kwargs)
    connections.append(connection)
    connection.start()
    wait(lambda: connection.state is SwitchState.CONNECTED, 5, "connected")
    switch.faults.stall = True  # the socket stays open; nothing comes back
    wait(lambda: connection.state is not SwitchState.CONNECTED, LIVENESS + 1.0, "given up")
    assert not connection.live
    gevent.sleep(0.5)  # while frozen, every new session fails to subscribe or to be probed
    assert connection.connects == 1
    switch.faults.stall = False
    wait(lambda: connection.state is SwitchState.CONNECTED, 10, "reconnected")
    assert connection.connects == 2 and connection.live


# -- a worker: placement, the holder's reports and its reconciliation -------------------------


class Fleet:
    """A worker in this process: Runtime, Switches and the falcon app, on the given switches."""

    def __init__(self, store_url: str, switches: list[FakeSwitch], background: bool = False,
                 **config: Any) -> None:
        self.store = Store(make_engine(store_url), coverage_cache_seconds=0)
        self.store.upgrade()
        self.config = Config.defaults(
            database_url=store_url,
            switches=tuple(address(s) for s in switches),
            callback_allow_private=True,
            account_cache_seconds=0,
            esl_timeout=0.5,
            esl_liveness_seconds=LIVENESS,
            lease_seconds=2,
            **config,
        )
        self.runtime = Runtime(self.config, self.store, Switches(self.config))
        self.client = falcon.testing.TestClient(create_app(self.runtime))
        self.background = background
        self.names = [a.name for a in self.config.switches]
        self.api_key = self.store.accounts.create("fleet", 10_000).api_key

    def start(self) -> Fleet:
        if self.background:
            self.runtime.start()
        else:
            self.runtime.switches.start()
        wait(lambda: all(view.live for view in self.runtime.switches.views()), 10, "all live")
        return self

    def stop(self) -> None:
        if self.background:
            self.runtime.stop()
        else:
            self.runtime.switches.stop()
        self.store.dispose()

    def place(self, **numbers: str) -> tuple[int, str | None]:
        params = {"api_key": self.api_key, **(numbers or long_call())}
        result = self.client.simulate_get("/api/clicktocall/", query_string=urlencode(params))
        code = int(result.text)
        call_id = result.headers.get("x-c2c-call-id")
        return code, (self.store.calls.get(call_id) or {}).get("switch") if call_id else None

    def drain(self, name: str, draining: bool = True) -> None:
        self.store.switch_states.set_draining(name, draining, time.time())
        self.runtime.switches.refresh()  # what the refresher does every couple of seconds


@pytest.fixture
def pair() -> Iterator[tuple[FakeSwitch, FakeSwitch]]:
    first, second = simulator(heartbeat=None), simulator(heartbeat=None)
    yield first, second
    first.stop()
    second.stop()


def test_calls_spread_over_two_switches_and_a_stalled_one_gets_none(store_url, pair) -> None:
    first, second = pair
    fleet = Fleet(store_url, [first, second]).start()
    try:
        a, b = fleet.names
        placed = [fleet.place() for _ in range(6)]
        assert {code for code, _ in placed} == {0}
        assert {where for _, where in placed} == {a, b}  # both take calls while both are fine
        first.faults.stall = True  # a frozen host: TCP up, nothing answered
        wait(lambda: not fleet.runtime.switches.views()[0].live, LIVENESS + 1.0, "a not live")
        placed = [fleet.place() for _ in range(10)]
        assert placed == [(0, b)] * 10
        first.faults.stall = False
        wait(lambda: fleet.runtime.switches.views()[0].live, 10, "a live again")
        assert (0, a) in [fleet.place() for _ in range(4)]
    finally:
        fleet.stop()


def test_a_full_switch_gets_no_calls_though_it_would_rank_first(
    store_url, make_call: CallFactory
) -> None:
    # A holds 4 calls in 10 sessions (80%: one more would pass 90%); B has room for 45 calls in
    # its 100 and already 40 of ours in flight (80% too): equal shares, and A has fewer calls in
    # flight, so A would win but for the 90% rule.
    first = simulator(heartbeat=None, max_sessions=10, time_scale=0.05)
    second = simulator(heartbeat=None, max_sessions=100)
    fleet = Fleet(store_url, [first, second]).start()
    try:
        a, b = fleet.names
        fleet.drain(b)
        assert [fleet.place() for _ in range(4)] == [(0, a)] * 4
        fleet.drain(b, False)
        account = fleet.store.accounts.create("elsewhere", 1000)
        for _ in range(40):  # placed on B by another host
            call = make_call(account.id, switch=b, max_duration=1)
            fleet.store.accept_call(account.id, call, now=time.time(),
                                    **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
        switches = fleet.runtime.switches
        wait(lambda: (switches.views()[0].load.sessions or 0) == 8, 10, "A says 8 sessions")  # type: ignore[union-attr]
        assert refusal(switches.views()[0]) == "full (8 of 10 sessions)"
        assert [fleet.place() for _ in range(5)] == [(0, b)] * 5
    finally:
        fleet.stop()
        first.stop()
        second.stop()


def test_a_drain_flips_within_seconds_in_every_worker_sharing_the_store(
    store_url, pair, monkeypatch, capsys
) -> None:
    first, second = pair
    config = Config.defaults(
        database_url=store_url,
        switches=(address(first), address(second)),
        esl_timeout=0.5,
        esl_liveness_seconds=LIVENESS,
    )
    store = Store(make_engine(store_url))
    store.upgrade()
    # Two workers (of one host or two): each its own connections, the same store.
    workers = [Switches(config, records=store.switch_states.all) for _ in range(2)]
    monkeypatch.setenv("C2C_DATABASE_URL", store_url)
    monkeypatch.setenv("C2C_SWITCHES", ",".join(f"esl://:{PASSWORD}@{a.name}"
                                                for a in config.switches))
    a, b = (s.name for s in config.switches)

    def everywhere(name: str) -> bool:
        """Whether every worker would choose ``name`` now (polling must not spend budgets)."""
        chosen = [choose(worker.views({a: 0, b: 0})) for worker in workers]
        return all(view is not None and view.name == name for view in chosen)

    try:
        for worker in workers:
            worker.start()
        wait(lambda: everywhere(a), 10, "both workers pick a")
        assert main(["switches", "drain", a]) == 0
        wait(lambda: everywhere(b), 2 * SHARED_REFRESH_SECONDS + 1, "both workers avoid a")
        assert all(worker.views()[0].draining for worker in workers)
        assert main(["switches", "undrain", a]) == 0
        wait(lambda: everywhere(a), 2 * SHARED_REFRESH_SECONDS + 1, "both workers take a again")
        out = capsys.readouterr().out
        assert f"{a}: draining; every worker stops sending it calls within 2 s" in out
        assert f"{a}: takes calls again" in out
    finally:
        for worker in workers:
            worker.stop()
        store.dispose()


def test_the_holder_reports_heartbeats_and_a_frozen_switch_is_reconciled_after_it_thaws(
    store_url, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="c2c")
    harness = AppHarness(
        store_url, background=True, time_scale=0.1, esl_timeout=0.5,
        esl_liveness_seconds=LIVENESS,
    )
    harness.switch.heartbeat_interval = 2.0  # x time scale 0.1: every 0.2 s
    with harness as h:
        name = h.connection.name
        states = h.store.switch_states
        report = wait(lambda: (r := states.get(name)) and r.load and r.connected and r, 10,
                      "the holder's first report")
        assert report.holder == h.owners[0]._holder and report.load.max_sessions == 10_000
        key = h.account().api_key
        result = h.get({"api_key": key, **long_call()})
        assert h.code(result) == 0
        call_id = result.headers["x-c2c-call-id"]
        h.wait_until(lambda: h.store.calls.get(call_id)["state"] == "bridged", 10, "bridged")
        wait(lambda: (states.get(name).load.sessions or 0) == 2, 10, "2 sessions reported")  # type: ignore[union-attr]

        h.switch.faults.stall = True  # frozen: no heartbeat, no answer
        h.wait_until(lambda: h.request("GET", "/readyz").status_code == 503, LIVENESS + 2,
                     "readyz 503 once the switch is not live")
        wait(lambda: states.get(name).connected is False, LIVENESS + 4, "reported lost")  # type: ignore[union-attr]
        caplog.clear()
        h.switch.faults.stall = False
        wait(lambda: any("reconciling 1 call(s)" in r.getMessage() for r in caplog.records),
             15, "a reconciliation after the gap")
        wait(lambda: states.get(name).connected is True, 10, "reported connected again")  # type: ignore[union-attr]
        assert h.store.calls.get(call_id)["state"] == "bridged"  # its channels are still up
        caller = h.store.calls.get(call_id)["caller_uuid"]
        h.switch.api_command(f"uuid_kill {caller}")
        settled = h.wait_settled(call_id)
        assert settled["answered"] and settled["minutes"] >= 1


# -- c2c switches ------------------------------------------------------------------------------


@pytest.fixture
def cli_env(store_url, pair, monkeypatch) -> tuple[Store, list[str]]:
    monkeypatch.setenv("C2C_DATABASE_URL", store_url)
    monkeypatch.setenv("C2C_SWITCHES", ",".join(f"esl://:{PASSWORD}@127.0.0.1:{s.port}"
                                                for s in pair))
    store = Store(make_engine(store_url))
    store.upgrade()
    yield store, [f"127.0.0.1:{s.port}" for s in pair]
    store.dispose()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_switches_list_with_nobody_listening(cli_env, capsys, make_call: CallFactory) -> None:
    store, (a, b) = cli_env
    account = store.accounts.create("x", 100)
    store.accept_call(account.id, make_call(account.id, switch=b), now=time.time(),
                      **ACCEPT_DEFAULTS)
    status, out, _ = run(capsys, "switches", "list")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["switch", "connected", "live", "sessions", "max", "in", "flight",
                                "draining"]
    assert lines[1].split() == [a, "no", "no", "-", "-", "0", "no"]
    assert lines[2].split() == [b, "no", "no", "-", "-", "1", "no"]
    status, out, _ = run(capsys, "switches", "list", "--json")
    rows = json.loads(out)
    assert [(r["name"], r["connected"], r["live"], r["in_flight"]) for r in rows] == [
        (a, False, False, 0), (b, False, False, 1)]


def test_switches_list_shows_what_the_holders_report(store_url, pair, monkeypatch, capsys) -> None:
    first, second = pair
    first.heartbeat_interval = 0.1
    first.stop()
    first.start()  # same port, with heartbeats now
    fleet = Fleet(store_url, [first, second], background=True)
    monkeypatch.setenv("C2C_DATABASE_URL", store_url)
    monkeypatch.setenv("C2C_SWITCHES", ",".join(f"esl://:{PASSWORD}@{n}" for n in fleet.names))
    monkeypatch.setenv("C2C_ESL_LIVENESS_SECONDS", str(LIVENESS))
    a, b = fleet.names
    fleet.start()
    try:
        def listed() -> dict[str, dict[str, Any]]:
            assert main(["switches", "list", "--json"]) == 0
            return {row["name"]: row for row in json.loads(capsys.readouterr().out)}

        rows = wait(lambda: (r := listed())[a]["live"] and r[a]["max_sessions"] and r, 10,
                    "a live with its figures")
        assert (rows[a]["connected"], rows[a]["sessions"], rows[a]["max_sessions"]) == (
            True, 0, 10_000)
        assert rows[a]["holder"] and rows[a]["ready"] is True
        # b sends no heartbeat: connected all the same (live only while its connect is recent)
        wait(lambda: listed()[b]["connected"], 10, "b reported connected")
        fleet.runtime.stop()  # the holders let go of their leases
        fleet.background = False
        rows = listed()
        assert not rows[a]["connected"] and not rows[a]["live"]
        assert rows[a]["sessions"] == 0  # the last figures stay on show
    finally:
        fleet.stop()


def test_switches_drain_and_undrain(cli_env, capsys) -> None:
    store, (a, b) = cli_env
    status, out, _ = run(capsys, "switches", "drain", a)
    assert status == 0 and out.startswith(f"{a}: draining;") and "0 call(s) in flight" in out
    status, out, _ = run(capsys, "switches", "drain", a)
    assert status == 0 and out.startswith(f"{a}: already draining;")
    assert [r.name for r in store.switch_states.all() if r.draining] == [a]
    status, out, _ = run(capsys, "switches", "drain", b)
    assert "warning: every configured switch is draining: requests answer 11" in out
    status, out, _ = run(capsys, "switches", "list")
    assert [line.split()[-1] for line in out.splitlines()[1:]] == ["yes", "yes"]
    assert run(capsys, "switches", "undrain", a)[:2] == (0, f"{a}: takes calls again\n")
    assert run(capsys, "switches", "undrain", a)[:2] == (0, f"{a}: was not draining\n")


def test_switches_unknown_name_names_the_configured_ones(cli_env, capsys) -> None:
    store, (a, b) = cli_env
    status, out, err = run(capsys, "switches", "drain", "fs9:8021")
    assert (status, out) == (1, "")
    assert err == (f"c2c: no switch 'fs9:8021' in C2C_SWITCHES; the configured switches are: "
                   f"{a}, {b}\n")
    assert store.switch_states.all() == []
    assert run(capsys, "switches", "undrain", "")[0] == 1


def test_switches_before_the_schema_is_upgraded(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("C2C_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    status, _, err = run(capsys, "switches", "list")
    assert status == 1 and "run `c2c db upgrade`" in err


def test_the_liveness_setting() -> None:
    assert Config.from_env({}).esl_liveness_seconds == 45.0
    assert Config.from_env({"C2C_ESL_LIVENESS_SECONDS": "0.5"}).esl_liveness_seconds == 0.5
    for bad in ("0", "-1", "soon", "7200"):
        with pytest.raises(ConfigError, match="C2C_ESL_LIVENESS_SECONDS"):
            Config.from_env({"C2C_ESL_LIVENESS_SECONDS": bad})
    # the probe keeps an idle connection from ever looking silent
    assert probe_interval(45.0) == 5.0 and probe_interval(0.9) == pytest.approx(0.3)

"""`/healthz` (the process answers) and `/readyz` (the store answers and a switch is live and can
take calls), in-process on a real store and the simulator."""

from __future__ import annotations

from collections.abc import Iterator

import gevent
import pytest

from tests.support.app_harness import AppHarness
from tests.support.processes import free_port

UP = {"state": "connected", "connected": True, "live": True, "usable": True, "why": None,
      "draining": False, "sessions": 0, "max_sessions": 10_000}
DOWN = {"state": "reconnecting", "connected": False, "live": False, "usable": False,
        "why": "not connected", "draining": False}


def switch_json(result, name: str) -> dict:
    """The switch's entry, without its figures when it never answered a status probe."""
    entry = dict(result.json["switches"][name])
    if entry["sessions"] is None and entry["max_sessions"] is None:
        del entry["sessions"], entry["max_sessions"]
    return entry


@pytest.fixture
def h(store_url: str) -> Iterator[AppHarness]:
    with AppHarness(store_url) as harness:
        yield harness


def test_healthz_is_200(h):
    result = h.request("GET", "/healthz")
    assert result.status_code == 200
    assert result.text == "ok"


def test_readyz_is_200_when_store_and_switch_are_fine(h):
    result = h.request("GET", "/readyz")
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/json"
    body = dict(result.json)
    database = body.pop("database")
    assert body == {"ready": True, "store": "ok", "switches": {h.connection.name: UP}}
    # Where this worker's connections go: MariaDB's host (the only one, so the preferred one).
    if h.store.engine.dialect.name == "sqlite":
        assert database == {"host": None, "preferred": True}
    else:
        url = h.store.engine.url
        assert database == {"host": f"{url.host}:{url.port or 3306}", "preferred": True}


def test_readyz_is_503_when_the_switch_goes_away_and_200_when_it_is_back(h):
    h.switch.stop()
    h.wait_until(lambda: h.request("GET", "/readyz").status_code == 503, 5, "readyz 503")
    result = h.request("GET", "/readyz")
    assert result.json["ready"] is False
    assert result.json["store"] == "ok"
    entry = switch_json(result, h.connection.name)
    assert entry.pop("sessions") == 0  # the last figures it gave stay on show
    assert entry.pop("max_sessions") == 10_000
    assert entry == {**DOWN, "why": "shutting down"}  # it said so as it went (recording 15)
    assert h.request("GET", "/healthz").status_code == 200  # the process itself is fine
    h.switch.start()  # same port
    h.wait_until(lambda: h.request("GET", "/readyz").status_code == 200, 10, "readyz 200 again")


def test_readyz_is_503_with_no_switch_ever_reachable(store_url):
    with AppHarness(store_url, start_switch=False) as h:
        result = h.request("GET", "/readyz")
        assert result.status_code == 503
        assert result.json["ready"] is False and result.json["store"] == "ok"
        assert switch_json(result, h.connection.name) == DOWN


def test_readyz_is_503_when_the_store_is_down():
    url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/c2c"
    with AppHarness(url, upgrade=False) as h:
        result = h.request("GET", "/readyz")
        assert result.status_code == 503
        assert result.json["ready"] is False
        assert result.json["store"] == "unreachable"
        assert result.json["switches"] == {h.connection.name: UP}
        assert h.request("GET", "/healthz").status_code == 200


def test_readyz_is_503_while_the_only_switch_is_drained(h):
    h.store.switch_states.set_draining(h.connection.name, True, 0.0)
    h.runtime.switches.refresh()  # what every worker does every couple of seconds
    result = h.request("GET", "/readyz")
    assert result.status_code == 503
    entry = result.json["switches"][h.connection.name]
    assert (entry["connected"], entry["live"], entry["usable"]) == (True, True, False)
    assert (entry["why"], entry["draining"]) == ("draining", True)
    h.store.switch_states.set_draining(h.connection.name, False, 0.0)
    h.runtime.switches.refresh()
    assert h.request("GET", "/readyz").status_code == 200


def test_readyz_says_live_false_for_a_switch_that_stopped_answering(store_url):
    with AppHarness(store_url, esl_timeout=0.3) as h:
        connection = h.connection
        h.switch.faults.stall = True  # a frozen host: reads commands, answers nothing
        waiting = gevent.spawn(connection.api, "status", timeout=5.0)
        h.wait_until(lambda: h.request("GET", "/readyz").status_code == 503, 5, "readyz 503")
        entry = h.request("GET", "/readyz").json["switches"][connection.name]
        # connected or already given up, but in no case live
        assert entry["live"] is False and entry["usable"] is False
        waiting.kill()

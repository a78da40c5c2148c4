"""`/healthz` (the process answers) and `/readyz` (the store and at least one switch reachable),
in-process on a real store and the simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.app_harness import AppHarness
from tests.support.processes import free_port


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
    assert result.json == {
        "ready": True,
        "store": "ok",
        "switches": {h.connection.name: "connected"},
    }


def test_readyz_is_503_when_the_switch_goes_away_and_200_when_it_is_back(h):
    h.switch.stop()
    h.wait_until(lambda: h.request("GET", "/readyz").status_code == 503, 5, "readyz 503")
    result = h.request("GET", "/readyz")
    assert result.json["ready"] is False
    assert result.json["store"] == "ok"
    assert result.json["switches"] == {h.connection.name: "reconnecting"}
    assert h.request("GET", "/healthz").status_code == 200  # the process itself is fine
    h.switch.start()  # same port
    h.wait_until(lambda: h.request("GET", "/readyz").status_code == 200, 10, "readyz 200 again")


def test_readyz_is_503_with_no_switch_ever_reachable(store_url):
    with AppHarness(store_url, start_switch=False) as h:
        result = h.request("GET", "/readyz")
        assert result.status_code == 503
        assert result.json["ready"] is False and result.json["store"] == "ok"
        assert result.json["switches"] == {h.connection.name: "reconnecting"}


def test_readyz_is_503_when_the_store_is_down():
    url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/c2c"
    with AppHarness(url, upgrade=False) as h:
        result = h.request("GET", "/readyz")
        assert result.status_code == 503
        assert result.json["ready"] is False
        assert result.json["store"] == "unreachable"
        assert result.json["switches"] == {h.connection.name: "connected"}
        assert h.request("GET", "/healthz").status_code == 200

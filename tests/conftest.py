"""Shared fixtures: a store on SQLite and on MySQL/MariaDB.

``store_url`` is parametrized over both backends and names a fresh, empty, uniquely named
database: a temporary SQLite file, or ``c2c_test_<random>`` created on the server given by
C2C_TEST_MYSQL_URL (default mysql+pymysql://root@127.0.0.1:3306) and dropped afterwards. Creating
and upgrading a MariaDB database takes a few tens of milliseconds, so every test gets its own.

When the MySQL server cannot be reached, the MySQL variants are skipped, unless the environment
says CI (CI=true), where they fail instead: CI must never pass by skipping the real database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import gevent
import pymysql
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from c2c.numbers import PhoneNumber
from c2c.store import NewCall, Store, make_engine
from tests.support.mysql import server_connection, temporary_database

MYSQL_SERVER_URL = os.environ.get("C2C_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The suite runs on two pytest-xdist workers (setup.cfg). The ``slow`` tests (each starts
    gunicorn, simulators, a Galera cluster or a browser and times what they do) form one group:
    they run one after another on one worker, never two such deployments at once on two cores,
    while the other worker takes the unit and component tests. They come first, so that the
    longest chain starts at once (before xdist reads the group from the node id: tryfirst)."""
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("deployments"))
    items.sort(key=lambda item: item.get_closest_marker("xdist_group") is None)  # stable


@pytest.fixture(autouse=True)
def _gevent_clock_now() -> None:
    """gevent's loop caches the time at its last turn, and a timer counts from that. After a test
    that blocked this process for seconds without the hub turning (a deployment's subprocesses,
    real sleeps), a gevent timeout set by the next test would start in the past and fire at
    once: the loop's time is brought up to date before each test."""
    gevent.get_hub().loop.update_now()


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """The MySQL server URL (no database), or skip (fail under CI) if it is unreachable."""
    try:
        server_connection(MYSQL_SERVER_URL).close()
    except pymysql.MySQLError as exc:
        message = f"MySQL/MariaDB at {make_url(MYSQL_SERVER_URL).host} unreachable: {exc}"
        if IN_CI:
            pytest.fail(message + " (CI is set: the MySQL tests must run)")
        pytest.skip(message)
    return MYSQL_SERVER_URL


@pytest.fixture
def mysql_url(mysql_server: str) -> Iterator[str]:
    """A fresh, empty MySQL database, dropped after the test."""
    with temporary_database(mysql_server, "c2c_test_") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c2c.sqlite3'}"
    return request.getfixturevalue("mysql_url")


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> Store:
    """A store on an upgraded (created and seeded) database."""
    store = Store(engine)
    store.upgrade()
    return store


CallFactory = Callable[..., NewCall]


@pytest.fixture
def make_call() -> CallFactory:
    """Build a NewCall: make_call(account_id, caller="15552104427", callee="447700900123", ...).

    Numbers are given as E.164 digits; a leading "1" is split as NANP, "44" as the UK.
    """

    def build(
        account_id: int,
        caller: str = "15552104427",
        callee: str = "442071234567",
        *,
        max_duration: int | None = None,
        callback_url: str | None = None,
        secret: str = "",
        switch: str = "fs1:8021",
    ) -> NewCall:
        return NewCall(
            id=str(uuid.uuid4()),
            account_id=account_id,
            caller=split_e164(caller),
            callee=split_e164(callee),
            caller_id=caller[-10:],
            callback_url=callback_url,
            secret=secret,
            max_duration=max_duration,
            switch=switch,
            job_uuid=str(uuid.uuid4()),
            caller_uuid=str(uuid.uuid4()),
            callee_uuid=str(uuid.uuid4()),
        )

    return build


def split_e164(digits: str) -> PhoneNumber:
    for code in ("1", "44"):
        if digits.startswith(code):
            return PhoneNumber(code, digits[len(code) :])
    return PhoneNumber(digits[:2], digits[2:])


# Settings the accept tests use unless they say otherwise.
ACCEPT_DEFAULTS = {
    "flood_seconds": 60,
    "max_call_minutes": 120,
    "ring_timeout": 30,
    "settle_grace": 120,
}

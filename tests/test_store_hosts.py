"""A database URL with several hosts, and the choice of host for each new connection (pure:
a fake driver stands in for pymysql.connect; tests/test_galera.py does it with real nodes)."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest

from c2c.config import Config
from c2c.errors import ConfigError, StoreError
from c2c.store import make_engine
from c2c.store.hosts import AVOID_SECONDS, Host, HostList, split_hosts


def test_split_hosts() -> None:
    single, hosts = split_hosts("mysql+pymysql://u:p%40w@db1:3307,db2,[::1]:3309/c2c?charset=x")
    assert single == "mysql+pymysql://u:p%40w@db1:3307/c2c?charset=x"
    assert hosts == [Host("db1", 3307), Host("db2", 3306), Host("::1", 3309)]
    assert split_hosts("mysql+pymysql://root@127.0.0.1/c2c")[1] == [Host("127.0.0.1", 3306)]
    for bad in ("mysql+pymysql://root@a,,b/c2c", "mysql+pymysql://root@a:x/c2c",
                "mysql+pymysql://root@a:99999/c2c", "nothing"):
        with pytest.raises(ValueError):
            split_hosts(bad)


def test_a_bad_host_list_is_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="C2C_DATABASE_URL"):
        Config.from_env({"C2C_DATABASE_URL": "mysql+pymysql://root@a:1,b:nope/c2c"})
    with pytest.raises(StoreError, match="bad database URL"):
        make_engine("mysql+pymysql://root@a:1,/c2c")


class FakeServer:
    """What a server answers to HostList's checks."""

    def __init__(self, wsrep_on: int | None, ready: str = "ON", state: int = 4) -> None:
        self.wsrep_on, self.ready, self.state = wsrep_on, ready, state
        self.statements: list[str] = []
        self.closed = False
        self._rows: list[Any] = []

    def cursor(self) -> FakeServer:
        return self

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, statement: str) -> None:
        self.statements.append(statement)
        if statement == "SELECT @@wsrep_on":
            if self.wsrep_on is None:
                raise pymysql.err.OperationalError(1193, "Unknown system variable 'wsrep_on'")
            self._rows = [(self.wsrep_on,)]
        elif statement.startswith("SHOW STATUS"):
            self._rows = [("wsrep_ready", self.ready), ("wsrep_local_state", str(self.state))]

    def fetchone(self) -> Any:
        return self._rows[0]

    def fetchall(self) -> Any:
        return self._rows

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class Network:
    def __init__(self, servers: dict[int, FakeServer | None]) -> None:
        self.servers = servers
        self.tried: list[int] = []

    def connect(self, host: str, port: int, **kwargs: Any) -> FakeServer:
        self.tried.append(port)
        server = self.servers.get(port)
        if server is None:
            raise pymysql.err.OperationalError(2003, f"Can't connect to {host}:{port}")
        return server


HOSTS = [Host("127.0.0.1", 1), Host("127.0.0.1", 2), Host("127.0.0.1", 3)]


def test_the_first_host_that_can_serve() -> None:
    network = Network({1: None, 2: FakeServer(1, ready="OFF"), 3: FakeServer(1)})
    now = [100.0]
    hosts = HostList(HOSTS, {}, connect=network.connect, clock=lambda: now[0])
    conn = hosts.connect()
    assert conn is network.servers[3] and hosts.current == HOSTS[2] and not hosts.preferred
    assert network.tried == [1, 2, 3]
    assert network.servers[2].closed  # not ready: not used
    assert "SET SESSION wsrep_sync_wait = 1" in network.servers[3].statements
    # The failed ones are tried last for a while, then first again.
    network.tried.clear()
    hosts.connect()
    assert network.tried == [3]
    now[0] += AVOID_SECONDS + 1
    network.servers[1] = FakeServer(1)
    network.tried.clear()
    assert hosts.connect() is network.servers[1] and hosts.preferred
    assert network.tried == [1]


def test_a_plain_server_and_a_node_that_is_not_synced() -> None:
    plain = HostList(HOSTS[:1], {}, connect=Network({1: FakeServer(None)}).connect)
    assert plain.connect() is not None  # MySQL: no wsrep_on at all
    mariadb = FakeServer(0)
    assert HostList(HOSTS[:1], {}, connect=Network({1: mariadb}).connect).connect() is mariadb
    assert not any("wsrep_sync_wait" in s for s in mariadb.statements)
    # A donor (2) is used only when no Synced node answers.
    donor, synced = FakeServer(1, state=2), FakeServer(1)
    assert HostList(HOSTS[:2], {}, connect=Network({1: donor, 2: synced}).connect
                    ).connect() is synced
    assert donor.closed
    lonely = FakeServer(1, state=2)
    assert HostList(HOSTS[:1], {}, connect=Network({1: lonely}).connect).connect() is lonely


def test_no_host_can_serve() -> None:
    network = Network({1: None, 2: FakeServer(1, ready="OFF")})
    with pytest.raises(pymysql.err.OperationalError, match="no database host can serve"):
        HostList(HOSTS[:2], {}, connect=network.connect).connect()

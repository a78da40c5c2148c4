"""The engine: lazy connections, SQLite locking and pragmas, MySQL session settings, errors."""

from __future__ import annotations

import ssl
import threading
import time

import pytest
from sqlalchemy import text

from c2c.errors import StoreError
from c2c.store import Store, driver, make_engine
from c2c.store.db import Database
from c2c.store.engine import MYSQL_IO_TIMEOUT


def test_making_an_engine_opens_nothing():
    # Nothing listens on port 1: only the first use can notice.
    engine = make_engine("mysql+pymysql://root@127.0.0.1:1/nothing")
    store = Store(engine)
    started = time.monotonic()
    with pytest.raises(StoreError):
        store.ping()
    assert time.monotonic() - started < 10
    with pytest.raises(StoreError):
        store.accounts.find_by_key("k")


def test_unsupported_or_bad_urls_are_store_errors():
    with pytest.raises(StoreError):
        make_engine("postgresql://localhost/x")
    with pytest.raises(StoreError):
        make_engine("not a url")


def test_a_missing_schema_is_a_store_error(engine):
    with pytest.raises(StoreError, match="database error"):
        Store(engine).accounts.list()


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    engine.dispose()


def test_sqlite_writers_take_turns_and_readers_do_not_wait(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first, second = Database(make_engine(url)), Database(make_engine(url))
    with first.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
    order: list[str] = []
    holding = threading.Event()

    def hold_the_write_lock() -> None:
        with first.write():  # BEGIN IMMEDIATE: the lock is taken here, before any write
            holding.set()
            time.sleep(0.3)
            order.append("first commits")

    thread = threading.Thread(target=hold_the_write_lock)
    thread.start()
    assert holding.wait(5)
    with second.read() as conn:  # WAL: a reader does not wait for the writer
        conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
        order.append("read")
    with second.write() as conn:
        order.append("second writes")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    thread.join()
    assert order == ["read", "first commits", "second writes"]


@pytest.mark.mysql
def test_mysql_session_settings(mysql_url):
    engine = make_engine(mysql_url)
    try:
        with engine.connect() as conn:
            isolation = conn.execute(text("SELECT @@SESSION.tx_isolation")).scalar()
            charset = conn.execute(text("SELECT @@SESSION.character_set_client")).scalar()
            lock_wait = conn.execute(text("SELECT @@SESSION.innodb_lock_wait_timeout")).scalar()
        assert isolation == "READ-COMMITTED"
        assert charset == "utf8mb4"
        assert int(lock_wait) == 10
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_mysql_url_timeouts_override_the_defaults(mysql_url):
    engine = make_engine(mysql_url + "?read_timeout=7")
    try:
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection._read_timeout == 7
            assert conn.connection.dbapi_connection._write_timeout == MYSQL_IO_TIMEOUT
    finally:
        engine.dispose()


def test_an_update_counts_the_rows_it_matched(engine):
    """CLIENT.FOUND_ROWS, as SQLAlchemy asks for it (the pool's own connector must ask too):
    an UPDATE that changes nothing still reports its row, which several writes rely on."""
    Store(engine).upgrade()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO coverage_countries (country_code, allowed) "
                          "VALUES ('999', 1)"))
        same = conn.execute(text("UPDATE coverage_countries SET allowed = 1 "
                                 "WHERE country_code = '999'"))
        assert same.rowcount == 1


@pytest.mark.mysql
def test_mysql_connections_share_one_opportunistic_tls_context(mysql_url):
    """pymysql builds an SSLContext (the system's CA store loaded: ~25 ms of CPU) per
    connection when no TLS option is given; ours is built once per process. TLS asked for in
    the URL still gets a context of its own, as pymysql builds it."""
    engine = make_engine(mysql_url)
    try:
        with engine.connect() as first, engine.connect() as second:
            a = first.connection.dbapi_connection
            b = second.connection.dbapi_connection
            assert isinstance(a, driver.Connection) and a is not b
            assert a.ctx is b.ctx and a.ctx.verify_mode == ssl.CERT_NONE
            assert first.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    asked = [driver.Connection(host="127.0.0.1", defer_connect=True, ssl={"verify_mode": "none"})
             for _ in range(2)]
    assert asked[0].ctx is not asked[1].ctx and asked[0]._ssl_required

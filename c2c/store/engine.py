"""Building the SQLAlchemy engine for the store: SQLite (one host) or MySQL/MariaDB (many hosts).

Nothing here touches the database: engines connect lazily, on the first checkout, so an engine
made before gunicorn forks carries no open connection into the workers.
"""

from __future__ import annotations

import logging
import select
import sqlite3
import time
from typing import Any, cast

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.pool import NullPool, StaticPool

from c2c.errors import StoreError
from c2c.store.hosts import Host, HostList, split_hosts

log = logging.getLogger(__name__)

# Execution option naming how a SQLite transaction begins; see _install_sqlite_begin.
SQLITE_BEGIN = "c2c_sqlite_begin"

SQLITE_BUSY_TIMEOUT = 10.0  # seconds a writer waits for another writer's lock
MYSQL_CONNECT_TIMEOUT = 5  # seconds
MYSQL_IO_TIMEOUT = 15  # seconds for one read or write (above the lock wait, below a request's patience)
MYSQL_LOCK_WAIT_TIMEOUT = 10  # seconds a statement waits for a row lock (server default is 50)
# A gevent worker serves many requests at once: keep every connection it opens (at most 15, as
# before with 5 + 10 overflow). Overflow connections are closed when returned, so under load they
# were opened and closed per request: a TCP and auth handshake plus PyMySQL building a TLS
# context each time (bench/: 12-21% of a worker's CPU on the reject path).
MYSQL_POOL_SIZE = 15
MYSQL_POOL_OVERFLOW = 0
MYSQL_POOL_TIMEOUT = 10  # seconds to wait for a free pooled connection
MYSQL_POOL_RECYCLE = 1800  # seconds; under the server's wait_timeout
# A pooled connection idle longer than this is pinged before use; a busier one is only checked
# for a close the server already sent (see _install_mysql_liveness).
MYSQL_PING_AFTER_IDLE = 10.0  # seconds
_SERVER_STATUS_IN_TRANS = 1  # the OK packet's flag: a transaction is open on the server


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (sqlite:///PATH or mysql+pymysql://...), configured for c2c. A
    MySQL URL may name several hosts, host1:port1,host2:port2 (c2c.store.hosts)."""
    try:
        single, hosts = split_hosts(url) if url.startswith("mysql") else (url, [])
        parsed = make_url(single)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"bad database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, in_memory=parsed.database in (None, "", ":memory:"))
    if parsed.get_backend_name() == "mysql":
        return _mysql_engine(single, dict(parsed.query), hosts)
    raise StoreError(f"unsupported database {parsed.get_backend_name()!r}; use sqlite or mysql")


def _sqlite_engine(url: str, in_memory: bool) -> Engine:
    # NullPool: a file connection is cheap to open, nothing is shared between greenlets or
    # threads, and nothing survives a fork. An in-memory database only exists on its one
    # connection, so that case (tests) keeps a single shared connection instead.
    pool: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {"poolclass": NullPool}
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False},
        **pool,
    )
    _install_sqlite_pragmas(engine)
    _install_sqlite_begin(engine)
    return engine


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop pysqlite from issuing its own BEGIN (it defers it to the first write, which
        # breaks both isolation and our lock ordering); _install_sqlite_begin emits it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
            # WAL lets readers run while one writer writes; the setting sticks to the file.
            _set_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()


def _set_wal(cursor: Any) -> None:
    """Switch the file to WAL unless it is already. Switching needs the file to itself, and
    while several processes open a new database at once (gunicorn's workers, concurrent
    upgrades) SQLite can answer "database is locked" at once, without its busy handler: try
    again for up to the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _install_sqlite_begin(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock at BEGIN (IMMEDIATE): a deferred transaction that reads
        # and then writes can fail with SQLITE_BUSY without waiting. This makes every write
        # transaction, in every process, run one at a time. Read-only work asks for DEFERRED.
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _mysql_engine(url: str, query: dict[str, Any], hosts: list[Host]) -> Engine:
    # Timeouts given in the URL's query string win over these defaults.
    connect_args: dict[str, Any] = {
        key: value
        for key, value in {
            "connect_timeout": MYSQL_CONNECT_TIMEOUT,
            "read_timeout": MYSQL_IO_TIMEOUT,
            "write_timeout": MYSQL_IO_TIMEOUT,
            "charset": "utf8mb4",
        }.items()
        if key not in query
    }
    connect_args["init_command"] = (
        f"SET SESSION innodb_lock_wait_timeout={MYSQL_LOCK_WAIT_TIMEOUT}, time_zone='+00:00'"
    )
    # The pool connects through the host list (one host or several), with the arguments
    # SQLAlchemy would have given the driver: the URL's user, password, database and options.
    parsed = make_url(url)
    # With its driver loaded, as create_engine makes it: only then does the dialect ask for
    # CLIENT.FOUND_ROWS (an UPDATE's rowcount counts the rows it matched, changed or not).
    dialect_class = parsed.get_dialect()
    dialect = cast(Any, dialect_class)(dbapi=dialect_class.import_dbapi())
    _, driver_args = dialect.create_connect_args(parsed)
    for key in ("host", "port"):
        driver_args.pop(key, None)
    host_list = HostList(hosts, {**driver_args, **connect_args})
    engine = create_engine(
        url,
        creator=host_list,
        isolation_level="READ COMMITTED",
        # Both replaced by the listeners below, which do the same job without a round trip per
        # transaction: a ping and a ROLLBACK were 4 of an accept's 14 round trips (bench/).
        pool_pre_ping=False,
        pool_reset_on_return=None,
        pool_recycle=MYSQL_POOL_RECYCLE,
        pool_size=MYSQL_POOL_SIZE,
        max_overflow=MYSQL_POOL_OVERFLOW,
        pool_timeout=MYSQL_POOL_TIMEOUT,
    )
    _install_mysql_reset(engine)
    _install_mysql_liveness(engine)
    _install_node_loss(engine)
    engine.c2c_hosts = host_list  # type: ignore[attr-defined]  # readyz: where we are
    return engine


# Errors after which a connection's server cannot serve it: the pool drops its connections and
# the next ones go through the host list again. 1047: a Galera node outside the primary
# component ("WSREP has not yet prepared node for application use"); 1053: shutting down.
NODE_LOST_ERRORS = frozenset({1047, 1053})


def _install_node_loss(engine: Engine) -> None:
    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        args = getattr(context.original_exception, "args", None) or (None,)
        if args[0] in NODE_LOST_ERRORS:
            context.is_disconnect = True


def database_host(engine: Engine) -> tuple[str | None, bool]:
    """The host this process's last new connection went to, and whether it is the first of
    the list (None for SQLite)."""
    hosts = getattr(engine, "c2c_hosts", None)
    if hosts is None or hosts.current is None:
        return None, True
    return hosts.current.name, hosts.preferred


def _install_mysql_reset(engine: Engine) -> None:
    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: Any) -> None:
        # Roll back only what is still open. The server reports in every OK packet whether a
        # transaction is open; after engine.begin()'s COMMIT it is not, and a ROLLBACK would be
        # a wasted round trip.
        if state.transaction_was_reset:
            return
        status = getattr(dbapi_connection, "server_status", None)
        if status is None or status & _SERVER_STATUS_IN_TRANS:
            dbapi_connection.rollback()


def _install_mysql_liveness(engine: Engine) -> None:
    """Check a pooled connection at checkout without a round trip while it is in steady use.

    When MariaDB restarts or kills a connection it closes the socket, which then reads as
    ready (EOF, or an error packet) although we sent nothing: that is caught by a zero-timeout
    poll. A connection idle for longer than MYSQL_PING_AFTER_IDLE gets a real ping, for what a
    poll cannot see (a peer gone without a FIN). A DisconnectionError here makes the pool
    discard the connection and check out another (SQLAlchemy's documented pattern).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["c2c_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("c2c_idle_since")
        if idle_since is None:
            return  # just opened
        sock = getattr(dbapi_connection, "_sock", None)
        if sock is None:
            raise DisconnectionError("connection already closed")
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError) as exc:
            raise DisconnectionError(f"connection unusable: {exc}") from exc
        if readable:
            raise DisconnectionError("the server closed the connection")
        if time.monotonic() - idle_since > MYSQL_PING_AFTER_IDLE:
            try:
                dbapi_connection.ping(reconnect=False)
            except Exception as exc:  # any failure: the connection is not to be used
                raise DisconnectionError(f"ping failed: {exc}") from exc


def is_mysql(engine: Engine) -> bool:
    return engine.dialect.name in ("mysql", "mariadb")

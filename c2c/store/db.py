"""Short transactions over the engine, with database errors turned into StoreError.

Every store method runs in one of these: ``write()`` (SQLite: BEGIN IMMEDIATE; MySQL: an ordinary
READ COMMITTED transaction in which rows are locked explicitly) or ``read()`` (SQLite: BEGIN
DEFERRED, so a reader never waits for a writer under WAL).

``grouped()`` makes the store calls of one greenlet join a single write transaction instead (the
event listener applies a round of events so: one COMMIT for the round, not one per event);
``after_commit()`` defers what must wait until that transaction is committed.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import gevent
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from c2c.errors import StoreError
from c2c.store.engine import SQLITE_BEGIN, is_mysql

log = logging.getLogger(__name__)

T = TypeVar("T")

# InnoDB rolled the whole transaction back: safe to run it again. On a Galera cluster the same
# error says a transaction lost a certification conflict to one committed through another node
# (at COMMIT or at any statement, when a replicated write aborted it): also rolled back whole.
MYSQL_DEADLOCK = 1213
DEADLOCK_ATTEMPTS = 5
# Before attempt n, up to n * this many seconds at random: two hosts that collided on a hot row
# (an account both reserve from) do not collide again in step.
DEADLOCK_BACKOFF = 0.01


def describe_db_error(exc: BaseException) -> str:
    """One line about a database error, without the statement's parameters."""
    orig = getattr(exc, "orig", None)
    text = f"{type(orig).__name__}: {orig}" if orig is not None else f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0][:300] if text else type(exc).__name__


@contextmanager
def translating_errors() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        log.debug("store error: %s", describe_db_error(exc))
        raise StoreError(f"database error: {describe_db_error(exc)}") from exc


def is_deadlock(exc: BaseException) -> bool:
    if not isinstance(exc, OperationalError):
        return False
    args: tuple[object, ...] = getattr(exc.orig, "args", None) or (None,)
    return args[0] == MYSQL_DEADLOCK


class _Group:
    """A write transaction the store calls of one greenlet join (Database.grouped)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.after_commit: list[Callable[[], None]] = []
        # Rows this transaction locked and knows as they now stand, by key (Database.locked_row).
        self.rows: dict[object, dict[str, Any]] = {}


class Database:
    """The engine plus the transaction helpers the query modules share."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_mysql = is_mysql(engine)
        self._groups: dict[object, _Group] = {}  # greenlet -> the transaction it is in

    def _group(self) -> _Group | None:
        return self._groups.get(gevent.getcurrent()) if self._groups else None

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Every store call this greenlet makes in the block joins one write transaction,
        committed when the block ends (rolled back, and the error raised as StoreError, if it
        fails): each call's statements as they were, without a COMMIT each. A deadlock inside
        aborts the whole group; nothing is retried here (the caller runs the group again or its
        parts one by one). Inside a group already: joins it. The block must not wait for another
        greenlet's store call: that one would wait for this transaction's locks."""
        me = gevent.getcurrent()
        if me in self._groups:
            yield
            return
        with translating_errors(), self.engine.begin() as conn:
            group = self._groups[me] = _Group(conn)
            try:
                yield
            finally:
                del self._groups[me]
        for hook in group.after_commit:
            try:
                hook()
            except Exception:  # committed: the others still run
                log.exception("after a grouped transaction's commit")

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once what this greenlet wrote is committed: at once outside a group,
        after its COMMIT inside one (not at all if the group fails)."""
        group = self._group()
        if group is None:
            hook()
        else:
            group.after_commit.append(hook)

    def locked_row(self, key: object) -> dict[str, Any] | None:
        """Inside a group: the row ``keep_locked_row`` left under ``key``, if no other write
        came since (a copy); else None. Lets a transaction skip reading again a row it locked
        and has changed only through the same path (two legs' ends of one call)."""
        group = self._group()
        if group is None or key not in group.rows:
            return None
        return dict(group.rows[key])

    def keep_locked_row(self, key: object, row: dict[str, Any]) -> None:
        """Inside a group: remember ``row``, locked by this transaction and as it now stands,
        until the next write of any other kind (which forgets every row kept)."""
        group = self._group()
        if group is not None:
            group.rows[key] = dict(row)

    def _forget_rows(self, group: _Group) -> None:
        if group.rows:
            group.rows.clear()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        group = self._group()
        if group is not None:
            self._forget_rows(group)
            yield group.conn
            return
        with translating_errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        group = self._group()
        if group is not None:
            yield group.conn
            return
        with translating_errors(), self.engine.connect() as conn:
            conn.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
            with conn.begin():
                yield conn

    def write_retrying(self, work: Callable[[Connection], T], *,
                       keeps_rows: bool = False) -> T:
        """Run ``work`` in a write transaction, again if MySQL picked it as a deadlock victim.
        Inside a group: once, in the group's transaction (a deadlock aborts the group), and the
        rows kept are forgotten unless ``keeps_rows`` (``work`` changes none of them but its
        own, whose keeping is its caller's)."""
        group = self._group()
        if group is not None:
            if not keeps_rows:
                self._forget_rows(group)
            return work(group.conn)
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except DBAPIError as exc:
                if is_deadlock(exc) and attempt < DEADLOCK_ATTEMPTS:
                    log.info("deadlock or certification conflict, retrying the transaction "
                             "(attempt %d)", attempt)
                    time.sleep(random.uniform(0, attempt * DEADLOCK_BACKOFF))
                    continue
                raise StoreError(f"database error: {describe_db_error(exc)}") from exc
            except SQLAlchemyError as exc:
                raise StoreError(f"database error: {describe_db_error(exc)}") from exc
        raise AssertionError("unreachable")

"""Versioned schema migrations, recorded in c2c_schema_version.

A fresh database is built from schema.py as it stands (create_all), seeded with the default
coverage, and stamped with every version: the steps after version 1 exist to bring an *older*
database up to what schema.py describes, so each later step must leave an old database exactly
as create_all would make a new one (add a column here, an index there, and the same in schema.py).

Two processes upgrading at once take turns: MySQL through GET_LOCK, SQLite through the write lock
of one BEGIN IMMEDIATE transaction (SQLite DDL is transactional). On Galera GET_LOCK holds on one
node only: two upgrades through two nodes may both start, and the one that loses the race finds
the schema current and says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, func, insert, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

from c2c.errors import StoreError
from c2c.store import schema
from c2c.store.coverage_defaults import add_missing_defaults, seed_default_coverage
from c2c.store.db import translating_errors
from c2c.store.engine import SQLITE_BEGIN, is_mysql

log = logging.getLogger(__name__)

MYSQL_LOCK_NAME = "c2c_schema_upgrade"
MYSQL_LOCK_TIMEOUT = 60  # seconds to wait for another process's upgrade


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _initial(conn: Connection) -> None:
    schema.metadata.create_all(conn)
    seed_default_coverage(conn)


def _drop_calls_account_foreign_key(conn: Connection) -> None:
    # MySQL only (schema.py keeps it on SQLite, which has no row locks): the foreign key check of
    # every INSERT INTO calls took a shared lock on the account's row.
    if not is_mysql(conn.engine):
        return
    for key in inspect(conn).get_foreign_keys("calls"):
        if key["referred_table"] == "accounts" and key.get("name"):
            conn.execute(text(f"ALTER TABLE calls DROP FOREIGN KEY `{key['name']}`"))


def add_column_if_missing(conn: Connection, table: str, column: str, ddl_type: str) -> None:
    """ALTER TABLE ... ADD COLUMN, unless it is there already (a step re-run after a crash
    between its DDL and its version row, which MySQL cannot roll back)."""
    if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl_type} NULL"))


def create_table_if_missing(conn: Connection, table: str) -> None:
    if not inspect(conn).has_table(table):
        schema.metadata.tables[table].create(conn)


def _own_numbers_and_confirm(conn: Connection) -> None:
    create_table_if_missing(conn, "account_numbers")
    add_column_if_missing(conn, "accounts", "confirm", "BOOLEAN")
    add_column_if_missing(conn, "calls", "confirm", "VARCHAR(12)")


def create_index_if_missing(conn: Connection, table: str, index: str) -> None:
    if index not in {i["name"] for i in inspect(conn).get_indexes(table)}:
        next(i for i in schema.metadata.tables[table].indexes if i.name == index).create(conn)


def _switch_states_and_estimates(conn: Connection) -> None:
    create_table_if_missing(conn, "switch_states")
    for table, column in (("calls", "estimated"), ("calls", "alive_at"),
                          ("calls", "corrected_at"), ("ledger", "corrects")):
        # The type create_all gives this dialect (DOUBLE on MySQL, FLOAT on SQLite for times).
        ddl_type = schema.metadata.tables[table].c[column].type.compile(dialect=conn.dialect)
        add_column_if_missing(conn, table, column, ddl_type)
    create_index_if_missing(conn, "ledger", "uq_ledger_corrects")


def _progress_webhooks_and_idempotency(conn: Connection) -> None:
    for column in ("status_callback_url", "status_events", "hangup_requested_at"):
        ddl_type = schema.calls.c[column].type.compile(dialect=conn.dialect)
        add_column_if_missing(conn, "calls", column, ddl_type)
    create_table_if_missing(conn, "idempotency_keys")
    create_table_if_missing(conn, "progress_webhooks")


def _rates_limits_and_rotation(conn: Connection) -> None:
    """Credits become exact decimals kept as micro-credits (an integer, BIGINT on MySQL): every
    amount already stored is multiplied by 10**6 once; calls get their rates (1 credit per
    minute, what credits meant so far) and the credits they reserved or cost; accounts get their
    limits' counters. DDL first (MySQL commits it; each statement is safe to repeat), then the
    conversions in one transaction with the version row, so a crash cannot apply them twice."""
    mysql = is_mysql(conn.engine)
    if mysql:
        conn.execute(text("ALTER TABLE accounts MODIFY credits BIGINT NOT NULL, "
                          "MODIFY reserved BIGINT NOT NULL"))
        conn.execute(text("ALTER TABLE ledger MODIFY delta BIGINT NOT NULL, "
                          "MODIFY balance_after BIGINT NOT NULL"))
    added = {
        "accounts": ("max_concurrent", "max_per_minute", "daily_credits", "allow_ips",
                     "active_calls", "minute_window", "minute_count", "credits_day",
                     "day_credits", "previous_api_key_sha256", "previous_key_until",
                     "previous_webhook_secret", "previous_secret_until"),
        "ledger": ("rate", "caller_rate"),
        "calls": ("rate", "caller_rate", "reserved_credits", "caller_minutes", "charged"),
    }
    for table, columns in added.items():
        for column in columns:
            ddl_type = schema.metadata.tables[table].c[column].type.compile(dialect=conn.dialect)
            add_column_if_missing(conn, table, column, ddl_type)
    create_index_if_missing(conn, "accounts", "ix_accounts_previous_key")
    create_index_if_missing(conn, "ledger", "ix_ledger_created")
    create_table_if_missing(conn, "rates")
    if mysql:
        conn.commit()  # the DDL is in; what follows is one transaction with the version row
    micro = 10**6
    conn.execute(text(f"UPDATE accounts SET credits = credits * {micro}, "
                      f"reserved = reserved * {micro}, active_calls = (SELECT COUNT(*) FROM "
                      "calls WHERE calls.account_id = accounts.id AND calls.state <> 'ended')"))
    conn.execute(text(f"UPDATE ledger SET delta = delta * {micro}, "
                      f"balance_after = balance_after * {micro}"))
    conn.execute(text(f"UPDATE ledger SET rate = {micro} "
                      "WHERE kind = 'debit' OR corrects IS NOT NULL"))
    conn.execute(text(f"UPDATE calls SET rate = {micro}, reserved_credits = max_minutes * {micro}, "
                      f"charged = CASE WHEN state = 'ended' THEN COALESCE(minutes, 0) * {micro} "
                      "END"))
    # The shipped denials of premium and revenue-share ranges it has no rule for (an operator's
    # own rule for an area stays as it is).
    add_missing_defaults(conn)


def _widgets(conn: Connection) -> None:
    for table in ("widgets", "widget_counters", "widget_challenges", "site_secrets"):
        create_table_if_missing(conn, table)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tables and the default coverage", _initial),
    Migration(2, "no foreign key from calls to accounts on MySQL", _drop_calls_account_foreign_key),
    Migration(3, "accounts' own numbers; press 1 to connect", _own_numbers_and_confirm),
    Migration(4, "switch states (drain, holders' reports); estimated calls and their corrections",
              _switch_states_and_estimates),
    Migration(5, "progress webhooks; idempotent requests; hangup on request",
              _progress_webhooks_and_idempotency),
    Migration(6, "exact credits; rates; limits per key; key rotation",
              _rates_limits_and_rotation),
    Migration(7, "widgets: publishable ids, their abuse limits and challenges", _widgets),
)
LATEST_VERSION = MIGRATIONS[-1].version


def upgrade(engine: Engine) -> list[int]:
    """Create or upgrade the schema; returns the versions applied (empty when already current)."""
    with translating_errors():
        if is_mysql(engine):
            try:
                return _upgrade_mysql(engine)
            except (StoreError, SQLAlchemyError):
                # GET_LOCK holds on one Galera node only: an upgrade through another node at
                # the same time may have done the work (its CREATE TABLE or version row then
                # clashes with ours). Done is done; anything else is raised.
                if check_current(engine):
                    log.warning("schema: another process upgraded it meanwhile")
                    return []
                raise
        with engine.begin() as conn:  # BEGIN IMMEDIATE: one upgrader at a time
            return _apply_pending(conn, commit_each=False)


def current_version(engine: Engine) -> int:
    """The newest version recorded in the database (0 for an empty database)."""
    with translating_errors(), engine.connect() as conn:
        conn.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
        return _recorded_version(conn)


def check_current(engine: Engine) -> bool:
    """Whether the database is at LATEST_VERSION (False: run `c2c db upgrade`)."""
    return current_version(engine) == LATEST_VERSION


def _recorded_version(conn: Connection) -> int:
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    return int(conn.execute(select(func.max(schema.schema_version.c.version))).scalar() or 0)


def _upgrade_mysql(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        got = conn.execute(
            text("SELECT GET_LOCK(:name, :timeout)"),
            {"name": MYSQL_LOCK_NAME, "timeout": MYSQL_LOCK_TIMEOUT},
        ).scalar()
        conn.commit()
        if got != 1:
            raise StoreError(f"another schema upgrade held the lock for {MYSQL_LOCK_TIMEOUT}s")
        try:
            return _apply_pending(conn, commit_each=True)
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MYSQL_LOCK_NAME})
            conn.commit()


def _apply_pending(conn: Connection, commit_each: bool) -> list[int]:
    current = _recorded_version(conn)
    if current > LATEST_VERSION:
        raise StoreError(
            f"database schema version {current} is newer than this c2c ({LATEST_VERSION})"
        )
    # A fresh database gets schema.py as it stands, so it is stamped with every version at once.
    if current == 0:
        plan = [(MIGRATIONS[0], [m.version for m in MIGRATIONS])]
    else:
        plan = [(m, [m.version]) for m in MIGRATIONS if m.version > current]
    applied: list[int] = []
    for step, versions in plan:
        log.info("schema: applying version %d (%s)", step.version, step.description)
        step.apply(conn)
        now = time.time()
        conn.execute(
            insert(schema.schema_version), [{"version": v, "applied_at": now} for v in versions]
        )
        if commit_each:  # MySQL DDL commits anyway: record each step as soon as it is done
            conn.commit()
        applied.extend(versions)
    return applied

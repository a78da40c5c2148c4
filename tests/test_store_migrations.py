"""Schema creation and upgrades, on both backends."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect, select

from c2c.errors import StoreError
from c2c.store import make_engine, migrations, schema


def test_upgrade_creates_everything_then_does_nothing(engine):
    assert migrations.current_version(engine) == 0
    assert not migrations.check_current(engine)

    assert migrations.upgrade(engine) == [m.version for m in migrations.MIGRATIONS]
    assert migrations.upgrade(engine) == []
    assert migrations.check_current(engine)
    assert set(schema.metadata.tables) <= set(inspect(engine).get_table_names())


def test_version_one_seeds_the_default_coverage(engine):
    migrations.upgrade(engine)
    migrations.upgrade(engine)  # the second run must not seed twice
    with engine.connect() as conn:
        countries = conn.execute(select(schema.coverage_countries)).all()
        areas = conn.execute(select(schema.coverage_areas)).all()
    from c2c.store.coverage_defaults import DEFAULT_AREAS, DEFAULT_COUNTRIES
    assert sorted((cc, bool(ok)) for cc, ok in countries) == [(cc, True) for cc in DEFAULT_COUNTRIES]
    assert sorted((cc, p, bool(ok)) for cc, p, ok in areas) == sorted(
        (d.country_code, d.prefix, d.allowed) for d in DEFAULT_AREAS)
    assert ("1", "876", False) in {(cc, p, bool(ok)) for cc, p, ok in areas}  # Jamaica


def test_concurrent_upgrades_take_turns(store_url):
    engines = [make_engine(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run(engine):
        barrier.wait(timeout=10)
        try:
            results.append(migrations.upgrade(engine))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert sorted(results) == [[], [], [], [m.version for m in migrations.MIGRATIONS]]
        assert migrations.check_current(engines[0])
    finally:
        for e in engines:
            e.dispose()


def test_a_newer_database_is_refused(engine):
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(schema.schema_version.insert().values(version=999, applied_at=0.0))
    with pytest.raises(StoreError, match="newer"):
        migrations.upgrade(engine)


def test_calls_refer_to_accounts_by_foreign_key_on_sqlite_only(engine):
    migrations.upgrade(engine)
    keys = inspect(engine).get_foreign_keys("calls")
    referred = {key["referred_table"] for key in keys}
    assert ("accounts" in referred) == (engine.dialect.name == "sqlite")


@pytest.mark.mysql
def test_version_two_drops_the_calls_foreign_key_of_an_older_mysql_database(mysql_url):
    engine = make_engine(mysql_url)
    try:
        migrations.upgrade(engine)
        with engine.begin() as conn:  # back to what version 1 made
            conn.exec_driver_sql("ALTER TABLE calls ADD CONSTRAINT calls_ibfk_1 FOREIGN KEY "
                                 "(account_id) REFERENCES accounts (id)")
            conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 1))
        assert inspect(engine).get_foreign_keys("calls")
        assert migrations.upgrade(engine) == [2, 3, 4, 5, 6, 7]  # 3-7 find their changes made
        assert inspect(engine).get_foreign_keys("calls") == []
        assert migrations.check_current(engine)
    finally:
        engine.dispose()


def test_version_three_adds_own_numbers_and_confirm_to_a_version_two_database(engine):
    migrations.upgrade(engine)
    with engine.begin() as conn:  # back to what version 2 made
        conn.exec_driver_sql("DROP TABLE account_numbers")
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN confirm")
        conn.exec_driver_sql("ALTER TABLE accounts DROP COLUMN confirm")
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 2))
    assert migrations.upgrade(engine) == [3, 4, 5, 6, 7]  # 4-7 find their changes made
    inspector = inspect(engine)
    assert "account_numbers" in inspector.get_table_names()
    assert "confirm" in {c["name"] for c in inspector.get_columns("calls")}
    assert "confirm" in {c["name"] for c in inspector.get_columns("accounts")}
    assert migrations.check_current(engine)


def test_version_four_adds_switch_states_and_the_estimate_columns_to_a_version_three_database(
    engine,
):
    migrations.upgrade(engine)
    fresh = {c["name"]: c for c in inspect(engine).get_columns("calls")}
    with engine.begin() as conn:  # back to what version 3 made
        conn.exec_driver_sql("DROP TABLE switch_states")
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN estimated")
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN alive_at")
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 3))
    assert migrations.upgrade(engine) == [4, 5, 6, 7]  # 5-7 find their changes made
    inspector = inspect(engine)
    assert "switch_states" in inspector.get_table_names()
    upgraded = {c["name"]: c for c in inspector.get_columns("calls")}
    for column in ("estimated", "alive_at"):  # as create_all makes them
        assert upgraded[column]["nullable"] is True
        assert str(upgraded[column]["type"]) == str(fresh[column]["type"])
    assert migrations.check_current(engine)
    assert migrations.upgrade(engine) == []


def test_version_five_adds_progress_webhooks_and_idempotency_to_a_version_four_database(engine):
    migrations.upgrade(engine)
    fresh = {c["name"]: c for c in inspect(engine).get_columns("calls")}
    with engine.begin() as conn:  # back to what version 4 made
        conn.exec_driver_sql("DROP TABLE idempotency_keys")
        conn.exec_driver_sql("DROP TABLE progress_webhooks")
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN hangup_requested_at")
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN status_callback_url")
        conn.exec_driver_sql("ALTER TABLE calls DROP COLUMN status_events")
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 4))
    assert migrations.upgrade(engine) == [5, 6, 7]
    inspector = inspect(engine)
    assert {"idempotency_keys", "progress_webhooks"} <= set(inspector.get_table_names())
    upgraded = {c["name"]: c for c in inspector.get_columns("calls")}
    for column in ("status_callback_url", "status_events", "hangup_requested_at"):  # as create_all makes them
        assert upgraded[column]["nullable"] is True
        assert str(upgraded[column]["type"]) == str(fresh[column]["type"])
    assert migrations.check_current(engine)


def test_version_six_makes_credits_exact_decimals_of_a_version_five_database(engine):
    """A database of version 5 with an account, its ledger and a call in flight: after the
    upgrade every amount reads the same (now a Decimal kept in micro-credits), the call has the
    flat rate and reserves what it did, and `c2c check` finds nothing wrong."""
    from decimal import Decimal

    from c2c.store import Store

    migrations.upgrade(engine)
    fresh = {table: {c["name"]: c for c in inspect(engine).get_columns(table)}
             for table in ("accounts", "calls", "ledger")}
    added = {
        "accounts": ("max_concurrent", "max_per_minute", "daily_credits", "allow_ips",
                     "active_calls", "minute_window", "minute_count", "credits_day",
                     "day_credits", "previous_api_key_sha256", "previous_key_until",
                     "previous_webhook_secret", "previous_secret_until"),
        "ledger": ("rate", "caller_rate"),
        "calls": ("rate", "caller_rate", "reserved_credits", "caller_minutes", "charged"),
    }
    with engine.begin() as conn:  # back to what version 5 made, with data in it
        conn.exec_driver_sql("DROP TABLE rates")
        conn.exec_driver_sql("DROP INDEX ix_accounts_previous_key"
                             + (" ON accounts" if engine.dialect.name == "mysql" else ""))
        conn.exec_driver_sql("DROP INDEX ix_ledger_created"
                             + (" ON ledger" if engine.dialect.name == "mysql" else ""))
        for table, columns in added.items():
            for column in columns:
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        if engine.dialect.name == "mysql":
            conn.exec_driver_sql("ALTER TABLE accounts MODIFY credits INTEGER NOT NULL, "
                                 "MODIFY reserved INTEGER NOT NULL")
            conn.exec_driver_sql("ALTER TABLE ledger MODIFY delta INTEGER NOT NULL, "
                                 "MODIFY balance_after INTEGER NOT NULL")
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version > 5))
        conn.exec_driver_sql(
            "INSERT INTO accounts (id, name, api_key_sha256, enabled, credits, reserved, "
            "webhook_secret, created_at) VALUES (1, 'old', 'h', 1, 7, 2, 's', 0)")
        conn.exec_driver_sql(
            "INSERT INTO ledger (account_id, delta, balance_after, kind, created_at) "
            "VALUES (1, 10, 10, 'grant', 0), (1, -3, 7, 'debit', 1)")
        conn.exec_driver_sql(
            "INSERT INTO calls (id, account_id, state, caller_country_code, caller_number, "
            "callee_country_code, callee_number, caller_id, secret, max_minutes, switch, "
            "job_uuid, caller_uuid, callee_uuid, created_at, deadline_at) VALUES "
            "('c1', 1, 'bridged', '1', '2125550100', '1', '2125550101', '2125550100', '', "
            "2, 's', 'j', 'a', 'b', 5, 500)")
    with engine.begin() as conn:  # an operator's own rule for a shipped default's area
        conn.exec_driver_sql("DELETE FROM coverage_areas")
        conn.exec_driver_sql("INSERT INTO coverage_areas (country_code, prefix, allowed) "
                             "VALUES ('44', '9', 0)")
    assert migrations.upgrade(engine) == [6, 7]
    with engine.connect() as conn:
        areas = {(cc, p): bool(ok) for cc, p, ok in conn.execute(select(schema.coverage_areas))}
    assert areas[("1", "876")] is False and areas[("1", "900")] is False
    for table in fresh:  # as create_all makes them
        upgraded = {c["name"]: c for c in inspect(engine).get_columns(table)}
        for name, column in fresh[table].items():
            assert str(upgraded[name]["type"]) == str(column["type"]), (table, name)
            assert upgraded[name]["nullable"] == column["nullable"], (table, name)
    store = Store(engine)
    account = store.accounts.find(1)
    assert (account.credits, account.reserved) == (Decimal(7), Decimal(2))
    call = store.calls.get("c1")
    assert (call["rate"], call["reserved_credits"], call["caller_rate"]) == (1, 2, None)
    assert [row["delta"] for row in store.ledger.for_call("c1")] == []
    assert [row["delta"] for row in store.ledger.entries(1)] == [Decimal(-3), Decimal(10)]
    assert store.ledger.check() == []
    assert migrations.check_current(engine)

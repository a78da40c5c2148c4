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
    assert sorted((cc, bool(ok)) for cc, ok in countries) == [("1", True), ("44", True)]
    assert sorted((cc, p, bool(ok)) for cc, p, ok in areas) == [
        ("1", "900", False),
        ("1", "976", False),
    ]


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
        assert migrations.upgrade(engine) == [2, 3, 4, 5]  # 3-5 find their changes made and pass
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
    assert migrations.upgrade(engine) == [3, 4, 5]  # 4, 5 find their changes made and pass
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
    assert migrations.upgrade(engine) == [4, 5]  # 5 finds its changes made and passes
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
    assert migrations.upgrade(engine) == [5]
    inspector = inspect(engine)
    assert {"idempotency_keys", "progress_webhooks"} <= set(inspector.get_table_names())
    upgraded = {c["name"]: c for c in inspector.get_columns("calls")}
    for column in ("status_callback_url", "status_events", "hangup_requested_at"):  # as create_all makes them
        assert upgraded[column]["nullable"] is True
        assert str(upgraded[column]["type"]) == str(fresh[column]["type"])
    assert migrations.check_current(engine)

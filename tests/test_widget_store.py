"""The widgets' store on both backends: widgets, the abuse counters (exact under concurrent
requests), spent challenges, the shared secrets, the upgrade from version 6; and `c2c widgets`."""

from __future__ import annotations

import argparse
import json
import threading
from typing import Any

import pytest
from sqlalchemy import text

from c2c.cli import numbers, widgets
from c2c.config import Config
from c2c.store import Store, make_engine, migrations
from c2c.store.widgets import HOUR, Limit, OverLimit

NOW = 1_800_000_000.0
CALLEE = 12125550199


def widget_of(store: Store, **options: Any) -> Any:
    account = store.accounts.create("shop", 10, now=NOW)
    store.own_numbers.add(account.id, CALLEE)
    return store.widgets.create(account.id, callee=CALLEE, origins=("https://shop.example",),
                                countries=("1",), now=NOW, **options)


def test_a_widget_calls_one_of_the_accounts_own_numbers(store: Store) -> None:
    widget = widget_of(store, max_per_hour=7, callback_url="https://shop.example/cb")
    assert store.widgets.get(widget.id) == widget
    assert widget.id.startswith("wid_") and len(widget.id) <= 32
    assert (widget.max_per_hour, widget.max_minutes, widget.enabled) == (7, 30, True)
    with pytest.raises(ValueError, match="not one of account"):
        store.widgets.create(widget.account_id, callee=15550000000, origins=("https://a.b",),
                             countries=("1",))
    assert store.widgets.create(999, callee=CALLEE, origins=("https://a.b",),
                                countries=("1",)) is None
    assert store.widgets.set_enabled(widget.id, False).enabled is False
    assert [w.id for w in store.widgets.list(widget.account_id)] == [widget.id]
    assert store.widgets.list(12345) == []
    assert store.widgets.remove(widget.id) and not store.widgets.remove(widget.id)
    assert store.widgets.get(widget.id) is None


def test_counters_count_per_hour_all_or_none(store: Store) -> None:
    limits = [Limit("ip:a", 2), Limit("n:1", 3)]
    store.widgets.count(limits, now=NOW)
    store.widgets.count(limits, now=NOW + 1)
    with pytest.raises(OverLimit) as over:
        store.widgets.count(limits, now=NOW + 2)
    assert over.value.scope == "ip:a"
    assert over.value.retry_after == HOUR - int((NOW + 2) % HOUR)
    # Nothing was counted by the refused one: another address for the same number still fits.
    store.widgets.count([Limit("ip:b", 2), Limit("n:1", 3)], now=NOW + 3)
    with pytest.raises(OverLimit):
        store.widgets.count([Limit("ip:c", 2), Limit("n:1", 3)], now=NOW + 4)
    # The next clock hour starts again.
    next_hour = (NOW // HOUR + 1) * HOUR
    store.widgets.count(limits, now=next_hour)
    store.widgets.count(limits, now=next_hour + 1)
    with pytest.raises(OverLimit):
        store.widgets.count(limits, now=next_hour + 2)
    # Pruning forgets the scopes last counted in an earlier hour (ip:b), never the current ones.
    assert store.widgets.prune(now=next_hour + 3) == 1
    with pytest.raises(OverLimit):
        store.widgets.count(limits, now=next_hour + 4)


def test_challenges_are_spent_once_and_pruned(store: Store) -> None:
    assert store.widgets.spend_challenge("a" * 64, NOW + 60)
    assert not store.widgets.spend_challenge("a" * 64, NOW + 60)
    assert store.widgets.prune(now=NOW + 61) == 1
    assert store.widgets.spend_challenge("a" * 64, NOW + 120)  # expired: could not be used


def test_secrets_are_made_once_and_shared(store: Store, store_url: str) -> None:
    first = store.widgets.secret("widget-call-token")
    other = Store(make_engine(store_url))
    try:
        assert other.widgets.secret("widget-call-token") == first
        assert other.widgets.secret("widget-challenge") != first
        assert len(first) == 32
    finally:
        other.dispose()


@pytest.mark.mysql
def test_the_limit_is_exact_under_concurrent_requests(mysql_url: str) -> None:
    """Twenty requests at once for one visitor number allowed 5 an hour: exactly 5 counted."""
    store = Store(make_engine(mysql_url))
    store.upgrade()
    results: list[str] = []
    barrier = threading.Barrier(20)

    def request(i: int) -> None:
        barrier.wait()
        try:
            store.widgets.count([Limit(f"ip:{i}", 10), Limit("n:15550001", 5)], now=NOW)
            results.append("counted")
        except OverLimit:
            results.append("over")

    threads = [threading.Thread(target=request, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.dispose()
    assert sorted(results) == ["counted"] * 5 + ["over"] * 15


def test_a_version_six_database_gets_the_widget_tables(store: Store) -> None:
    engine = store.engine
    with engine.begin() as conn:
        for table in ("widgets", "widget_counters", "widget_challenges", "site_secrets"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("DELETE FROM c2c_schema_version WHERE version = 7"))
    assert migrations.upgrade(engine) == [7]
    assert migrations.check_current(engine)
    assert widget_of(store) is not None


@pytest.fixture
def cli(tmp_path: Any, capsys: Any) -> Any:
    url = f"sqlite:///{tmp_path / 'c2c.sqlite3'}"
    Store.from_url(url).upgrade()

    def run(*argv: str, public_url: str = "") -> tuple[int, str, str]:
        parser = argparse.ArgumentParser(prog="c2c")
        groups = parser.add_subparsers(dest="group", required=True)
        widgets.add_parser(groups)
        numbers.add_parser(groups)
        try:
            args = parser.parse_args(list(argv))
            status = args.func(args, Config.defaults(database_url=url, public_url=public_url))
        except SystemExit as exc:
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    run.store = Store.from_url(url)  # type: ignore[attr-defined]
    return run


def test_cli_widgets(cli: Any) -> None:
    account = cli.store.accounts.create("shop", 10)
    status, _, err = cli("widgets", "create", str(account.id), "--callee", "+12125550199",
                         "--origin", "https://shop.example")
    assert status == 1 and "not one of account" in err
    assert cli("numbers", "add", str(account.id), "+12125550199")[0] == 0
    status, out, _ = cli("widgets", "create", account.api_key, "--callee", "+12125550199",
                         "--origin", "https://Shop.example/,https://www.shop.example",
                         "--countries", "1,+44", "--max-per-hour", "20", "--json",
                         public_url="https://c2c.example.com")
    assert status == 0
    created = json.loads(out)
    assert created["origins"] == ["https://shop.example", "https://www.shop.example"]
    assert created["countries"] == ["1", "44"] and created["max_per_hour"] == 20
    assert f'data-c2c-widget="{created["id"]}"' in created["snippet"]
    assert 'src="https://c2c.example.com/widget.js"' in created["snippet"]
    status, out, _ = cli("widgets", "create", str(account.id), "--callee", "+12125550199",
                         "--origin", "https://shop.example")
    assert status == 0 and "https://YOUR-C2C-HOST/widget.js" in out and "C2C_PUBLIC_URL" in out
    listed = json.loads(cli("widgets", "list", str(account.id), "--json")[1])["widgets"]
    assert [w["countries"] for w in listed] == [["1", "44"], ["1"]]  # the callee's by default
    assert cli("widgets", "disable", created["id"])[0] == 0
    assert "DISABLED" in cli("widgets", "list")[1]
    assert cli("widgets", "enable", created["id"])[0] == 0
    assert cli("widgets", "remove", created["id"])[0] == 0
    assert cli("widgets", "remove", created["id"])[0] == 1
    assert cli("widgets", "list", "999")[0] == 1
    for bad in (["--origin", "shop.example"], ["--origin", "https://a.example/path"],
                ["--countries", "0"], ["--max-per-hour", "0"], ["--max-minutes", "2000"],
                ["--callback-url", "ftp://x"]):
        argv = ["widgets", "create", str(account.id), "--callee", "+12125550199",
                "--origin", "https://shop.example", *bad]
        status, _, err = cli(*argv)
        assert status == 2 and "error:" in err, bad

"""The store's command groups: db, keys, dnc, coverage, calls (on a temporary SQLite file)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from c2c.cli import calls, coverage, db, dnc, keys
from c2c.config import Config
from c2c.store import SettledOutcome, Store
from tests.conftest import ACCEPT_DEFAULTS

NOW = 1_800_000_000.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="c2c")
    groups = parser.add_subparsers(dest="group", required=True)
    for module in (db, keys, dnc, coverage, calls):
        module.add_parser(groups)
    return parser


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'c2c.sqlite3'}"


@pytest.fixture
def cli(db_url, capsys):
    """cli("keys", "list") -> (exit status, stdout, stderr), as `c2c` would run it."""

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            args = build_parser().parse_args(list(argv))
            status = args.func(args, Config.defaults(database_url=db_url))
        except SystemExit as exc:  # argparse: bad arguments
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def upgraded(cli):
    assert cli("db", "upgrade")[0] == 0
    return cli


@pytest.fixture
def store(db_url, upgraded):
    store = Store.from_url(db_url)
    yield store
    store.dispose()


def test_db_upgrade_and_status(cli):
    status, out, _ = cli("db", "status")
    assert (status, out) == (1, "schema version 0, this c2c expects 7\n")
    assert cli("db", "upgrade")[:2] == (0, "schema upgraded to version 7 (applied 1, 2, 3, 4, 5, 6, 7)\n")
    assert cli("db", "upgrade")[:2] == (0, "schema already at version 7\n")
    assert cli("db", "status")[0] == 0


def test_commands_before_the_upgrade_say_what_to_do(cli):
    status, out, err = cli("keys", "list")
    assert status == 1 and out == ""
    assert err == "c2c: the database schema is missing or out of date: run `c2c db upgrade`\n"


def test_keys_create_list_toggle_credit(upgraded, store):
    status, out, _ = upgraded("keys", "create", "--name", "Acme", "--credits", "100", "--json")
    assert status == 0
    created = json.loads(out)
    assert set(created) == {"id", "api_key", "webhook_secret", "name", "credits"}
    assert (created["name"], created["credits"]) == ("Acme", 100)
    assert (
        store.accounts.find_by_key(created["api_key"]).webhook_secret == created["webhook_secret"]
    )

    status, out, _ = upgraded("keys", "create", "--name", "Plain")
    assert status == 0 and "api_key:" in out and "webhook secret:" in out

    status, out, _ = upgraded("keys", "list", "--json")
    listed = json.loads(out)
    assert listed[0] == {
        "id": created["id"],
        "name": "Acme",
        "enabled": True,
        "credits": 100,
        "reserved": 0,
        "confirm": "default",
        "own_numbers": 0,
        "max_concurrent": None,
        "max_per_minute": None,
        "daily_credits": None,
        "allow_ips": [],
    }
    assert created["api_key"] not in out and created["webhook_secret"] not in out
    assert "sha256" not in out

    assert upgraded("keys", "disable", created["api_key"])[:2] == (
        0,
        f"account {created['id']} (Acme) disabled\n",
    )
    assert store.accounts.find(created["id"]).enabled is False
    assert upgraded("keys", "enable", str(created["id"]))[0] == 0
    assert store.accounts.find(created["id"]).enabled is True

    status, out, _ = upgraded("keys", "credit", str(created["id"]), "-30")
    assert (status, out) == (
        0,
        f"account {created['id']} (Acme): 70 credits, 0 reserved by calls in flight\n",
    )
    assert upgraded("keys", "credit", str(created["id"]), "-500")[0] == 0
    assert store.accounts.find(created["id"]).credits == 0

    status, out, _ = upgraded("keys", "list")
    assert status == 0 and "Acme" in out and created["api_key"] not in out


def test_keys_errors(upgraded):
    assert upgraded("keys", "credit", "nobody", "5")[::2] == (1, "c2c: no such account\n")
    assert upgraded("keys", "disable", "42")[::2] == (1, "c2c: no such account\n")
    assert upgraded("keys", "credit", "1", "lots")[0] == 2
    assert upgraded("keys", "create", "--name", "x", "--credits", "-1")[0] == 2
    assert upgraded("keys", "create")[0] == 2


def test_dnc_add_remove_count(upgraded, store):
    assert upgraded("dnc", "add", "+15552104427", "442071234567", "15552104427")[:2] == (
        0,
        "2 added, 0 already listed\n",
    )
    assert upgraded("dnc", "count")[:2] == (0, "2\n")
    assert upgraded("dnc", "remove", "+15552104427", "15550000000")[:2] == (
        0,
        "1 removed, 1 were not listed\n",
    )
    assert store.dnc.contains_any([442071234567])
    status, _, err = upgraded("dnc", "add", "555-1234")
    assert status == 2 and "not an E.164 number" in err


def test_dnc_import_shows_progress_and_a_summary(upgraded, store, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("number,name\n" + "".join(f"+1555{n:07d},x\n" for n in range(2_500)) + "bad\n")
    status, out, err = upgraded("dnc", "import", str(path), "--batch", "1000")
    assert status == 0
    assert "\rreading: 2,500 numbers, 1 invalid (" in err  # one update per block read
    assert "\rinserting: 1,000 of 2,500 numbers, 1,000 new, 1 invalid (" in err
    assert "\rinserting: 2,500 of 2,500 numbers, 2,500 new, 1 invalid (" in err
    assert err.count("\r") == 4 and err.endswith("\n")  # then one update per batch
    assert out.startswith("read 2,500 numbers in ")
    assert "2,500 added, 0 already listed, 1 invalid lines" in out
    assert "invalid lines (skipped): 2502" in out
    assert store.dnc.count() == 2_500


def test_dnc_import_sorts_a_big_file_through_tmpdir(upgraded, store, tmp_path):
    store.dnc.add([15550000007])
    path = tmp_path / "list.txt"
    path.write_text("".join(f"+1555{n:07d}\n" for n in range(2_500, 0, -1)) + "15550000007\n")
    sort_dir = tmp_path / "sort"
    sort_dir.mkdir()
    args = ("dnc", "import", str(path), "--sort-run", "1000", "--tmpdir", str(sort_dir))
    status, out, err = upgraded(*args, "--quiet")
    assert (status, err) == (0, "")
    assert "2,501 numbers" in out and "2,499 added, 2 already listed, 0 invalid lines" in out
    assert store.dnc.count() == 2_500
    assert list(sort_dir.iterdir()) == []
    status, _, err = upgraded("dnc", "import", str(path), "--tmpdir", str(tmp_path / "nope"))
    assert status == 2 and "is not a directory" in err
    assert upgraded("dnc", "import", str(path), "--sort-run", "10")[0] == 2


def test_dnc_import_of_a_missing_file_is_one_line(upgraded, tmp_path):
    status, out, err = upgraded("dnc", "import", str(tmp_path / "nope.txt"))
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and "No such file" in err and "Traceback" not in err


def test_coverage_commands(upgraded, store):
    status, out, _ = upgraded("coverage", "show")
    assert status == 0
    assert out.startswith("country 1: allowed\n") and "\ncountry 44: allowed\n" in out
    assert "  area 900: denied (premium rate (900))\n" in out  # shipped: with its reason
    assert upgraded("coverage", "allow-country", "49")[:2] == (0, "country 49: allowed\n")
    assert upgraded("coverage", "deny-country", "44")[0] == 0
    assert upgraded("coverage", "allow-area", "49", "30")[0] == 0
    assert upgraded("coverage", "deny-area", "1", "212")[:2] == (
        0,
        "country 1 area 212: denied\n",
    )
    rules = store.coverage.load()
    assert rules.country_supported("49") and not rules.country_supported("44")
    assert not rules.area_supported("1", "2125551234")
    assert not rules.area_supported("49", "891234567")

    data = json.loads(upgraded("coverage", "show", "--json")[1])
    germany = next(c for c in data["countries"] if c["country_code"] == "49")
    assert germany == {
        "country_code": "49",
        "allowed": True,
        "areas": [{"prefix": "30", "allowed": True, "reason": None}],
    }
    assert "only allowed areas" in upgraded("coverage", "show")[1]

    assert upgraded("coverage", "remove-area", "1", "212")[0] == 0
    assert upgraded("coverage", "remove-area", "1", "212")[::2] == (
        1,
        "c2c: no rule for country 1 area 212\n",
    )
    assert upgraded("coverage", "allow-country", "0")[0] == 2
    assert upgraded("coverage", "deny-area", "1", "9a")[0] == 2


def test_calls_show_and_list(upgraded, store, make_call):
    account = store.accounts.create("acme", 100)
    call = make_call(
        account.id, callback_url="http://cb.example/r?k=v", secret="hush", max_duration=5
    )
    store.accept_call(account.id, call, now=NOW, **ACCEPT_DEFAULTS)
    store.calls.record_leg_gone(call.id, "caller", "NORMAL_CLEARING", "200", NOW + 70)
    store.calls.settle(call.id, SettledOutcome(True, 2, None, 65), ended_at=NOW + 70, now=NOW + 71)
    (job,) = store.callbacks.claim_due(NOW + 71, 10, 30)
    store.callbacks.reschedule(
        job.id, at=NOW + 72, next_attempt_at=NOW + 90, error="HTTP 500", http_status=500
    )

    status, out, _ = upgraded("calls", "show", call.id, "--json")
    assert status == 0
    shown = json.loads(out)
    assert (shown["id"], shown["state"], shown["answered"], shown["minutes"]) == (
        call.id,
        "ended",
        True,
        2,
    )
    assert shown["reason"] is None
    assert shown["caller_hangup_cause"] == "NORMAL_CLEARING"
    assert shown["callee_hangup_cause"] is None
    assert shown["switch"] == "fs1:8021"
    assert shown["created_at"] == "2027-01-15T08:00:00.000Z"
    assert shown["ended_at"] == "2027-01-15T08:01:10.000Z"
    assert shown["bridged_at"] is None
    assert shown["secret"] == "(set)"
    assert "hush" not in out
    assert shown["callback"]["status"] == "pending"
    assert "secret=(secret)" in shown["callback"]["url"]
    assert shown["callback_attempts"] == [
        {
            "callback_id": job.id,
            "at": "2027-01-15T08:01:12.000Z",
            "http_status": 500,
            "error": "HTTP 500",
        }
    ]

    status, out, _ = upgraded("calls", "show", call.id)
    assert status == 0 and "NORMAL_CLEARING" in out and "HTTP 500" in out and "hush" not in out

    other = make_call(account.id, "15550000001", "15550000002", max_duration=1)
    store.accept_call(account.id, other, now=NOW + 5, **ACCEPT_DEFAULTS)
    status, out, _ = upgraded("calls", "list", "--json")
    assert [c["id"] for c in json.loads(out)] == [other.id, call.id]
    status, out, _ = upgraded("calls", "list", "--state", "queued", "--json", "--limit", "5")
    assert [c["id"] for c in json.loads(out)] == [other.id]
    status, out, _ = upgraded("calls", "list")
    assert status == 0 and other.id in out and call.id in out
    assert upgraded("calls", "list", "--state", "bogus")[0] == 2
    assert upgraded("calls", "show", "nope")[::2] == (1, "c2c: no call nope\n")


_DRIVER = textwrap.dedent(
    """
    import argparse, sys
    from c2c.cli import calls, coverage, db, dnc, keys
    from c2c.config import Config
    parser = argparse.ArgumentParser(prog="c2c")
    groups = parser.add_subparsers(dest="group", required=True)
    for module in (db, keys, dnc, coverage, calls):
        module.add_parser(groups)
    args = parser.parse_args(sys.argv[1:])
    sys.exit(args.func(args, Config.from_env()))
    """
)


def test_as_a_process_errors_are_one_line_without_traceback(db_url, tmp_path):
    env = {
        **os.environ,
        "C2C_DATABASE_URL": db_url,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _DRIVER, *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run("db", "upgrade").returncode == 0
    created = json.loads(run("keys", "create", "--name", "a", "--credits", "3", "--json").stdout)
    assert created["credits"] == 3
    failed = run("dnc", "import", str(tmp_path / "missing"))
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr
    env["C2C_DATABASE_URL"] = "mysql+pymysql://root@127.0.0.1:1/none"
    unreachable = run("keys", "list")
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("c2c: database error:")
    assert unreachable.stderr.count("\n") == 1 and "Traceback" not in unreachable.stderr


# -- own numbers and per-key settings, through `c2c` itself (c2c.cli.main.main) on both stores --


@pytest.fixture
def c2c(store_url, monkeypatch, capsys):
    """c2c("numbers", "list", "1") -> (exit status, stdout, stderr), as the `c2c` command runs,
    on a fresh upgraded database of each backend."""
    from c2c.cli.main import main

    monkeypatch.setenv("C2C_DATABASE_URL", store_url)
    monkeypatch.setenv("C2C_LOG_LEVEL", "WARNING")

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse: bad arguments
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    assert run("db", "upgrade")[0] == 0
    return run


@pytest.fixture
def shop(c2c):
    status, out, _ = c2c("keys", "create", "--name", "Shop", "--credits", "5", "--json")
    assert status == 0
    return json.loads(out)


def test_numbers_add_list_remove(c2c, shop):
    key, ident = shop["api_key"], str(shop["id"])
    assert c2c("numbers", "add", key, "+15552104427") == (
        0, f"account {ident} (Shop): +15552104427 added (1 own number)\n", "")
    assert c2c("numbers", "add", ident, "+442071234567")[:2] == (
        0, f"account {ident} (Shop): +442071234567 added (2 own numbers)\n")
    assert c2c("numbers", "add", ident, "+15552104427")[:2] == (
        0, f"account {ident} (Shop): +15552104427 is already one of its own numbers; "
        "nothing changed\n")

    status, out, _ = c2c("numbers", "list", key, "--json")
    assert status == 0
    listed = json.loads(out)
    assert (listed["account_id"], listed["name"]) == (shop["id"], "Shop")
    assert [n["number"] for n in listed["numbers"]] == ["+15552104427", "+442071234567"]
    assert all(n["added_at"].endswith("Z") for n in listed["numbers"])
    status, out, _ = c2c("numbers", "list", ident)
    assert status == 0 and out.startswith(f"account {ident} (Shop): 2 own numbers\n")
    assert "  +15552104427  " in out and "  +442071234567  " in out

    assert c2c("numbers", "remove", ident, "+15552104427")[:2] == (
        0, f"account {ident} (Shop): +15552104427 removed (1 own number left)\n")
    assert c2c("numbers", "remove", ident, "+15552104427") == (
        1, "", f"c2c: +15552104427 is not one of account {ident} (Shop)'s own numbers\n")
    assert c2c("numbers", "remove", ident, "+442071234567")[0] == 0
    assert c2c("numbers", "list", ident)[:2] == (0, f"account {ident} (Shop): 0 own numbers\n")
    assert json.loads(c2c("numbers", "list", ident, "--json")[1])["numbers"] == []


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("15552104427", "write it as '+'"),  # no '+': 55 would be Brazil
        ("+1 555 210 4427", "write it as '+'"),
        ("+1555210442", "exactly 10 digits"),
        ("+4420", "national number must be 4-14"),
        ("+44207123456789012", "national number must be 4-14"),
        ("+99912345678", "no country code known"),
        ("+٥٥٥٢١٠٤٤٢٧", "write it as '+'"),  # Arabic-Indic digits
        ("+", "write it as '+'"),
        ("", "write it as '+'"),
    ],
)
def test_numbers_refuse_a_bad_number_in_one_line(c2c, shop, number, why):
    for action in ("add", "remove"):
        status, out, err = c2c("numbers", action, str(shop["id"]), number)
        assert (status, out) == (2, "")
        assert f"{number!r} is not an E.164 number: " in err and why in err
        assert err.count("\n") == 2 and "Traceback" not in err  # argparse's usage, then why
    assert json.loads(c2c("keys", "list", "--json")[1])[0]["own_numbers"] == 0


def test_numbers_for_an_unknown_key(c2c, shop):
    for argv in (("add", "nope", "+15552104427"), ("remove", "4242", "+15552104427"),
                 ("list", "nope"), ("list", "nope", "--json")):
        assert c2c("numbers", *argv) == (1, "", "c2c: no such account\n")


def test_keys_set_confirm_and_the_list_shows_it(c2c, shop, store_url):
    key, ident = shop["api_key"], str(shop["id"])
    assert c2c("keys", "set", key, "--confirm", "on") == (
        0, f"account {ident} (Shop): confirm on\n", "")
    assert c2c("numbers", "add", ident, "+15552104427")[0] == 0
    status, out, _ = c2c("keys", "list", "--json")
    assert status == 0
    assert {k: json.loads(out)[0][k] for k in ("confirm", "own_numbers")} == {
        "confirm": "on", "own_numbers": 1}
    status, out, _ = c2c("keys", "list")
    header, row = out.splitlines()
    assert header.split() == ["id", "enabled", "credits", "reserved", "confirm", "numbers", "name"]
    assert row.split() == [ident, "yes", "5", "0", "on", "1", "Shop"]

    assert c2c("keys", "set", ident, "--confirm", "off")[:2] == (
        0, f"account {ident} (Shop): confirm off\n")
    assert c2c("keys", "set", ident, "--confirm", "default")[:2] == (
        0, f"account {ident} (Shop): confirm default (follows C2C_CONFIRM)\n")
    store = Store.from_url(store_url)
    try:
        account = store.accounts.find_by_key(key)
        assert (account.confirm, account.own_numbers) == (None, {15552104427})
        store.accounts.set_confirm(account.id, False)
    finally:
        store.dispose()
    assert json.loads(c2c("keys", "list", "--json")[1])[0]["confirm"] == "off"


def test_keys_set_errors(c2c, shop):
    status, out, err = c2c("keys", "set", str(shop["id"]))
    assert (status, out) == (2, "") and "say what to set: --confirm on|off|default" in err
    status, _, err = c2c("keys", "set", str(shop["id"]), "--confirm", "yes")
    assert status == 2 and "invalid choice: 'yes'" in err and "Traceback" not in err
    assert c2c("keys", "set", "nope", "--confirm", "on") == (1, "", "c2c: no such account\n")
    assert c2c("keys", "set")[0] == 2

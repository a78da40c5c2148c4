"""`c2c rates`, `c2c keys set` limits, `c2c keys rotate` and decimal credits, through the real
entry point (c2c.cli.main.main) on a store of each kind."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from c2c.cli.main import main


@pytest.fixture
def c2c(store_url, capsys, monkeypatch):
    """c2c("keys", "list") -> (exit status, stdout, stderr), on an upgraded store."""
    monkeypatch.setenv("C2C_DATABASE_URL", store_url)
    monkeypatch.delenv("C2C_CONFIG_FILE", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse: bad arguments
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    assert run("db", "upgrade")[0] == 0
    return run


def created(c2c, credits: str = "100") -> dict:
    status, out, _ = c2c("keys", "create", "--name", "Acme", "--credits", credits, "--json")
    assert status == 0
    return json.loads(out)


def test_credits_are_exact_decimals(c2c):
    account = created(c2c, "12.5")
    assert account["credits"] == 12.5
    assert c2c("keys", "credit", str(account["id"]), "0.000001")[:2] == (
        0, f"account {account['id']} (Acme): 12.500001 credits, 0 reserved by calls in flight\n")
    status, _, err = c2c("keys", "credit", str(account["id"]), "0.0000001")
    assert status == 2 and "more than 6 decimal places" in err
    status, _, err = c2c("keys", "create", "--name", "x", "--credits", "-1")
    assert status == 2 and "must be 0 or more" in err
    listed = json.loads(c2c("keys", "list", "--json")[1])
    assert listed[0]["credits"] == 12.500001


def test_rates_import_show_and_list(c2c, tmp_path):
    table = tmp_path / "rates.csv"
    table.write_text("prefix,rate,description\n+44,0.02,United Kingdom\n447,0.035,UK mobiles\n"
                     "1,0.010,NANP\n")
    assert c2c("rates", "import", str(table))[:2] == (
        0, "3 rates imported (added or updated); 3 in the table\n")
    assert c2c("rates", "show", "+447911123456")[1] == (
        "+447911123456: 0.035 credits/min, prefix +447 (UK mobiles)\n")
    assert c2c("rates", "show", "+33123456789")[1] == (
        "+33123456789: 1 credits/min (C2C_DEFAULT_RATE: no prefix matches)\n")
    shown = json.loads(c2c("rates", "show", "442071234567", "--json")[1])
    assert (shown["rate"], shown["prefix"], shown["default"]) == (0.02, "+44", False)
    assert c2c("rates", "list", "--csv")[1] == (
        "prefix,rate,description\n1,0.01,NANP\n44,0.02,United Kingdom\n447,0.035,UK mobiles\n")
    assert [json.loads(line)["prefix"] for line in c2c("rates", "list", "--json")[1]
            .splitlines()] == ["1", "44", "447"]

    bad = tmp_path / "bad.csv"
    bad.write_text("49,0.04\n49,oops\n")
    status, out, err = c2c("rates", "import", str(bad), "--replace")
    assert (status, out) == (1, "") and "line 2" in err and "Traceback" not in err
    assert len(c2c("rates", "list")[1].splitlines()) == 3  # nothing of the bad file kept
    table.write_text("49,0.04\n")
    assert c2c("rates", "import", str(table), "--replace")[0] == 0
    assert c2c("rates", "list", "--csv")[1] == "prefix,rate,description\n49,0.04,\n"
    status, _, err = c2c("rates", "show", "12")
    assert status == 2 and "not an E.164 number" in err
    status, _, err = c2c("rates", "import", str(tmp_path / "missing.csv"))
    assert status == 1 and "missing.csv" in err


def test_keys_set_limits_and_unset_them(c2c):
    account = created(c2c)
    key = account["api_key"]
    status, out, _ = c2c("keys", "set", key, "--max-concurrent", "5", "--max-per-minute", "30",
                         "--daily-credits", "12.5", "--allow-ip", "10.0.0.0/8,192.0.2.7")
    assert status == 0
    assert out == (f"account {account['id']} (Acme): max-concurrent 5, max-per-minute 30, "
                   "daily-credits 12.5, allow-ip 10.0.0.0/8,192.0.2.7/32\n")
    listed = json.loads(c2c("keys", "list", "--json")[1])[0]
    assert (listed["max_concurrent"], listed["max_per_minute"], listed["daily_credits"],
            listed["allow_ips"]) == (5, 30, 12.5, ["10.0.0.0/8", "192.0.2.7/32"])
    status, out, _ = c2c("keys", "set", str(account["id"]), "--max-concurrent", "none",
                         "--allow-ip", "none")
    assert out.endswith("max-concurrent none, max-per-minute 30, daily-credits 12.5, "
                        "allow-ip any\n")
    for option, value, message in [("--max-concurrent", "0", "between 1 and"),
                                   ("--max-per-minute", "x", "a whole number"),
                                   ("--daily-credits", "-3", "more than 0"),
                                   ("--allow-ip", "10.0.0.256", "not an IP address")]:
        status, _, err = c2c("keys", "set", key, option, value)
        assert status == 2 and message in err, (option, err)
    status, _, err = c2c("keys", "set", key)
    assert status == 2 and "--max-concurrent N" in err
    assert c2c("keys", "set", "999", "--max-concurrent", "1")[:2] == (1, "")


def test_keys_rotate(c2c, store_url):
    from c2c.store import Store

    account = created(c2c)
    status, out, _ = c2c("keys", "rotate", account["api_key"], "--grace", "3600",
                         "--webhook-secret", "--json")
    assert status == 0
    rotated = json.loads(out)
    assert rotated["api_key"] != account["api_key"]
    assert rotated["webhook_secret"] != account["webhook_secret"]
    store = Store.from_url(store_url)
    try:
        assert store.accounts.find_by_key(account["api_key"]).id == account["id"]  # grace
        assert store.accounts.find_by_key(rotated["api_key"]).id == account["id"]
        status, out, _ = c2c("keys", "rotate", rotated["api_key"])  # no grace: the old stops
        assert status == 0 and "stop working now" in out
        assert store.accounts.find_by_key(rotated["api_key"]) is None
        assert store.accounts.find_by_key(account["api_key"]) is None
        assert store.accounts.find(account["id"]).credits == Decimal(100)
    finally:
        store.dispose()
    status, _, err = c2c("keys", "rotate", "1", "--grace", "-5")
    assert status == 2 and "between 0 and" in err

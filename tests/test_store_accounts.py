"""Accounts, credits and the ledger."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from c2c.store import schema
from c2c.store.accounts import hash_api_key


def ledger_rows(store, account_id):
    return list(reversed(store.ledger.entries(account_id)))


def test_create_returns_the_key_once_and_stores_only_its_hash(store):
    created = store.accounts.create("acme", 100)
    account_id, api_key, webhook_secret = created  # unpacks like a tuple
    assert len(api_key) >= 32 and len(webhook_secret) >= 32
    assert api_key not in repr(created) and webhook_secret not in repr(created)
    with store.engine.connect() as conn:
        row = conn.execute(select(schema.accounts)).mappings().one()
    assert row["api_key_sha256"] == hashlib.sha256(api_key.encode()).hexdigest()
    assert api_key not in {str(v) for v in row.values()}

    account = store.accounts.find_by_key(api_key)
    assert account is not None
    assert (account.id, account.name, account.enabled) == (account_id, "acme", True)
    assert (account.credits, account.reserved, account.available) == (100, 0, 100)
    assert account.webhook_secret == webhook_secret
    assert webhook_secret not in repr(account)


def test_unknown_key_finds_nothing(store):
    store.accounts.create("acme", 1)
    assert store.accounts.find_by_key("nope") is None
    assert store.accounts.find("nope") is None
    assert store.accounts.find(999) is None


def test_find_by_id_or_key(store):
    first = store.accounts.create("first", 0)
    second = store.accounts.create("second", 0)
    assert store.accounts.find(second.id).name == "second"
    assert store.accounts.find(str(second.id)).name == "second"
    assert store.accounts.find(first.api_key).name == "first"
    assert [a.name for a in store.accounts.list()] == ["first", "second"]


def test_enable_and_disable(store):
    created = store.accounts.create("acme", 5)
    assert store.accounts.set_enabled(created.api_key, False).enabled is False
    assert store.accounts.find(created.id).enabled is False
    assert store.accounts.set_enabled(str(created.id), True).enabled is True
    assert store.accounts.set_enabled("missing", True) is None


def test_credits_never_drop_below_zero_and_every_change_is_in_the_ledger(store):
    created = store.accounts.create("acme", 10)
    assert store.accounts.add_credits(created.id, 5).credits == 15
    assert store.accounts.add_credits(created.id, -20, note="refund").credits == 0
    assert store.accounts.add_credits(created.id, -3).credits == 0  # nothing to remove
    assert store.accounts.add_credits(created.api_key, 7).credits == 7
    assert store.accounts.add_credits("missing", 7) is None

    rows = ledger_rows(store, created.id)
    assert [(r["kind"], r["delta"], r["balance_after"]) for r in rows] == [
        ("grant", 10, 10),
        ("grant", 5, 15),
        ("correction", -15, 0),
        ("grant", 7, 7),
    ]
    assert rows[2]["note"] == "refund"
    assert store.ledger.check() == []


def test_an_account_created_without_credits_has_no_ledger_row(store):
    created = store.accounts.create("acme")
    assert ledger_rows(store, created.id) == []
    assert store.ledger.check() == []


def test_ledger_check_finds_a_balance_changed_behind_its_back(store):
    created = store.accounts.create("acme", 10)
    with store.engine.begin() as conn:
        conn.execute(
            schema.accounts.update()
            .where(schema.accounts.c.id == created.id)
            .values(credits=50, reserved=3)
        )
    messages = [p.message for p in store.ledger.check()]
    assert "credits are 50 but the ledger sums to 10" in messages
    assert "credits are 50 but the last ledger balance is 10" in messages
    assert "reserved is 3 but calls in flight hold 0" in messages


def test_hash_is_sha256_hex():
    assert hash_api_key("k") == hashlib.sha256(b"k").hexdigest()


@pytest.mark.parametrize("confirm", [True, False, None])
def test_set_confirm(store, confirm):
    account = store.accounts.create("shop")
    store.own_numbers.add(account.id, 15557770000)
    changed = store.accounts.set_confirm(account.api_key, confirm)
    assert changed.confirm is confirm and changed.own_numbers == {15557770000}
    assert store.accounts.find(account.id).confirm is confirm
    assert store.accounts.find_by_key(account.api_key).confirm is confirm
    assert store.accounts.set_confirm("no-such-key", True) is None


def test_changing_an_account_keeps_what_it_carries(store):
    account = store.accounts.create("shop", 5)
    store.own_numbers.add(account.id, 15557770000)
    store.accounts.set_confirm(account.id, False)
    disabled = store.accounts.set_enabled(account.id, False)
    credited = store.accounts.add_credits(account.id, 3)
    for changed in (disabled, credited):
        assert (changed.confirm, changed.own_numbers) == (False, {15557770000})


def test_a_new_api_key_never_starts_with_a_dash(monkeypatch):
    """`c2c keys set KEY --confirm on` would read a key starting with '-' as an option."""
    from c2c.store import accounts

    drawn = iter(["-starts-with-a-dash-0123456789abc", "fine-key-0123456789abcdefghijklm"])
    monkeypatch.setattr(accounts.secrets, "token_urlsafe", lambda _n: next(drawn))
    assert accounts.new_api_key() == "fine-key-0123456789abcdefghijklm"

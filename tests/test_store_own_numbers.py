"""An account's own numbers: adding, removing, listing, and the account as the API reads it."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from c2c.store.own_numbers import OwnNumber

NOW = 1_800_000_000.0
SALES, SUPPORT = 15557770000, 442071234567


def test_add_list_remove(store):
    account = store.accounts.create("shop", 10)
    added = store.own_numbers.add(account.id, SALES, now=NOW)
    assert added.changed and added.number == SALES
    assert added.account.id == account.id and added.account.own_numbers == {SALES}
    store.own_numbers.add(account.api_key, SUPPORT, now=NOW + 1)  # by key works too

    listed = store.own_numbers.list(str(account.id))
    assert listed.account.name == "shop"
    assert listed.numbers == [OwnNumber(SALES, NOW), OwnNumber(SUPPORT, NOW + 1)]
    assert [n.e164 for n in listed.numbers] == ["+15557770000", "+442071234567"]

    removed = store.own_numbers.remove(account.id, SALES)
    assert removed.changed and removed.account.own_numbers == {SUPPORT}
    assert store.own_numbers.list(account.id).numbers == [OwnNumber(SUPPORT, NOW + 1)]


def test_adding_twice_and_removing_what_is_not_there_change_nothing(store):
    account = store.accounts.create("shop")
    store.own_numbers.add(account.id, SALES, now=NOW)
    again = store.own_numbers.add(account.id, SALES, now=NOW + 5)
    assert not again.changed and again.account.own_numbers == {SALES}
    assert store.own_numbers.list(account.id).numbers == [OwnNumber(SALES, NOW)]  # first kept
    missing = store.own_numbers.remove(account.id, SUPPORT)
    assert not missing.changed and missing.number == SUPPORT
    assert missing.account.own_numbers == {SALES}


def test_an_unknown_account_is_none(store):
    store.accounts.create("shop")
    assert store.own_numbers.add(999, SALES) is None
    assert store.own_numbers.add("no-such-key", SALES) is None
    assert store.own_numbers.remove(999, SALES) is None
    assert store.own_numbers.list("no-such-key") is None


@pytest.mark.parametrize("number", [0, 1234, 10**15, -15557770000, True, "15557770000"])
def test_a_number_that_cannot_be_e164_is_a_value_error(store, number):
    account = store.accounts.create("shop")
    with pytest.raises(ValueError, match="E.164"):
        store.own_numbers.add(account.id, number)
    with pytest.raises(ValueError, match="E.164"):
        store.own_numbers.remove(account.id, number)


def test_each_account_has_its_own(store):
    first = store.accounts.create("first")
    second = store.accounts.create("second")
    third = store.accounts.create("third")
    store.own_numbers.add(first.id, SALES)
    store.own_numbers.add(second.id, SALES)  # two businesses may share a line
    store.own_numbers.add(second.id, SUPPORT)
    assert store.accounts.find(first.id).own_numbers == {SALES}
    assert store.accounts.find(second.api_key).own_numbers == {SALES, SUPPORT}
    assert store.accounts.find(third.id).own_numbers == frozenset()
    assert [(a.name, a.own_numbers) for a in store.accounts.list()] == [
        ("first", {SALES}), ("second", {SALES, SUPPORT}), ("third", frozenset())]
    store.own_numbers.remove(second.id, SALES)
    assert store.accounts.find(first.id).own_numbers == {SALES}


def test_find_by_key_carries_settings_and_own_numbers_in_one_query(store):
    account = store.accounts.create("shop", 10)
    plain = store.accounts.find_by_key(account.api_key)
    assert (plain.confirm, plain.own_numbers) == (None, frozenset())
    for number in (SALES, SUPPORT, 15557770001):
        store.own_numbers.add(account.id, number)
    store.accounts.set_confirm(account.id, True)

    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith("BEGIN"):  # SQLite's explicit BEGIN
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        found = store.accounts.find_by_key(account.api_key)
        nobody = store.accounts.find_by_key("no-such-key")
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len(statements) == 2  # one each
    assert nobody is None
    assert (found.id, found.name, found.credits, found.confirm) == (account.id, "shop", 10, True)
    assert found.own_numbers == {SALES, SUPPORT, 15557770001}
    assert found.webhook_secret == account.webhook_secret


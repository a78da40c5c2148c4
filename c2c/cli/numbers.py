"""`c2c numbers add|remove|list`: an account's own numbers (its sales lines).

In that account's requests an own number, as caller or callee, is exempt from flood protection
(the Do-Not-Call list still applies), and with C2C_CALLER_ID_POLICY=own they are the caller IDs
it may send. A number is written in E.164 with its '+' (``+15552104427``): without it, a national
number such as 5552104427 would silently read as another country's (+55, Brazil).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import phonenumbers

from c2c.cli.db import fail, iso_time, store_command
from c2c.numbers import PhoneNumber, parse_phone
from c2c.store import Store

EXAMPLE = "+15552104427"


def parse_own_number(raw: str) -> PhoneNumber:
    """'+' then the country code and national number, ASCII digits only, a number the API
    would accept for that country (c2c.numbers.parse_phone); ValueError says why not."""
    if not raw.startswith("+") or not (raw[1:].isascii() and raw[1:].isdigit()):
        raise ValueError(f"write it as '+', the country code and the number, e.g. {EXAMPLE}")
    digits = raw[1:]
    # Country codes are prefix-free: the first 1-3 digits that are one are the country code.
    for length in (1, 2, 3):
        if phonenumbers.region_codes_for_country_code(int(digits[:length])):
            return parse_phone(digits[:length], digits[length:])
    raise ValueError("it starts with no country code known to phonenumbers")


def _own_number(raw: str) -> PhoneNumber:
    """The argparse type: a bad number is a usage error (status 2) that names it."""
    try:
        return parse_own_number(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an E.164 number: {exc}") from None


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "numbers", help="an account's own numbers (exempt from flood protection in its requests)"
    )
    actions = parser.add_subparsers(dest="numbers_command", metavar="ACTION", required=True)
    for name, handler, help_text in (
        ("add", _add, "make a number one of the account's own (already one: nothing changes)"),
        ("remove", _remove, "make a number no longer one of the account's own"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("key_or_id", metavar="KEY_OR_ID", help="the api_key or account id")
        action.add_argument(
            "number", type=_own_number, metavar="+E164", help=f"e.g. {EXAMPLE}"
        )
        action.set_defaults(func=store_command(handler))

    listing = actions.add_parser("list", help="the account's own numbers")
    listing.add_argument("key_or_id", metavar="KEY_OR_ID", help="the api_key or account id")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(func=store_command(_list))


def _count(numbers: int) -> str:
    return f"{numbers} own number{'' if numbers == 1 else 's'}"


def _add(args: argparse.Namespace, store: Store) -> int:
    number: PhoneNumber = args.number
    change = store.own_numbers.add(args.key_or_id, number.e164_int)
    if change is None:
        return fail("no such account")
    account = change.account
    if change.changed:
        print(f"account {account.id} ({account.name}): {number} added "
              f"({_count(len(account.own_numbers))})")
    else:
        print(f"account {account.id} ({account.name}): {number} is already one of its own "
              "numbers; nothing changed")
    return 0


def _remove(args: argparse.Namespace, store: Store) -> int:
    number: PhoneNumber = args.number
    change = store.own_numbers.remove(args.key_or_id, number.e164_int)
    if change is None:
        return fail("no such account")
    account = change.account
    if not change.changed:
        # Status 1: most likely a mistyped number, and the one meant is still exempt.
        return fail(f"{number} is not one of account {account.id} ({account.name})'s own numbers")
    print(f"account {account.id} ({account.name}): {number} removed "
          f"({_count(len(account.own_numbers))} left)")
    return 0


def _list(args: argparse.Namespace, store: Store) -> int:
    found = store.own_numbers.list(args.key_or_id)
    if found is None:
        return fail("no such account")
    account, numbers = found
    if args.json:
        print(json.dumps({
            "account_id": account.id,
            "name": account.name,
            "numbers": [{"number": n.e164, "added_at": iso_time(n.created_at)} for n in numbers],
        }, indent=2))
        return 0
    print(f"account {account.id} ({account.name}): {_count(len(numbers))}")
    for n in numbers:
        print(f"  {n.e164:<16}  added {iso_time(n.created_at)}")
    return 0

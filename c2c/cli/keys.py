"""`c2c keys create|list|disable|enable|credit`: accounts and their API keys."""

from __future__ import annotations

import argparse
import json
from typing import Any

from c2c.cli.db import fail, store_command
from c2c.store import Account, Store


def _non_negative(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="accounts: API keys and credits")
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create", help="a new account; prints its api_key and webhook secret once"
    )
    create.add_argument("--name", required=True, help="the customer's name")
    create.add_argument(
        "--credits", type=_non_negative, default=0, metavar="N", help="minutes to start with"
    )
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(func=store_command(_create))

    listing = actions.add_parser("list", help="every account (never the keys)")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(func=store_command(_list))

    for name, enabled in (("disable", False), ("enable", True)):
        toggle = actions.add_parser(name, help=f"{name} an account")
        toggle.add_argument("key_or_id", metavar="KEY_OR_ID", help="the api_key or account id")
        toggle.set_defaults(func=store_command(_set_enabled), enabled=enabled)

    credit = actions.add_parser(
        "credit", help="add minutes (negative removes; credits never drop below 0)"
    )
    credit.add_argument("key_or_id", metavar="KEY_OR_ID", help="the api_key or account id")
    credit.add_argument("minutes", type=int, metavar="MINUTES", help="e.g. 100 or -20")
    credit.add_argument("--note", help="why (kept in the ledger)")
    credit.set_defaults(func=store_command(_credit))


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "enabled": account.enabled,
        "credits": account.credits,
        "reserved": account.reserved,
    }


def _create(args: argparse.Namespace, store: Store) -> int:
    created = store.accounts.create(args.name, args.credits)
    if args.json:
        print(
            json.dumps(
                {
                    "id": created.id,
                    "api_key": created.api_key,
                    "webhook_secret": created.webhook_secret,
                    "name": args.name,
                    "credits": args.credits,
                }
            )
        )
    else:
        print(f"account {created.id} ({args.name}) created with {args.credits} credits")
        print(f"api_key:        {created.api_key}")
        print(f"webhook secret: {created.webhook_secret}")
        print("Both are shown only now; c2c keeps only a hash of the api_key.")
    return 0


def _list(args: argparse.Namespace, store: Store) -> int:
    accounts = store.accounts.list()
    if args.json:
        print(json.dumps([account_json(a) for a in accounts], indent=2))
        return 0
    print(f"{'id':>5}  {'enabled':7}  {'credits':>8}  {'reserved':>8}  name")
    for a in accounts:
        enabled = "yes" if a.enabled else "no"
        print(f"{a.id:>5}  {enabled:7}  {a.credits:>8}  {a.reserved:>8}  {a.name}")
    return 0


def _set_enabled(args: argparse.Namespace, store: Store) -> int:
    account = store.accounts.set_enabled(args.key_or_id, args.enabled)
    if account is None:
        return fail("no such account")
    print(f"account {account.id} ({account.name}) {'enabled' if account.enabled else 'disabled'}")
    return 0


def _credit(args: argparse.Namespace, store: Store) -> int:
    account = store.accounts.add_credits(args.key_or_id, args.minutes, note=args.note)
    if account is None:
        return fail("no such account")
    print(
        f"account {account.id} ({account.name}): {account.credits} credits, "
        f"{account.reserved} reserved by calls in flight"
    )
    return 0

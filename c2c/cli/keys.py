"""`c2c keys create|list|disable|enable|credit|set`: accounts, their API keys and settings."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from c2c.cli.db import fail, store_command
from c2c.config import Config
from c2c.store import Account, Store


def _non_negative(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


# `--confirm`'s words and what the account row keeps for each (None: follow C2C_CONFIRM).
CONFIRM_CHOICES: dict[str, bool | None] = {"on": True, "off": False, "default": None}


def confirm_word(confirm: bool | None) -> str:
    return next(word for word, value in CONFIRM_CHOICES.items() if value is confirm)


class Setting(NamedTuple):
    """One option of `keys set`: how it is given and how it is applied. A new per-key setting
    joins `keys set` by adding a row to SETTINGS (and its Accounts method)."""

    option: str  # e.g. "--confirm"
    dest: str
    choices: tuple[str, ...]
    help: str
    apply: Callable[[Store, str, str], Account | None]  # (store, key_or_id, word)
    describe: Callable[[Account], str]  # the setting as it now is, for the confirmation line


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "--confirm",
        "confirm",
        tuple(CONFIRM_CHOICES),
        "press 1 to connect for this key's calls: on, off, or default (follow C2C_CONFIRM)",
        lambda store, key_or_id, word: store.accounts.set_confirm(
            key_or_id, CONFIRM_CHOICES[word]
        ),
        lambda account: f"confirm {confirm_word(account.confirm)}"
        + (" (follows C2C_CONFIRM)" if account.confirm is None else ""),
    ),
)


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

    setting = actions.add_parser(
        "set",
        help="change a key's settings (at least one option)",
        description="Change a key's settings; options not given are left as they are. The API "
        "sees a change within C2C_ACCOUNT_CACHE_SECONDS.",
    )
    setting.add_argument("key_or_id", metavar="KEY_OR_ID", help="the api_key or account id")
    for s in SETTINGS:
        setting.add_argument(s.option, dest=s.dest, choices=s.choices, help=s.help)
    setting.set_defaults(func=_needing_an_option(store_command(_set)), usage_error=setting.error)


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "enabled": account.enabled,
        "credits": account.credits,
        "reserved": account.reserved,
        "confirm": confirm_word(account.confirm),
        "own_numbers": len(account.own_numbers),
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
    print(
        f"{'id':>5}  {'enabled':7}  {'credits':>8}  {'reserved':>8}  {'confirm':7}  "
        f"{'numbers':>7}  name"
    )
    for a in accounts:
        enabled = "yes" if a.enabled else "no"
        print(
            f"{a.id:>5}  {enabled:7}  {a.credits:>8}  {a.reserved:>8}  "
            f"{confirm_word(a.confirm):7}  {len(a.own_numbers):>7}  {a.name}"
        )
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


def _needing_an_option(
    command: Callable[[argparse.Namespace, Config], int],
) -> Callable[[argparse.Namespace, Config], int]:
    """`keys set` with nothing to set is a usage error (status 2), found before the store is
    opened."""

    def run(args: argparse.Namespace, config: Config) -> int:
        if all(getattr(args, s.dest) is None for s in SETTINGS):
            args.usage_error(
                "say what to set: " + ", ".join(f"{s.option} {'|'.join(s.choices)}" for s in SETTINGS)
            )
        return command(args, config)

    return run


def _set(args: argparse.Namespace, store: Store) -> int:
    changed: list[str] = []
    account: Account | None = None
    for s in SETTINGS:  # each in its own short transaction, in this order
        word = getattr(args, s.dest)
        if word is None:
            continue
        account = s.apply(store, args.key_or_id, word)
        if account is None:
            return fail("no such account")
        changed.append(s.describe(account))
    if account is None:  # _needing_an_option makes this unreachable
        return fail("nothing to set")
    print(f"account {account.id} ({account.name}): {', '.join(changed)}")
    return 0

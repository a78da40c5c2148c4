"""`c2c keys create|list|disable|enable|credit|set|rotate`: accounts, their API keys, settings
and limits."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from c2c.cli.db import fail, store_command
from c2c.config import Config
from c2c.domain.credits import CreditsError, format_credits, json_credits, parse_credits
from c2c.domain.networks import parse_cidrs
from c2c.store import Account, Store
from c2c.store.accounts import KeyLimits

UNSET = ("none", "off", "unlimited")  # `keys set --max-concurrent none`: no limit


def _credits(raw: str) -> Decimal:
    try:
        return parse_credits(raw)
    except CreditsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative(raw: str) -> Decimal:
    value = _credits(raw)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _limit_count(raw: str) -> int | None:
    if raw.strip().lower() in UNSET:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r}: a whole number, or none") from None
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("must be between 1 and 1000000 (or none)")
    return value


def _limit_credits(raw: str) -> Decimal | None:
    if raw.strip().lower() in UNSET:
        return None
    value = _credits(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 (or none)")
    return value


def _networks(raw: str) -> tuple[str, ...]:
    if raw.strip().lower() in UNSET:
        return ()
    try:
        return parse_cidrs(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _grace(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r}: whole seconds") from None
    if not 0 <= value <= 30 * 86400:
        raise argparse.ArgumentTypeError("between 0 and 2592000 seconds (30 days)")
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
        "--credits", type=_non_negative, default=Decimal(0), metavar="N",
        help="credits to start with (a decimal; at the default rate a credit is a minute)"
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
        "credit", help="add credits (negative removes; credits never drop below 0)"
    )
    credit.add_argument("key_or_id", metavar="KEY_OR_ID", help="the api_key or account id")
    credit.add_argument("amount", type=_credits, metavar="CREDITS",
                        help="e.g. 100, -20 or 12.5 (up to 6 decimal places)")
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
    for limit in LIMITS:
        # Absent unless given (SUPPRESS), so "none" (None: unlimited) differs from "not given".
        setting.add_argument(limit.option, dest=limit.dest, type=limit.parse,
                             metavar=limit.metavar, help=limit.help,
                             default=argparse.SUPPRESS)
    setting.set_defaults(func=_needing_an_option(store_command(_set)), usage_error=setting.error)

    rotate = actions.add_parser(
        "rotate",
        help="a new api_key (and webhook secret); the old ones work for --grace seconds",
        description="Replace the key's api_key, printed once. The old api_key keeps working "
        "for --grace seconds (default 0: it stops now). With --webhook-secret the webhook "
        "secret is replaced too; meanwhile callbacks carry a signature with each secret "
        "(X-C2C-Signature: v1=<new>,v1=<old>), so the customer can switch at leisure.",
    )
    rotate.add_argument("key_or_id", metavar="KEY_OR_ID", help="the api_key or account id")
    rotate.add_argument("--grace", type=_grace, default=0, metavar="SECONDS",
                        help="how long the old api_key (and secret) keep working")
    rotate.add_argument("--webhook-secret", action="store_true",
                        help="replace the webhook secret as well")
    rotate.add_argument("--json", action="store_true", help="print one JSON object")
    rotate.set_defaults(func=store_command(_rotate))


class Limit(NamedTuple):
    """One limit option of `keys set` (c2c.store.accounts.KeyLimits)."""

    option: str
    dest: str  # also the KeyLimits field
    parse: Callable[[str], Any]
    metavar: str
    help: str


LIMITS: tuple[Limit, ...] = (
    Limit("--max-concurrent", "max_concurrent", _limit_count, "N",
          "calls of this key in flight at once (beyond: code 6); none: unlimited"),
    Limit("--max-per-minute", "max_per_minute", _limit_count, "N",
          "calls accepted per clock minute (beyond: code 6); none: unlimited"),
    Limit("--daily-credits", "daily_credits", _limit_credits, "N",
          "credits the key may spend per UTC day (beyond: code 2); none: unlimited"),
    Limit("--allow-ip", "allow_ips", _networks, "CIDR[,CIDR]",
          "client addresses the key may call from (others: code 1); none: any"),
)


def limits_text(limits: KeyLimits) -> str:
    """The limits as `keys set` takes them, e.g. 'max-concurrent 5, allow-ip any'."""
    def shown(value: Any) -> str:
        if value is None or value == ():
            return "none" if not isinstance(value, tuple) else "any"
        if isinstance(value, tuple):
            return ",".join(value)
        return format_credits(value) if isinstance(value, Decimal) else str(value)

    return ", ".join(f"{limit.option[2:]} {shown(getattr(limits, limit.dest))}"
                     for limit in LIMITS)


def account_json(account: Account) -> dict[str, Any]:
    limits = account.limits
    return {
        "id": account.id,
        "name": account.name,
        "enabled": account.enabled,
        "credits": json_credits(account.credits),
        "reserved": json_credits(account.reserved),
        "confirm": confirm_word(account.confirm),
        "own_numbers": len(account.own_numbers),
        "max_concurrent": limits.max_concurrent,
        "max_per_minute": limits.max_per_minute,
        "daily_credits": (None if limits.daily_credits is None
                          else json_credits(limits.daily_credits)),
        "allow_ips": list(limits.allow_ips),
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
                    "credits": json_credits(args.credits),
                }
            )
        )
    else:
        print(f"account {created.id} ({args.name}) created with "
              f"{format_credits(args.credits)} credits")
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
            f"{a.id:>5}  {enabled:7}  {format_credits(a.credits):>8}  "
            f"{format_credits(a.reserved):>8}  "
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
    account = store.accounts.add_credits(args.key_or_id, args.amount, note=args.note)
    if account is None:
        return fail("no such account")
    print(
        f"account {account.id} ({account.name}): {format_credits(account.credits)} credits, "
        f"{format_credits(account.reserved)} reserved by calls in flight"
    )
    return 0


def _needing_an_option(
    command: Callable[[argparse.Namespace, Config], int],
) -> Callable[[argparse.Namespace, Config], int]:
    """`keys set` with nothing to set is a usage error (status 2), found before the store is
    opened."""

    def run(args: argparse.Namespace, config: Config) -> int:
        if (all(getattr(args, s.dest) is None for s in SETTINGS)
                and not any(hasattr(args, limit.dest) for limit in LIMITS)):
            args.usage_error(
                "say what to set: "
                + ", ".join([f"{s.option} {'|'.join(s.choices)}" for s in SETTINGS]
                            + [f"{limit.option} {limit.metavar}" for limit in LIMITS])
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
    limits = {limit.dest: getattr(args, limit.dest) for limit in LIMITS
              if hasattr(args, limit.dest)}
    if limits:
        account = store.accounts.set_limits(args.key_or_id, **limits)
        if account is None:
            return fail("no such account")
        changed.append(limits_text(account.limits))
    if account is None:  # _needing_an_option makes this unreachable
        return fail("nothing to set")
    print(f"account {account.id} ({account.name}): {', '.join(changed)}")
    return 0


def _rotate(args: argparse.Namespace, store: Store) -> int:
    rotated = store.accounts.rotate(args.key_or_id, grace_seconds=args.grace,
                                    webhook_secret=args.webhook_secret)
    if rotated is None:
        return fail("no such account")
    if args.json:
        print(json.dumps({"id": rotated.id, "api_key": rotated.api_key,
                          "webhook_secret": rotated.webhook_secret,
                          "grace_seconds": args.grace}))
        return 0
    print(f"account {rotated.id}: new api_key {rotated.api_key}")
    if rotated.webhook_secret:
        print(f"new webhook secret: {rotated.webhook_secret}")
    old = "the old api_key" + (" and webhook secret" if rotated.webhook_secret else "")
    print(f"{old} {'stop working now' if not args.grace else f'keep working for {args.grace} s'}"
          ". Shown only now.")
    return 0

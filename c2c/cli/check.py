"""`c2c check [--json]`: verify the store's invariants; exit 1 on any breach, printing each."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from c2c.cli.db import store_command
from c2c.config import Config
from c2c.store import Store
from c2c.store.invariants import DEFAULT_STUCK_MARGIN, check_invariants


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="verify the store's invariants (credits vs ledger, reservations, debits, callbacks)",
        description="Verify the store's invariants; exit status 1 when any is breached.",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--stuck-margin",
        type=_seconds,
        default=DEFAULT_STUCK_MARGIN,
        metavar="SECONDS",
        help="how long past its deadline an unsettled call counts as stuck "
        f"(default {DEFAULT_STUCK_MARGIN:.0f})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    return store_command(_check)(args, config)


def _seconds(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 30 * 86400:
        raise argparse.ArgumentTypeError("between 0 and 2592000")
    return value


def _check(args: argparse.Namespace, store: Store) -> int:
    now = time.time()
    breaches = check_invariants(store, now=now, stuck_margin=args.stuck_margin)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not breaches,
                    "checked_at": now,
                    "breaches": [b.as_dict() for b in breaches],
                },
                indent=2,
            )
        )
    elif breaches:
        for breach in breaches:
            print(f"BREACH {breach}")
        print(f"{len(breaches)} breach(es)")
    else:
        print("ok: every invariant holds")
    return 1 if breaches else 0

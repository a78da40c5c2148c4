"""`c2c rates import|show|list`: credits per minute by destination (c2c.store.rates)."""

from __future__ import annotations

import argparse
import csv
import functools
import json
import sys
from typing import Any

from c2c.cli.db import store_command
from c2c.config import Config
from c2c.domain.credits import format_credits, json_credits
from c2c.store import Store
from c2c.store.dnc import parse_e164


def _e164(raw: str) -> int:
    number = parse_e164(raw)
    if number is None:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an E.164 number (e.g. +447700900123)")
    return number


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rates", help="credits per minute by destination prefix",
        description="Rates: credits per started minute of a call's legs, by the longest E.164 "
        "prefix of the number; a number no prefix matches costs C2C_DEFAULT_RATE. A call's "
        "rates are fixed when it is accepted.")
    actions = parser.add_subparsers(dest="rates_command", metavar="ACTION", required=True)

    importing = actions.add_parser(
        "import", help="load a CSV of prefix,rate[,description] (all of it or nothing)")
    importing.add_argument("file", metavar="FILE.csv", help="the CSV file, or - for stdin")
    importing.add_argument("--replace", action="store_true",
                           help="the table becomes exactly the file (else: add and update)")
    importing.set_defaults(func=store_command(_import))

    show = actions.add_parser("show", help="the rate a number is charged at")
    show.add_argument("number", type=_e164, metavar="+E164")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_with_config(_show))

    listing = actions.add_parser("list", help="every rate, by prefix")
    form = listing.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="as `rates import` reads it")
    form.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=store_command(_list))


def _with_config(handler: Any) -> Any:
    """store_command for a handler that also wants the settings (the default rate)."""
    def run(args: argparse.Namespace, config: Config) -> int:
        return store_command(functools.partial(handler, config=config))(args, config)
    return run


def _import(args: argparse.Namespace, store: Store) -> int:
    if args.file == "-":
        result = store.rates.import_csv(sys.stdin, replace=args.replace, source="stdin")
    else:
        with open(args.file, encoding="utf-8", newline="") as handle:
            result = store.rates.import_csv(handle, replace=args.replace, source=args.file)
    how = "the table replaced" if result.replaced else "added or updated"
    print(f"{result.rows} rates imported ({how}); {store.rates.count()} in the table")
    return 0


def _show(args: argparse.Namespace, store: Store, *, config: Config) -> int:
    found = store.rates.lookup(args.number)
    rate = config.default_rate if found is None else found.rate
    if args.json:
        print(json.dumps({
            "number": f"+{args.number}",
            "rate": json_credits(rate),
            "prefix": None if found is None else f"+{found.prefix}",
            "description": None if found is None else found.description,
            "default": found is None,
            "caller_leg_billed": config.bill_caller_leg,
        }))
        return 0
    if found is None:
        print(f"+{args.number}: {format_credits(rate)} credits/min (C2C_DEFAULT_RATE: no prefix "
              "matches)")
    else:
        about = f" ({found.description})" if found.description else ""
        print(f"+{args.number}: {format_credits(rate)} credits/min, prefix +{found.prefix}"
              f"{about}")
    return 0


def _list(args: argparse.Namespace, store: Store) -> int:
    if args.csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["prefix", "rate", "description"])
        for rate in store.rates.list():
            out.writerow([rate.prefix, format_credits(rate.rate), rate.description or ""])
        return 0
    for rate in store.rates.list():
        if args.json:
            print(json.dumps({"prefix": rate.prefix, "rate": json_credits(rate.rate),
                              "description": rate.description}))
        else:
            print(f"+{rate.prefix:<16} {format_credits(rate.rate):>12}  {rate.description or ''}")
    return 0

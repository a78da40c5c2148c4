"""`c2c dnc add|remove|import|count`: the Do-Not-Call list."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from c2c.cli.args import int_between
from c2c.cli.db import store_command
from c2c.store import DncImportResult, Store
from c2c.store.dnc import IMPORT_BATCH, parse_e164


def _e164(raw: str) -> int:
    number = parse_e164(raw)
    if number is None:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an E.164 number (e.g. +15552104427)")
    return number


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("dnc", help="the Do-Not-Call list")
    actions = parser.add_subparsers(dest="dnc_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="list numbers (E.164, '+' optional)")
    add.add_argument("numbers", nargs="+", type=_e164, metavar="E164")
    add.set_defaults(func=store_command(_add))

    remove = actions.add_parser("remove", help="unlist numbers")
    remove.add_argument("numbers", nargs="+", type=_e164, metavar="E164")
    remove.set_defaults(func=store_command(_remove))

    importing = actions.add_parser(
        "import",
        help="bulk-import a file: one E.164 number per line, or a CSV with the number first",
    )
    importing.add_argument("file", metavar="FILE")
    importing.add_argument(
        "--batch", type=int_between(1, 200_000), default=IMPORT_BATCH, help="numbers per transaction"
    )
    importing.add_argument("--quiet", action="store_true", help="no progress on stderr")
    importing.set_defaults(func=store_command(_import))

    count = actions.add_parser("count", help="how many numbers are listed")
    count.set_defaults(func=store_command(_count))


def _add(args: argparse.Namespace, store: Store) -> int:
    wanted = set(args.numbers)
    added = store.dnc.add(wanted)
    print(f"{added} added, {len(wanted) - added} already listed")
    return 0


def _remove(args: argparse.Namespace, store: Store) -> int:
    wanted = set(args.numbers)
    removed = store.dnc.remove(wanted)
    print(f"{removed} removed, {len(wanted) - removed} were not listed")
    return 0


def _show_progress(result: DncImportResult) -> None:
    print(
        f"\r{result.read:,} numbers, {result.added:,} new, {result.invalid:,} invalid "
        f"({result.rate:,.0f}/s)",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _import(args: argparse.Namespace, store: Store) -> int:
    progress = None if args.quiet else _show_progress
    result = store.dnc.import_file(args.file, progress=progress, batch_size=args.batch)
    if progress is not None and result.read:
        print(file=sys.stderr)  # end the progress line
    print(
        f"read {result.read:,} numbers in {result.seconds:.1f}s ({result.rate:,.0f}/s): "
        f"{result.added:,} added, {result.duplicates:,} already listed, "
        f"{result.invalid:,} invalid lines"
    )
    if result.invalid_lines:
        more = ", ..." if result.invalid > len(result.invalid_lines) else ""
        lines = ", ".join(map(str, result.invalid_lines))
        print(f"invalid lines (skipped): {lines}{more}")
    return 0


def _count(args: argparse.Namespace, store: Store) -> int:
    print(store.dnc.count())
    return 0

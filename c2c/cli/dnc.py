"""`c2c dnc add|remove|import|count`: the Do-Not-Call list."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from c2c.cli.args import int_between
from c2c.cli.db import store_command
from c2c.store import DncImportResult, Store
from c2c.store.dnc import IMPORT_BATCH, IMPORT_SORT_RUN, parse_e164


def _e164(raw: str) -> int:
    number = parse_e164(raw)
    if number is None:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an E.164 number (e.g. +15552104427)")
    return number


def _directory(raw: str) -> str:
    if not os.path.isdir(raw):
        raise argparse.ArgumentTypeError(f"{raw!r} is not a directory")
    return raw


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
    importing.add_argument(
        "--sort-run",
        type=int_between(1_000, 100_000_000),
        default=IMPORT_SORT_RUN,
        metavar="N",
        help="numbers sorted in memory at a time, about 40 bytes each; a bigger file is sorted "
        "through temporary files of 8 bytes a number (default: %(default)s)",
    )
    importing.add_argument(
        "--tmpdir",
        type=_directory,
        metavar="DIR",
        help="where those files go (default: TMPDIR, else the system's temporary directory)",
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


class _Progress:
    """One line on stderr, rewritten: the numbers read and sorted, then the ones inserted."""

    def __init__(self) -> None:
        self.shown = False
        self._width = 0

    def __call__(self, result: DncImportResult) -> None:
        if result.phase == "reading":
            line = f"reading: {result.read:,} numbers, {result.invalid:,} invalid"
            done = result.read
        else:
            line = (
                f"inserting: {result.processed:,} of {result.read:,} numbers, "
                f"{result.added:,} new, {result.invalid:,} invalid"
            )
            done = result.processed
        rate = done / result.seconds if result.seconds > 0 else 0.0
        line = f"{line} ({rate:,.0f}/s)"
        # Padded to cover what a longer line before it left on the screen.
        print(f"\r{line:<{self._width}}", end="", file=sys.stderr, flush=True)
        self._width = max(self._width, len(line))
        self.shown = True


def _import(args: argparse.Namespace, store: Store) -> int:
    progress = None if args.quiet else _Progress()
    result = store.dnc.import_file(
        args.file,
        progress=progress,
        batch_size=args.batch,
        run_size=args.sort_run,
        tmpdir=args.tmpdir,
    )
    if progress is not None and progress.shown:
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

"""`c2c db upgrade|status`, and how every store command opens the store.

The store commands share ``store_command``: open the store from the config, refuse to run on a
schema that is not current, turn c2c errors into one line on stderr and exit status 1, and close
the engine afterwards.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from c2c.config import Config
from c2c.errors import C2CError, StoreError
from c2c.store import Store, migrations

log = logging.getLogger(__name__)

StoreHandler = Callable[[argparse.Namespace, Store], int]
CommandFunc = Callable[[argparse.Namespace, Config], int]


def fail(message: str) -> int:
    print(f"c2c: {message}", file=sys.stderr)
    return 1


def open_store(config: Config) -> Store:
    return Store.from_url(config.database_url)


def run_guarded(work: Callable[[], int]) -> int:
    """Run a command body; a c2c or file error becomes one line on stderr and status 1."""
    try:
        return work()
    except C2CError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def store_command(handler: StoreHandler, *, require_current: bool = True) -> CommandFunc:
    """Wrap ``handler(args, store)`` as a CLI func(args, config) -> exit status."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, config: Config) -> int:
        def work() -> int:
            store = open_store(config)
            try:
                if require_current and not store.is_current():
                    raise StoreError(
                        "the database schema is missing or out of date: run `c2c db upgrade`"
                    )
                return handler(args, store)
            finally:
                store.dispose()

        return run_guarded(work)

    return run


def iso_time(value: float | None) -> str | None:
    """Unix seconds -> ISO-8601 UTC with milliseconds, e.g. 2026-01-02T03:04:05.678Z."""
    if value is None:
        return None
    moment = datetime.fromtimestamp(float(value), UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("db", help="create or upgrade the database schema")
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="create the tables or bring them up to date")
    upgrade.set_defaults(func=store_command(_upgrade, require_current=False))
    status = actions.add_parser("status", help="show the schema version (exit 1 if not current)")
    status.set_defaults(func=store_command(_status, require_current=False))


def _upgrade(args: argparse.Namespace, store: Store) -> int:
    applied = store.upgrade()
    if applied:
        print(f"schema upgraded to version {applied[-1]} (applied {', '.join(map(str, applied))})")
    else:
        print(f"schema already at version {migrations.LATEST_VERSION}")
    return 0


def _status(args: argparse.Namespace, store: Store) -> int:
    current = migrations.current_version(store.engine)
    print(f"schema version {current}, this c2c expects {migrations.LATEST_VERSION}")
    return 0 if current == migrations.LATEST_VERSION else 1

"""Measure `c2c dnc import` on a real database (not a test: it takes a while and a server).

    .venv/bin/python bench/dnc_import.py [--server mysql+pymysql://root@127.0.0.1:3306]
                                          [--count 1000000] [--batch 50000] [--sqlite]

It writes COUNT distinct random E.164 numbers to a temporary file (one per line, '+' on every
other one), creates a scratch database c2c_bench_<random> on the server (or a temporary SQLite
file with --sqlite), imports the file through Store.dnc.import_file, prints the rate, imports it
again (all duplicates), and drops the scratch database.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import time

import pymysql
from sqlalchemy.engine import make_url

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from c2c.store import DncImportResult, Store  # noqa: E402


def write_numbers(path: str, count: int) -> None:
    rng = random.Random(42)
    # Distinct NANP numbers: 1 + NPA (200-999) + 7 digits, drawn without repeats.
    picks = rng.sample(range(200_000_0000, 999_999_9999), count)
    with open(path, "w", encoding="ascii") as handle:
        handle.writelines(f"{'+' if i % 2 else ''}1{n}\n" for i, n in enumerate(picks))


def progress(result: DncImportResult) -> None:
    print(f"\r  {result.read:>10,} read, {result.rate:>9,.0f}/s", end="", file=sys.stderr)


def run(url: str, path: str, batch: int) -> None:
    store = Store.from_url(url)
    try:
        store.upgrade()
        for label in ("first import", "again (all duplicates)"):
            result = store.dnc.import_file(path, progress=progress, batch_size=batch)
            print(file=sys.stderr)
            print(
                f"{label}: {result.read:,} numbers in {result.seconds:.2f}s = "
                f"{result.rate:,.0f}/s ({result.added:,} added, {result.duplicates:,} duplicates,"
                f" {result.invalid} invalid)"
            )
        started = time.monotonic()
        count = store.dnc.count()
        print(f"count: {count:,} ({time.monotonic() - started:.2f}s)")
        started = time.monotonic()
        for n in range(1000):
            store.dnc.contains_any([15550000000 + n, 442071234567])
        per_check_ms = (time.monotonic() - started) * 1000 / 1000
        print(f"contains_any: {per_check_ms:.3f} ms per check (1000 checks)")
    finally:
        store.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--sqlite", action="store_true", help="measure SQLite instead")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "dnc.txt")
        started = time.monotonic()
        write_numbers(path, args.count)
        print(f"wrote {args.count:,} numbers in {time.monotonic() - started:.1f}s")
        if args.sqlite:
            run(f"sqlite:///{os.path.join(scratch, 'bench.sqlite3')}", path, args.batch)
            return 0
        server = make_url(args.server)
        name = f"c2c_bench_{secrets.token_hex(4)}"
        admin = pymysql.connect(
            host=server.host or "127.0.0.1",
            port=server.port or 3306,
            user=server.username or "root",
            password=server.password or "",
            connect_timeout=5,
            autocommit=True,
        )
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            url = server.set(database=name).render_as_string(hide_password=False)
            run(url, path, args.batch)
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

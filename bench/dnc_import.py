"""Do-Not-Call import measurements: `c2c dnc import` as an operator runs it, and a baseline.

As part of the benchmark (``python -m bench``, phase ``dnc``) or on its own:

    .venv/bin/python -m bench.dnc_import [--count 1000000] [--sqlite] [--baseline]
                                          [--sort-run N] [--tmpdir DIR]
                                          [--server mysql+pymysql://root@127.0.0.1:3306]

It writes COUNT distinct E.164 numbers (NANP, area codes 300-999, in a scattered order, '+' on
every other line) to a temporary file, creates a scratch database (``c2c_bench_<random>``,
dropped afterwards; or an SQLite file), runs ``c2c db upgrade`` and times ``c2c dnc import FILE``
(process start, reading and sorting included; --sort-run and --tmpdir are passed on), prints the
command's peak memory and the temporary files its sort wrote, then, with --baseline, MariaDB's
own bulk path on the same file (``LOAD DATA LOCAL INFILE`` into the same table, in a second
scratch database).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pymysql
from sqlalchemy.engine import make_url

from c2c.store import Store

# Distinct numbers without a set: i -> BASE + (A*i + B) mod M is a bijection on [0, M) because
# A is coprime with M = 7e9 (= 2^9 * 5^9 * 7); BASE + [0, M) is 1 300 000 0000 .. 1 999 999 9999.
_M = 7_000_000_000
_A = 2_654_435_761
_BASE = 13_000_000_000


def write_numbers(path: Path | str, count: int, seed: int = 12345) -> None:
    if count > _M:
        raise ValueError("at most 7e9 numbers")
    b = seed % _M
    with open(path, "w", encoding="ascii") as handle:
        for start in range(0, count, 100_000):
            stop = min(count, start + 100_000)
            handle.write("".join(
                f"+{_BASE + (_A * i + b) % _M}\n" if i & 1 else f"{_BASE + (_A * i + b) % _M}\n"
                for i in range(start, stop)))


def c2c_command() -> str:
    found = shutil.which("c2c", path=os.path.dirname(sys.executable))
    if found is None:
        raise RuntimeError("the c2c command is not installed in this environment")
    return found


@dataclass(frozen=True)
class ImportRun:
    rate: float  # the lines of the file (distinct valid numbers only) over the wall time
    seconds: float  # the command's wall time, process start included
    reported: float  # the rate the command itself reports
    temporary_mb: int | None  # what its sort wrote, from its INFO log line (None: not logged)


def run_import(url: str, path: Path | str, env: Mapping[str, str] | None = None,
               timeout: float = 1800, args: Sequence[str] = ()) -> ImportRun:
    """Run ``c2c dnc import PATH --quiet ARGS...`` against ``url`` (schema upgraded first)."""
    store = Store.from_url(url)
    try:
        store.upgrade()
    finally:
        store.dispose()
    with open(path, "rb") as handle:
        count = sum(1 for _ in handle)
    full_env = {**os.environ, **(env or {}), "C2C_DATABASE_URL": url}
    started = time.monotonic()
    done = subprocess.run([c2c_command(), "dnc", "import", str(path), "--quiet", *args],
                          env=full_env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"c2c dnc import failed ({done.returncode}): {done.stderr[-2000:]}")
    # "read 1,000,000 numbers in 2.7s (376,488/s): ..."
    reported = re.search(r"\(([\d,]+)/s\)", done.stdout)
    # "... in 20.1s (10 sorted runs, 80 MB of temporary files)"
    spilled = re.search(r"(\d+) MB of temporary files", done.stderr)
    return ImportRun(count / seconds, seconds,
                     float(reported.group(1).replace(",", "")) if reported else 0.0,
                     int(spilled.group(1)) if spilled else None)


def dnc_import(url: str, path: Path | str, env: Mapping[str, str] | None = None,
               timeout: float = 1800) -> tuple[float, float, float]:
    """``run_import``: (rate/s, seconds, the rate the command itself reports)."""
    run = run_import(url, path, env, timeout)
    return run.rate, run.seconds, run.reported


def load_data(url: str, path: Path | str, timeout: int = 1800) -> float:
    """MariaDB's LOAD DATA LOCAL INFILE of the file into c2c's dnc table; numbers/s."""
    store = Store.from_url(url)
    try:
        store.upgrade()
    finally:
        store.dispose()
    parsed = make_url(url)
    conn = pymysql.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 3306,
                           user=parsed.username or "root", password=parsed.password or "",
                           database=parsed.database, local_infile=True, autocommit=True,
                           read_timeout=timeout, write_timeout=timeout)
    try:
        with conn.cursor() as cursor:
            started = time.monotonic()
            rows = cursor.execute(f"LOAD DATA LOCAL INFILE '{path}' IGNORE INTO TABLE dnc "
                                  "(number)")
            seconds = time.monotonic() - started
    finally:
        conn.close()
    return rows / seconds


def _scratch(server_url: str):  # noqa: ANN202
    from bench.stack import scratch_database

    return scratch_database("mysql", Path(tempfile.gettempdir()), server_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dnc_import",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--sqlite", action="store_true", help="measure SQLite instead")
    parser.add_argument("--baseline", action="store_true", help="also time LOAD DATA")
    parser.add_argument("--sort-run", type=int, help="passed on to c2c dnc import")
    parser.add_argument("--tmpdir", help="passed on to c2c dnc import")
    args = parser.parse_args(argv)
    passed = [*(["--sort-run", str(args.sort_run)] if args.sort_run else []),
              *(["--tmpdir", args.tmpdir] if args.tmpdir else [])]
    env = {"C2C_LOG_LEVEL": "INFO"}  # the line that tells the temporary files' size

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "dnc.txt"
        started = time.monotonic()
        write_numbers(path, args.count)
        print(f"wrote {args.count:,} numbers in {time.monotonic() - started:.1f}s")
        if args.sqlite:
            run = run_import(f"sqlite:///{Path(scratch) / 'bench.sqlite3'}", path, env,
                             args=passed)
        else:
            with _scratch(args.server) as url:
                run = run_import(url, path, env, args=passed)
        # ru_maxrss: kB on Linux; the command is this process's only child so far.
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
        spilled = "?" if run.temporary_mb is None else f"{run.temporary_mb:,}"
        print(f"c2c dnc import: {args.count:,} numbers in {run.seconds:.1f}s = "
              f"{run.rate:,.0f}/s (peak memory {peak_mb:,} MB, temporary files {spilled} MB)")
        if args.baseline and not args.sqlite:
            with _scratch(args.server) as url:
                print(f"LOAD DATA LOCAL INFILE: {load_data(url, path):,.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

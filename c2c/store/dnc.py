"""The Do-Not-Call list: E.164 numbers as BIGINT keys, checked on every request, bulk-imported.

Import file format: one number per line, E.164 with or without '+' (5-15 digits, no leading 0),
or a CSV/TSV/semicolon file whose first column is the number. Blank lines and lines starting
with '#' are skipped; a first data line holding letters is a header and skipped; quotes and
surrounding spaces around the number are tolerated. Any other line is counted as invalid (and the
first few are reported by line number); it never stops the import.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, exists, func, select

from c2c.store import schema
from c2c.store.db import Database

log = logging.getLogger(__name__)

IMPORT_BATCH = 50_000  # numbers per INSERT (MySQL: one statement of ~700 kB, under 16 MB)
INVALID_SAMPLE = 10  # how many invalid line numbers an import reports
_DELETE_CHUNK = 1_000


def parse_e164(text: str) -> int | None:
    """``'+15552104427'`` / ``'15552104427'`` (quotes and spaces around allowed) -> digits as int."""
    value = text.strip().strip("\"'").strip()
    if value.startswith("+"):
        value = value[1:]
    if 5 <= len(value) <= 15 and value.isascii() and value.isdigit() and value[0] != "0":
        return int(value)
    return None


def first_field(line: str) -> str:
    for separator in (",", ";", "\t"):
        if separator in line:
            return line.split(separator, 1)[0]
    return line


@dataclass(frozen=True)
class DncImportResult:
    """Counts so far (or in the end): read = valid numbers read = added + duplicates."""

    read: int = 0
    added: int = 0
    duplicates: int = 0
    invalid: int = 0
    seconds: float = 0.0
    invalid_lines: tuple[int, ...] = field(default=())  # the first few, 1-based

    @property
    def rate(self) -> float:
        """Numbers read per second."""
        return self.read / self.seconds if self.seconds > 0 else 0.0


@dataclass
class _Reader:
    """Turns lines into numbers, counting what it skips."""

    invalid: int = 0
    invalid_lines: list[int] = field(default_factory=list)
    seen_data: bool = False

    def numbers(self, lines: Iterable[str]) -> Iterator[int]:
        for line_number, line in enumerate(lines, 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            number = parse_e164(first_field(stripped))
            if number is None:
                if not self.seen_data and any(ch.isalpha() for ch in stripped):
                    self.seen_data = True  # a header line
                    continue
                self.invalid += 1
                if len(self.invalid_lines) < INVALID_SAMPLE:
                    self.invalid_lines.append(line_number)
                continue
            self.seen_data = True
            yield number


def _batches(numbers: Iterable[int], size: int) -> Iterator[list[int]]:
    batch: list[int] = []
    for number in numbers:
        batch.append(number)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Dnc:
    def __init__(self, db: Database) -> None:
        self._db = db

    def contains_any(self, numbers: Iterable[int]) -> bool:
        """Whether any of these E.164 numbers is listed (one indexed query)."""
        wanted = sorted(set(numbers))
        if not wanted:
            return False
        query = select(exists().where(schema.dnc.c.number.in_(wanted)))
        with self._db.read() as conn:
            return bool(conn.execute(query).scalar())

    def add(self, numbers: Iterable[int]) -> int:
        """List these numbers; returns how many were new."""
        added = 0
        with self._db.write() as conn:
            for batch in _batches(numbers, IMPORT_BATCH):
                added += self._insert_ignoring_duplicates(conn, batch)
        return added

    def remove(self, numbers: Iterable[int]) -> int:
        """Unlist these numbers; returns how many were listed."""
        removed = 0
        t = schema.dnc
        with self._db.write() as conn:
            for batch in _batches(sorted(set(numbers)), _DELETE_CHUNK):
                removed += conn.execute(delete(t).where(t.c.number.in_(batch))).rowcount
        return removed

    def count(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.dnc)).scalar() or 0)

    def import_lines(
        self,
        lines: Iterable[str],
        progress: Callable[[DncImportResult], None] | None = None,
        batch_size: int = IMPORT_BATCH,
    ) -> DncImportResult:
        """Import numbers from lines of text (see the module doc), one transaction per batch so
        the list stays usable, and accepts are not held up, during a long import."""
        started = time.monotonic()
        reader = _Reader()
        read = added = 0

        def snapshot() -> DncImportResult:
            return DncImportResult(
                read=read,
                added=added,
                duplicates=read - added,
                invalid=reader.invalid,
                seconds=time.monotonic() - started,
                invalid_lines=tuple(reader.invalid_lines),
            )

        for batch in _batches(reader.numbers(lines), batch_size):
            with self._db.write() as conn:
                added += self._insert_ignoring_duplicates(conn, batch)
            read += len(batch)
            if progress is not None:
                progress(snapshot())
        result = snapshot()
        log.info(
            "dnc import: %d read, %d added, %d duplicates, %d invalid in %.1fs",
            result.read,
            result.added,
            result.duplicates,
            result.invalid,
            result.seconds,
        )
        return result

    def import_file(
        self,
        path: str,
        progress: Callable[[DncImportResult], None] | None = None,
        batch_size: int = IMPORT_BATCH,
    ) -> DncImportResult:
        """Import a file (see the module doc). OSError if it cannot be read."""
        # utf-8-sig drops a BOM; undecodable bytes make their line invalid instead of failing.
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            return self.import_lines(handle, progress=progress, batch_size=batch_size)

    def _insert_ignoring_duplicates(self, conn: Connection, numbers: list[int]) -> int:
        unique = sorted(set(numbers))  # key order: B-tree friendly, and fewer rows to send
        if self._db.is_mysql:
            # One multi-row statement per batch: far faster than executemany round trips. The
            # values are ints we parsed, so writing them into the SQL text is safe.
            values = ",".join(f"({n:d})" for n in unique)
            return conn.exec_driver_sql(f"INSERT IGNORE INTO dnc (number) VALUES {values}").rowcount
        result = conn.exec_driver_sql(
            "INSERT OR IGNORE INTO dnc (number) VALUES (?)", [(n,) for n in unique]
        )
        return result.rowcount

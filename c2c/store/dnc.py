"""The Do-Not-Call list: E.164 numbers as BIGINT keys, checked on every request, bulk-imported.

Import file format: one number per line, E.164 with or without '+' (5-15 digits, no leading 0),
or a CSV/TSV/semicolon file whose first column is the number. Blank lines and lines starting
with '#' are skipped; a first data line holding letters is a header and skipped; quotes and
surrounding spaces around the number are tolerated. Any other line is counted as invalid (and the
first few are reported by line number); it never stops the import.

An import reads the whole file first, then inserts in key order. Batches drawn from all over the
range touch B-tree pages all over a table bigger than the database's cache (10,000,000 numbers in
file order went ten times slower on MariaDB's default 128 MiB buffer pool); ascending keys fill one
page after another. The sort is external (c2c.store.extsort): runs of ``run_size`` numbers
(IMPORT_SORT_RUN, about 40 MB in memory) are sorted and, when the file holds more than one run,
written to anonymous temporary files at 8 bytes a number (in ``tmpdir``, else TMPDIR or the
system's), then merged. Inserting takes one transaction per batch, so that the list stays usable,
and accepts are not held up, during a long import. A file of plain lines (just the number, '+' or
not) is parsed a block at a time in C; a block holding anything else is parsed line by line.
"""

from __future__ import annotations

import codecs
import io
import logging
import operator
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import BinaryIO, Literal

from sqlalchemy import Connection, delete, exists, func, select

from c2c.store import schema
from c2c.store.db import Database
from c2c.store.extsort import RUN_SIZE, SortedRuns

log = logging.getLogger(__name__)

IMPORT_BATCH = 50_000  # numbers per INSERT (MySQL: one statement of ~700 kB, under 16 MB)
IMPORT_SORT_RUN = RUN_SIZE  # numbers an import sorts in memory at a time
INVALID_SAMPLE = 10  # how many invalid line numbers an import reports
READ_BLOCK = 1 << 20  # bytes of a file parsed at a time
_LINES_CHUNK = 65_536  # lines of an iterable parsed at a time
_DELETE_CHUNK = 1_000
_SMALLEST, _LARGEST = 10**4, 10**15 - 1  # 5 and 15 digits
_PLAIN_BYTES = b"0123456789+\r\n"


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


def plain_numbers(block: bytes) -> list[int] | None:
    """The numbers in a block of whole lines if every line is a bare E.164 number ('+' optional)
    or blank, else None. What parse_e164 would make of each line, several times faster: the
    checks and the conversion run over the whole block in C."""
    if block.translate(None, _PLAIN_BYTES) or block.count(b"\r") != block.count(b"\r\n"):
        return None  # anything but digits, '+' and line ends (CR only before LF)
    if block.startswith((b"0", b"+0")) or b"\n0" in block or b"\n+0" in block:
        return None  # a leading zero
    try:
        numbers = list(map(int, block.split()))
    except ValueError:  # a '+' elsewhere than in front, or alone
        return None
    if numbers and (min(numbers) < _SMALLEST or max(numbers) > _LARGEST):
        return None
    return numbers


def _blocks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """The file in blocks of whole lines (the last one may lack its line end), without a BOM."""
    pending: list[bytes] = []
    first = True
    while data := handle.read(size):
        cut = data.rfind(b"\n") + 1
        if not cut:  # a line longer than a block
            pending.append(data)
            continue
        pending.append(data[:cut])
        block = b"".join(pending)
        pending = [data[cut:]]
        if first and block.startswith(codecs.BOM_UTF8):
            block = block[len(codecs.BOM_UTF8) :]
        first = False
        yield block
    tail = b"".join(pending)
    if first and tail.startswith(codecs.BOM_UTF8):
        tail = tail[len(codecs.BOM_UTF8) :]
    if tail:
        yield tail


Phase = Literal["reading", "inserting", "done"]


@dataclass(frozen=True)
class DncImportResult:
    """Counts so far (or in the end). First the file is read and sorted (phase "reading": read
    grows), then inserted in key order ("inserting": added and duplicates grow); once "done",
    read = valid numbers read = added + duplicates (repeated in the file, or already listed)."""

    read: int = 0
    added: int = 0
    duplicates: int = 0
    invalid: int = 0
    seconds: float = 0.0
    invalid_lines: tuple[int, ...] = field(default=())  # the first few, 1-based
    phase: Phase = "done"
    spilled_bytes: int = 0  # temporary files the sort wrote

    @property
    def rate(self) -> float:
        """Numbers read per second."""
        return self.read / self.seconds if self.seconds > 0 else 0.0

    @property
    def processed(self) -> int:
        """Numbers found new or duplicate so far (= read once done)."""
        return self.added + self.duplicates


@dataclass
class NumberReader:
    """Turns lines into numbers, in lists, counting what it skips (see the module doc)."""

    invalid: int = 0
    invalid_lines: list[int] = field(default_factory=list)  # the first few, 1-based
    seen_data: bool = False
    lines: int = 0  # lines read so far

    def numbers_in_lines(self, lines: Iterable[str]) -> Iterator[list[int]]:
        remaining = iter(lines)
        while chunk := list(islice(remaining, _LINES_CHUNK)):
            yield self._parse_lines(chunk)

    def numbers_in_file(self, handle: BinaryIO, block_size: int = READ_BLOCK) -> Iterator[list[int]]:
        """The numbers of a file opened in binary, a block at a time."""
        for block in _blocks(handle, block_size):
            yield self._parse_block(block)

    def _parse_lines(self, lines: Iterable[str]) -> list[int]:
        numbers: list[int] = []
        line_number = self.lines
        for line_number, line in enumerate(lines, self.lines + 1):
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
            numbers.append(number)
        self.lines = line_number
        return numbers

    def _parse_block(self, block: bytes) -> list[int]:
        numbers = plain_numbers(block)
        if numbers is None:
            # As open(..., encoding="utf-8", errors="replace") reads it: undecodable bytes make
            # their line invalid instead of failing; CR, LF and CRLF end lines.
            return self._parse_lines(io.TextIOWrapper(io.BytesIO(block), "utf-8", "replace"))
        self.lines += block.count(b"\n") + (not block.endswith(b"\n"))
        self.seen_data = self.seen_data or bool(numbers)
        return numbers


def _rebatched(pieces: Iterable[list[int]], size: int) -> Iterator[list[int]]:
    """Lists of any length, concatenated and cut into lists of ``size`` (the last one shorter)."""
    pending: list[int] = []
    for piece in pieces:
        start = 0
        if pending:
            start = size - len(pending)
            pending += piece[:start]
            if len(pending) < size:
                continue
            yield pending
        while len(piece) - start >= size:
            yield piece[start : start + size]
            start += size
        pending = piece[start:]
    if pending:
        yield pending


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
            for batch in _rebatched([sorted(set(map(operator.index, numbers)))], IMPORT_BATCH):
                added += self._insert_ignoring_duplicates(conn, batch)
        return added

    def remove(self, numbers: Iterable[int]) -> int:
        """Unlist these numbers; returns how many were listed."""
        removed = 0
        t = schema.dnc
        with self._db.write() as conn:
            for batch in _rebatched([sorted(set(numbers))], _DELETE_CHUNK):
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
        run_size: int = IMPORT_SORT_RUN,
        tmpdir: str | None = None,
    ) -> DncImportResult:
        """Import numbers from lines of text (see the module doc)."""
        reader = NumberReader()
        chunks = reader.numbers_in_lines(lines)
        return self._import(reader, chunks, progress, batch_size, run_size, tmpdir)

    def import_file(
        self,
        path: str,
        progress: Callable[[DncImportResult], None] | None = None,
        batch_size: int = IMPORT_BATCH,
        run_size: int = IMPORT_SORT_RUN,
        tmpdir: str | None = None,
    ) -> DncImportResult:
        """Import a file (see the module doc). OSError if it (or tmpdir) cannot be used."""
        with open(path, "rb") as handle:
            reader = NumberReader()
            chunks = reader.numbers_in_file(handle, READ_BLOCK)
            return self._import(reader, chunks, progress, batch_size, run_size, tmpdir)

    def _import(
        self,
        reader: NumberReader,
        chunks: Iterable[list[int]],
        progress: Callable[[DncImportResult], None] | None,
        batch_size: int,
        run_size: int,
        tmpdir: str | None,
    ) -> DncImportResult:
        started = time.monotonic()
        sent = added = 0
        with SortedRuns(run_size, tmpdir) as runs:

            def snapshot(phase: Phase) -> DncImportResult:
                return DncImportResult(
                    read=runs.count,
                    added=added,
                    duplicates=runs.repeats + sent - added,
                    invalid=reader.invalid,
                    seconds=time.monotonic() - started,
                    invalid_lines=tuple(reader.invalid_lines),
                    phase=phase,
                    spilled_bytes=runs.spilled_bytes,
                )

            for numbers in chunks:
                runs.extend(numbers)
                if progress is not None:
                    progress(snapshot("reading"))
            for batch in _rebatched(runs.merged(), batch_size):
                with self._db.write() as conn:
                    added += self._insert_ignoring_duplicates(conn, batch)
                sent += len(batch)
                if progress is not None:
                    progress(snapshot("inserting"))
            result = snapshot("done")
        log.info(
            "dnc import: %d read, %d added, %d duplicates, %d invalid in %.1fs "
            "(%d sorted runs, %d MB of temporary files)",
            result.read,
            result.added,
            result.duplicates,
            result.invalid,
            result.seconds,
            runs.spilled_runs,
            result.spilled_bytes // 10**6,
        )
        return result

    def _insert_ignoring_duplicates(self, conn: Connection, ascending: list[int]) -> int:
        """Insert distinct ints, in key order (B-tree friendly); returns how many were new."""
        if self._db.is_mysql:
            # One multi-row statement per batch: far faster than executemany round trips. The
            # values are ints, so writing them into the SQL text is safe; a list's repr,
            # "[1, 2]", is the quickest way to that text (in C).
            values = str(ascending)[1:-1].replace(", ", "),(")
            sql = f"INSERT IGNORE INTO dnc (number) VALUES ({values})"
            return conn.exec_driver_sql(sql).rowcount
        result = conn.exec_driver_sql(
            "INSERT OR IGNORE INTO dnc (number) VALUES (?)", [(n,) for n in ascending]
        )
        return result.rowcount

"""The rate table: E.164 prefix -> credits per started minute of a leg to numbers under it.

The longest prefix that matches a number decides; a number no prefix matches costs
C2C_DEFAULT_RATE (1: credits are minutes). The accept reads a call's rates in its own
transaction (c2c.store.accept) and keeps them on the call's row, so a later change of the table
never changes what a call already placed costs.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

from sqlalchemy import Executable, delete, func, select
from sqlalchemy.dialects import mysql, sqlite

from c2c.domain.credits import CreditsError, parse_credits
from c2c.errors import C2CError
from c2c.store import schema
from c2c.store.accept import number_prefixes
from c2c.store.db import Database

log = logging.getLogger(__name__)

MAX_PREFIX = 15  # E.164 digits
MAX_DESCRIPTION = 200
BATCH = 1000  # rows per INSERT of an import


class RateFileError(C2CError):
    """A rates file that cannot be imported; names the line. Nothing of the file is kept."""


@dataclass(frozen=True)
class Rate:
    prefix: str  # E.164 digits, no '+'
    rate: Decimal  # credits per started minute
    description: str | None = None


@dataclass(frozen=True)
class ImportResult:
    rows: int  # rates in the file
    replaced: bool  # the table was emptied first (--replace)


def parse_rate_rows(lines: Iterable[str], source: str = "rates file") -> Iterator[Rate]:
    """Rates from CSV lines ``prefix,rate[,description]``; a header line (``prefix,...``),
    blank lines and ``#`` comments are skipped. A '+' before the prefix is allowed. Raises
    RateFileError naming the line for anything else."""
    for number, fields in enumerate(csv.reader(lines), 1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        if number == 1 and fields[0].strip().lower() == "prefix":
            continue
        where = f"{source}, line {number}"
        if len(fields) not in (2, 3):
            raise RateFileError(f"{where}: expected prefix,rate[,description]")
        prefix = fields[0].strip().removeprefix("+")
        if not (prefix.isascii() and prefix.isdigit() and 1 <= len(prefix) <= MAX_PREFIX
                and prefix[0] != "0"):
            raise RateFileError(f"{where}: {fields[0]!r} is not an E.164 prefix (1-15 digits, "
                                "the country code first)")
        try:
            rate = parse_credits(fields[1].strip(), what="rate")
        except CreditsError as exc:
            raise RateFileError(f"{where}: {exc}") from None
        if rate < 0:
            raise RateFileError(f"{where}: a rate must not be negative")
        description = fields[2].strip() if len(fields) == 3 else ""
        if len(description) > MAX_DESCRIPTION:
            raise RateFileError(f"{where}: the description is over {MAX_DESCRIPTION} characters")
        yield Rate(prefix, rate, description or None)


class Rates:
    def __init__(self, db: Database) -> None:
        self._db = db

    def import_csv(self, handle: TextIO, *, replace: bool = False, source: str = "rates file",
                   now: float | None = None) -> ImportResult:
        """Import a CSV of rates in one transaction: all of it or, on any bad line, none.
        Without ``replace`` a prefix already there gets the file's rate and the others stay;
        with it the table becomes exactly the file. A prefix twice in the file is an error."""
        now = time.time() if now is None else now
        rows: dict[str, Rate] = {}
        for rate in parse_rate_rows(handle, source):
            if rate.prefix in rows:
                raise RateFileError(f"{source}: prefix {rate.prefix} is listed twice")
            rows[rate.prefix] = rate
        values = [{"prefix": r.prefix, "rate": r.rate, "description": r.description,
                   "updated_at": now} for r in rows.values()]
        with self._db.write() as conn:
            if replace:
                conn.execute(delete(schema.rates))
            for start in range(0, len(values), BATCH):
                conn.execute(self._upsert(), values[start:start + BATCH])
        log.info("rates: %d imported%s", len(values), " (table replaced)" if replace else "")
        return ImportResult(len(values), replace)

    def _upsert(self) -> Executable:
        r = schema.rates
        if self._db.is_mysql:
            statement = mysql.insert(r)
            return statement.on_duplicate_key_update(
                rate=statement.inserted.rate, description=statement.inserted.description,
                updated_at=statement.inserted.updated_at)
        lite = sqlite.insert(r)
        return lite.on_conflict_do_update(
            index_elements=[r.c.prefix],
            set_={"rate": lite.excluded.rate, "description": lite.excluded.description,
                  "updated_at": lite.excluded.updated_at})

    def lookup(self, e164: int) -> Rate | None:
        """The rate row whose prefix is the longest one of the number's (None: the default
        rate applies) — the same query the accept makes."""
        r = schema.rates
        with self._db.read() as conn:
            row = conn.execute(
                select(r.c.prefix, r.c.rate, r.c.description)
                .where(r.c.prefix.in_(set(number_prefixes(e164))))
                .order_by(func.length(r.c.prefix).desc()).limit(1)
            ).first()
        return None if row is None else Rate(row.prefix, row.rate, row.description)

    def list(self) -> Iterator[Rate]:
        """Every rate, by prefix (streamed: a table can hold a carrier's whole deck)."""
        r = schema.rates
        with self._db.read() as conn:
            result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
                select(r.c.prefix, r.c.rate, r.c.description).order_by(r.c.prefix))
            for row in result:
                yield Rate(row.prefix, row.rate, row.description)

    def count(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.rates)).scalar_one())

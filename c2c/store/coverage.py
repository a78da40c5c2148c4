"""Coverage: which country codes, and within them which areas, calls may go to.

A country is supported only if it is listed as allowed. Within a country, the area rule with the
longest prefix matching the national number decides; with no matching rule the area is allowed,
unless the country has any "allow" rule, in which case only matching areas are. For NANP (country
code 1) a 3-digit rule is an NPA (area code), e.g. ``deny-area 1 900``; longer prefixes
(NPA-NXX) work the same way. Elsewhere a rule is any leading digits of the national number.

The rules are read on every request, so ``Coverage.rules()`` keeps them in process for a few
seconds; an edit made in another process shows within that time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import Connection, Table, delete, select, update
from sqlalchemy import insert as sql_insert

from c2c.store import schema
from c2c.store.db import Database

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0
MAX_PREFIX = 14


def valid_country_code(value: str) -> bool:
    return 1 <= len(value) <= 3 and value.isascii() and value.isdigit() and value[0] != "0"


def valid_prefix(value: str) -> bool:
    return 1 <= len(value) <= MAX_PREFIX and value.isascii() and value.isdigit()


@dataclass(frozen=True, eq=False)
class CoverageRules:
    """A snapshot of the coverage table: a pure value, safe to share between greenlets."""

    countries: Mapping[str, bool]  # country code -> allowed
    areas: Mapping[str, Mapping[str, bool]]  # country code -> prefix -> allowed

    @classmethod
    def build(
        cls, countries: Mapping[str, bool], areas: Mapping[str, Mapping[str, bool]]
    ) -> CoverageRules:
        return cls(
            MappingProxyType(dict(countries)),
            MappingProxyType({cc: MappingProxyType(dict(r)) for cc, r in areas.items()}),
        )

    def country_supported(self, country_code: str) -> bool:
        return self.countries.get(country_code, False)

    def area_rule(self, country_code: str, national_number: str) -> tuple[str, bool] | None:
        """The deciding (prefix, allowed) rule: the longest prefix of the number with a rule."""
        rules = self.areas.get(country_code)
        if not rules:
            return None
        for length in range(min(len(national_number), MAX_PREFIX), 0, -1):
            prefix = national_number[:length]
            if prefix in rules:
                return prefix, rules[prefix]
        return None

    def area_supported(self, country_code: str, national_number: str) -> bool:
        """Whether the area of ``national_number`` is allowed (the country is checked apart)."""
        rule = self.area_rule(country_code, national_number)
        if rule is not None:
            return rule[1]
        return not any(self.areas.get(country_code, {}).values())


class Coverage:
    def __init__(
        self,
        db: Database,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cached: tuple[float, CoverageRules] | None = None

    def rules(self) -> CoverageRules:
        """The rules, from the in-process cache when it is younger than cache_seconds.

        Greenlets or threads missing the cache together each load once; that is harmless.
        """
        cached = self._cached
        if cached is not None and self._clock() - cached[0] < self._cache_seconds:
            return cached[1]
        rules = self.load()
        self._cached = (self._clock(), rules)
        return rules

    def load(self) -> CoverageRules:
        """The rules straight from the database."""
        c, a = schema.coverage_countries, schema.coverage_areas
        with self._db.read() as conn:
            countries = {
                cc: bool(ok) for cc, ok in conn.execute(select(c.c.country_code, c.c.allowed))
            }
            areas: dict[str, dict[str, bool]] = {}
            for cc, prefix, ok in conn.execute(select(a.c.country_code, a.c.prefix, a.c.allowed)):
                areas.setdefault(cc, {})[prefix] = bool(ok)
        return CoverageRules.build(countries, areas)

    def invalidate(self) -> None:
        self._cached = None

    def allow_country(self, country_code: str) -> None:
        self._set_country(country_code, True)

    def deny_country(self, country_code: str) -> None:
        self._set_country(country_code, False)

    def allow_area(self, country_code: str, prefix: str) -> None:
        self._set_area(country_code, prefix, True)

    def deny_area(self, country_code: str, prefix: str) -> None:
        self._set_area(country_code, prefix, False)

    def remove_area(self, country_code: str, prefix: str) -> bool:
        """Drop an area rule; returns whether there was one."""
        t = schema.coverage_areas
        with self._db.write() as conn:
            removed = conn.execute(
                delete(t).where(t.c.country_code == country_code, t.c.prefix == prefix)
            ).rowcount
        self.invalidate()
        return bool(removed)

    def _set_country(self, country_code: str, allowed: bool) -> None:
        if not valid_country_code(country_code):
            raise ValueError(f"bad country code {country_code!r}: 1-3 digits, no leading 0")
        t = schema.coverage_countries
        with self._db.write() as conn:
            _upsert(conn, t, {"country_code": country_code}, {"allowed": allowed})
        self.invalidate()
        log.info("coverage: country %s %s", country_code, "allowed" if allowed else "denied")

    def _set_area(self, country_code: str, prefix: str, allowed: bool) -> None:
        if not valid_country_code(country_code):
            raise ValueError(f"bad country code {country_code!r}: 1-3 digits, no leading 0")
        if not valid_prefix(prefix):
            raise ValueError(f"bad area prefix {prefix!r}: 1-{MAX_PREFIX} digits")
        t = schema.coverage_areas
        with self._db.write() as conn:
            _upsert(conn, t, {"country_code": country_code, "prefix": prefix}, {"allowed": allowed})
        self.invalidate()
        log.info(
            "coverage: area %s/%s %s", country_code, prefix, "allowed" if allowed else "denied"
        )


def _upsert(
    conn: Connection, table: Table, key: dict[str, object], values: dict[str, object]
) -> None:
    # Rare operator edits: an UPDATE, then an INSERT when nothing matched (the write transaction
    # holds SQLite's lock; two MySQL operators racing would see a duplicate-key error, retryable).
    where = [table.c[name] == value for name, value in key.items()]
    if conn.execute(update(table).where(*where).values(**values)).rowcount == 0:
        conn.execute(sql_insert(table).values(**key, **values))

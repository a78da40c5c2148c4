"""The coverage a database ships with: countries 1 and 44, minus their fraud-prone areas.

Every shipped area rule is a *deny*, each with the reason it is there. A callee (or caller) in
one of these ranges makes money for whoever holds the number, at our cost: premium rate and
revenue-share services, and NANP numbers that look domestic but bill at international rates.
An operator lifts any of them with ``c2c coverage allow-area CC PREFIX``.

No shipped rule is an *allow*: coverage.py admits only the allowed areas of a country with any
allow rule, so one shipped allow would turn a country into a short allow-list, and one inserted
into an older database on upgrade could shut off everything its operator had not listed. A range
kept open inside a denied one (07624 inside 076) is written as denials of its siblings instead.

Prefixes are leading digits of the national number: an NPA (3 digits) for country 1; for 44 the
digits after the trunk 0 (UK 09xx is prefix "9", 070 is "70").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from c2c.store import schema
from c2c.store.coverage import valid_country_code, valid_prefix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DefaultArea:
    country_code: str
    prefix: str
    allowed: bool
    reason: str

    def __post_init__(self) -> None:
        if not valid_country_code(self.country_code) or not valid_prefix(self.prefix):
            raise ValueError(f"bad default area {self.country_code}/{self.prefix}")
        if not self.reason.strip():
            raise ValueError(f"default area {self.country_code}/{self.prefix} needs a reason")


DEFAULT_COUNTRIES: tuple[str, ...] = ("1", "44")


def _deny(country_code: str, reason: str, *prefixes: str) -> Iterator[DefaultArea]:
    for prefix in prefixes:
        yield DefaultArea(country_code, prefix, False, reason)


def deny_all_but(country_code: str, prefix: str, kept: str, reason: str) -> Iterator[DefaultArea]:
    """Deny everything under ``prefix`` except ``kept`` (a longer prefix inside it), as the
    siblings of each digit on the way down: 76 but 7624 -> 760, 761, 763-769, 7620-7623, 7625-7629.
    """
    if not kept.startswith(prefix) or len(kept) <= len(prefix):
        raise ValueError(f"{kept!r} is not inside {prefix!r}")
    for length in range(len(prefix), len(kept)):
        for digit in "0123456789":
            if digit != kept[length]:
                yield DefaultArea(country_code, kept[:length] + digit, False, reason)


# Caribbean and Atlantic NANP countries: dialed like a US number, billed as an international call,
# and the classic NANP revenue-share ("one ring", "809") scam destinations. The US territories
# share the NANP at domestic rates (FCC rate integration), so they stay allowed: Puerto Rico
# 787/939, US Virgin Islands 340, Guam 671, Northern Mariana Islands 670, American Samoa 684.
_NANP_INTERNATIONAL: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Bahamas", ("242",)),
    ("Barbados", ("246",)),
    ("Anguilla", ("264",)),
    ("Antigua and Barbuda", ("268",)),
    ("British Virgin Islands", ("284",)),
    ("Cayman Islands", ("345",)),
    ("Bermuda", ("441",)),
    ("Grenada", ("473",)),
    ("Turks and Caicos", ("649",)),
    ("Montserrat", ("664",)),
    ("Sint Maarten", ("721",)),
    ("Saint Lucia", ("758",)),
    ("Dominica", ("767",)),
    ("Saint Vincent and the Grenadines", ("784",)),
    ("Dominican Republic", ("809", "829", "849")),
    ("Trinidad and Tobago", ("868",)),
    ("Saint Kitts and Nevis", ("869",)),
    ("Jamaica", ("658", "876")),
)

# NANP non-geographic 5XX codes (NANPA's personal communications / machine-to-machine resource).
# Not one is a geographic NPA (those in 5XX, e.g. 530, 531, 534, 539, 557, stay allowed): these
# numbers reach devices and follow-me services at rates the carrier sets, never a business line.
_NANP_5XX = (
    "500", "521", "522", "523", "524", "525", "526", "527", "528", "529", "532", "533", "535",
    "538", "542", "543", "544", "545", "546", "547", "549", "550", "552", "553", "554", "556",
    "558", "566", "569", "577", "578", "588", "589",
)  # fmt: skip


def _nanp() -> Iterator[DefaultArea]:
    yield from _deny("1", "not an area code: NANP area codes start with 2-9", "0", "1")
    yield from _deny("1", "premium rate (900)", "900")
    yield from _deny("1", "premium rate (976, the old premium exchange)", "976")
    yield from _deny("1", "carrier-specific services (700): billed by the carrier", "700")
    yield from _deny(
        "1", "non-geographic personal/M2M services (5XX): carrier-set rates", *_NANP_5XX
    )
    for country, npas in _NANP_INTERNATIONAL:
        reason = f"{country}: international rates, NANP revenue-share fraud target"
        yield from _deny("1", reason, *npas)


def _uk() -> Iterator[DefaultArea]:
    yield from _deny(
        "44",
        "trunk 0 inside an international number: some gateways strip it, dodging these rules",
        "0",
    )
    yield from _deny("44", "premium rate (09)", "9")
    yield from _deny("44", "personal numbering (070): forwards anywhere at premium prices", "70")
    yield from deny_all_but(
        "44", "76", "7624", "pagers (076), premium-priced; 07624 Isle of Man mobiles stay allowed"
    )
    yield from _deny("44", "service charge, revenue share (084: 0843, 0844, 0845)", "84")
    yield from _deny("44", "service charge, revenue share (087: 0870-0873)", "87")
    yield from _deny("44", "directory enquiries (118): high call-connect charges", "118")
    yield from _deny("44", "former 0500 freephone, closed in 2017: no legitimate number", "500")
    yield from _deny("44", "corporate numbering (055): premium-priced, an IRSF target", "55")
    yield from _deny(
        "44", "location-independent VoIP (056): little legitimate use, nuisance and fraud", "56"
    )


DEFAULT_AREAS: tuple[DefaultArea, ...] = (*_nanp(), *_uk())

_BY_KEY: dict[tuple[str, str], DefaultArea] = {(d.country_code, d.prefix): d for d in DEFAULT_AREAS}


def default_reason(country_code: str, prefix: str) -> str | None:
    """Why a shipped default rule exists, or None for a prefix with no shipped rule."""
    default = _BY_KEY.get((country_code, prefix))
    return default.reason if default is not None else None


def default_area(country_code: str, prefix: str) -> DefaultArea | None:
    return _BY_KEY.get((country_code, prefix))


def seed_default_coverage(conn: Connection) -> None:
    """A fresh database: the default countries allowed and every default area rule."""
    conn.execute(
        insert(schema.coverage_countries),
        [{"country_code": cc, "allowed": True} for cc in DEFAULT_COUNTRIES],
    )
    conn.execute(insert(schema.coverage_areas), [_row(d) for d in DEFAULT_AREAS])


def add_missing_defaults(conn: Connection, areas: Iterable[DefaultArea] = DEFAULT_AREAS) -> int:
    """An older database: add the default countries and the ``areas`` rules it has no row for;
    returns the rows added. A row already there is the operator's and stays as it is.

    A default the operator lifted by removing its rule (what ``c2c coverage allow-area`` does to
    a denied area) has no row, so adding it again would deny it again: a later upgrade step that
    ships more defaults should pass only those.
    """
    c, a = schema.coverage_countries, schema.coverage_areas
    countries = set(conn.execute(select(c.c.country_code)).scalars())
    present = {(cc, prefix) for cc, prefix in conn.execute(select(a.c.country_code, a.c.prefix))}
    new_countries = [cc for cc in DEFAULT_COUNTRIES if cc not in countries]
    new_areas = [d for d in areas if (d.country_code, d.prefix) not in present]
    if new_countries:
        conn.execute(insert(c), [{"country_code": cc, "allowed": True} for cc in new_countries])
    if new_areas:
        conn.execute(insert(a), [_row(d) for d in new_areas])
    log.info(
        "coverage: added %d default countries and %d default area rules",
        len(new_countries),
        len(new_areas),
    )
    return len(new_countries) + len(new_areas)


def _row(default: DefaultArea) -> dict[str, object]:
    return {
        "country_code": default.country_code,
        "prefix": default.prefix,
        "allowed": default.allowed,
    }

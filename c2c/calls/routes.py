"""Routes: which dial-string templates a number is dialed with (pure).

``C2C_ROUTES_FILE`` holds one route a line::

    # PREFIX   TEMPLATE[|TEMPLATE...]        (blank lines and '#' comments are ignored)
    44         sofia/gateway/uk_primary/{e164}|sofia/gateway/uk_backup/{e164}
    447        sofia/gateway/uk_mobile/00{country_code}{number}

PREFIX is E.164 digits without '+', matched against a number's E.164 digits (country code and
national number); the longest matching prefix wins, so ``447`` takes UK mobiles and ``44`` the rest
of the UK. A number no line matches goes by ``C2C_DIAL_STRING``, the "default" route, which takes
the same ``TEMPLATE[|TEMPLATE...]`` form. Each leg of a call is routed by its own number.

Templates hold the placeholders ``{country_code}``, ``{number}`` (national) and ``{e164}`` (with
'+'), nothing else in braces, and at least ``{number}`` or ``{e164}``. Each is filled and checked
on its own with the originate builder's rules (c2c.calls.originate.dial_target); several
templates are a failover list, sent as FreeSWITCH's ``|`` (what that means, and when FreeSWITCH
moves on, is in c2c.calls.originate). Everything is checked at start-up: a bad file stops it with
a message naming the line.

A route's name (its prefix, or "default") is its metrics label: the label set is bounded by the
file.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

from c2c.calls.originate import MAX_FAILOVER_TARGETS, dial_target
from c2c.numbers import PhoneNumber

DEFAULT_ROUTE = "default"
PLACEHOLDERS = ("country_code", "number", "e164")
MAX_PREFIX_DIGITS = 15  # an E.164 number has at most 15 digits

_PREFIX = re.compile(r"[0-9]+")
# Filled into a template only to check what it yields: any digits give the same verdict.
_SAMPLE = PhoneNumber("1", "5550100000")


@dataclass(frozen=True)
class Route:
    name: str  # its prefix, or "default"
    templates: tuple[str, ...]  # in failover order, each passed check_template


def check_template(template: str) -> str:
    """``template`` if it is one safe dial-string template; ValueError says why not."""
    if not template:
        raise ValueError("empty template")
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:  # a lone '{' or '}'
        raise ValueError(
            f"{exc}; write placeholders as {{number}} and nothing else in braces"
        ) from None
    names = set()
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {{{name}}}; use {{country_code}}, {{number}} or {{e164}}"
            )
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format spec or conversion")
        names.add(name)
    if not names & {"number", "e164"}:
        raise ValueError("must contain {number} or {e164}")
    dial_target(template, _SAMPLE)  # the characters, by the originate builder's own rules
    return template


def parse_templates(text: str) -> tuple[str, ...]:
    """``TEMPLATE[|TEMPLATE...]`` to its templates, in order; ValueError names the bad one."""
    templates = tuple(part.strip() for part in text.split("|"))
    if len(templates) > MAX_FAILOVER_TARGETS:
        raise ValueError(f"more than {MAX_FAILOVER_TARGETS} failover templates")
    for position, template in enumerate(templates, 1):
        try:
            check_template(template)
        except ValueError as exc:
            where = f"template {position} " if len(templates) > 1 else "template "
            raise ValueError(f"{where}{template!r}: {exc}") from None
    return templates


def parse_routes(lines: Iterable[str]) -> tuple[Route, ...]:
    """The routes of a file's lines; ValueError naming the line (from 1) of the first error."""
    routes: list[Route] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        try:
            route = _parse_line(line)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        if route is None:
            continue
        if route.name in seen:
            raise ValueError(
                f"line {number}: prefix {route.name} is already routed on line {seen[route.name]}"
            )
        seen[route.name] = number
        routes.append(route)
    return tuple(routes)


def _parse_line(line: str) -> Route | None:
    # '#' can be in no template, so whatever follows one is a comment.
    text = line.partition("#")[0].strip()
    if not text:
        return None
    parts = text.split(None, 1)  # the prefix, then the rest (spaces around '|' are allowed)
    if len(parts) < 2:
        raise ValueError("expected PREFIX TEMPLATE[|TEMPLATE...]")
    prefix, rest = parts
    _check_prefix(prefix)
    return Route(prefix, parse_templates(rest))


def _check_prefix(prefix: str) -> None:
    if prefix.startswith("+"):
        raise ValueError(f"prefix {prefix!r}: write it without '+' (E.164 digits)")
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix {prefix!r} is not E.164 digits")
    if prefix.startswith("0"):
        raise ValueError(f"prefix {prefix!r}: no E.164 number starts with 0")
    if len(prefix) > MAX_PREFIX_DIGITS:
        raise ValueError(f"prefix {prefix!r} is longer than {MAX_PREFIX_DIGITS} digits")


def read_routes_file(path: str) -> tuple[Route, ...]:
    """The routes of C2C_ROUTES_FILE (blank: none); ValueError naming the line, or the reason
    the file cannot be read."""
    path = path.strip()
    if not path:
        return ()
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from None
    lines = []
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").splitlines(), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"line {number}: not UTF-8 text") from None
    return parse_routes(lines)


class RouteTable:
    """The routes of the file and the default route; chooses by longest E.164 prefix."""

    def __init__(self, routes: Iterable[Route], default_templates: Iterable[str]) -> None:
        self.default = Route(DEFAULT_ROUTE, tuple(default_templates))
        self._by_prefix = {route.name: route for route in routes}
        self._longest = max((len(prefix) for prefix in self._by_prefix), default=0)

    @classmethod
    def build(cls, routes: Iterable[Route], dial_string: str) -> RouteTable:
        """From the config: C2C_ROUTES_FILE's routes and C2C_DIAL_STRING as the default."""
        return cls(routes, parse_templates(dial_string))

    def choose(self, number: PhoneNumber) -> Route:
        return self.choose_digits(number.digits)

    def choose_digits(self, digits: str) -> Route:
        """The route of the longest prefix of ``digits`` (E.164 without '+'), else the default."""
        for length in range(min(len(digits), self._longest), 0, -1):
            route = self._by_prefix.get(digits[:length])
            if route is not None:
                return route
        return self.default

    @property
    def names(self) -> tuple[str, ...]:
        """Every route's name: the bounded set of metrics labels."""
        return (*sorted(self._by_prefix), DEFAULT_ROUTE)

    def __len__(self) -> int:
        return len(self._by_prefix)

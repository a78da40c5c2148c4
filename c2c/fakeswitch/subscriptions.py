"""Which events a connection gets: ``event``/``nixevent``/``noevents`` and ``filter``.

Pure state and replies, following mod_event_socket (esl-reference.md 1.3, 1.6) and recordings
10/10b: filters are OR-ed; once any exists an event needs a positive match and no negative
one, so events lacking every filtered header are dropped (BACKGROUND_JOB included). A value
starting with '/' is a case-sensitive regex (``/pattern/flags``, flags i and s); anything else
is a case-insensitive exact match. The sign prefix (``-`` negative, ``+`` positive) is read
after the regex choice, so ``-/x/`` compares literally, as in FreeSWITCH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from c2c.fakeswitch.events import EVENT_NAMES, FsEvent

FORMATS = ("plain", "json", "xml")


@dataclass
class Subscription:
    event_format: str = "plain"
    all_events: bool = False
    names: set[str] = field(default_factory=set)
    custom: set[str] = field(default_factory=set)
    filters: list[tuple[str, str]] = field(default_factory=list)

    @property
    def listening(self) -> bool:
        return self.all_events or bool(self.names) or bool(self.custom)

    # --- event / nixevent / noevents ------------------------------------------------------

    def subscribe(self, args: str) -> str:
        words = args.split()
        event_format = "plain"
        if words and words[0].lower() in FORMATS:
            event_format = words.pop(0).lower()
        valid = False
        custom = False
        for word in words:
            if custom:
                self.custom.add(word)
                valid = True
                continue
            name = _event_name(word)
            if name is None:
                continue
            valid = True
            if name == "ALL":
                self.all_events = True
            elif name == "CUSTOM":
                custom = True
            else:
                self.names.add(name)
        if not valid:
            return "-ERR no keywords supplied"
        self.event_format = event_format
        return f"+OK event listener enabled {event_format}"

    def unsubscribe(self, args: str) -> str:
        names = [_event_name(word) for word in args.split()]
        valid = [name for name in names if name is not None]
        if not valid:
            return "-ERR no keywords supplied"
        for name in valid:
            if name == "ALL":
                self.all_events = False
                self.names.clear()
                self.custom.clear()
                continue
            if self.all_events:  # nixing one event after ALL expands ALL first
                self.all_events = False
                self.names = set(EVENT_NAMES) - {"ALL", "CUSTOM"}
            self.names.discard(name)
        return "+OK events nixed"

    def clear(self) -> str:
        if not self.listening:
            return "-ERR not listening for events"
        self.all_events = False
        self.names.clear()
        self.custom.clear()
        return "+OK no longer listening for events"

    # --- filter ----------------------------------------------------------------------------

    def filter_command(self, args: str) -> str:
        header, _, value = args.strip().partition(" ")
        value = value.strip()
        if header.lower() == "delete":
            return self._filter_delete(value)
        if header.lower() == "add":
            header, _, value = value.partition(" ")
            value = value.strip()
        if not header or not value:
            return "-ERR invalid syntax"
        self.filters.append((header, value))
        return f"+OK filter added. [{header}]=[{value}]"

    def _filter_delete(self, args: str) -> str:
        header, _, value = args.partition(" ")
        value = value.strip()
        if not header:
            return "-ERR invalid syntax"
        if header.lower() == "all":
            self.filters.clear()
        elif value:
            self.filters = [f for f in self.filters if f != (header, value)]
        else:
            self.filters = [f for f in self.filters if f[0].lower() != header.lower()]
        return f"+OK filter deleted. [{header}][{value}]"

    # --- delivery -------------------------------------------------------------------------

    def wants(self, event: FsEvent) -> bool:
        name = event.name
        if name == "CUSTOM":
            subclass = event.get("Event-Subclass") or ""
            if not (self.all_events or subclass in self.custom):
                return False
        elif not (self.all_events or name in self.names):
            return False
        return not self.filters or passes_filters(event, self.filters)


def _event_name(word: str) -> str | None:
    name = word.upper()
    if name.startswith("SWITCH_EVENT_"):
        name = name[len("SWITCH_EVENT_") :]
    return name if name in EVENT_NAMES else None


def passes_filters(event: FsEvent, filters: list[tuple[str, str]]) -> bool:
    """mod_event_socket's event_handler filter loop."""
    send = False
    for header, stored in filters:
        value = event.get(header)
        if value is None:
            continue
        compare_to = stored.lstrip(" ")
        positive = True
        while compare_to and compare_to[0] in "+- ":
            if compare_to[0] == "-":
                positive = False
            elif compare_to[0] == "+":
                positive = True
            compare_to = compare_to[1:]
        if send and positive:
            continue
        if stored.startswith("/"):
            matched = _regex(stored).search(value) is not None
        elif stored.startswith("_"):
            matched = _asterisk_pattern(stored).fullmatch(value) is not None
        else:
            matched = value.lower() == compare_to.lower()
        if matched:
            if positive:
                send = True
            else:
                return False
    return send


@lru_cache(maxsize=256)
def _regex(stored: str) -> re.Pattern[str]:
    body = stored[1:]
    pattern, slash, flags = body.rpartition("/")
    if not slash:
        pattern, flags = body, ""
    options = 0
    if "i" in flags:
        options |= re.IGNORECASE
    if "s" in flags:
        options |= re.DOTALL
    try:
        return re.compile(pattern, options)
    except re.error:
        return re.compile(r"(?!x)x")  # PCRE would fail to compile: nothing matches


@lru_cache(maxsize=256)
def _asterisk_pattern(stored: str) -> re.Pattern[str]:
    table = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}
    return re.compile("".join(table.get(ch, re.escape(ch)) for ch in stored[1:]))

"""Progress webhooks (issue 13): the events a request may ask for, how the choice is stored on the
call row, and the exact JSON body each webhook carries (pure).

A call's events can only happen in this order, and a call reports each at most once, so the order
of the enum is also the order of a call's sequence numbers: a webhook for an event is never
written after one for a later event (a ``bridged`` seen first means ``answered`` is never sent).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum


class ProgressEvent(StrEnum):
    RINGING = "ringing"  # the caller's phone rings (the caller leg's CHANNEL_PROGRESS)
    ANSWERED = "answered"  # the caller answered (the caller leg's CHANNEL_ANSWER)
    BRIDGED = "bridged"  # the callee answered: the two people are connected
    COMPLETED = "completed"  # the call settled (its final callback, if any, is enqueued too)

    @property
    def rank(self) -> int:
        return _ORDER.index(self)


_ORDER = list(ProgressEvent)

DEFAULT_EVENTS = (ProgressEvent.COMPLETED,)
# The longest stored list: all four, comma-separated (calls.status_events is String(64)).
MAX_STORED_LENGTH = len(",".join(_ORDER))


def parse_events(raw: str) -> tuple[ProgressEvent, ...]:
    """The events named by a request's ``status_events`` (a comma list), in event order.

    Blank means the default (``completed``). Names are exact (lowercase, no spaces); an empty
    item, an unknown name or a name given twice is a ValueError.
    """
    if raw == "":
        return DEFAULT_EVENTS
    names = raw.split(",")
    known = {event.value: event for event in ProgressEvent}
    events: set[ProgressEvent] = set()
    for name in names:
        event = known.get(name)
        if event is None:
            raise ValueError(f"unknown event {name[:20]!r}" if name else "an empty event name")
        if event in events:
            raise ValueError(f"event {name!r} named twice")
        events.add(event)
    return tuple(sorted(events, key=lambda event: event.rank))


def encode_events(events: Iterable[ProgressEvent | str]) -> str | None:
    """What ``calls.status_events`` stores: the names in event order, comma-separated; None for
    none (the column's NULL: nothing asked, so the event path pays nothing for the call)."""
    chosen = sorted({ProgressEvent(event) for event in events}, key=lambda event: event.rank)
    return ",".join(event.value for event in chosen) or None


def decode_events(stored: str | None) -> frozenset[ProgressEvent]:
    """The events a call row asked for (unknown names in the column are skipped)."""
    if not stored:
        return frozenset()
    known = {event.value: event for event in ProgressEvent}
    return frozenset(known[name] for name in stored.split(",") if name in known)


def iso_utc(seconds: float) -> str:
    """``2025-01-31T09:00:00.250Z``: the API's time format (ISO-8601, UTC, milliseconds)."""
    moment = datetime.fromtimestamp(float(seconds), UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def progress_body(call_id: str, event: ProgressEvent | str, at: float, sequence: int) -> str:
    """The webhook's JSON body, exactly as stored, sent and signed: compact, keys in this order,
    ASCII only."""
    return json.dumps(
        {"call_id": call_id, "event": ProgressEvent(event).value, "at": iso_utc(at),
         "sequence": int(sequence)},
        separators=(",", ":"),
    )


def delivery_id(call_id: str, sequence: int) -> str:
    """``X-C2C-Delivery-Id``: the same for every try of one webhook, different for any other."""
    return f"{call_id}:{int(sequence)}"

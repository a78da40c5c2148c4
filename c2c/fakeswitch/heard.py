"""What the caller's phone hears: a per-call timeline, for tests (not a FreeSWITCH feature).

The simulator notes each change of what it sends to the caller's leg (A): the confirmation prompt,
a ringback tone (and which variable it came from), the callee's early media, the callee's voice
once bridged, silence. ``Heard.segments()`` turns those changes into segments that start when the
caller answered (the phone hears nothing before) and end when the caller's leg ends, in seconds
since that answer, like the ``t_wav`` column of the recordings' ``.heard.txt`` files.

The rules come from recordings 16-18 (media.py): ``transfer_ringback`` wins over ``ringback`` once
the caller has answered, ``ringback`` alone is used for an answered caller too, the tone starts on
the callee's 180 or 183 (the recordings hear it about 0.1 s later, the media path; the model starts
it at the signal), the callee's early media wins over the tone when it is passed through, and
nothing at all is silence. A tone's own cadence (2 s on, 4 s off) is part of the tone, not a
segment.

Cheap on purpose: a call records a handful of tuples; segments are built only when asked, and only
the last ``KEEP`` finished calls are remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

SILENCE = "silence"
PROMPT = "prompt"
RINGBACK = "ringback"
EARLY_MEDIA = "early_media"
CALLEE = "callee"

KEEP = 10_000  # finished calls whose timeline is still answered for
# Shorter than this is the simulator's own processing time between two steps (at time scale 0
# virtual time still follows the wall clock), not something a phone could hear: merged forward.
MIN_SEGMENT = 0.01


@dataclass
class Heard:
    """One call's timeline, keyed by the caller leg's uuid."""

    uuid: str
    changes: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    answered_at: float | None = None
    ended_at: float | None = None

    def hear(self, at: float, what: str, **details: str) -> None:
        if self.ended_at is not None:
            return
        if self.changes and self.changes[-1][1:] == (what, details):
            return
        self.changes.append((at, what, details))

    def current(self) -> str:
        return self.changes[-1][1] if self.changes else SILENCE

    def answer(self, at: float) -> None:
        if self.answered_at is None:
            self.answered_at = at

    def end(self, at: float) -> None:
        if self.ended_at is None:
            self.ended_at = at

    def segments(self) -> list[dict[str, Any]]:
        """What the phone heard from its answer on; ``end`` None while it still hears it."""
        if self.answered_at is None:
            return []
        origin = self.answered_at
        state: tuple[str, dict[str, str]] = (SILENCE, {})
        timeline: list[tuple[float, tuple[str, dict[str, str]]]] = []
        for at, what, details in self.changes:
            if at <= origin:
                state = (what, details)
                continue
            if self.ended_at is not None and at >= self.ended_at:
                break
            timeline.append((at, (what, details)))
        segments: list[dict[str, Any]] = []
        start = origin
        for at, nxt in timeline:
            if nxt == state:
                continue
            if at - start >= MIN_SEGMENT:
                segments.append(_segment(state, start - origin, at - origin))
                start = at
            state = nxt
            if segments and segments[-1]["heard"] == nxt[0] and _details(segments[-1]) == nxt[1]:
                start = origin + segments.pop()["start"]  # the blip between two equal ones
        end = None if self.ended_at is None else self.ended_at - origin
        if segments and end is not None and end - (start - origin) < MIN_SEGMENT:
            segments[-1]["end"] = round(end, 3)  # a blip just before the end
        else:
            segments.append(_segment(state, start - origin, end))
        return segments

    def to_json(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "answered": self.answered_at is not None,
            "ended": self.ended_at is not None,
            "segments": self.segments(),
        }


def _details(segment: dict[str, Any]) -> dict[str, str]:
    return {key: value for key, value in segment.items() if key not in ("start", "end", "heard")}


def _segment(state: tuple[str, dict[str, str]], start: float, end: float | None) -> dict[str, Any]:
    what, details = state
    segment: dict[str, Any] = {
        "start": round(max(0.0, start), 3),
        "end": None if end is None else round(max(0.0, end), 3),
        "heard": what,
    }
    segment.update(details)
    return segment


class HeardLog:
    """Timelines of live calls, plus the last ``keep`` finished ones."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._calls: OrderedDict[str, Heard] = OrderedDict()

    def start(self, uuid: str) -> Heard:
        heard = Heard(uuid)
        self._calls[uuid] = heard
        self._calls.move_to_end(uuid)
        while len(self._calls) > self.keep:
            self._calls.popitem(last=False)
        return heard

    def get(self, uuid: str) -> Heard | None:
        return self._calls.get(uuid)

    def clear(self) -> None:
        self._calls.clear()

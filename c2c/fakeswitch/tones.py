"""What a ringback or prompt value plays: a teletone script, a file, silence, or nothing usable.

Pure functions. FreeSWITCH reads ``ringback``/``transfer_ringback`` and ``group_confirm_file``
as a file when the value looks like a path or URL (``/...``, ``tone_stream://...``,
``silence_stream://...``), as ``silence[:N]``, and otherwise as a teletone script such as
``%(2000,4000,440,480)`` or ``%(400,200,400,450);%(400,2000,400,450)``.

A teletone script that produces no tone (recording 16e: ``%(2000`` left by a ``{}`` list split at
its commas) makes the ringback loop read an empty buffer, which ends the bridge's originate at once
with NO_ANSWER. A file that cannot be played is dropped instead (setup_ringback's GENERR), and the
caller hears silence; the simulator cannot open files, so a path counts as playable, and only a
``tone_stream://`` whose tone is malformed counts as a file that fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TONE = "tone"
FILE = "file"
SILENCE = "silence"
NONE = "none"

_NUMBER = r"\d+(?:\.\d+)?"
# %(on,off,freq[,freq...]) with an optional repeat count, e.g. %(500,500,440) or %(1,2,3,4)
_TONE_ELEMENT = re.compile(rf"%\(\s*{_NUMBER}\s*,\s*{_NUMBER}\s*(?:,\s*{_NUMBER}\s*)+\)")
# settings: volume, loops, ... (v=-7, L=3, >=2; loops=10 in a tone_stream URL)
_SETTING = re.compile(r"[a-zA-Z<>+]+=\S*")


@dataclass(frozen=True)
class Sound:
    """What a value plays: its kind and whether FreeSWITCH can play it."""

    kind: str  # tone | file | silence | none
    playable: bool

    @property
    def fails_bridge(self) -> bool:
        """A tone that makes no audio ends the originate that plays it as ringback (16e)."""
        return self.kind == TONE and not self.playable


def is_file_path(value: str) -> bool:
    """switch_is_file_path: an absolute path or a URL-like ``scheme://`` value."""
    return value.startswith("/") or "://" in value or (len(value) > 2 and value[1] == ":")


def tone_is_valid(script: str) -> bool:
    """Whether a teletone script makes a tone: ';'-separated ``%(...)`` elements and settings,
    at least one tone among them, nothing else."""
    elements = [element.strip() for element in script.split(";") if element.strip()]
    tones = [element for element in elements if _TONE_ELEMENT.fullmatch(element)]
    others = [element for element in elements if not _TONE_ELEMENT.fullmatch(element)]
    return bool(tones) and all(_SETTING.fullmatch(element) for element in others)


def classify(value: str | None) -> Sound:
    """What ``value`` (a ringback or prompt variable's value) plays."""
    if value is None or not value.strip():
        return Sound(NONE, False)
    value = value.strip()
    lowered = value.lower()
    if lowered == "silence" or lowered.startswith("silence:"):
        return Sound(SILENCE, True)
    if is_file_path(value):
        if lowered.startswith("tone_stream://"):
            return Sound(FILE, tone_is_valid(value[len("tone_stream://") :]))
        return Sound(FILE, True)
    return Sound(TONE, tone_is_valid(value))


def play_seconds(value: str | None) -> float | None:
    """How long a ``tone_stream://`` prompt plays: its tones' on+off times, times ``loops``
    (``tone_stream://%(500,500,440);loops=10`` plays 10 s, recording 20b). None when unknown (a
    file, endless loops) or nothing plays."""
    if value is None or not value.lower().startswith("tone_stream://"):
        return None
    script = value[len("tone_stream://") :]
    if not tone_is_valid(script):
        return None
    cycle = 0.0
    loops = 1
    for element in (part.strip() for part in script.split(";")):
        if _TONE_ELEMENT.fullmatch(element):
            on, off = (float(number) for number in element[2:-1].split(",")[:2])
            cycle += (on + off) / 1000
        elif element.lower().startswith("loops="):
            try:
                loops = int(element.split("=", 1)[1])
            except ValueError:
                loops = 1
    if loops < 0 or cycle <= 0:
        return None
    return cycle * max(1, loops)

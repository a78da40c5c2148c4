"""Group confirm ("press 1 to connect"): the settings of one originate, and what the digits do.

Pure. With ``group_confirm_key`` set, an originated leg that answers is not a success yet:
FreeSWITCH plays ``group_confirm_file`` to that leg and waits for the key (recordings 19, 19b, 20).
Then the leg wins (``group_dial_status=winner``, ``group_confirm_*`` cleared); a wrong key is
ignored (FreeSWITCH would play ``group_confirm_error_file``). A prompt that has played to its end
is not played again in the model: 20b's callers, unconfirmed for up to 19 s after a 10 s prompt,
show one whole playback (``playback_ms`` 10000) and no ``read_result``. The originate's
timeouts decide an unconfirmed leg's end, as timeouts.py computes them (20b):

- ``originate_timeout`` keeps counting from the originate: NO_ANSWER;
- ``leg_timeout`` keeps running after the answer: ALLOTTED_TIMEOUT;
- ``group_confirm_timeout`` (seconds, from the answer) replaces ``leg_timeout``: ALLOTTED_TIMEOUT;
- ``group_confirm_cancel_timeout=true`` removes ``leg_timeout`` at the answer.

The key ``exec`` (run an application instead of collecting a key) is not simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from c2c.fakeswitch.media import Lookup, is_true
from c2c.fakeswitch.originate import positive_int

PREFIX = "group_confirm_"
# One RFC 2833 digit as the lab phone sends it: DTMF-Duration 2080 samples at 8 kHz (19b); the
# DTMF event (and the confirmation) comes when the digit ends.
DTMF_DURATION_SAMPLES = 2080
DTMF_SECONDS = DTMF_DURATION_SAMPLES / 8000
DTMF_GAP = 0.1  # between two digits of one string
SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms


@dataclass(frozen=True)
class ConfirmSettings:
    key: str
    file: str | None  # the prompt; None: silence
    timeout: int | None  # group_confirm_timeout, seconds from the answer
    cancel_timeout: bool

    @classmethod
    def of(cls, get: Lookup) -> ConfirmSettings | None:
        """The settings when the leg must confirm, else None (no key, or ``exec``)."""
        key = (get(PREFIX + "key") or "").strip()
        if not key or key.lower() == "exec":
            return None
        return cls(
            key=key,
            file=_file(get(PREFIX + "file")),
            timeout=positive_int(get(PREFIX + "timeout")),
            cancel_timeout=is_true(get(PREFIX + "cancel_timeout")),
        )


def _file(value: str | None) -> str | None:
    return None if value is None or value.strip() in ("", "undef") else value


def digit_offsets(digits: str, start: float) -> list[tuple[str, float]]:
    """When each digit of a phone's string ends, pressing from ``start`` seconds."""
    offsets = []
    at = start
    for digit in digits:
        at += DTMF_SECONDS
        offsets.append((digit, at))
        at += DTMF_GAP
    return offsets


class KeyCollector:
    """switch_ivr_read for ``len(key)`` digits: full reads are compared with the key."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.buffer = ""

    def press(self, digit: str) -> bool | None:
        """True: the key was entered; False: a wrong entry (ignored); None: keep reading."""
        self.buffer += digit
        if len(self.buffer) < len(self.key):
            return None
        entered, self.buffer = self.buffer, ""
        return entered == self.key


def playback_variables(seconds: float) -> list[tuple[str, str]]:
    """What a prompt's playback leaves on the leg when it ends or the key stops it: the offset
    reached, in 20 ms frames, and the played time rounded up to whole seconds (19: 1.76 s gave
    offset 14080 and 2000 ms; 20b: a whole 10 s prompt gave 80000 and 10000 ms)."""
    seconds = max(0.0, seconds)
    offset = round(seconds * SAMPLE_RATE) // FRAME_SAMPLES * FRAME_SAMPLES
    played = max(1, math.ceil(round(seconds, 3)))
    return [
        ("playback_last_offset_pos", str(offset)),
        ("playback_seconds", str(played)),
        ("playback_ms", str(played * 1000)),
        ("playback_samples", str(played * SAMPLE_RATE)),
    ]

"""A switch's load as it states it: the text of ``api status`` and the HEARTBEAT event (pure).

``status`` (recordings 22, 23, 23b, 24)::

    UP 0 years, 0 days, 0 hours, 2 minutes, 12 seconds, 483 milliseconds, 740 microseconds
    FreeSWITCH (Version 1.10.12-release  64bit) is not ready      <- paused; else "is ready"
    62 session(s) since startup
    0 session(s) - peak 8, last 5min 8                             <- sessions up now
    0 session(s) per Sec out of max 1000, peak 8, last 5min 8      <- last second / the limit
    4000 session(s) max
    min idle cpu 0.00/97.67                                        <- min-idle-cpu / idle now

HEARTBEAT (recording 21), every 20 s of the switch's uptime: ``Event-Info: System Ready``,
``Session-Count``, ``Max-Sessions``, ``Session-Per-Sec`` (this second's budget left, not the limit),
``Session-Per-Sec-Last``, ``Idle-CPU``. A heartbeat says "System Ready" even while the switch is
paused (send_heartbeat does not look), so it never tells whether the switch takes calls: only
``status`` ("is not ready") does. Its figures are printed unsigned: a spent budget of -1 reads
4294967295. Anything unreadable, or a wrapped negative, is None: a reading never raises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TypeVar

from c2c.domain.switch_state import SwitchLoad
from c2c.esl.protocol import Event

T = TypeVar("T")

_READY = re.compile(r"^FreeSWITCH \(Version [^)]*\) is (not )?ready\s*$", re.MULTILINE)
_SESSIONS = re.compile(r"^(\d+) session\(s\) - peak", re.MULTILINE)
_PER_SECOND = re.compile(r"^(-?\d+) session\(s\) per Sec out of max (\d+)", re.MULTILINE)
_MAX_SESSIONS = re.compile(r"^(\d+) session\(s\) max\s*$", re.MULTILINE)
_IDLE_CPU = re.compile(r"^min idle cpu (\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)\s*$", re.MULTILINE)


def parse_status(text: str) -> SwitchLoad:
    """The load in ``api status`` output; an -ERR or a foreign text gives an empty SwitchLoad."""
    ready = _READY.search(text)
    sessions = _SESSIONS.search(text)
    per_second = _PER_SECOND.search(text)
    max_sessions = _MAX_SESSIONS.search(text)
    idle = _IDLE_CPU.search(text)
    return SwitchLoad(
        ready=None if ready is None else ready.group(1) is None,
        sessions=_count(sessions.group(1)) if sessions else None,
        max_sessions=_count(max_sessions.group(1)) if max_sessions else None,
        sps_limit=_count(per_second.group(2)) if per_second else None,
        # Negative right after `fsctl sps N` lowered the limit (recording 23: -998): no figure.
        sps_last=_count(per_second.group(1)) if per_second else None,
        min_idle_cpu=_percent(idle.group(1)) if idle else None,
        idle_cpu=_percent(idle.group(2)) if idle else None,
    )


def load_from_heartbeat(event: Event) -> SwitchLoad:
    """The load a HEARTBEAT event carries."""
    # "System Ready" is sent paused or not: it must not undo what `status` said. Only an
    # explicit "not ready" (no recording shows one) is taken.
    info = (event.get("Event-Info") or "").strip().lower()
    ready = False if info == "system not ready" else None

    def header(name: str, parse: Callable[[str], T | None]) -> T | None:
        value = event.get(name)
        return None if value is None else parse(value.strip())

    return SwitchLoad(
        ready=ready,
        sessions=header("Session-Count", _count),
        max_sessions=header("Max-Sessions", _count),
        sps_last=header("Session-Per-Sec-Last", _count),
        sps_left=header("Session-Per-Sec", _count),
        idle_cpu=header("Idle-CPU", _percent),
    )


def _count(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        return None
    value = int(text)
    # FreeSWITCH prints some 32-bit signed figures unsigned (a heartbeat's Session-Per-Sec once
    # the second's budget is spent): a value this large is a negative one, i.e. no figure.
    return None if value >= 2**31 else value


def _percent(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 100.0 else None

"""The recorded Event Socket traffic (../shared/esl-captures), for tests.

Found through C2C_ESL_CAPTURES, or by walking up from this directory to a ``shared/esl-captures``.
The transcripts are read here on their own terms (markers and byte counts), independently of
c2c.esl.protocol, so that tests can check the codec against them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest


@cache
def captures_dir() -> Path | None:
    configured = os.environ.get("C2C_ESL_CAPTURES")
    if configured:
        path = Path(configured)
        return path if path.is_dir() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "esl-captures"
        if candidate.is_dir():
            return candidate
    return None


def require_captures() -> Path:
    path = captures_dir()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("esl-captures not found on CI (set C2C_ESL_CAPTURES)")
        pytest.skip("esl-captures not found (set C2C_ESL_CAPTURES)")
    return path


def recording_names() -> list[str]:
    """Names like ``02_loopback_originate_bridge_plain`` of every recording with a transcript."""
    path = captures_dir()
    if path is None:
        return []
    return sorted(p.name[: -len(".raw.txt")] for p in path.glob("*.raw.txt"))


def raw_bytes(name: str) -> bytes:
    return (require_captures() / f"{name}.raw.txt").read_bytes()


@dataclass(frozen=True)
class Received:
    number: int
    content_type: str
    content_length: int
    raw: bytes
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Sent:
    raw: bytes


_RECV = re.compile(
    rb"### <<< RECV frame #(\d+) t=[\d.]+ Content-Type=(\S+) Content-Length=(\d+) "
    rb"\(exact bytes follow until '### >>> END FRAME'\)\n"
)
_SENT = re.compile(rb"### >>> SENT t=[\d.]+ \((\d+) bytes, exact bytes follow until [^\n]*\n")
_END_FRAME = b"### >>> END FRAME\n"
_END_SENT = b"### <<< END SENT\n"


def transcript(name: str) -> list[Received | Sent]:
    """Every frame received and every block sent, in order."""
    data = (require_captures() / f"{name}.transcript.txt").read_bytes()
    entries: list[Received | Sent] = []
    pos = 0
    while True:
        recv = _RECV.search(data, pos)
        sent = _SENT.search(data, pos)
        match = min((m for m in (recv, sent) if m), key=lambda m: m.start(), default=None)
        if match is None:
            return entries
        start = match.end()
        if match is sent:
            size = int(match.group(1))
            entries.append(Sent(data[start : start + size]))
            pos = data.index(_END_SENT, start + size) + len(_END_SENT)
            continue
        length = int(match.group(3))
        blank = data.index(b"\n\n", start)
        stop = blank + 2 + length
        end_marker = data.index(_END_FRAME, stop)
        # the recorder puts a newline before the end marker when the frame did not end with one
        assert data[stop:end_marker] in (b"", b"\n"), (name, match.group(1))
        lines = data[start:blank].decode("utf-8").split("\n")
        headers = [tuple(line.split(": ", 1)) for line in lines]
        entries.append(
            Received(
                number=int(match.group(1)),
                content_type=match.group(2).decode(),
                content_length=length,
                raw=data[start:stop],
                headers=[(h[0], h[1]) for h in headers],
                body=data[blank + 2 : stop],
            )
        )
        pos = end_marker + len(_END_FRAME)


def received(name: str) -> list[Received]:
    return [entry for entry in transcript(name) if isinstance(entry, Received)]


def sent(name: str) -> list[Sent]:
    return [entry for entry in transcript(name) if isinstance(entry, Sent)]

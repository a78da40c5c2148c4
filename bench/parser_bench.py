"""Event parsing speed: c2c.esl.protocol against greenswitch's stock parser, same bytes.

The input is the recorded server-to-client streams (``esl-captures/*.raw.txt``, found as the
tests find them), each parsed as one connection, start to end, by a fresh parser. Only the
recordings whose events are ``plain`` take part in the comparison (greenswitch parses plain
events only; it would read a json or xml body as header lines); ours is also timed on every
recording, for information.

The listener only ever sees channels of our calls (its filter passes only channels carrying
``variable_c2c_call_id``), and the recorded calls were not ours, so every plain CHANNEL_* event
without the two c2c variables is given them (``as_ours``), as the last two headers, where a
lookup costs most; both sides parse these same bytes.

- ours: ``FrameParser.feed`` on 64 KiB chunks (what a socket read returns), ``parse_event`` on
  every event frame, then everything c2c reads of the event on its way to the store
  (``read_as_c2c_does``): the connection's name and Job-UUID, the lanes' ``lane_key``, and what
  ``CallEventListener.handle`` calls (``leg_end``, ``job_result`` or ``leg_moment`` of
  c2c.calls.events, by event name), without the store writes. Parsing without reading would
  flatter a parser that decodes headers only when asked for.
- greenswitch: ``ESLProtocol.receive_events`` reading the same bytes from an in-memory file
  (its own loop: readline per header line, ``_read_socket`` for bodies, ``ESLEvent.parse_data``
  for each event, which decodes every header into a dict), with its command bookkeeping
  stubbed so replies need no waiter.

Each side runs alternately, in rounds of at least ``seconds``; the best round counts.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from typing import Any

from greenswitch.esl import ESLProtocol

from c2c.calls import events as ev
from c2c.calls.lanes import lane_key
from c2c.esl.protocol import Event, FrameParser, encode_frame, parse_event
from tests.esl_captures import captures_dir

CHUNK = 65536


def recordings() -> tuple[list[bytes], list[bytes], list[str]]:
    """(plain-event recordings, every recording, names of the plain ones)."""
    directory = captures_dir()
    if directory is None:
        raise RuntimeError("esl-captures not found (set C2C_ESL_CAPTURES)")
    plain, everything, names = [], [], []
    for path in sorted(directory.glob("*.raw.txt")):
        data = as_ours(path.read_bytes())
        everything.append(data)
        if b"text/event-json" in data or b"text/event-xml" in data:
            continue
        plain.append(data)
        names.append(path.name)
    return plain, everything, names


def as_ours(stream: bytes) -> bytes:
    """The stream with every plain CHANNEL_* event given the c2c call id and leg variables it
    lacks (the leg as the caller's, of which leg_end reads most), as its last headers."""
    parser = FrameParser()
    pieces = []
    for frame in parser.feed(stream):
        body = frame.body
        if frame.content_type == "text/event-plain" and body.startswith(b"Event-Name: CHANNEL_"):
            call_id = str(uuid.uuid5(uuid.NAMESPACE_OID, str(len(pieces))))
            added = b"".join(
                b"variable_%s: %s\n" % (name.encode(), value.encode())
                for name, value in ((ev.CALL_ID_VARIABLE, call_id), (ev.LEG_VARIABLE, ev.CALLER))
                if b"\nvariable_%s: " % name.encode() not in body
            )
            if not body.endswith(b"\n\n"):
                raise RuntimeError("a channel event with a body")
            body = body[:-1] + added + b"\n"
        headers = [
            (name, str(len(body)) if name == "Content-Length" else value)
            for name, value in frame.headers
        ]
        pieces.append(encode_frame(headers, body))
    if parser.buffered:
        raise RuntimeError("a recording ends inside a frame")
    return b"".join(pieces)


def read_as_c2c_does(event: Event) -> None:
    """What c2c reads of one event between the socket and the store (c2c.esl.connection's
    _on_event_frame, c2c.calls.lanes.EventLanes.put, c2c.calls.listener.CallEventListener.handle),
    the store writes left out."""
    name = event.name
    if name == "BACKGROUND_JOB":
        event.job_uuid  # noqa: B018 (the connection settles a bgapi waiter with it)
    lane_key(event)
    if name == "CHANNEL_HANGUP_COMPLETE":
        ev.leg_end(event)
    elif name == "BACKGROUND_JOB":
        ev.job_result(event)
    elif name in ("CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_BRIDGE"):
        ev.leg_moment(event)  # BRIDGE is no longer subscribed to; kept so the stream is the same


def ours(streams: list[bytes]) -> int:
    events = 0
    for stream in streams:
        parser = FrameParser()
        for start in range(0, len(stream), CHUNK):
            for frame in parser.feed(stream[start : start + CHUNK]):
                if frame.is_event:
                    read_as_c2c_does(parse_event(frame))
                    events += 1
    return events


def frames_only(streams: list[bytes]) -> int:
    """Our framing alone (no event decoding): the part of ``ours`` that is not parse_event."""
    events = 0
    for stream in streams:
        parser = FrameParser()
        for start in range(0, len(stream), CHUNK):
            for frame in parser.feed(stream[start : start + CHUNK]):
                if frame.is_event:
                    events += 1
    return events


class _Waiter:
    def set(self, value: Any) -> None:
        pass


class _Replies(list):
    """greenswitch pops a waiter per command/reply and api/response."""

    def pop(self, index: int = -1) -> _Waiter:  # noqa: ARG002 (list's signature)
        return _Waiter()


class _Sink:
    def __init__(self) -> None:
        self.events = 0

    def put(self, event: Any) -> None:
        if event.headers.get("Content-Type", "").startswith("text/event-"):
            self.events += 1  # not the disconnect notice, which it queues too


class _Socket:
    def close(self) -> None:
        pass


def greenswitch(streams: list[bytes]) -> int:
    events = 0
    for stream in streams:
        protocol = ESLProtocol()
        protocol.sock = _Socket()
        protocol.sock_file = io.BytesIO(stream)
        protocol._commands_sent = _Replies()
        sink = _Sink()
        protocol._esl_event_queue = sink
        protocol.receive_events()
        events += sink.events
    return events


def _rate(parse, stream: list[bytes], seconds: float) -> tuple[float, int]:  # noqa: ANN001
    started = time.perf_counter()
    events = rounds = 0
    while True:
        events += parse(stream)
        rounds += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return events / elapsed, events // rounds


def compare(seconds: float = 2.0, rounds: int = 3) -> dict[str, Any]:
    logging.getLogger().setLevel(logging.ERROR)  # greenswitch logs each disconnect notice
    plain, everything, names = recordings()
    best_ours = best_theirs = best_all = best_frames = 0.0
    per_pass_ours = per_pass_theirs = per_pass_all = 0
    for _ in range(rounds):
        best_frames = max(best_frames, _rate(frames_only, plain, seconds / rounds / 2)[0])
        rate, per_pass_ours = _rate(ours, plain, seconds / rounds)
        best_ours = max(best_ours, rate)
        rate, per_pass_theirs = _rate(greenswitch, plain, seconds / rounds)
        best_theirs = max(best_theirs, rate)
        rate, per_pass_all = _rate(ours, everything, seconds / rounds)
        best_all = max(best_all, rate)
    note = "\n".join(
        [
            f"- input: {len(names)} recordings with plain events ({sum(map(len, plain)):,} bytes "
            "once every channel event carries c2c's call id and leg variables, "
            f"{per_pass_ours} events per pass; greenswitch counted {per_pass_theirs}), each parsed "
            "as one connection by a fresh parser; best of 3 rounds each, alternating.",
            "- ours is bytes to what c2c reads of each event (the connection, the lanes and "
            "the listener: the name, Job-UUID, call id and leg, times, and all leg_end reads of "
            "a CHANNEL_HANGUP_COMPLETE); greenswitch's, bytes to every header in a dict.",
            f"- ours on every recording (plain, json and xml events, "
            f"{sum(map(len, everything)):,} bytes, "
            f"{per_pass_all} events per pass): {best_all:,.0f} events/s.",
            f"- of ours, the framing alone (FrameParser.feed, no event decoding): "
            f"{best_frames:,.0f} events/s; the rest is parse_event and those reads.",
            "- in-process, one core; greenswitch's figure is an upper bound for it (an in-memory "
            "file instead of a socket file).",
        ]
    )
    return {
        "ours_eps": best_ours,
        "greenswitch_eps": best_theirs,
        "ours_all_eps": best_all,
        "frames_only_eps": best_frames,
        "events_per_pass": per_pass_ours,
        "greenswitch_events_per_pass": per_pass_theirs,
        "note": note,
    }


if __name__ == "__main__":
    import json

    print(json.dumps({k: v for k, v in compare().items() if k != "note"}, indent=2))

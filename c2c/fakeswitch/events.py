"""Events as the core builds them: the standard headers, the global sequence, the dispatch to
every listening connection.

An event is built and fired in one step (``EventBus.fire``), so Event-Sequence increases in the
order events reach the listeners, as it does with FreeSWITCH's single dispatch thread.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from c2c.esl.protocol import encode_event_json, encode_event_plain, event_frame, url_encode
from c2c.fakeswitch.clock import Clock

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]

# Every event type FreeSWITCH knows (switch_event.c EVENT_NAMES), for `event`/`nixevent`.
EVENT_NAMES = frozenset(
    """CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE CHANNEL_CALLSTATE CHANNEL_ANSWER
    CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD
    CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA
    CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID
    API LOG INBOUND_CHAN OUTBOUND_CHAN STARTUP SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK SESSION_CRASH
    MODULE_LOAD MODULE_UNLOAD DTMF MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE
    MESSAGE_WAITING MESSAGE_QUERY ROSTER CODEC BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE
    PRIVATE_COMMAND HEARTBEAT TRAP ADD_SCHEDULE DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML
    NOTIFY PHONE_FEATURE PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE REQUEST_PARAMS
    CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT CLIENT_DISCONNECTED SERVER_DISCONNECTED
    SEND_INFO RECV_INFO RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START
    RECORD_STOP PLAYBACK_START PLAYBACK_STOP CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START
    MEDIA_BUG_STOP CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT
    CALL_DETAIL DEVICE_STATE TEXT SHUTDOWN_REQUESTED ALL""".split()
)


@dataclass
class FsEvent:
    """One fired event; its serializations are computed once and shared by every listener."""

    headers: Headers
    body: str | None = None
    _frames: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.headers[0][1]

    def get(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive, as filters look them up)."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def frame(self, event_format: str) -> bytes:
        cached = self._frames.get(event_format)
        if cached is None:
            if event_format == "json":
                serialized = encode_event_json(self.headers, self.body)
            elif event_format == "xml":
                serialized = encode_event_xml(self.headers, self.body)
            else:
                serialized = encode_event_plain(self.headers, self.body)
            cached = self._frames[event_format] = event_frame(serialized, event_format)
        return cached


def encode_event_xml(headers: Iterable[tuple[str, str]], body: str | None = None) -> bytes:
    """switch_event_xmlize as the recordings show it (values url-encoded, two-space indent)."""
    lines = ["<event>", "  <headers>"]
    lines += [f"    <{name}>{url_encode(value)}</{name}>" for name, value in headers]
    lines.append("  </headers>")
    if body:
        lines.append(f"  <Content-Length>{len(body.encode('utf-8'))}</Content-Length>")
        lines.append(f"  <body>{_xml_text(body)}  </body>")
    lines.append("</event>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Listener(Protocol):
    def interested(self, name: str) -> bool: ...

    def offer(self, event: FsEvent) -> None: ...


@dataclass(frozen=True)
class Identity:
    """Who the simulated switch says it is, in every event."""

    core_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    hostname: str = "fakeswitch"
    ipv4: str = "127.0.0.1"
    ipv6: str = "::1"
    version: str = "1.10.12-release  64bit"


class EventBus:
    """Builds events with the standard headers and hands them to every listener."""

    def __init__(self, clock: Clock, identity: Identity) -> None:
        self.clock = clock
        self.identity = identity
        self._sequence = itertools.count(1)
        self._listeners: set[Listener] = set()

    def add(self, listener: Listener) -> None:
        self._listeners.add(listener)

    def remove(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    def wanted(self, name: str) -> bool:
        """Whether any listener subscribes to this event type (filters aside): events nobody
        wants are not built, which keeps thousands of calls cheap."""
        return any(listener.interested(name) for listener in self._listeners)

    def standard_headers(self, name: str, calling: tuple[str, str, int]) -> Headers:
        """switch_event_prep_for_delivery: name, identity, dates, calling site, sequence."""
        now = self.clock.now()
        micros = int(now * 1_000_000)
        ident = self.identity
        file, function, line = calling
        return [
            ("Event-Name", name),
            ("Core-UUID", ident.core_uuid),
            ("FreeSWITCH-Hostname", ident.hostname),
            ("FreeSWITCH-Switchname", ident.hostname),
            ("FreeSWITCH-IPv4", ident.ipv4),
            ("FreeSWITCH-IPv6", ident.ipv6),
            ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))),
            ("Event-Date-GMT", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))),
            ("Event-Date-Timestamp", str(micros)),
            ("Event-Calling-File", file),
            ("Event-Calling-Function", function),
            ("Event-Calling-Line-Number", str(line)),
            ("Event-Sequence", str(next(self._sequence))),
        ]

    def fire(
        self,
        name: str,
        calling: tuple[str, str, int],
        headers: Iterable[tuple[str, str]] = (),
        body: str | None = None,
    ) -> FsEvent:
        event = FsEvent(self.standard_headers(name, calling) + list(headers), body)
        for listener in list(self._listeners):
            try:
                listener.offer(event)
            except Exception:
                log.exception("listener %r refused an event", listener)
        return event

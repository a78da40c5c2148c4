"""The Event Socket wire codec: pure functions and small parsers, no sockets.

Server to client, every message is a header block (``Name: value\\n`` lines, then ``\\n``) and, when
it has ``Content-Length: N``, exactly N bytes of body. Events carry a second, serialized event in
that body (plain: url-encoded ``Name: value`` lines; json: one object; xml). Client to server, a
command is a header block whose first line is the command (esl-reference.md section 1).

Everything here is byte-exact with what FreeSWITCH 1.10 sends (checked against esl-captures/), so
the simulator can use the encoders and the connection the parsers.
"""

from __future__ import annotations

import binascii
import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from c2c.errors import SwitchError

Headers = list[tuple[str, str]]

# FreeSWITCH drops a client whose Content-Length is above this (MES MAX_CONTENT_LENGTH).
MAX_CONTENT_LENGTH = 16 * 1024 * 1024
# A header block that never ends is an error long before this.
MAX_HEADER_BLOCK = 10 * 1024 * 1024

DISCONNECT_GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
DISCONNECT_SHUTDOWN = "The system is being shut down.\n"
RUDE_REJECTION = "Access Denied, go away.\n"


class ProtocolError(SwitchError):
    """The peer sent something that is not Event Socket framing."""


# --------------------------------------------------------------------------------------------
# Frames (the outer layer)


class Frame:
    """One server message: outer headers in wire order (values raw) and the body bytes."""

    __slots__ = ("headers", "body")

    def __init__(self, headers: Headers, body: bytes = b"") -> None:
        self.headers = headers
        self.body = body

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first header called ``name``, compared case-insensitively."""
        for key, value in self.headers:
            if key == name:
                return value
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default

    @property
    def content_type(self) -> str:
        return self.get("Content-Type") or ""

    @property
    def reply_text(self) -> str:
        """``Reply-Text`` of a command/reply; the body of an api/response."""
        reply = self.get("Reply-Text")
        if reply is not None:
            return reply
        return self.body.decode("utf-8", "replace")

    @property
    def is_event(self) -> bool:
        return self.content_type.startswith("text/event-")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Frame) and self.headers == other.headers and self.body == other.body
        )

    def __repr__(self) -> str:
        return f"Frame({self.headers!r}, body={len(self.body)} bytes)"


def _parse_header_lines(block: bytes) -> Headers:
    headers: Headers = []
    for line in block.decode("utf-8", "replace").split("\n"):
        name, sep, value = line.partition(":")
        if not sep:
            if line.strip():
                raise ProtocolError(f"header line without a colon: {line[:80]!r}")
            continue
        headers.append((name.strip(), value.lstrip(" ").rstrip("\r")))
    return headers


def _content_length(headers: Headers) -> int:
    for name, value in headers:
        if name == "Content-Length" or name.lower() == "content-length":
            try:
                length = int(value)
            except ValueError as exc:
                raise ProtocolError(f"bad Content-Length {value!r}") from exc
            if not 0 <= length <= MAX_CONTENT_LENGTH:
                raise ProtocolError(f"Content-Length {length} out of range")
            return length
    return 0


class FrameParser:
    """Bytes from the server, in any chunking, to Frames. Keeps partial state between feeds."""

    def __init__(self) -> None:
        self._tail = b""  # the start of a frame not yet whole
        self._waiting: list[bytes] = []  # chunks held while a long body is still arriving
        self._waiting_size = 0
        self._pending: Headers | None = None  # headers of a frame still waiting for its body
        self._pending_length = 0

    def feed(self, data: bytes) -> list[Frame]:
        held = len(self._tail) + self._waiting_size + len(data)
        if self._pending is not None and held < self._pending_length:
            # Keep a big body's chunks aside rather than re-joining the buffer on every feed.
            self._waiting.append(data)
            self._waiting_size += len(data)
            return []
        if self._waiting:
            buffer = b"".join([self._tail, *self._waiting, data])
            self._waiting = []
            self._waiting_size = 0
        else:
            buffer = self._tail + data if self._tail else bytes(data)
        frames: list[Frame] = []
        pos = 0
        end = len(buffer)
        while True:
            if self._pending is not None:
                stop = pos + self._pending_length
                if stop > end:
                    break
                frames.append(Frame(self._pending, buffer[pos:stop]))
                self._pending = None
                pos = stop
                continue
            blank = buffer.find(b"\n\n", pos)
            if blank < 0:
                if end - pos > MAX_HEADER_BLOCK:
                    raise ProtocolError("header block too long")
                break
            if blank == pos or buffer[pos] == 0x0A:  # a stray blank line between frames
                pos += 1
                continue
            headers = _parse_header_lines(buffer[pos:blank])
            pos = blank + 2
            length = _content_length(headers)
            if length:
                self._pending = headers
                self._pending_length = length
            else:
                frames.append(Frame(headers))
        self._tail = buffer[pos:] if pos else buffer
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._tail) + self._waiting_size


def encode_frame(headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    """A server message exactly as FreeSWITCH writes it.

    Headers are written as given. When there is a body and no Content-Length header, one is added
    where FreeSWITCH puts it: first for events, right after Content-Type otherwise.
    """
    headers = list(headers)
    names = [name.lower() for name, _ in headers]
    if "content-length" in names:
        declared = int(headers[names.index("content-length")][1])
        if declared != len(body):
            raise ValueError(f"Content-Length {declared} but body has {len(body)} bytes")
    elif body:
        at = 0
        if "content-type" in names:
            content_type = headers[names.index("content-type")][1]
            if not content_type.startswith("text/event-"):
                at = names.index("content-type") + 1
        headers.insert(at, ("Content-Length", str(len(body))))
    head = "".join(f"{name}: {value}\n" for name, value in headers)
    return head.encode("utf-8") + b"\n" + body


def auth_request_frame() -> bytes:
    return b"Content-Type: auth/request\n\n"


def command_reply_frame(reply_text: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    """``command/reply``; bgapi adds ``Job-UUID`` after Reply-Text."""
    return encode_frame([("Content-Type", "command/reply"), ("Reply-Text", reply_text), *extra])


def api_response_frame(output: str | bytes) -> bytes:
    body = output.encode("utf-8") if isinstance(output, str) else output
    return encode_frame([("Content-Type", "api/response")], body)


def event_frame(serialized: bytes, event_format: str = "plain") -> bytes:
    """Wrap an encode_event_* result: Content-Length comes first on events."""
    return encode_frame(
        [("Content-Length", str(len(serialized))), ("Content-Type", f"text/event-{event_format}")],
        serialized,
    )


def disconnect_notice_frame(message: str = DISCONNECT_GOODBYE) -> bytes:
    return encode_frame([("Content-Type", "text/disconnect-notice")], message.encode("utf-8"))


def rude_rejection_frame() -> bytes:
    return encode_frame([("Content-Type", "text/rude-rejection")], RUDE_REJECTION.encode())


def log_data_frame(
    text: str,
    level: int,
    channel: int = 0,
    file: str = "",
    func: str = "",
    line: int = 0,
    user_data: str = "",
) -> bytes:
    body = text.encode("utf-8")
    return encode_frame(
        [
            ("Content-Type", "log/data"),
            ("Content-Length", str(len(body))),
            ("Log-Level", str(level)),
            ("Text-Channel", str(channel)),
            ("Log-File", file),
            ("Log-Func", func),
            ("Log-Line", str(line)),
            ("User-Data", user_data),
        ],
        body,
    )


# --------------------------------------------------------------------------------------------
# URL encoding as switch_url_encode does it (double_encode off)

# SWITCH_URL_UNSAFE plus every byte below 0x20 or above 0x7E; a '%' already followed by two
# uppercase hex digits is passed through, so decoding such values is lossy (as in FreeSWITCH).
_URL_UNSAFE = re.compile(rb'%(?![0-9A-F]{2})|[\x00-\x1f\x7f-\xff #&+:;<=>?@\[\\\]^`{|}"]')
_PERCENT = {bytes([b]): b"%%%02X" % b for b in range(256)}


def _percent(match: re.Match[bytes]) -> bytes:
    return _PERCENT[match.group()]


def url_encode(value: str) -> str:
    raw = value.encode("utf-8")
    return _URL_UNSAFE.sub(_percent, raw).decode("ascii")


def url_decode(value: str) -> str:
    # unquote keeps a stray '%' and does not turn '+' into a space, like esl_url_decode
    return unquote(value, errors="replace") if "%" in value else value


# --------------------------------------------------------------------------------------------
# Events (the serialized event inside a text/event-* frame)

ARRAY_PREFIX = "ARRAY::"
ARRAY_SEPARATOR = "|:"


class Event:
    """A parsed event: headers in order (decoded, duplicates kept) and the body, if any.

    A plain event as FreeSWITCH writes it (parse_event_plain) keeps its header block as bytes and
    decodes a header when first asked for it: the listener reads about ten of the hundred and
    more headers of a channel event. Every method answers as if the whole block had been decoded
    first (``headers``) and then looked up.
    """

    __slots__ = ("_headers", "body", "format", "_first", "_raw", "_stop", "_variables_at")

    def __init__(self, headers: Headers, body: str | None = None, format: str = "plain") -> None:
        self._headers: Headers | None = headers
        self.body = body
        self.format = format
        self._first: dict[str, str | None] | None = None  # name -> first value (None: absent)
        # A lazy event's serialized bytes, its header lines being raw[:_stop]; None when the
        # event was built from its headers.
        self._raw: bytes | None = None
        self._stop = 0
        self._variables_at = -1  # where a lazy event's first variable_ line starts (-1: none)

    @classmethod
    def _lazy(cls, raw: bytes, stop: int, body: str | None, variables_at: int) -> Event:
        event = cls.__new__(cls)
        event._headers = None
        event.body = body
        event.format = "plain"
        event._first = {}
        event._raw = raw
        event._stop = stop
        event._variables_at = variables_at
        return event

    @property
    def headers(self) -> Headers:
        """Every header, decoded, in order."""
        headers = self._headers
        if headers is None:
            assert self._raw is not None  # only a lazy event starts without its headers
            block = self._raw[: self._stop]
            headers = _decode_plain_block_quickly(block) or _decode_plain_block_slowly(block)
            self._headers = headers
        return headers

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first header called exactly ``name``."""
        first = self._first
        if first is None:  # an event built from its headers, asked for the first time
            first = self._first = dict(reversed(self.headers))
        value = first.get(name, _UNSEEN)
        if value is not _UNSEEN:
            return default if value is None else value
        raw = self._raw
        if raw is None:  # built from its headers: they are all in there
            return default
        # _line and _line_value, inline: this is the hot path of a lazy event.
        key, needle, variable = _LINE_KEYS.get(name) or _line_key(name)
        stop = self._stop
        start = self._variables_at if variable else 0
        if key and start >= 0:
            if not raw.startswith(key, start, stop):
                start = raw.find(needle, start, stop)
                if start >= 0:
                    start += 1
            if start >= 0:
                start += len(key)
                if start < stop and raw[start] == 0x20:
                    start += 1
                end = raw.find(b"\n", start, stop)
                text = raw[start : end if end >= 0 else stop].decode("ascii")
                value = first[name] = unquote(text, errors="replace") if "%" in text else text
                return value
        first[name] = None
        return default

    def get_all(self, name: str) -> list[str]:
        raw = self._raw
        if raw is None:
            return [value for key, value in self.headers if key == name]
        values = []
        line = self._line(raw, name)
        if line >= 0:
            stop = self._stop
            needle = _line_key(name)[1]
            while line >= 0:
                values.append(_line_value(raw, stop, line + len(needle) - 1))
                line = raw.find(needle, line, stop)
                line = line + 1 if line >= 0 else -1
        return values

    def __contains__(self, name: object) -> bool:
        return self.get(name) is not None if isinstance(name, str) else False

    @property
    def name(self) -> str:
        return self.get("Event-Name") or ""

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        return self.get("Unique-ID")

    @property
    def job_uuid(self) -> str | None:
        return self.get("Job-UUID")

    def variable(self, name: str, default: str | None = None) -> str | None:
        return self.get("variable_" + name, default)

    def variables(self, reading: Iterable[str] = ()) -> ChannelVariables:
        """The channel variables (``variable_*`` headers) by name without the prefix, first
        occurrence winning. ``reading`` names the variables about to be read, if known: one
        pass over a lazy event finds them all, which costs less than a lookup for each."""
        if self._raw is not None and reading:
            self._find_variables(reading if isinstance(reading, tuple) else tuple(reading))
        return ChannelVariables(self)

    # -- a lazy event's lookups ---------------------------------------------------------------

    def _line(self, raw: bytes, name: str) -> int:
        """Where the first header line called ``name`` starts, or -1."""
        key, needle, variable = _LINE_KEYS.get(name) or _line_key(name)
        if not key:
            return -1
        stop = self._stop
        start = 0
        if variable:  # variables come last: their lookups skip the lines before the first one
            start = self._variables_at
            if start < 0:
                return -1
        if raw.startswith(key, start, stop):
            return start
        start = raw.find(needle, start, stop)
        return start + 1 if start >= 0 else -1

    def _find_variables(self, names: tuple[str, ...]) -> None:
        """Look up the variables ``names`` in one pass, into the cache get reads."""
        first = self._first
        raw = self._raw
        assert first is not None and raw is not None
        start = self._variables_at
        if start <= 0:  # none, or one on the first line, which the pattern cannot see
            return
        pattern, headers = _variables_pattern(names)
        if pattern is None:
            return
        found = dict(reversed(pattern.findall(raw, start - 1, self._stop)))  # first wins
        for name, header in headers:
            if header not in first:
                value = found.get(name)
                if value is not None:
                    value = value.decode("ascii")
                    if "%" in value:
                        value = unquote(value, errors="replace")
                first[header] = value

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self.headers)} headers, body={self.body!r:.40})"


class ChannelVariables(Mapping[str, str]):
    """An event's channel variables by name (``variable_`` left off), first occurrence winning,
    as Event.variable reads them. Iterating decodes every header."""

    __slots__ = ("_event",)

    def __init__(self, event: Event) -> None:
        self._event = event

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        header = _VARIABLE_PREFIX + name
        first = self._event._first
        value = _UNSEEN if first is None else first.get(header, _UNSEEN)
        if value is _UNSEEN:  # not read yet (or not there, in an event built from headers)
            return self._event.get(header, default)
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = self._event.get(_VARIABLE_PREFIX + name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _VARIABLE_PREFIX + name in self._event

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> dict[str, None]:
        size = len(_VARIABLE_PREFIX)
        headers = self._event.headers
        return {name[size:]: None for name, _ in headers if name.startswith(_VARIABLE_PREFIX)}


_UNSEEN: Any = object()
_VARIABLE_PREFIX = "variable_"
_NO_LINE = (b"", b"", False)  # for a name no header line can have
_LINE_KEYS: dict[str, tuple[bytes, bytes, bool]] = {}


@lru_cache(maxsize=64)
def _variables_pattern(
    names: tuple[str, ...],
) -> tuple[re.Pattern[bytes] | None, list[tuple[bytes, str]]]:
    """A pattern finding the lines (but the first) of the variables ``names``, name and value
    as _decode_plain_block_slowly reads them; and each name with its header's."""
    valid = [name for name in names if _can_name_a_line(name)]
    if not valid:
        return None, []
    keys = [name.encode("ascii") for name in valid]
    pattern = re.compile(rb"\nvariable_(" + b"|".join(map(re.escape, keys)) + rb"): ?([^\n]*)")
    return pattern, [(key, _VARIABLE_PREFIX + name) for key, name in zip(keys, valid, strict=True)]


def _line_value(raw: bytes, stop: int, start: int) -> str:
    """The decoded value of the line of raw[:stop] whose value starts at ``start``, the space
    after the colon left out, as _decode_plain_block_slowly reads it (raw is ASCII)."""
    if start < stop and raw[start] == 0x20:
        start += 1
    end = raw.find(b"\n", start, stop)
    value = raw[start : end if end >= 0 else stop].decode("ascii")
    return unquote(value, errors="replace") if "%" in value else value


def _can_name_a_line(name: str) -> bool:
    # A name is what comes before a line's first colon, and not empty; a lazy block is ASCII.
    return bool(name) and ":" not in name and "\n" not in name and name.isascii()


def _line_key(name: str) -> tuple[bytes, bytes, bool]:
    """How the line of header ``name`` starts in a plain block: (``name:``, the same after a
    newline, whether it is a variable), or _NO_LINE when no line can be called that."""
    key = _LINE_KEYS.get(name)
    if key is None:
        if not _can_name_a_line(name):
            return _NO_LINE
        line = name.encode("ascii") + b":"
        key = (line, b"\n" + line, name.startswith(_VARIABLE_PREFIX))
        if len(_LINE_KEYS) < 4096:  # the names c2c asks for, not every name ever seen
            _LINE_KEYS[name] = key
    return key


def parse_event(frame: Frame) -> Event:
    """The event inside a text/event-plain, text/event-json or text/event-xml frame."""
    content_type = frame.content_type
    if content_type == "text/event-plain":
        return parse_event_plain(frame.body)
    if content_type == "text/event-json":
        return parse_event_json(frame.body)
    if content_type == "text/event-xml":
        return parse_event_xml(frame.body)
    raise ProtocolError(f"not an event frame: {content_type!r}")


# One "Name: value" line of a serialized plain event (values never hold a raw newline).
_PLAIN_LINE = re.compile(r"^([^\n:]+): ?([^\n]*)$", re.MULTILINE)
# sre finds these faster than bytes.find does
_BLANK_LINE = re.compile(b"\n\n")
_BLANK_OR_VARIABLE_LINE = re.compile(b"\n\n|\nvariable_")

# In what FreeSWITCH writes, every raw ':' and ' ' in a header block is part of a ': '
# separator and every '%' starts an escape (values have all three encoded), so one translate
# pass turns separators and line ends alike into NUL, which no decoded value holds (values are
# C strings), and each %XX into =XX, which binascii's quoted-printable decoder reads in C.
_FLATTEN = bytes.maketrans(b":\n%", b"\x00\x00=")
_NOT_SEPARATORS = bytes(set(range(256)) - set(b": \n"))
_BODY_LENGTH_LINE = b"\nContent-Length: "
_BODY_LENGTH_KEY = b"Content-Length:"


def _decode_plain_block_slowly(block: bytes) -> Headers:
    text = block.decode("utf-8", "replace")
    return [(name, url_decode(value)) for name, value in _PLAIN_LINE.findall(text)]


def _decode_plain_block_quickly(block: bytes) -> Headers | None:
    """Header lines to (name, decoded value) pairs in a few C-level passes, or None when the
    block is not shaped as FreeSWITCH writes it (then the caller takes the slow path, whose
    result this one always equals)."""
    # FreeSWITCH encodes '=', CR, a lone '%' and every byte above 0x7E, which quoted-printable
    # or the UTF-8 decoding would read otherwise, and NUL, our separator.
    if (
        b"=" in block
        or b"\r" in block
        or b"\x00" in block
        or block.endswith(b"%")
        or not block.isascii()
    ):
        return None
    flat = block.translate(_FLATTEN, b" ")
    if b"=" in flat:
        decoded = binascii.a2b_qp(flat)
        # A '%' that starts no escape is left as '='; a decoded %3D looks the same, so count.
        if b"=" in decoded and len(decoded) != len(flat) - 2 * flat.count(b"="):
            return None
        text = decoded.decode("utf-8", "replace")
    else:
        text = flat.decode("utf-8", "replace")
    parts = text.split("\x00")
    # Names and values pair up, one separator space per line, and no part is empty: an empty
    # part is an empty line, so the block was cut in the wrong place (see parse_event_plain).
    if len(parts) % 2 or len(block) - len(flat) != len(parts) // 2 or "" in parts:
        return None
    # ... and every line holds exactly one ': ' (not two, and not a ':' without its space).
    lines = len(parts) // 2
    if block.translate(None, _NOT_SEPARATORS) != b": \n" * (lines - 1) + b": " or (
        block.count(b": ") != lines
    ):
        return None
    pairs = iter(parts)
    return list(zip(pairs, pairs, strict=False))


def _split_plain_quickly(data: bytes) -> tuple[Headers, str | None] | None:
    """Guess where the header block ends from the end of the data (scanning for the first blank
    line costs more than decoding); a wrong guess leaves an empty line in the block, which
    _decode_plain_block_quickly refuses."""
    if data.endswith(b"\n\n"):
        if data.startswith(_BODY_LENGTH_KEY, data.rfind(b"\n", 0, len(data) - 2) + 1):
            return None  # a Content-Length header last announces a body (here an empty one)
        headers = _decode_plain_block_quickly(data[:-2])
        return None if headers is None else (headers, None)
    at = data.rfind(_BODY_LENGTH_LINE)
    if at < 0:
        return None
    digits_at = at + len(_BODY_LENGTH_LINE)
    blank = data.find(b"\n\n", digits_at, digits_at + 12)
    digits = data[digits_at:blank]
    if blank < 0 or not digits.isdigit() or int(digits) != len(data) - blank - 2:
        return None
    headers = _decode_plain_block_quickly(data[:at])
    if headers is None:
        return None
    return headers, data[blank + 2 :].decode("utf-8", "replace")


def _body_after(data: bytes, blank: int, declared: str) -> str:
    if not (declared.isascii() and declared.isdigit()):  # isdigit alone takes '\xb2' too
        raise ProtocolError(f"bad event Content-Length {declared!r}")
    start = blank + 2
    return data[start : start + int(declared)].decode("utf-8", "replace")


def _parse_plain_lazily(data: bytes) -> Event | None:
    """An Event that decodes headers when asked for, or None when the data is not ASCII (every
    byte above 0x7E is encoded in what FreeSWITCH writes) or its last header line is not one."""
    if not data.isascii():
        return None
    # The first blank line ends the header block (as in _parse_plain_carefully); on the way
    # there, where the variables start.
    variables = 0 if data.startswith(b"variable_") else -1
    found = _BLANK_OR_VARIABLE_LINE.search(data)
    if found is not None and data[found.start() + 1] != 0x0A:  # a variable line came first
        line = found.start() + 1
        variables = line if variables < 0 else variables
        found = _BLANK_LINE.search(data, line)
    blank = found.start() if found else -1
    stop = blank if found else len(data)
    last = data.rfind(b"\n", 0, stop) + 1
    if stop and data.find(b":", last, stop) <= last:
        return None  # the last line is no header: the last header is further up
    if blank < 0 or not data.startswith(_BODY_LENGTH_KEY, last, stop):
        return Event._lazy(data, stop, None, variables)
    # A Content-Length header last: the body's length, not a header.
    declared = _line_value(data, stop, last + len(_BODY_LENGTH_KEY))
    return Event._lazy(data, max(last - 1, 0), _body_after(data, blank, declared), variables)


def _parse_plain_carefully(data: bytes) -> Event:
    """What every other way of parsing a plain event must agree with."""
    blank = data.find(b"\n\n")
    block = data if blank < 0 else data[:blank]
    headers = _decode_plain_block_quickly(block) or _decode_plain_block_slowly(block)
    body = None
    if headers and headers[-1][0] == "Content-Length" and blank >= 0:
        body = _body_after(data, blank, headers.pop()[1])
    return Event(headers, body, "plain")


def _parse_plain_eagerly(data: bytes) -> Event:
    """Every header decoded up front (what parse_event_plain did before decoding lazily)."""
    quick = _split_plain_quickly(data)
    if quick is not None:
        return Event(quick[0], quick[1], "plain")
    return _parse_plain_carefully(data)


def parse_event_plain(data: bytes) -> Event:
    """switch_event_serialize's output: url-encoded header lines, then Content-Length and body."""
    return _parse_plain_lazily(data) or _parse_plain_eagerly(data)


def _json_value(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ARRAY_PREFIX + ARRAY_SEPARATOR.join(str(item) for item in value)
    return str(value)


def parse_event_json(data: bytes) -> Event:
    try:
        pairs = json.loads(data, object_pairs_hook=lambda items: items)
    except ValueError as exc:
        raise ProtocolError(f"bad event json: {exc}") from exc
    if not data.lstrip()[:1] == b"{":  # object_pairs_hook made every object a list of pairs
        raise ProtocolError("event json is not an object")
    body = None
    headers: Headers = []
    for name, value in pairs:
        if name == "_body":
            body = _json_value(value)
        else:
            headers.append((name, _json_value(value)))
    if body is not None:
        # FreeSWITCH adds Content-Length (of the body) just before _body; it is not a header
        for index in range(len(headers) - 1, -1, -1):
            if headers[index][0] == "Content-Length":
                del headers[index]
                break
    return Event(headers, body, "json")


def parse_event_xml(data: bytes) -> Event:
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise ProtocolError(f"bad event xml: {exc}") from exc
    headers: Headers = []
    container = root.find("headers")
    for element in container if container is not None else ():
        headers.append((element.tag, url_decode(element.text or "")))
    body_element = root.find("body")
    body = None
    if body_element is not None:
        # switch_xml_toxml indents the closing tag; the body itself ends at the last newline
        text = body_element.text or ""
        length_element = root.find("Content-Length")
        if length_element is not None and (length_element.text or "").isdigit():
            raw = text.encode("utf-8")[: int(length_element.text or 0)]
            text = raw.decode("utf-8", "replace")
        body = text
    return Event(headers, body, "xml")


def encode_event_plain(headers: Iterable[tuple[str, str]], body: str | None = None) -> bytes:
    """switch_event_serialize: ``Name: <url-encoded>`` lines, then Content-Length and body."""
    parts = [f"{name}: {url_encode(value)}\n" for name, value in headers]
    text = "".join(parts).encode("ascii")
    if body:
        raw = body.encode("utf-8")
        return text + b"Content-Length: %d\n\n" % len(raw) + raw
    return text + b"\n"


def _dump(value: str) -> str:
    # Same escaping as cJSON: control characters, quote and backslash; UTF-8 kept raw.
    return json.dumps(value, ensure_ascii=False)


def _dump_value(value: str) -> str:
    if value.startswith(ARRAY_PREFIX):
        items = value[len(ARRAY_PREFIX) :].split(ARRAY_SEPARATOR)
        return "[" + ",".join(_dump(item) for item in items) + "]"
    return _dump(value)


def encode_event_json(headers: Iterable[tuple[str, str]], body: str | None = None) -> bytes:
    """switch_event_serialize_json: one unformatted object; duplicates kept; arrays as lists."""
    members = [f"{_dump(name)}:{_dump_value(value)}" for name, value in headers]
    if body:
        members.append(f'"Content-Length":"{len(body.encode("utf-8"))}"')
        members.append(f'"_body":{_dump(body)}')
    return ("{" + ",".join(members) + "}").encode("utf-8")


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def encode_event_xml(headers: Iterable[tuple[str, str]], body: str | None = None) -> bytes:
    """switch_event_xmlize + switch_xml_toxml: url-encoded header text, two-space indents.

    Matches the recordings for header-only events and bodies ending in a newline (the closing
    body tag is then indented); other bodies are a best guess.
    """
    lines = ["<event>\n  <headers>\n"]
    lines += [f"    <{name}>{url_encode(value)}</{name}>\n" for name, value in headers]
    lines.append("  </headers>\n")
    if body:
        indent = "  " if body.endswith("\n") else ""
        lines.append(f"  <Content-Length>{len(body.encode('utf-8'))}</Content-Length>\n")
        lines.append(f"  <body>{_xml_text(body)}{indent}</body>\n")
    lines.append("</event>\n")
    return "".join(lines).encode("utf-8")


def encode_event(
    headers: Iterable[tuple[str, str]], body: str | None = None, event_format: str = "plain"
) -> bytes:
    """A whole event frame (outer headers included) in the given format."""
    if event_format == "plain":
        serialized = encode_event_plain(headers, body)
    elif event_format == "json":
        serialized = encode_event_json(headers, body)
    elif event_format == "xml":
        serialized = encode_event_xml(headers, body)
    else:
        raise ValueError(f"unsupported event format {event_format!r}")
    return event_frame(serialized, event_format)


# --------------------------------------------------------------------------------------------
# Commands (client to server)


def encode_command(line: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
    """A client command: the command line, optional headers, a blank line, optional body."""
    if "\n" in line or "\r" in line:
        raise ValueError("a command line must not contain a newline")
    parts = [line, "\n"]
    for name, value in headers:
        if "\n" in value or "\r" in value:
            raise ValueError(f"header {name} must not contain a newline")
        parts.append(f"{name}: {value}\n")
    if body:
        parts.append(f"Content-Length: {len(body)}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8") + body


class Command:
    """One command as the server reads it: the command line, its headers, its body."""

    __slots__ = ("line", "headers", "body")

    def __init__(self, line: str, headers: Headers | None = None, body: bytes = b"") -> None:
        self.line = line
        self.headers = headers if headers is not None else []
        self.body = body

    @property
    def name(self) -> str:
        """The first word, lowercased (``api``, ``bgapi``, ``event``...)."""
        return self.line.split(" ", 1)[0].lower()

    @property
    def args(self) -> str:
        """Everything after the first word."""
        parts = self.line.split(" ", 1)
        return parts[1] if len(parts) > 1 else ""

    def get(self, name: str, default: str | None = None) -> str | None:
        """A header, compared case-insensitively as the server does."""
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Command) and (self.line, self.headers, self.body) == (
            other.line,
            other.headers,
            other.body,
        )

    def __repr__(self) -> str:
        return f"Command({self.line!r}, {self.headers!r}, body={len(self.body)} bytes)"


# The server counts newlines and a CR does not reset the count: "\n\r\n" ends a block too.
_BLOCK_END = re.compile(rb"\n\r*\n")
_LEADING_BLANKS = re.compile(rb"[\r\n]*")


class CommandParser:
    """Server side: bytes from a client, in any chunking, to Commands."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending: Command | None = None
        self._pending_length = 0

    def feed(self, data: bytes) -> list[Command]:
        buffer = self._buffer
        buffer += data
        commands: list[Command] = []
        pos = 0
        end = len(buffer)
        while True:
            if self._pending is not None:
                stop = pos + self._pending_length
                if stop > end:
                    break
                self._pending.body = bytes(buffer[pos:stop])
                commands.append(self._pending)
                self._pending = None
                pos = stop
                continue
            blanks = _LEADING_BLANKS.match(buffer, pos)
            pos = blanks.end() if blanks else pos
            found = _BLOCK_END.search(buffer, pos)
            if found is None:
                if end - pos > MAX_HEADER_BLOCK:
                    raise ProtocolError("command header block too long")
                break
            lines = bytes(buffer[pos : found.start()]).decode("utf-8", "replace").split("\n")
            pos = found.end()
            command = Command(lines[0].rstrip("\r"))
            for line in lines[1:]:
                name, sep, value = line.rstrip("\r").partition(":")
                if sep:
                    command.headers.append((name.strip(), value.lstrip(" ")))
            length = _content_length(command.headers)
            if length:
                self._pending = command
                self._pending_length = length
            else:
                commands.append(command)
        if pos:
            del buffer[:pos]
        return commands

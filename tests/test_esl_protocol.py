"""The wire codec against real FreeSWITCH traffic (esl-captures) and against itself."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from c2c.calls import events as call_events
from c2c.esl import protocol
from c2c.esl.protocol import (
    Command,
    CommandParser,
    Event,
    Frame,
    FrameParser,
    ProtocolError,
    encode_command,
    encode_event_json,
    encode_event_plain,
    encode_frame,
    parse_event,
    url_decode,
    url_encode,
)
from tests import esl_captures

RECORDINGS = esl_captures.recording_names()
needs_captures = pytest.mark.skipif(not RECORDINGS, reason="esl-captures not found")


def feed_in_pieces(data: bytes, cuts: list[int]) -> list[Frame]:
    parser = FrameParser()
    frames: list[Frame] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        frames += parser.feed(data[start:cut])
        start = cut
    assert parser.buffered == 0
    return frames


def assert_matches_transcript(name: str, frames: list[Frame]) -> None:
    expected = esl_captures.received(name)
    assert len(frames) == len(expected)
    for frame, want in zip(frames, expected, strict=True):
        assert frame.headers == want.headers, (name, want.number)
        assert frame.body == want.body, (name, want.number)
        assert frame.content_type == want.content_type
        assert len(frame.body) == want.content_length


def event_frames(name: str) -> list[Frame]:
    return [f for f in FrameParser().feed(esl_captures.raw_bytes(name)) if f.is_event]


# ---------------------------------------------------------------------------------------------
# Framing: every recording, whole, byte by byte, and cut anywhere


@needs_captures
@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_whole_matches_transcript(name: str) -> None:
    parser = FrameParser()
    frames = parser.feed(esl_captures.raw_bytes(name))
    assert parser.buffered == 0
    assert_matches_transcript(name, frames)


@needs_captures
@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_byte_by_byte_matches_transcript(name: str) -> None:
    raw = esl_captures.raw_bytes(name)
    assert_matches_transcript(name, feed_in_pieces(raw, list(range(1, len(raw)))))


@needs_captures
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_recording_cut_at_random_points_matches_transcript(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(RECORDINGS))
    raw = esl_captures.raw_bytes(name)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40))
    assert_matches_transcript(name, feed_in_pieces(raw, cuts))


@needs_captures
@pytest.mark.parametrize("name", RECORDINGS)
def test_encode_frame_reproduces_the_recording(name: str) -> None:
    raw = esl_captures.raw_bytes(name)
    frames = FrameParser().feed(raw)
    assert b"".join(encode_frame(f.headers, f.body) for f in frames) == raw


def test_frame_accessors() -> None:
    (reply,) = FrameParser().feed(
        b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: abc\nJob-UUID: abc\n\n"
    )
    assert reply.content_type == "command/reply"
    assert reply.reply_text == "+OK Job-UUID: abc"
    assert reply.get("job-uuid") == "abc"
    assert reply.get("Missing", "x") == "x"
    (api,) = FrameParser().feed(b"Content-Type: api/response\nContent-Length: 5\n\nfalse")
    assert api.reply_text == "false"
    assert not api.is_event


def test_body_length_counts_bytes_not_characters() -> None:
    body = "Zürich ☎\n".encode()
    data = encode_frame([("Content-Type", "api/response")], body)
    assert data == b"Content-Type: api/response\nContent-Length: 12\n\n" + body
    assert FrameParser().feed(data) == [
        Frame([("Content-Type", "api/response"), ("Content-Length", "12")], body)
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"Content-Type: api/response\nContent-Length: nope\n\n",
        b"Content-Type: api/response\nContent-Length: -1\n\n",
        b"Content-Type: api/response\nContent-Length: 99999999999\n\n",
        b"Content-Type: api/response\ngarbage line\n\n",
    ],
)
def test_bad_frames_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        FrameParser().feed(data)


def test_long_body_in_many_chunks_is_not_rejoined_quadratically() -> None:
    body = b"x" * 300_000
    data = (
        encode_frame([("Content-Type", "api/response")], body) + b"Content-Type: auth/request\n\n"
    )
    frames = feed_in_pieces(data, list(range(1000, len(data), 1000)))
    assert [f.body for f in frames] == [body, b""]


# ---------------------------------------------------------------------------------------------
# Server frames built by the helpers are byte-exact with the recordings


@needs_captures
def test_frame_helpers_match_recorded_bytes() -> None:
    raw = esl_captures.raw_bytes("13_protocol_misc")
    job = "11111111-2222-3333-4444-555555555555"
    expected_pieces = [
        protocol.auth_request_frame(),
        protocol.command_reply_frame("+OK accepted"),
        protocol.command_reply_frame("+OK event listener enabled plain"),
        protocol.api_response_frame("-ERR no_such_command Command not found!\n"),
        protocol.command_reply_frame("-ERR command not found"),
        protocol.command_reply_frame(f"+OK Job-UUID: {job}", [("Job-UUID", job)]),
        protocol.api_response_frame("false"),
        protocol.disconnect_notice_frame(),
    ]
    for piece in expected_pieces:
        assert piece in raw
    shutdown = esl_captures.raw_bytes("15_freeswitch_shutdown_while_connected")
    assert protocol.disconnect_notice_frame(protocol.DISCONNECT_SHUTDOWN) in shutdown


def test_encode_frame_checks_a_given_content_length() -> None:
    with pytest.raises(ValueError):
        encode_frame([("Content-Type", "api/response"), ("Content-Length", "3")], b"four")


def test_rude_rejection_and_log_data_frames() -> None:
    rude = protocol.rude_rejection_frame()
    assert (
        rude
        == b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"
    )
    log = protocol.log_data_frame("hello\n", 7, 1, "f.c", "fn", 12, "")
    (frame,) = FrameParser().feed(log)
    assert frame.content_type == "log/data"
    assert frame.get("Log-Level") == "7"
    assert frame.body == b"hello\n"


# ---------------------------------------------------------------------------------------------
# Events


@needs_captures
@pytest.mark.parametrize("name", RECORDINGS)
def test_events_round_trip_byte_exact(name: str) -> None:
    for frame in event_frames(name):
        event = parse_event(frame)
        encoder = {
            "plain": encode_event_plain,
            "json": encode_event_json,
            "xml": protocol.encode_event_xml,
        }[event.format]
        assert encoder(event.headers, event.body) == frame.body
        assert protocol.encode_event(event.headers, event.body, event.format) == encode_frame(
            frame.headers, frame.body
        )


@needs_captures
@pytest.mark.parametrize("name", RECORDINGS)
def test_plain_events_decode_as_the_careful_path_does(name: str) -> None:
    for frame in event_frames(name):
        if frame.content_type != "text/event-plain":
            continue
        event = parse_event(frame)
        block = frame.body.split(b"\n\n", 1)[0]
        slow = protocol._decode_plain_block_slowly(block)
        if event.body is not None:
            assert slow.pop() == ("Content-Length", str(len(event.body.encode())))
        assert event.headers == slow


@needs_captures
def test_background_job_body_and_headers() -> None:
    frames = event_frames("13_protocol_misc")
    status, busy = (parse_event(f) for f in frames[:2])
    assert status.name == "BACKGROUND_JOB"
    assert status.job_uuid == "11111111-2222-3333-4444-555555555555"
    assert status.body is not None and status.body.startswith("UP 0 years")
    assert status.body.endswith("Current Stack Size/Max 240K/8192K\n")
    assert len(status.body.encode()) == 335
    assert status.get("Content-Length") is None  # the body's length is not a header
    assert status.get("Event-Date-GMT") == "Thu, 26 Nov 2026 23:01:42 GMT"
    assert status.get("FreeSWITCH-IPv6") == "fd00::2"
    assert busy.body == "-ERR USER_BUSY\n"
    assert busy.get("Job-Command-Arg") == "{call_timeout=20}loopback/9486/default &park"


@needs_captures
@pytest.mark.parametrize(
    "name", ["02_loopback_originate_bridge_plain", "11_event_json_loopback_originate_bridge"]
)
def test_duplicate_headers_and_arrays_are_kept(name: str) -> None:
    events = [parse_event(f) for f in event_frames(name)]
    hangups = [e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE"]
    assert hangups
    for event in hangups:
        causes = event.get_all("Hangup-Cause")
        assert len(causes) == 2 and causes[0] == causes[1] == event.get("Hangup-Cause")
        assert event.unique_id == event.variable("uuid")
    assert any(e.variable("DP_MATCH") == "ARRAY::9999|:9999" for e in hangups)
    jobs = [e for e in events if e.name == "BACKGROUND_JOB"]
    assert jobs and all(e.body and e.body[:4] in ("+OK ", "-ERR") for e in jobs)


@needs_captures
def test_json_event_matches_plain_semantics() -> None:
    frames = event_frames("11_event_json_loopback_originate_bridge")
    job = next(parse_event(f) for f in frames if b'"BACKGROUND_JOB"' in f.body[:40])
    assert job.format == "json"
    assert job.body == "+OK d0cb2f06-1e11-426a-92c1-2104b956c278\n"
    assert job.get("Content-Length") is None
    assert job.get("FreeSWITCH-IPv6") == "fd00::2"


@needs_captures
def test_xml_events_parse() -> None:
    events = [parse_event(f) for f in event_frames("12_event_xml_short")]
    job = next(e for e in events if e.name == "BACKGROUND_JOB")
    assert job.format == "xml"
    assert job.body == "+OK ca1355f6-fabc-45e4-b762-68e1371d0458\n"
    assert job.get("Event-Date-GMT") == "Thu, 26 Nov 2026 23:01:35 GMT"
    hangup = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert hangup.get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING"]
    assert hangup.get("Caller-Callee-ID-Name") == "Outbound Call"


def test_parse_event_refuses_non_event_frames() -> None:
    with pytest.raises(ProtocolError):
        parse_event(Frame([("Content-Type", "command/reply")]))


def test_event_accessors() -> None:
    event = Event(
        [
            ("Event-Name", "CUSTOM"),
            ("Event-Subclass", "sofia::register"),
            ("variable_x", "1"),
            ("variable_x", "2"),
        ]
    )
    assert event.name == "CUSTOM" and event.subclass == "sofia::register"
    assert event.variable("x") == "1"
    assert "variable_x" in event and "nope" not in event
    assert event.get_all("variable_x") == ["1", "2"]


# ---------------------------------------------------------------------------------------------
# URL encoding as switch_url_encode does it


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("fd00::2", "fd00%3A%3A2"),
        ("Thu, 26 Nov 2026 23:01:42 GMT", "Thu,%2026%20Nov%202026%2023%3A01%3A42%20GMT"),
        ("{a=b}x/y &bridge(z)", "%7Ba%3Db%7Dx/y%20%26bridge(z)"),
        (
            'a+b;c<d>e?f@g[h]i^j`k|l"m#n\\o',
            "a%2Bb%3Bc%3Cd%3Ee%3Ff%40g%5Bh%5Di%5Ej%60k%7Cl%22m%23n%5Co",
        ),
        ("line\r\nnext\t", "line%0D%0Anext%09"),
        ("!$'()*,-./_~", "!$'()*,-./_~"),
        ("Zürich", "Z%C3%BCrich"),
        ("100%", "100%25"),
        ("%4", "%254"),
        ("%41 stays", "%41%20stays"),  # switch_url_encode leaves %XX (uppercase hex) alone
        ("%4a is escaped", "%254a%20is%20escaped"),
        ("\x7f", "%7F"),
    ],
)
def test_url_encode_like_freeswitch(raw: str, encoded: str) -> None:
    assert url_encode(raw) == encoded


def test_url_decode_keeps_stray_percent_and_plus() -> None:
    assert url_decode("a+b%20c%zz%") == "a+b c%zz%"


header_names = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
header_values = st.text(min_size=1, max_size=40).filter(lambda v: "\x00" not in v)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(header_names, header_values), min_size=1, max_size=12),
    st.none() | st.text(min_size=1, max_size=60),
)
def test_plain_event_round_trip(headers: list[tuple[str, str]], body: str | None) -> None:
    event = protocol.parse_event_plain(encode_event_plain(headers, body))
    # FreeSWITCH's encoding is lossy only for values that already hold %XX
    assert event.headers == [(name, url_decode(url_encode(value))) for name, value in headers]
    assert event.body == body


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(header_names, header_values.filter(lambda v: "|:" not in v)), max_size=12),
    st.none() | st.text(min_size=1, max_size=60),
)
def test_json_event_round_trip(headers: list[tuple[str, str]], body: str | None) -> None:
    data = encode_event_json(headers, body)
    json.loads(data)  # valid JSON
    event = protocol.parse_event_json(data)
    assert event.headers == headers
    assert event.body == body
    assert encode_event_json(event.headers, event.body) == data


_FS_SHAPED_LINE = re.compile(rb"[^: \n]+: [^: \n]*")
_ODD_ALPHABET = ": \n%=AF0a\r\x00\t\x0bé-_b"


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=80) | st.text(alphabet=_ODD_ALPHABET, max_size=60).map(str.encode))
@example(b"a: b: c\nd")  # two separators on one line, none on the next
@example(b"a:x y")  # a colon and a space, apart
@example(b"a: \xc3%BC")  # a raw byte above 0x7E before an escape
@example(b"N%: v")
def test_quick_plain_decoding_agrees_with_the_careful_one(block: bytes) -> None:
    quick = protocol._decode_plain_block_quickly(block)
    slow = protocol._decode_plain_block_slowly(block)
    assert quick is None or quick == slow
    if all(_PLAIN_SHAPED_LINE.fullmatch(line) for line in block.split(b"\n")):
        assert quick is not None  # it does take what FreeSWITCH writes


_PLAIN_SHAPED_LINE = re.compile(rb"[^: \n\r\x00=%\x80-\xff]+: [^: \n\r\x00=%\x80-\xff]+")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_arbitrary_event_bodies_parse_or_raise_protocol_error(data: bytes) -> None:
    try:
        event = protocol.parse_event_plain(data)
    except ProtocolError:
        return
    assert all(isinstance(n, str) and isinstance(v, str) for n, v in event.headers)


# ---------------------------------------------------------------------------------------------
# Lazy decoding: a plain event decodes a header when first asked for it, and answers exactly as
# if it had decoded them all first.

# Names no recorded event has, or no header line can have.
ABSENT_NAMES = [
    "",
    "Nope",
    "variable_nope",
    "variable_",
    "event-name",
    "Event-Name ",
    " Event-Name",
    "Event-Name:",
    "Event-Name: CHANNEL_ANSWER",
    "Event-Name\nUnique-ID",
    "Zürich",
    "Content-Length",
]


def decoded_as_written(data: bytes) -> tuple[list[tuple[str, str]], str | None]:
    """What switch_event_serialize wrote, read independently of c2c.esl.protocol: lines of
    ``Name: url-encoded value`` up to the first blank line, a Content-Length line last giving
    the length of the body after it."""
    block, _, rest = data.partition(b"\n\n")
    lines = block.decode("ascii").split("\n")
    body = None
    if lines[-1].startswith("Content-Length: "):
        body = rest[: int(lines.pop()[len("Content-Length: ") :])].decode()
    headers = []
    for line in lines:
        name, separator, value = line.partition(": ")
        assert separator and ":" not in name, line
        headers.append((name, unquote(value)))
    return headers, body


def first_wins(headers: list[tuple[str, str]], prefix: str = "") -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in headers:
        if name.startswith(prefix):
            values.setdefault(name[len(prefix) :], value)
    return values


def assert_answers_as(event: Event, eager: Event, probes: list[str] = ABSENT_NAMES) -> None:
    """``event``, parsed lazily, answers every question as ``eager`` (every header decoded)."""
    assert event._raw is not None and event._headers is None  # nothing decoded yet
    first = first_wins(eager.headers)
    for name in [*first, *probes]:
        assert event.get(name) == first.get(name), name
        assert event.get(name, "default") == first.get(name, "default"), name
        assert (name in event) == (name in first), name
        assert event.get_all(name) == [v for k, v in eager.headers if k == name], name
    assert event._headers is None  # all that without decoding every header
    variables = first_wins(eager.headers, "variable_")
    for name in [*variables, "nope", ""]:
        assert event.variable(name) == variables.get(name), name
        assert event.variables().get(name) == variables.get(name), name
    assert (event.name, event.subclass, event.unique_id, event.job_uuid) == (
        eager.name,
        eager.subclass,
        eager.unique_id,
        eager.job_uuid,
    )
    assert (event.body, event.format) == (eager.body, eager.format)
    assert event.headers == eager.headers
    assert dict(event.variables()) == variables
    assert repr(event) == repr(eager)


def assert_reads_variables_in_one_pass_as_one_by_one(data: bytes, eager: Event) -> None:
    variables = first_wins(eager.headers, "variable_")
    reading = [*variables, "nope", "", "a:b", "x\ny", "Zürich", "c2c_call_id"]
    event = protocol.parse_event_plain(data)
    view = event.variables(reading=reading)
    for name in reading:
        assert view.get(name) == variables.get(name), name
        assert (name in view) == (name in variables), name
        if name in variables:
            assert view[name] == variables[name]
        else:
            with pytest.raises(KeyError):
                view[name]
    assert event._headers is None
    assert len(view) == len(variables) and list(view) == list(variables)


def ours(headers: list[tuple[str, str]], leg: str) -> list[tuple[str, str]]:
    """The headers of one of our legs: c2c's variables first among the variables, and a later
    duplicate of each variable leg_end reads, which must not win."""
    at = next((i for i, (name, _) in enumerate(headers) if name.startswith("variable_")), 0)
    duplicates = [(f"variable_{name}", "999") for name in call_events.LEG_END_VARIABLES]
    added = [
        ("variable_c2c_call_id", "11111111-2222-3333-4444-555555555555"),
        ("variable_c2c_leg", leg),
    ]
    return [*headers[:at], *added, *headers[at:], *duplicates]


def leg_end_reading_every_header(event: Event) -> call_events.LegEnd | None:
    """leg_end as it was written before events decoded lazily."""
    return call_events.leg_end_from_variables(
        first_wins(event.headers, "variable_"),
        hangup_cause=event.get("Hangup-Cause"),
        fallback_end=call_events._event_time(event),
    )


@needs_captures
@pytest.mark.parametrize("name", RECORDINGS)
def test_every_recorded_plain_event_answers_as_decoding_every_header_does(name: str) -> None:
    for frame in event_frames(name):
        if frame.content_type != "text/event-plain":
            continue
        eager = protocol._parse_plain_eagerly(frame.body)
        assert (eager.headers, eager.body) == decoded_as_written(frame.body)
        assert_answers_as(parse_event(frame), eager)
        assert_reads_variables_in_one_pass_as_one_by_one(frame.body, eager)


@needs_captures
@pytest.mark.parametrize("name", RECORDINGS)
def test_leg_end_reads_what_it_read_from_every_header(name: str) -> None:
    """Every recorded CHANNEL_HANGUP_COMPLETE (plain, json, xml), as it was and as one of our
    legs, gives the same LegEnd as leg_end reading every header did."""
    for frame in event_frames(name):
        recorded = parse_event(frame)
        if recorded.name != "CHANNEL_HANGUP_COMPLETE":
            continue
        assert call_events.leg_end(recorded) == leg_end_reading_every_header(recorded)
        for leg in (call_events.CALLER, call_events.CALLEE):
            headers = ours(recorded.headers, leg)
            event = protocol.parse_event_plain(encode_event_plain(headers))
            end = call_events.leg_end(event)
            assert end is not None and end.leg == leg
            assert end == leg_end_reading_every_header(Event(headers))
            assert end.billsec != 999


_PROBED_NAMES = ["Event-Name", "variable_x", "variable_y", "Content-Length", "A", "a b", " A", ""]
# Two lines as one name: no header is called that, even when the first line is none.
_LINE_PAIRS = ["A\nA", "variable_x\nA", "a b\nvariable_y", "Event-Name\nA"]
_LINE_TEXT = st.text(alphabet=": \n%=AF0a\r\t-_bé", max_size=10)
_LINES = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(_PROBED_NAMES),
            st.sampled_from([": ", ":", ":  ", " : ", ": %", ""]),
            _LINE_TEXT | st.sampled_from(["12", "0", "3 ", "%32"]),
        ).map("".join),
        _LINE_TEXT,
    ),
    max_size=8,
).map("\n".join)
_PLAIN_LIKE = st.tuples(
    _LINES,
    st.sampled_from(["", "\n", "\n\n", "\n\n\n"]),
    st.text(alphabet="ab\nC:é", max_size=12),
).map(lambda parts: "".join(parts).encode())


_WITH_BODY = st.tuples(
    _LINES,
    st.sampled_from(["\nContent-Length: ", "\nContent-Length:", "Content-Length: "]),
    st.integers(0, 12).map(str) | st.sampled_from(["%31", "1x", ""]),
    st.sampled_from(["\n\n", "\n"]),
    st.text(alphabet="ab\nC: ", max_size=12),
).map(lambda parts: "".join(parts).encode())


def _parsed(parse, data: bytes) -> Event | str:  # noqa: ANN001
    try:
        return parse(data)
    except ProtocolError:
        return "ProtocolError"


@settings(max_examples=1500, deadline=None)
@given(_PLAIN_LIKE | _WITH_BODY | st.binary(max_size=120))
@example(b"A: x\nContent-Length: 0\n\n")  # a Content-Length last announces a body, if empty
@example(b"A: x\nContent-Length: 2\n\n")
@example(b"A: b: c\nvariable_x\n\n")
@example(b"A: x\n\nContent-Length: 1\n\nB: y")  # a blank line ends the block
@example(b"A: x\nContent-Length: 1\n\nB: y\nContent-Length: 3\n\nB: y")
@example(b"Event-Name: X\nContent-Length: %C2%B2\n\nab")  # '\xb2' is a digit, not a number
@example(b"variable_x: 1\nvariable_x:2\nvariable_y:\n\n")
@example(b"A\nA: x\nvariable_x\nA: y\n\n")
def test_any_plain_event_parses_alike_lazily_eagerly_and_carefully(data: bytes) -> None:
    careful = _parsed(protocol._parse_plain_carefully, data)
    eager = _parsed(protocol._parse_plain_eagerly, data)
    lazy = _parsed(protocol.parse_event_plain, data)
    if isinstance(careful, str):
        assert careful == eager == lazy
        return
    assert isinstance(eager, Event) and isinstance(lazy, Event)
    assert (eager.headers, eager.body) == (careful.headers, careful.body)
    if lazy._raw is None:  # not lazy: not ASCII, or its last line is not a header
        assert not data.isascii() or lazy.headers == careful.headers
    else:
        assert_answers_as(lazy, careful, probes=[*_PROBED_NAMES, *ABSENT_NAMES, *_LINE_PAIRS])
        assert_reads_variables_in_one_pass_as_one_by_one(data, careful)
    assert (lazy.headers, lazy.body) == (careful.headers, careful.body)


def test_lazy_event_decodes_what_it_is_asked_for() -> None:
    data = encode_event_plain(
        [
            ("Event-Name", "CHANNEL_ANSWER"),
            ("Caller-Caller-ID-Name", "Zürich ☎"),
            ("variable_c2c_call_id", "abc"),
            ("variable_sip_from_display", "a: b"),
            ("variable_c2c_call_id", "later"),
        ]
    )
    event = protocol.parse_event_plain(data)
    assert event.name == "CHANNEL_ANSWER"
    assert event.get("Caller-Caller-ID-Name") == "Zürich ☎"
    assert event.variable("c2c_call_id") == "abc"
    assert event.get_all("variable_c2c_call_id") == ["abc", "later"]
    assert event.variables()["sip_from_display"] == "a: b"
    assert event._headers is None
    assert len(event.headers) == 5


def test_body_that_looks_like_an_event_is_not_mistaken_for_headers() -> None:
    # a body ending in its own "Content-Length: N\n\n..." must not move the cut
    inner = "X: y\nContent-Length: 3\n\nabc"
    data = encode_event_plain([("Event-Name", "BACKGROUND_JOB")], inner)
    event = protocol.parse_event_plain(data)
    assert event.headers == [("Event-Name", "BACKGROUND_JOB")]
    assert event.body == inner
    ends_blank = encode_event_plain([("Event-Name", "API")], "two\n\n")
    assert protocol.parse_event_plain(ends_blank).body == "two\n\n"


# ---------------------------------------------------------------------------------------------
# Commands (client to server)


@needs_captures
@pytest.mark.parametrize("name", RECORDINGS)
def test_recorded_commands_parse_and_re_encode(name: str) -> None:
    for sent in esl_captures.sent(name):
        (command,) = CommandParser().feed(sent.raw)
        assert encode_command(command.line, command.headers, command.body) == sent.raw


def test_encode_command_with_headers_and_body() -> None:
    assert encode_command("bgapi status", [("Job-UUID", "j1")]) == b"bgapi status\nJob-UUID: j1\n\n"
    assert encode_command("sendevent CUSTOM", [("A", "b")], b"hi") == (
        b"sendevent CUSTOM\nA: b\nContent-Length: 2\n\nhi"
    )
    with pytest.raises(ValueError):
        encode_command("api status\n\nexit")
    with pytest.raises(ValueError):
        encode_command("bgapi status", [("Job-UUID", "x\ny")])


def test_command_parser_follows_the_server_rules() -> None:
    data = (
        b"\n\r\nauth ClueCon\r\n\r\n"  # blank lines first; CRLF framing
        b"bgapi status\njob-uuid:   j-1\n\n"  # header names any case; leading spaces stripped
        b"api status\n\r\n"  # a CR does not reset the newline count
        b"sendevent CUSTOM\nContent-Length: 5\n\nhello"
        b"exit\n\n"
    )
    commands = CommandParser().feed(data)
    assert [c.line for c in commands] == [
        "auth ClueCon",
        "bgapi status",
        "api status",
        "sendevent CUSTOM",
        "exit",
    ]
    assert commands[1].get("Job-UUID") == "j-1"
    assert commands[1].name == "bgapi" and commands[1].args == "status"
    assert commands[3].body == b"hello"
    assert commands[4] == Command("exit")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=20))
def test_command_parser_any_chunking(cuts: list[int]) -> None:
    data = (
        b"auth ClueCon\n\nbgapi originate x\nJob-UUID: j\n\n"
        b"sendevent CUSTOM\nContent-Length: 4\n\n\n\n\n\nevent plain ALL\n\n"
    )
    parser = CommandParser()
    commands: list[Command] = []
    start = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        commands += parser.feed(data[start:cut])
        start = cut
    assert commands == CommandParser().feed(data)
    assert [c.line for c in commands] == [
        "auth ClueCon",
        "bgapi originate x",
        "sendevent CUSTOM",
        "event plain ALL",
    ]
    assert commands[2].body == b"\n\n\n\n"


def test_command_parser_rejects_absurd_content_length() -> None:
    with pytest.raises(ProtocolError):
        CommandParser().feed(b"sendevent X\nContent-Length: 99999999999\n\n")

"""CDRs as the safety net: parsing mod_xml_cdr / mod_json_cdr documents, their wrappings, the same
LegEnd as the event path, and `c2c cdr replay` over a spool directory."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import re
import shutil
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from c2c.calls import events
from c2c.calls.cdr import (
    MAX_CDR_BYTES,
    CdrError,
    CdrFormat,
    UnsupportedCdrEncoding,
    format_of_file,
    leg_end_from_json_cdr,
    leg_end_from_variables,
    leg_end_from_xml_cdr,
    unwrap_post_body,
    unwrap_spooled,
)
from c2c.calls.events import LegEnd
from c2c.calls.listener import CallEventListener
from c2c.cli import cdr as cdr_cli
from c2c.config import Config
from c2c.errors import StoreError
from c2c.esl.protocol import (
    encode_event_json,
    encode_event_plain,
    parse_event_json,
    parse_event_plain,
    url_encode,
)
from c2c.store import schema
from tests.conftest import ACCEPT_DEFAULTS

FIXTURES = Path(__file__).parent / "fixtures" / "cdr"

CALL_BRIDGED = "5f0c2a1e-7b3d-4c8e-9a61-2d4b8f1e3c07"
CALL_BUSY = "9b7e4d21-3a5c-4f68-8e0d-6c1f2a9b4e53"
CALL_NO_ANSWER = "c3d9e8f7-1b2a-4c5d-9e6f-7a8b9c0d1e2f"

EXPECTED = {
    "caller-answered-bridged.cdr.xml": LegEnd(
        call_id=CALL_BRIDGED,
        leg="caller",
        cause="NORMAL_CLEARING",
        sip_status=None,
        answered_at=1795733931.315438,
        bridged_at=1795733931.855438,
        ended_at=1795733935.875439,
        billsec=4,
        bridge_failure_cause="NORMAL_CLEARING",
    ),
    "callee-answered.cdr.xml": LegEnd(
        call_id=CALL_BRIDGED,
        leg="callee",
        cause="NORMAL_CLEARING",
        sip_status="200",
        answered_at=1795733931.855438,
        bridged_at=1795733931.855438,
        ended_at=1795733935.875439,
        billsec=4,
    ),
    "caller-callee-busy.cdr.xml": LegEnd(
        call_id=CALL_BUSY,
        leg="caller",
        cause="USER_BUSY",
        sip_status=None,
        answered_at=1795734026.035432,
        bridged_at=None,
        ended_at=1795734026.375434,
        billsec=0,
        bridge_failure_cause="USER_BUSY",
    ),
    "callee-busy.cdr.xml": LegEnd(
        call_id=CALL_BUSY,
        leg="callee",
        cause="USER_BUSY",
        sip_status="486",
        answered_at=None,
        bridged_at=None,
        ended_at=1795734026.375434,
        billsec=0,
    ),
    "caller-no-answer.cdr.xml": LegEnd(
        call_id=CALL_NO_ANSWER,
        leg="caller",
        cause="NO_ANSWER",
        sip_status=None,
        answered_at=None,
        bridged_at=None,
        ended_at=1795734009.015447,
        billsec=0,
    ),
}
XML_FIXTURES = sorted(EXPECTED) + ["not-ours.cdr.xml"]

# switch_url_encode's unsafe set (esl-reference.md 1.5); FreeSWITCH 1.10 encodes the form body
# with double_encode on, so every '%' is encoded too.
_FS_UNSAFE = re.compile(rb'[\x00-\x1f\x7f-\xff #%&+:;<=>?@\[\\\]^`{|}"]')


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def form_encoded(document: bytes) -> bytes:
    """The body of mod_xml_cdr with encode=true (switch_url_encode_opt(.., SWITCH_TRUE))."""
    return b"cdr=" + _FS_UNSAFE.sub(lambda m: b"%%%02X" % m.group()[0], document)


def form_encoded_without_double_encoding(document: bytes) -> bytes:
    """Older FreeSWITCH: the variables' own %XX pass through, so they are decoded with the form."""
    return b"cdr=" + url_encode(document.decode()).encode()


# --------------------------------------------------------------------------------------------
# The documents


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_xml_fixture_gives_the_leg_end(name):
    assert leg_end_from_xml_cdr(fixture(name)) == EXPECTED[name]
    assert leg_end_from_xml_cdr(fixture(name).decode()) == EXPECTED[name]


def test_a_leg_without_our_variables_is_not_ours():
    assert leg_end_from_xml_cdr(fixture("not-ours.cdr.xml")) is None


@pytest.mark.parametrize(
    ("json_name", "xml_name"),
    [
        ("callee-answered.cdr.json", "callee-answered.cdr.xml"),  # encode-values=false
        ("caller-answered-bridged.values-encoded.cdr.json", "caller-answered-bridged.cdr.xml"),
    ],
)
def test_json_fixture_gives_the_same_leg_end_as_the_xml(json_name, xml_name):
    assert leg_end_from_json_cdr(fixture(json_name)) == EXPECTED[xml_name]


def test_json_cdr_with_callflow_as_an_object_and_no_end_uepoch():
    cdr = json.loads(fixture("callee-answered.cdr.json"))
    del cdr["variables"]["end_uepoch"]
    cdr["callflow"] = cdr["callflow"][0]  # older mod_json_cdr: one object per profile
    end = leg_end_from_json_cdr(json.dumps(cdr))
    assert end is not None and end.ended_at == 1795733935.875439  # callflow times/hangup_time


def test_xml_without_end_uepoch_falls_back_to_the_callflow_hangup_time():
    text = re.sub(r"<end_uepoch>\d+</end_uepoch>", "", fixture("callee-busy.cdr.xml").decode())
    end = leg_end_from_xml_cdr(text)
    assert end is not None and end.ended_at == 1795734026.375434


# --------------------------------------------------------------------------------------------
# The same LegEnd as the event path


def cdr_variables(xml: bytes) -> list[tuple[str, str]]:
    """The variables as FreeSWITCH holds them: read here independently of c2c.calls.cdr."""
    root = ElementTree.fromstring(xml)
    return [(element.tag, unquote(element.text or "")) for element in root.find("variables")]


def hangup_complete(variables: list[tuple[str, str]]) -> list[tuple[str, str]]:
    values = dict(variables)
    cause = values.get("hangup_cause", "NONE")
    return [
        ("Event-Name", "CHANNEL_HANGUP_COMPLETE"),
        ("Event-Date-Timestamp", values.get("end_uepoch", "0")),
        ("Hangup-Cause", cause),
        ("Channel-State", "CS_REPORTING"),
        ("Unique-ID", values.get("uuid", "")),
        ("Hangup-Cause", cause),  # FreeSWITCH adds it twice
        *[(f"variable_{name}", value) for name, value in variables],
    ]


@pytest.mark.parametrize("name", XML_FIXTURES)
@pytest.mark.parametrize("event_format", ["plain", "json"])
def test_cdr_and_hangup_complete_give_the_same_leg_end(name, event_format):
    xml = fixture(name)
    headers = hangup_complete(cdr_variables(xml))
    if event_format == "plain":
        event = parse_event_plain(encode_event_plain(headers))
    else:
        event = parse_event_json(encode_event_json(headers))
    assert events.leg_end(event) == leg_end_from_xml_cdr(xml)


_VALUES = st.one_of(
    st.text(max_size=12),
    st.integers(-5, 10**17).map(str),
    st.sampled_from(["NORMAL_CLEARING", "USER_BUSY", "SUCCESS", "call accepted", "0", "", "1",
                     "winner"]),
)


@given(
    leg=st.sampled_from(["caller", "callee", "other"]),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "hangup_cause",
                "billsec",
                "answer_uepoch",
                "bridge_uepoch",
                "end_uepoch",
                "sip_term_status",
                "originate_disposition",
                "last_bridge_hangup_cause",
                "group_confirm_key",
                "group_confirm_file",
                "group_dial_status",
            ]
        ),
        _VALUES,
    ),
)
def test_any_variables_read_the_same_from_a_cdr_and_an_event(leg, fields):
    variables = [("c2c_call_id", CALL_BRIDGED), ("c2c_leg", leg), *fields.items()]
    # FreeSWITCH leaves empty variables out of both (zstr), and its values are C strings.
    variables = [(k, v) for k, v in variables if v and "\x00" not in v]
    xml = (
        '<?xml version="1.0"?>\n<cdr core-uuid="x" switchname="fs1"><variables>'
        + "".join(f"<{k}>{url_encode(v)}</{k}>" for k, v in variables)
        + "</variables></cdr>"
    )
    headers = [("Event-Name", "CHANNEL_HANGUP_COMPLETE")]
    headers += [(f"variable_{k}", v) for k, v in variables]
    event = parse_event_plain(encode_event_plain(headers))
    assert leg_end_from_xml_cdr(xml) == events.leg_end(event)


def test_leg_end_from_variables_rules():
    base = {"c2c_call_id": CALL_BRIDGED, "c2c_leg": "caller", "end_uepoch": "2000000"}
    assert leg_end_from_variables({**base, "c2c_leg": "bystander"}) is None
    assert leg_end_from_variables({"c2c_leg": "caller"}) is None
    end = leg_end_from_variables({**base, "billsec": "x", "originate_disposition": "call accepted"})
    assert (end.cause, end.billsec, end.bridge_failure_cause, end.ended_at) == (
        "NONE",
        0,
        None,
        2.0,
    )
    end = leg_end_from_variables({**base, "billsec": "-3", "originate_disposition": "NO_ANSWER"})
    assert (end.billsec, end.bridge_failure_cause) == (0, "NO_ANSWER")
    # The event's Hangup-Cause header wins over the variable; the fallback end when none is known.
    end = leg_end_from_variables(
        {**base, "hangup_cause": "NORMAL_CLEARING", "end_uepoch": "0"},
        hangup_cause="ALLOTTED_TIMEOUT",
        fallback_end=7.5,
    )
    assert (end.cause, end.ended_at) == ("ALLOTTED_TIMEOUT", 7.5)
    callee = leg_end_from_variables({**base, "c2c_leg": "callee", "last_bridge_hangup_cause": "X"})
    assert callee.bridge_failure_cause is None  # only the caller's leg speaks for the callee


# --------------------------------------------------------------------------------------------
# Refused documents


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<cdr><variables><c2c_call_id>&lol2;</c2c_call_id><c2c_leg>caller</c2c_leg></variables></cdr>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!doctype cdr SYSTEM "file:///etc/passwd"><cdr><variables/></cdr>"""


@pytest.mark.parametrize(
    "document",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        b"<cdr><variables><c2c_call_id>x</c2c_call_id>",  # cut short
        b"<event><variables/></event>",
        b"<cdr><channel_data/></cdr>",
        b"\xff\xfe<\x00c\x00d\x00r\x00>\x00",  # not UTF-8
        b"not xml at all",
        b"<cdr><variables>" + b"<a>1</a>" * (MAX_CDR_BYTES // 8) + b"</variables></cdr>",
    ],
)
def test_unreadable_or_refused_xml(document):
    with pytest.raises(CdrError):
        leg_end_from_xml_cdr(document)


@pytest.mark.parametrize(
    "document",
    [
        b"[1, 2]",
        b'{"variables": "x"}',
        b"{",
        b"[" * 100_000,
        b'{"variables": {}' + b" " * MAX_CDR_BYTES,
    ],
)
def test_unreadable_json(document):
    with pytest.raises(CdrError):
        leg_end_from_json_cdr(document)


# --------------------------------------------------------------------------------------------
# The wrappings: POST bodies per `encode`, spooled files


@pytest.mark.parametrize(
    ("content_type", "wrap"),
    [
        ("application/x-www-form-urlencoded", form_encoded),
        ("application/x-www-form-urlencoded", form_encoded_without_double_encoding),
        ("application/x-www-form-base64-encoded", lambda d: b"cdr=" + base64.b64encode(d)),
        ("application/x-www-form-plaintext", lambda d: b"cdr=" + d),
        ("text/xml", lambda d: d),
        ("text/xml; charset=utf-8", lambda d: d),
        (None, lambda d: d),
    ],
)
@pytest.mark.parametrize("name", ["caller-answered-bridged.cdr.xml", "callee-busy.cdr.xml"])
def test_each_xml_post_encoding(content_type, wrap, name):
    document = unwrap_post_body(wrap(fixture(name)), content_type)
    assert leg_end_from_xml_cdr(document) == EXPECTED[name]


def test_old_single_encoded_form_body_really_needs_the_repair():
    decoded = unwrap_post_body(
        form_encoded_without_double_encoding(fixture("callee-answered.cdr.xml")),
        "application/x-www-form-urlencoded",
    )
    assert b'"Outbound Call" <sip:1000@127.0.0.1>' in decoded  # raw markup in a value
    with pytest.raises(ElementTree.ParseError):
        ElementTree.fromstring(decoded)
    assert leg_end_from_xml_cdr(decoded) == EXPECTED["callee-answered.cdr.xml"]


@pytest.mark.parametrize(
    ("content_type", "wrap"),
    [
        ("application/json", lambda d: d),
        # mod_json_cdr encode=true uses switch_url_encode (no double encoding): fine as long as
        # encode-values is false (the values then hold no %XX of their own)
        ("application/x-www-form-urlencoded", form_encoded_without_double_encoding),
        ("application/x-www-form-urlencoded", form_encoded),
        ("application/x-www-form-base64-encoded", lambda d: b"cdr=" + base64.b64encode(d)),
    ],
)
def test_each_json_post_encoding(content_type, wrap):
    document = unwrap_post_body(wrap(fixture("callee-answered.cdr.json")), content_type)
    assert leg_end_from_json_cdr(document) == EXPECTED["callee-answered.cdr.xml"]


def test_json_with_encoded_values_in_a_single_encoded_form_cannot_be_read():
    # encode=true with encode-values=true: the values' %22 come out of the form as raw quotes
    # inside JSON strings. FreeSWITCH's doing; configure encode=false (freeswitch-conf).
    body = form_encoded_without_double_encoding(
        fixture("caller-answered-bridged.values-encoded.cdr.json")
    )
    document = unwrap_post_body(body, "application/x-www-form-urlencoded")
    with pytest.raises(CdrError):
        leg_end_from_json_cdr(document)


def test_a_form_with_other_fields_and_plus_signs():
    body = b"x=1&cdr=" + form_encoded(b"<cdr>a+b</cdr>")[4:] + b"&y=a+b"
    assert unwrap_post_body(body, "application/x-www-form-urlencoded") == b"<cdr>a+b</cdr>"


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"<cdr/>", "multipart/form-data", UnsupportedCdrEncoding),
        (b"xml=<cdr/>", "application/x-www-form-urlencoded", CdrError),
        (b"<cdr/>", "application/x-www-form-plaintext", CdrError),
        (b"cdr=@@@", "application/x-www-form-base64-encoded", CdrError),
        (b"cdr=" + base64.b64encode(b"hello"), "application/x-www-form-base64-encoded", CdrError),
    ],
)
def test_bodies_that_cannot_be_unwrapped(body, content_type, error):
    with pytest.raises(error):
        unwrap_post_body(body, content_type)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda d: d,  # encode=false / textxml
        lambda d: form_encoded(d)[4:],  # encode=true: the module spools the url-encoded text
        lambda d: base64.b64encode(d) + b"\n",  # encode=base64
        form_encoded,  # a POST body saved by hand
    ],
)
def test_spooled_file_forms(wrap):
    document = unwrap_spooled(wrap(fixture("caller-no-answer.cdr.xml")))
    assert leg_end_from_xml_cdr(document) == EXPECTED["caller-no-answer.cdr.xml"]


def test_spooled_json_with_the_trailing_newline_backup_cdr_writes():
    document = unwrap_spooled(fixture("callee-answered.cdr.json") + b"\n")
    assert leg_end_from_json_cdr(document) == EXPECTED["callee-answered.cdr.xml"]


def test_spooled_garbage_is_refused():
    with pytest.raises(CdrError):
        unwrap_spooled(b"\x00\x01garbage")


def test_format_of_file():
    assert format_of_file("a_0d3f6c1a.cdr.xml") is CdrFormat.XML
    assert format_of_file("0d3f6c1a.cdr.json") is CdrFormat.JSON
    assert format_of_file("0d3f6c1a.xml") is None


# --------------------------------------------------------------------------------------------
# `c2c cdr replay`

SPOOLED = {
    # as FreeSWITCH spools them with encode=true (url-encoded), base64, and raw
    "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d.cdr.xml": ("callee-answered.cdr.xml", "url"),
    "0d3f6c1a-5e2b-4a7d-8c9e-1f2a3b4c5d6e.cdr.xml": ("caller-answered-bridged.cdr.xml", "raw"),
    "e1d2c3b4-a5f6-4e7d-8c9b-0a1b2c3d4e5f.cdr.xml": ("callee-busy.cdr.xml", "base64"),
    "2b4c6d8e-0f1a-4b3c-8d5e-6f7a8b9c0d1e.cdr.json": ("caller-callee-busy.cdr.xml", "json"),
    "c7236d56-2061-4499-8f49-f7ac828381fd.cdr.xml": ("not-ours.cdr.xml", "url"),
}
NOW = 1795733900.0


def spool(directory: Path) -> None:
    """Write SPOOLED into ``directory``, oldest first in the order listed."""
    directory.mkdir(exist_ok=True)
    for age, (target, (source, form)) in enumerate(SPOOLED.items()):
        data = fixture(source)
        if form == "url":
            data = form_encoded(data)[4:]
        elif form == "base64":
            data = base64.b64encode(data)
        elif form == "json":  # the same leg as mod_json_cdr would have written it
            variables = dict(cdr_variables(data))
            data = json.dumps({"core-uuid": "x", "variables": variables}).encode() + b"\n"
        (directory / target).write_bytes(data)
        written = time.time() - 1000 + age
        os.utime(directory / target, (written, written))


@pytest.fixture
def placed_calls(store, make_call):
    account = store.accounts.create("acme", 100)
    for call_id in (CALL_BRIDGED, CALL_BUSY):
        call = dataclasses.replace(
            make_call(account.id, max_duration=5, callback_url="https://example.com/cb"),
            id=call_id,
        )
        store.accept_call(account.id, call, now=NOW, **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
    return account


def debits(store) -> int:
    lg = schema.ledger
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).where(lg.c.kind == "debit")).scalar_one()


def test_replay_applies_removes_and_moves_the_bad(store, placed_calls, tmp_path):
    spooldir = tmp_path / "xml_cdr_failed"
    spool(spooldir)
    (spooldir / "deadbeef.cdr.xml").write_bytes(fixture("callee-busy.cdr.xml")[:300])  # cut short
    (spooldir / "notes.txt").write_text("not a CDR")

    listener = CallEventListener(store, clock=lambda: NOW + 200)
    summary = cdr_cli.replay_directory(spooldir, listener.leg_ended)

    assert (summary.applied, summary.not_ours, summary.bad) == (4, 1, 1)
    assert summary.ok
    assert sorted(p.name for p in spooldir.iterdir()) == ["bad", "notes.txt"]
    assert [p.name for p in (spooldir / "bad").iterdir()] == ["deadbeef.cdr.xml"]

    bridged, busy = store.calls.get(CALL_BRIDGED), store.calls.get(CALL_BUSY)
    assert (bridged["state"], bridged["answered"], bridged["minutes"]) == ("ended", True, 1)
    assert (busy["state"], busy["answered"], busy["reason"]) == ("ended", False, 5)
    assert store.callbacks.get_for_call(CALL_BRIDGED) is not None
    assert store.accounts.find(placed_calls.id).credits == 99
    assert debits(store) == 1

    # The same files again (FreeSWITCH spooled, then an event got there too): nothing changes.
    spool(spooldir)
    again = cdr_cli.replay_directory(spooldir, listener.leg_ended)
    assert (again.applied, again.not_ours, again.bad) == (4, 1, 0)
    assert store.accounts.find(placed_calls.id).credits == 99
    assert debits(store) == 1
    assert store.accounts.find(placed_calls.id).reserved == 0


def test_replay_stops_when_the_store_is_down(tmp_path):
    spooldir = tmp_path / "spool"
    spool(spooldir)
    applied = []

    def apply(end: LegEnd) -> None:
        if applied:
            raise StoreError("database error: gone away")
        applied.append(end)

    summary = cdr_cli.replay_directory(spooldir, apply)
    assert summary.store_down and not summary.ok
    assert (summary.applied, len(applied)) == (1, 1)
    # The one applied is gone; the one that failed and all after it stay for the next run.
    assert sorted(p.name for p in spooldir.iterdir()) == sorted(list(SPOOLED)[1:])


def test_replay_leaves_young_files_for_later(tmp_path):
    spooldir = tmp_path / "spool"
    spool(spooldir)
    summary = cdr_cli.replay_directory(spooldir, lambda end: None, min_age=3600)
    assert summary.too_young == len(SPOOLED)
    assert len(list(spooldir.iterdir())) == len(SPOOLED)


def replay_args(directory: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cdr_cli.add_parser(parser.add_subparsers())
    return parser.parse_args(["cdr", "replay", str(directory), *extra])


def test_replay_command(store, placed_calls, tmp_path, capsys):
    config = Config.defaults(database_url=store.engine.url.render_as_string(hide_password=False))
    spooldir = tmp_path / "spool"
    spool(spooldir)

    args = replay_args(spooldir, "--min-age", "0", "--json")
    assert args.func(args, config) == 0
    assert json.loads(capsys.readouterr().out) == {
        "applied": 4,
        "not_ours": 1,
        "bad": 0,
        "too_young": 0,
        "unreadable": 0,
        "store_down": False,
        "ok": True,
    }
    assert store.calls.get(CALL_BRIDGED)["state"] == "ended"

    args = replay_args(spooldir)
    assert args.func(args, config) == 0
    assert capsys.readouterr().out.strip() == "applied 0, not ours 0, bad 0"

    args = replay_args(tmp_path / "missing")
    assert args.func(args, config) == 1
    assert "not a directory" in capsys.readouterr().err


def test_replay_command_with_the_store_down(tmp_path, capsys):
    spooldir = tmp_path / "spool"
    spool(spooldir)
    unreachable = Config.defaults(database_url=f"sqlite:///{tmp_path / 'no' / 'such' / 'db'}")
    args = replay_args(spooldir, "--min-age", "0")
    assert args.func(args, unreachable) == 1
    assert len(list(spooldir.iterdir())) == len(SPOOLED)
    shutil.rmtree(spooldir)

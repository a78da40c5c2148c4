"""Press 1 to connect, the pure part: what a caller's leg says at its end (recordings 19, 20, as
events and as CDRs), and the outcome and settlement rules of a caller who never pressed the key.

The recordings' helpers here serve tests/test_confirm_settlement.py too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

import pytest

from c2c.calls import events as ev
from c2c.calls.cdr import leg_end_from_json_cdr, leg_end_from_xml_cdr
from c2c.calls.events import LegEnd, confirm_of
from c2c.calls.outcome import CallOutcome, reason_for
from c2c.calls.settlement import Readiness, confirm_state, outcome_of, readiness
from c2c.domain.confirmation import Confirmation
from c2c.domain.states import Reason
from c2c.esl.protocol import Event, FrameParser, encode_event_plain, parse_event, parse_event_plain
from tests import esl_captures

NEVER = "20_group_confirm_caller_0700_never_presses"
PRESSES = "19_group_confirm_caller_0701_presses_1"

needs_captures = pytest.mark.skipif(
    esl_captures.captures_dir() is None, reason="esl-captures not found"
)


@dataclass(frozen=True)
class Recorded:
    call_id: str
    job_uuid: str
    caller_uuid: str
    callee_uuid: str
    events: list[Event]
    raw_events: list[bytes]  # each event's serialized bytes, as FreeSWITCH wrote them

    def first(self, name: str, leg: str | None = None) -> Event:
        return next(e for e in self.events
                    if e.name == name and (leg is None or e.get("variable_c2c_leg") == leg))

    def raw_hangup(self, leg: str) -> bytes:
        return next(raw for raw, e in zip(self.raw_events, self.events, strict=True)
                    if e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("variable_c2c_leg") == leg)


def recorded(name: str) -> Recorded:
    frames = [f for f in FrameParser().feed(esl_captures.raw_bytes(name)) if f.is_event]
    originate = next(s.raw.decode() for s in esl_captures.sent(name)
                     if s.raw.startswith(b"bgapi originate"))
    caller_uuid, callee_uuid = re.findall(r"origination_uuid=([0-9a-f-]{36})", originate)
    call_id = re.findall(r"c2c_call_id=([^,}]+)", originate)[0]
    events = [parse_event(f) for f in frames]
    job_uuid = next(e.get("Job-UUID") for e in events if e.name == "BACKGROUND_JOB")
    assert job_uuid is not None
    return Recorded(call_id, job_uuid, caller_uuid, callee_uuid, events, [f.body for f in frames])


def edited(event: Event, body: str | None = None, **replace: str) -> Event:
    """The event with some headers' values replaced (all occurrences) and, if given, its body."""
    headers = [(name, replace.get(name, value)) for name, value in event.headers
               if name != "Content-Length"]
    return parse_event_plain(encode_event_plain(headers, body if body is not None else event.body))


def raw_variables(serialized: bytes) -> list[tuple[str, str]]:
    """A recorded event's channel variables, values still url-encoded as on the wire (read
    independently of c2c.esl.protocol)."""
    lines = serialized.decode("ascii").split("\n\n", 1)[0].split("\n")
    return [(name[len("variable_"):], value) for name, _, value in
            (line.partition(": ") for line in lines) if name.startswith("variable_")]


def xml_cdr(variables: Iterable[tuple[str, str]]) -> bytes:
    """The leg's mod_xml_cdr document: every variable's value url-encoded."""
    body = "".join(f"<{name}>{value}</{name}>" for name, value in variables)
    return (f'<?xml version="1.0"?>\n<cdr core-uuid="72286c33" switchname="vm">'
            f"<variables>{body}</variables></cdr>").encode()


def json_cdr(variables: Iterable[tuple[str, str]]) -> bytes:
    """mod_json_cdr with encode-values=false: the values decoded."""
    return json.dumps({"core-uuid": "72286c33",
                       "variables": {name: unquote(value) for name, value in variables}}).encode()


# --------------------------------------------------------------------------------------------
# Pure: what the caller's leg says at its end


@needs_captures
def test_leg_end_of_the_recorded_caller_who_never_pressed():
    call = recorded(NEVER)
    assert ev.leg_end(call.first("CHANNEL_HANGUP_COMPLETE")) == LegEnd(
        call_id="c2c-20-1b774c0c",
        leg="caller",
        cause="NO_ANSWER",
        sip_status=None,
        answered_at=1796396720.211902,
        bridged_at=None,
        ended_at=1796396729.011666,
        billsec=9,
        bridge_failure_cause=None,  # no originate_disposition: the &bridge never ran
        confirm=Confirmation.UNCONFIRMED,
    )
    job = ev.job_result(call.first("BACKGROUND_JOB"))
    assert job == ev.JobResult(call.job_uuid, False, "NO_ANSWER")
    # The -ERR came before the caller's end (recording 20): the order settlement must allow.
    names = [e.name for e in call.events]
    assert names.index("BACKGROUND_JOB") < names.index("CHANNEL_HANGUP_COMPLETE")


@needs_captures
def test_the_caller_legs_cdr_says_the_same_as_its_hangup_event():
    call = recorded(NEVER)
    variables = raw_variables(call.raw_hangup("caller"))
    assert ("group_confirm_key", "1") in variables
    expected = ev.leg_end(call.first("CHANNEL_HANGUP_COMPLETE"))
    assert leg_end_from_xml_cdr(xml_cdr(variables)) == expected
    assert leg_end_from_json_cdr(json_cdr(variables)) == expected


@needs_captures
def test_leg_ends_of_the_recorded_caller_who_pressed():
    call = recorded(PRESSES)
    caller = ev.leg_end(call.first("CHANNEL_HANGUP_COMPLETE", "caller"))
    callee = ev.leg_end(call.first("CHANNEL_HANGUP_COMPLETE", "callee"))
    assert caller is not None and callee is not None
    assert (caller.confirm, caller.billsec, caller.bridge_failure_cause) == (
        Confirmation.CONFIRMED, 7, "NORMAL_CLEARING")
    assert (callee.confirm, callee.billsec) == (None, 5)  # the callee's leg carries none of it
    variables = raw_variables(call.raw_hangup("caller"))
    assert leg_end_from_xml_cdr(xml_cdr(variables)) == caller


BASE = {"c2c_call_id": "x", "c2c_leg": "caller", "end_uepoch": "2000000"}


@pytest.mark.parametrize(
    ("variables", "confirm"),
    [
        ({}, None),  # not asked
        ({"answer_uepoch": "1000000"}, None),
        ({"group_confirm_key": "1", "answer_uepoch": "1000000"}, Confirmation.UNCONFIRMED),
        ({"group_confirm_file": "tone_stream://%(500,500,440)", "answer_uepoch": "1000000"},
         Confirmation.UNCONFIRMED),
        # never answered: the prompt was never played, nobody was asked
        ({"group_confirm_key": "1"}, None),
        ({"group_confirm_key": "1", "answer_uepoch": "0"}, None),
        ({"group_dial_status": "winner", "answer_uepoch": "1000000"}, Confirmation.CONFIRMED),
        ({"group_dial_status": "WINNER", "group_confirm_key": "1", "answer_uepoch": "1"},
         Confirmation.CONFIRMED),
        ({"group_dial_status": "loser", "answer_uepoch": "1000000"}, None),
    ],
)
def test_confirm_from_the_caller_legs_variables(variables, confirm):
    end = ev.leg_end_from_variables({**BASE, **variables})
    assert end is not None and end.confirm is confirm
    callee = ev.leg_end_from_variables({**BASE, **variables, "c2c_leg": "callee"})
    assert callee is not None and callee.confirm is None  # only the caller's leg is asked


def test_confirm_of_wants_an_answer():
    assert confirm_of({"group_confirm_key": "1"}, answered=True) is Confirmation.UNCONFIRMED
    assert confirm_of({"group_confirm_key": "1"}, answered=False) is None


# --------------------------------------------------------------------------------------------
# Pure: the outcome rules


@pytest.mark.parametrize(
    "caller_cause",
    ["NO_ANSWER", "ALLOTTED_TIMEOUT", "NORMAL_CLEARING", "ORIGINATOR_CANCEL", "USER_BUSY",
     "NORMAL_TEMPORARY_FAILURE", "MEDIA_TIMEOUT", None],
)
def test_an_unconfirmed_caller_is_a_ring_timeout_whatever_its_cause(caller_cause):
    assert reason_for(caller_cause, None, True, False, {}, unconfirmed=True) is Reason.RING_TIMEOUT
    outcome = CallOutcome.decide(
        caller_cause=caller_cause, callee_cause=None, caller_answered=True, bridged=False,
        bridged_seconds=9, limit_minutes=5, confirm=Confirmation.UNCONFIRMED)
    assert outcome == CallOutcome(answered=False, minutes=0, reason=Reason.RING_TIMEOUT,
                                  billsec=0, confirm="unconfirmed")


def test_without_confirmation_the_rules_are_unchanged():
    # The same caller's end without confirmation: its own cause decides, as before.
    assert reason_for("NORMAL_CLEARING", None, True, False, {}) is Reason.HUNG_UP
    outcome = CallOutcome.decide(caller_cause="NORMAL_CLEARING", callee_cause="USER_BUSY",
                                 caller_answered=True, bridged=False, bridged_seconds=0,
                                 limit_minutes=5)
    assert (outcome.reason, outcome.confirm) == (Reason.BUSY, None)
    # A confirmed call is judged as any other.
    outcome = CallOutcome.decide(caller_cause="NORMAL_CLEARING", callee_cause="NORMAL_CLEARING",
                                 caller_answered=True, bridged=True, bridged_seconds=61,
                                 limit_minutes=5, confirm=Confirmation.CONFIRMED)
    assert outcome == CallOutcome(True, 2, None, 61, "confirmed")


def row(**fields):
    """A call row as settlement sees it: a caller who answered at 100 and nothing else yet."""
    base = {
        "state": "caller_answered", "confirm": "required", "caller_answered_at": 100.0,
        "callee_answered_at": None, "bridged_at": None, "caller_gone_at": None,
        "callee_gone_at": None, "caller_hangup_cause": None, "callee_hangup_cause": None,
        "originate_error": None, "callee_fate": None, "billsec": None, "max_minutes": 5,
        "recheck_at": None, "deadline_at": 10_000.0,
    }
    return {**base, **fields}


@pytest.mark.parametrize(
    ("fields", "state"),
    [
        ({}, Confirmation.REQUIRED),  # the prompt is playing
        ({"confirm": None}, None),
        ({"confirm": None, "originate_error": "NO_ANSWER"}, None),
        ({"confirm": "bogus"}, None),
        ({"originate_error": "NO_ANSWER"}, Confirmation.UNCONFIRMED),
        ({"originate_error": "NO_ANSWER", "caller_answered_at": None}, Confirmation.REQUIRED),
        ({"callee_gone_at": 130.0}, Confirmation.CONFIRMED),
        ({"callee_answered_at": 103.0}, Confirmation.CONFIRMED),
        ({"bridged_at": 103.0}, Confirmation.CONFIRMED),
        ({"confirm": "unconfirmed"}, Confirmation.UNCONFIRMED),
        ({"confirm": "confirmed"}, Confirmation.CONFIRMED),
    ],
)
def test_confirm_state_of_a_row(fields, state):
    assert confirm_state(row(**fields)) is state


@pytest.mark.parametrize(
    ("fields", "now", "expected"),
    [
        # The job's -ERR came, the caller's end is a moment behind: wait for it until recheck_at.
        ({"originate_error": "NO_ANSWER", "recheck_at": 112.0}, 111.0, Readiness.WAIT),
        ({"originate_error": "NO_ANSWER", "recheck_at": 112.0}, 112.0, Readiness.SETTLE),
        ({"originate_error": "NO_ANSWER"}, 111.0, Readiness.SETTLE),
        # The caller's end alone: nothing to wait for, no switch to ask.
        ({"confirm": "unconfirmed", "caller_gone_at": 110.0, "recheck_at": 112.0}, 110.1,
         Readiness.SETTLE),
        ({"originate_error": "NO_ANSWER", "caller_gone_at": 110.0, "recheck_at": 112.0}, 110.1,
         Readiness.SETTLE),
        # Not asked, or asked and confirmed: the caller's end waits for the callee's, as before.
        ({"confirm": None, "caller_gone_at": 110.0, "recheck_at": 112.0}, 110.1, Readiness.WAIT),
        ({"confirm": None, "caller_gone_at": 110.0, "recheck_at": 112.0}, 112.0,
         Readiness.ASK_SWITCH),
        ({"confirm": "confirmed", "caller_gone_at": 110.0, "recheck_at": 112.0}, 110.1,
         Readiness.WAIT),
        ({"caller_gone_at": 110.0, "recheck_at": 112.0}, 112.0, Readiness.ASK_SWITCH),
        # A caller who never answered: as before, the job's -ERR settles it.
        ({"caller_answered_at": None, "state": "caller_ringing", "originate_error": "NO_ANSWER"},
         100.0, Readiness.SETTLE),
        ({"state": "ended", "confirm": "unconfirmed", "caller_gone_at": 110.0}, 200.0,
         Readiness.WAIT),
    ],
)
def test_readiness_of_an_unconfirmed_caller(fields, now, expected):
    assert readiness(row(**fields), now) is expected


def test_outcome_of_unconfirmed_rows():
    by_job = outcome_of(row(originate_error="ALLOTTED_TIMEOUT"))
    by_leg = outcome_of(row(confirm="unconfirmed", caller_gone_at=110.0,
                            caller_hangup_cause="NORMAL_CLEARING"))
    for outcome in (by_job, by_leg):
        assert outcome == CallOutcome(False, 0, Reason.RING_TIMEOUT, 0, "unconfirmed")
    # A caller who never answered keeps its own cause, and the row stays 'required'.
    rang_out = outcome_of(row(caller_answered_at=None, originate_error="USER_BUSY"))
    assert (rang_out.reason, rang_out.confirm) == (Reason.BUSY, "required")
    # Not asked: nothing is recorded about it.
    assert outcome_of(row(confirm=None, caller_gone_at=110.0,
                          caller_hangup_cause="NORMAL_CLEARING")).confirm is None

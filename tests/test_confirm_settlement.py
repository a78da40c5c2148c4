"""Press 1 to connect against a real store (SQLite and MySQL): a caller who never pressed the key
(recordings 20, 20b) and one who did (19) settle through the events (in either order, after a
takeover), the CDRs (/internal/cdr, the spool), the owner's sweep, and the API with the simulator.

The events are the recorded ones replayed into the listener; the few variants the lab did not
record (other causes) are the recorded events edited.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from urllib.parse import parse_qsl, urlsplit

import falcon
import falcon.testing
import gevent
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from c2c.api.cdr import CdrResource
from c2c.calls import events as ev
from c2c.calls.cdr import leg_end_from_xml_cdr
from c2c.calls.listener import CallEventListener
from c2c.calls.outcome import CallOutcome
from c2c.calls.ownership import SwitchOwner
from c2c.cli import calls as calls_cli
from c2c.cli import cdr as cdr_cli
from c2c.config import Config, SwitchAddress
from c2c.domain.states import Reason
from c2c.esl.protocol import FrameParser, parse_event
from c2c.store import schema
from tests import esl_captures
from tests.conftest import ACCEPT_DEFAULTS
from tests.support.app_harness import AppHarness
from tests.test_confirm_outcome import (
    NEVER,
    PRESSES,
    Recorded,
    edited,
    json_cdr,
    needs_captures,
    raw_variables,
    recorded,
    xml_cdr,
)

# --------------------------------------------------------------------------------------------
# The store (SQLite and MySQL): the recorded events through the listener


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def account(store):
    return store.accounts.create("acme", 100)


def place(store, account, make_call, call: Recorded, *, confirm: bool = True,
          callback_url: str | None = "https://example.com/cb") -> str:
    new = dataclasses.replace(
        make_call(account.id, max_duration=5, callback_url=callback_url),
        id=call.call_id, job_uuid=call.job_uuid, caller_uuid=call.caller_uuid,
        callee_uuid=call.callee_uuid, confirm=confirm)
    created = call.events[0].get("Event-Date-Timestamp")
    assert created is not None
    store.accept_call(account.id, new, now=int(created) / 1e6 - 0.02,
                      **{**ACCEPT_DEFAULTS, "flood_seconds": 0})
    assert store.calls.get(call.call_id)["confirm"] == ("required" if confirm else None)
    return call.call_id


def assert_settled_unconfirmed(store, account, call_id: str, *, caller_cause: str = "NO_ANSWER",
                               originate_error: str | None = "NO_ANSWER") -> None:
    got = store.calls.get(call_id)
    assert (got["state"], got["answered"], got["minutes"], got["reason"], got["confirm"]) == (
        "ended", False, 0, 3, "unconfirmed")
    assert (got["caller_hangup_cause"], got["originate_error"]) == (caller_cause, originate_error)
    assert got["caller_answered_at"] == 1796396720.211902
    assert got["ended_at"] == 1796396729.011666  # the caller's end
    # No callee ever: nothing of it on the row.
    assert (got["callee_answered_at"], got["callee_gone_at"], got["bridged_at"],
            got["callee_hangup_cause"]) == (None, None, None, None)
    after = store.accounts.find(account.id)
    assert (after.credits, after.reserved) == (100, 0)
    assert [e["kind"] for e in store.ledger.entries(account.id)] == ["grant"]
    query = dict(parse_qsl(urlsplit(store.callbacks.get_for_call(call_id)["url"]).query, True))
    assert (query["answered"], query["minutes"], query["reason"]) == ("0", "0", "3")


ORDERS = {
    # as recorded: CREATE, PROGRESS, ANSWER, the job's -ERR, then the caller's end
    "recorded": lambda events: events,
    # the job and the caller's end run on different lanes: either may be applied first
    "end_before_job": lambda events: sorted(events, key=lambda e: e.name == "BACKGROUND_JOB"),
    # a listener that took over after the caller answered sees only the end, then the job
    "takeover_end_then_job": lambda events: sorted(
        (e for e in events if e.name in ("CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB")),
        key=lambda e: e.name == "BACKGROUND_JOB"),
    "takeover_end_only": lambda events: [
        e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE"],
}


@needs_captures
@pytest.mark.parametrize("order", sorted(ORDERS))
def test_a_caller_who_never_pressed_settles_at_its_end(store, account, make_call, order):
    call = recorded(NEVER)
    call_id = place(store, account, make_call, call)
    settled = []
    listener = CallEventListener(store, on_settled=lambda i, o: settled.append((i, o)),
                                 clock=Clock(1796396729.1))
    for event in ORDERS[order](call.events):
        listener.handle(event)
        if event.name == "BACKGROUND_JOB" and order == "recorded":
            # The caller's end is a moment behind: wait for it (its cause, its time).
            waiting = store.calls.get(call_id)
            assert (waiting["state"], waiting["originate_error"], settled) == (
                "caller_answered", "NO_ANSWER", [])
    assert settled == [(call_id, CallOutcome(False, 0, Reason.RING_TIMEOUT, 0, "unconfirmed"))]
    seen_job = order != "takeover_end_only"
    assert_settled_unconfirmed(store, account, call_id,
                               originate_error="NO_ANSWER" if seen_job else None)
    # Everything again (a replayed event, a late CDR): nothing changes but a missing cause.
    for event in call.events:
        listener.handle(event)
    assert len(settled) == 1
    assert_settled_unconfirmed(store, account, call_id)


@needs_captures
def test_a_takeover_that_missed_the_answer_settles_at_the_job(store, account, make_call):
    """A listener that took over after the caller answered, applying the job before the caller's
    end: nothing says the caller answered, so the -ERR settles it as a caller that failed (as
    without confirmation: NO_ANSWER, ring timeout), and the caller's end, a moment later, records
    its cause and that it was unconfirmed."""
    call = recorded(NEVER)
    call_id = place(store, account, make_call, call)
    listener = CallEventListener(store, clock=Clock(1796396729.05))
    listener.handle(call.first("BACKGROUND_JOB"))
    got = store.calls.get(call_id)
    assert (got["state"], got["reason"], got["minutes"], got["confirm"]) == (
        "ended", 3, 0, "required")
    listener.handle(call.first("CHANNEL_HANGUP_COMPLETE"))
    got = store.calls.get(call_id)
    assert (got["reason"], got["confirm"], got["caller_hangup_cause"], got["ended_at"]) == (
        3, "unconfirmed", "NO_ANSWER", 1796396729.05)


@needs_captures
def test_the_group_settler_settles_it_too(store, account, make_call):
    call = recorded(NEVER)
    call_id = place(store, account, make_call, call)
    listener = CallEventListener(store, clock=Clock(1796396729.1), group_settles=True)
    try:
        for event in call.events:
            listener.handle(event)
        with gevent.Timeout(10):
            while store.calls.get(call_id)["state"] != "ended":
                gevent.sleep(0.01)
    finally:
        listener.stop()
    assert_settled_unconfirmed(store, account, call_id)


@needs_captures
@pytest.mark.parametrize(
    ("caller_cause", "job_error"),
    [
        ("ALLOTTED_TIMEOUT", "ALLOTTED_TIMEOUT"),  # leg_timeout / group_confirm_timeout (20b)
        ("NORMAL_CLEARING", "NORMAL_CLEARING"),  # the mailbox hung up during the prompt
        ("NORMAL_CLEARING", "ORIGINATOR_CANCEL"),
    ],
)
def test_other_ends_of_an_unconfirmed_caller(store, account, make_call, caller_cause, job_error):
    call = recorded(NEVER)
    call_id = place(store, account, make_call, call)
    listener = CallEventListener(store, clock=Clock(1796396729.1))
    for event in call.events:
        if event.name == "BACKGROUND_JOB":
            event = edited(event, body=f"-ERR {job_error}\n")
        elif event.name == "CHANNEL_HANGUP_COMPLETE":
            event = edited(event, **{"Hangup-Cause": caller_cause,
                                     "variable_hangup_cause": caller_cause})
        listener.handle(event)
    assert_settled_unconfirmed(store, account, call_id, caller_cause=caller_cause,
                               originate_error=job_error)


@needs_captures
def test_four_recorded_unconfirmed_callers_each_settle_at_their_end(store, account, make_call):
    """Recording 20b: four callers, never pressing, ended by originate_timeout (NO_ANSWER), by
    group_confirm_timeout or leg_timeout (ALLOTTED_TIMEOUT); two ends came before their -ERR.
    Each settles at its own end, ring timeout, its raw causes kept."""
    name = "20b_group_confirm_timeouts_never_pressed"
    frames = [f for f in FrameParser().feed(esl_captures.raw_bytes(name)) if f.is_event]
    events = [parse_event(f) for f in frames]
    jobs = {}
    for event in events:
        if event.name == "BACKGROUND_JOB":
            arg = event.get("Job-Command-Arg") or ""
            jobs[re.findall(r"c2c_call_id=([^,}]+)", arg)[0]] = (event.get("Job-UUID"), arg)
    assert len(jobs) == 4
    for call_id, (job_uuid, arg) in jobs.items():
        caller_uuid, callee_uuid = re.findall(r"origination_uuid=([0-9a-f-]{36})", arg)
        place(store, account, make_call,
              Recorded(call_id, job_uuid, caller_uuid, callee_uuid, events, []))
    listener = CallEventListener(store, clock=Clock(1796396800.0))
    order: dict[str, list[str]] = {call_id: [] for call_id in jobs}
    for event in events:
        listener.handle(event)
        if event.name == "CHANNEL_HANGUP_COMPLETE":
            order[event.get("variable_c2c_call_id") or ""].append("end")
        elif event.name == "BACKGROUND_JOB":
            order[next(i for i, (job, _) in jobs.items() if job == event.job_uuid)].append("job")
    assert sorted(map(tuple, order.values())) == [("end", "job")] * 2 + [("job", "end")] * 2
    causes = {}
    for call_id in jobs:
        got = store.calls.get(call_id)
        assert (got["state"], got["answered"], got["minutes"], got["reason"], got["confirm"]) == (
            "ended", False, 0, 3, "unconfirmed")
        assert got["originate_error"] == got["caller_hangup_cause"]
        assert got["ended_at"] == got["caller_gone_at"] and got["callee_gone_at"] is None
        causes[call_id] = got["caller_hangup_cause"]
    assert sorted(causes.values()) == ["ALLOTTED_TIMEOUT", "ALLOTTED_TIMEOUT", "NO_ANSWER",
                                       "NO_ANSWER"]
    assert store.accounts.find(account.id).reserved == 0


@needs_captures
def test_the_caller_end_lost_settles_from_the_job_at_the_recheck(store, account, make_call):
    """The job's -ERR seen, the caller's end lost (a listener gap, its CDR spooled): the owner's
    sweep settles it once recheck_at has come, without asking the switch anything."""
    call = recorded(NEVER)
    call_id = place(store, account, make_call, call)
    clock = Clock(1796396729.1)
    switch = SwitchAddress("fs1", 8021, "ClueCon")

    def no_switch():
        raise AssertionError("the switch must not be asked about an unconfirmed caller")

    owner = SwitchOwner(Config.defaults(), switch, store, no_switch, holder="test", clock=clock)
    for event in call.events:
        if event.name != "CHANNEL_HANGUP_COMPLETE":
            owner.listener.handle(event)
    owner.sweep()
    assert store.calls.get(call_id)["state"] == "caller_answered"  # its end may yet come
    clock.now += 2.0
    owner.sweep()
    got = store.calls.get(call_id)
    assert (got["state"], got["answered"], got["minutes"], got["reason"], got["confirm"]) == (
        "ended", False, 0, 3, "unconfirmed")
    assert (got["originate_error"], got["caller_hangup_cause"]) == ("NO_ANSWER", None)
    # The caller's CDR arrives later: its cause is recorded, nothing else changes.
    owner.listener.leg_ended(ev.leg_end(call.first("CHANNEL_HANGUP_COMPLETE")))
    got = store.calls.get(call_id)
    assert (got["caller_hangup_cause"], got["reason"], got["minutes"]) == ("NO_ANSWER", 3, 0)
    assert store.accounts.find(account.id).credits == 100


@needs_captures
def test_the_caller_legs_cdr_alone_settles_it(store, account, make_call):
    """/internal/cdr with only the caller leg's CDR (no event at all): the same outcome."""
    call = recorded(NEVER)
    call_id = place(store, account, make_call, call)
    listener = CallEventListener(store, clock=Clock(1796396729.1))
    app = falcon.App()
    app.add_route("/internal/cdr", CdrResource(listener.leg_ended, "c2c", "pw", ["127.0.0.0/8"]))
    client = falcon.testing.TestClient(app)
    document = xml_cdr(raw_variables(call.raw_hangup("caller")))
    for _ in range(2):  # FreeSWITCH retried: the second changes nothing
        result = client.simulate_post(
            "/internal/cdr", body=document, remote_addr="127.0.0.1",
            headers={"Content-Type": "text/xml", "Authorization": "Basic YzJjOnB3"})
        assert (result.status_code, result.text) == (200, "ok")
    assert_settled_unconfirmed(store, account, call_id, originate_error=None)


@needs_captures
def test_the_caller_legs_spooled_cdr_settles_it(store, account, make_call, tmp_path):
    call = recorded(NEVER)
    call_id = place(store, account, make_call, call)
    listener = CallEventListener(store, clock=Clock(1796396729.1))
    for event in call.events:  # all but the caller's end, lost in a listener gap
        if event.name != "CHANNEL_HANGUP_COMPLETE":
            listener.handle(event)
    spool = tmp_path / "json_cdr"
    spool.mkdir()
    (spool / f"a_{call.caller_uuid}.cdr.json").write_bytes(
        json_cdr(raw_variables(call.raw_hangup("caller"))))
    summary = cdr_cli.replay_directory(spool, listener.leg_ended)
    assert (summary.applied, summary.bad) == (1, 0)
    assert_settled_unconfirmed(store, account, call_id)


@needs_captures
def test_without_confirmation_nothing_is_written_over_null(store, account, make_call):
    """A row that did not ask (NULL) stays NULL whatever the events say, and its caller's end
    waits for the callee as before."""
    call = recorded(NEVER)
    call_id = place(store, account, make_call, call, confirm=False)
    listener = CallEventListener(store, clock=Clock(1796396729.1))
    for event in call.events:
        listener.handle(event)
    got = store.calls.get(call_id)
    assert (got["state"], got["confirm"], got["recheck_at"]) == (
        "caller_answered", None, 1796396729.1 + 2.0)


# --------------------------------------------------------------------------------------------
# A caller who pressed 1 (recording 19)


@needs_captures
def test_a_confirmed_call_is_marked_at_the_callees_answer_and_billed(store, account, make_call):
    call = recorded(PRESSES)
    call_id = place(store, account, make_call, call)
    listener = CallEventListener(store, clock=Clock(1796396712.0))
    for event in call.events:
        listener.handle(event)
        if event.name == "CHANNEL_ANSWER" and event.get("variable_c2c_leg") == "callee":
            got = store.calls.get(call_id)
            assert (got["state"], got["confirm"]) == ("bridged", "confirmed")
    got = store.calls.get(call_id)
    assert (got["state"], got["answered"], got["minutes"], got["reason"], got["confirm"]) == (
        "ended", True, 1, None, "confirmed")
    assert got["billsec"] == 5
    assert store.accounts.find(account.id).credits == 99


@needs_captures
@pytest.mark.parametrize("leg", ["caller", "callee"])
def test_either_legs_cdr_says_confirmed(store, account, make_call, leg):
    call = recorded(PRESSES)
    call_id = place(store, account, make_call, call)
    listener = CallEventListener(store, clock=Clock(1796396712.0))
    end = leg_end_from_xml_cdr(xml_cdr(raw_variables(call.raw_hangup(leg))))
    assert end is not None
    listener.leg_ended(end)
    assert store.calls.get(call_id)["confirm"] == "confirmed"


@needs_captures
def test_a_call_that_was_not_asked_stays_unmarked(store, account, make_call):
    call = recorded(PRESSES)
    call_id = place(store, account, make_call, call, confirm=False)
    listener = CallEventListener(store, clock=Clock(1796396712.0))
    for event in call.events:
        listener.handle(event)
    got = store.calls.get(call_id)
    assert (got["state"], got["answered"], got["minutes"], got["confirm"]) == (
        "ended", True, 1, None)


@needs_captures
@pytest.mark.parametrize("confirm", [True, False])
def test_marking_confirmed_costs_no_round_trip(store, account, make_call, confirm):
    """The callee's answer is one UPDATE of the call row, asked or not; a job's +OK is none."""
    call = recorded(PRESSES)
    call_id = place(store, account, make_call, call, confirm=confirm)
    listener = CallEventListener(store, clock=Clock(1796396712.0))
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if re.search(r"\bcalls\b", statement):
            statements.append(statement.split()[0].upper())

    sa_event.listen(store.engine, "before_cursor_execute", count)
    try:
        per_event = []
        for event in call.events:
            statements.clear()
            listener.handle(event)
            per_event.append((event.name, event.get("variable_c2c_leg"), list(statements)))
    finally:
        sa_event.remove(store.engine, "before_cursor_execute", count)
    assert ("CHANNEL_ANSWER", "callee", ["UPDATE"]) in per_event
    assert ("BACKGROUND_JOB", None, []) in per_event
    assert store.calls.get(call_id)["confirm"] == ("confirmed" if confirm else None)


# --------------------------------------------------------------------------------------------
# `c2c calls list` shows it


@needs_captures
def test_calls_list_shows_the_press_1_state(store, account, make_call, capsys):
    call = recorded(NEVER)
    call_id = place(store, account, make_call, call)
    listener = CallEventListener(store, clock=Clock(1796396729.1))
    for event in call.events:
        listener.handle(event)
    args = argparse.Namespace(limit=5, state=None, account=None, json=False)
    assert calls_cli._list(args, store) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.endswith("reason  press 1")
    assert line.startswith(call_id) and line.endswith("no     0  3       unconfirmed")
    with store.engine.connect() as conn:
        stored = conn.execute(select(schema.calls.c.confirm)).scalar_one()
    assert stored == "unconfirmed"


# --------------------------------------------------------------------------------------------
# Through the API and the simulator (in-process; c2c.fakeswitch models group confirm)


def test_through_the_api_and_the_simulator(store_url):
    """C2C_CONFIRM=key: a caller who never presses (0700) settles at its end, ring timeout,
    nothing billed, no callee leg, the switch never asked about one; one who presses (0701) is
    bridged and billed, marked confirmed."""
    with AppHarness(store_url, time_scale=0.02, background=True, flood_seconds=0,
                    ring_timeout=30, confirm="key") as h:
        asked: list[str] = []
        connection = h.connection
        original = connection.api

        def api(cmd, *args, **kwargs):
            asked.append(cmd)
            return original(cmd, *args, **kwargs)

        connection.api = api
        account = h.account(credits=10)
        ids = {}
        for caller in ("2125550700", "2125550701"):
            result = h.get({"api_key": account.api_key, "caller_phone_number": caller,
                            "caller_country_code": "1", "callee_phone_number": "2125550199",
                            "callee_country_code": "1", "max_duration": "1"})
            assert h.code(result) == 0
            assert "group_confirm_key=1" in h.sent[-1]
            ids[caller] = result.headers["x-c2c-call-id"]
        never = h.wait_settled(ids["2125550700"], timeout=30)
        pressed = h.wait_settled(ids["2125550701"], timeout=30)
        assert (never["answered"], never["minutes"], never["reason"], never["confirm"]) == (
            False, 0, 3, "unconfirmed")
        assert never["caller_hangup_cause"] in ("NO_ANSWER", "ALLOTTED_TIMEOUT")
        assert never["ended_at"] == never["caller_gone_at"]
        assert (never["callee_gone_at"], never["callee_hangup_cause"]) == (None, None)
        assert not [cmd for cmd in asked if never["callee_uuid"] in cmd]
        assert (pressed["answered"], pressed["minutes"], pressed["reason"],
                pressed["confirm"]) == (True, 1, None, "confirmed")
        assert h.store.accounts.find(account.id).credits == 9
        assert h.store.accounts.find(account.id).reserved == 0

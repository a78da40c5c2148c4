"""Calls in the simulator: the default scenario's numbers, two-leg outcomes, the variables c2c
relies on, and the api commands that act on channels. Time scale 0 unless a test needs to act
while a call is up: timers then fire in virtual-time order at once."""

from __future__ import annotations

import time

import gevent
import pytest

from c2c.esl.protocol import Event
from c2c.fakeswitch.scenarios import Scenario
from c2c.fakeswitch.server import FakeSwitch
from tests.fixtures.fakeswitch.helpers import RawClient

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000001"
CHANNEL_EVENTS = (
    "event plain CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER "
    "CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"
)


def c2c_originate(caller: str, callee: str, a_vars: str = "", b_vars: str = "") -> str:
    """The shape of originate c2c sends: pre-assigned uuids, our id on both legs."""
    a = f"origination_uuid={A},ignore_early_media=true,c2c_call_id=42{a_vars}"
    b = f"origination_uuid={B},ignore_early_media=true,c2c_call_id=42{b_vars}"
    return (
        f"originate {{{a}}}sofia/gateway/gw1/+{caller} &bridge({{{b}}}sofia/gateway/gw1/+{callee})"
    )


def make_switch(time_scale: float = 0.0, scenario: Scenario | None = None) -> FakeSwitch:
    return FakeSwitch("127.0.0.1", 0, "ClueCon", scenario=scenario, time_scale=time_scale)


@pytest.fixture
def switch():
    fake = make_switch().start()
    yield fake
    fake.stop()


@pytest.fixture
def listener(switch):
    raw = RawClient(switch.port)
    raw.login()
    raw.command(CHANNEL_EVENTS)
    yield raw
    raw.close()


def run_call(switch: FakeSwitch, listener: RawClient, command: str) -> list[Event]:
    """bgapi the command, wait until every channel has gone, return the events."""
    listener.command("bgapi " + command)
    listener.wait_event(lambda e: e.name == "BACKGROUND_JOB")
    assert switch.wait_for(lambda: not switch.legs, timeout=5)
    gevent.sleep(0.05)
    return listener.events()


def names(events: list[Event], uuid: str | None = None) -> list[str]:
    return [e.name for e in events if uuid is None or e.unique_id == uuid]


def final(events: list[Event], uuid: str) -> Event:
    return next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE" and e.unique_id == uuid)


def job_body(events: list[Event]) -> str:
    return next(e for e in events if e.name == "BACKGROUND_JOB").body or ""


# ------------------------------------------------------------------------------------------
# the default scenario


def test_default_call_bridges_and_callee_hangs_up_after_5s(switch, listener):
    events = run_call(switch, listener, c2c_originate("15551230001", "15551230002"))
    assert job_body(events) == f"+OK {A}\n"
    assert names(events) == [
        "CHANNEL_CREATE",
        "CHANNEL_PROGRESS",
        "CHANNEL_ANSWER",
        "BACKGROUND_JOB",
        "CHANNEL_CREATE",
        "CHANNEL_PROGRESS",
        "CHANNEL_ANSWER",
        "CHANNEL_BRIDGE",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_UNBRIDGE",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
    ]
    a, b = final(events, A), final(events, B)
    assert b.get("variable_billsec") == "5" and b.get("variable_sip_term_status") == "200"
    assert a.get("variable_billsec") == "6"  # the caller answered 1 s before the callee
    assert a.get_all("Hangup-Cause") == ["NORMAL_CLEARING", "NORMAL_CLEARING"]
    assert b.get("variable_sip_hangup_disposition") == "recv_bye"
    assert a.get("variable_sip_hangup_disposition") == "send_bye"
    for event in events:
        if event.unique_id:
            assert event.get("variable_c2c_call_id") == "42"
    bridge = next(e for e in events if e.name == "CHANNEL_BRIDGE")
    assert bridge.get("Bridge-A-Unique-ID") == A and bridge.get("Bridge-B-Unique-ID") == B
    b_create = next(e for e in events if e.name == "CHANNEL_CREATE" and e.unique_id == B)
    assert b_create.get("Other-Type") == "originator"
    assert b_create.get("Other-Leg-Unique-ID") == A
    assert b_create.get("variable_originator") == A
    assert b_create.get("Caller-Destination-Number") == "+15551230002"
    assert b_create.get("Channel-Name") == "sofia/external/+15551230002"


@pytest.mark.parametrize(
    ("suffix", "cause", "sip_status"),
    [
        ("0486", "USER_BUSY", "486"),
        ("0503", "NORMAL_TEMPORARY_FAILURE", "503"),
        ("0603", "CALL_REJECTED", "603"),
        ("0404", "UNALLOCATED_NUMBER", "404"),
        ("0480", "NO_USER_RESPONSE", "480"),
    ],
)
def test_default_refusals_of_the_caller(switch, listener, suffix, cause, sip_status):
    events = run_call(switch, listener, c2c_originate("1555123" + suffix, "15551230002"))
    assert names(events) == [
        "CHANNEL_CREATE",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "BACKGROUND_JOB",
    ]
    assert job_body(events) == f"-ERR {cause}\n"
    a = final(events, A)
    assert a.get("Hangup-Cause") == cause
    assert a.get("variable_sip_term_status") == sip_status
    assert a.get("variable_billsec") == "0"


def test_default_callee_busy_ends_both_legs_user_busy(switch, listener):
    events = run_call(switch, listener, c2c_originate("15551230001", "15551230486"))
    assert job_body(events) == f"+OK {A}\n"
    assert final(events, B).get("Hangup-Cause") == "USER_BUSY"
    a = final(events, A)
    assert a.get("Hangup-Cause") == "USER_BUSY"
    assert a.get("variable_originate_disposition") == "USER_BUSY"
    assert a.get("variable_last_bridge_hangup_cause") == "USER_BUSY"
    assert a.get("variable_DIALSTATUS") == "BUSY"
    assert "CHANNEL_BRIDGE" not in names(events)


def test_callee_ring_timeout_is_no_answer_and_caller_ends_normal_clearing(switch, listener):
    events = run_call(
        switch,
        listener,
        c2c_originate("15551230001", "15551230408", b_vars=",originate_timeout=30"),
    )
    b = final(events, B)
    assert b.get("Hangup-Cause") == "NO_ANSWER"
    assert int(b.get("variable_duration")) == 30
    a = final(events, A)
    assert a.get("Hangup-Cause") == "NORMAL_CLEARING"  # NO_ANSWER lets A carry on
    assert a.get("variable_originate_disposition") == "NO_ANSWER"


def test_callee_leg_timeout_is_allotted_timeout_on_both(switch, listener):
    command = (
        f"originate {{origination_uuid={A},ignore_early_media=true}}sofia/gateway/gw1/+15551230001"
        f" &bridge([origination_uuid={B},leg_timeout=7]sofia/gateway/gw1/+15551230408)"
    )
    events = run_call(switch, listener, command)
    b = final(events, B)
    assert b.get("Hangup-Cause") == "ALLOTTED_TIMEOUT"
    assert b.get("variable_leg_timeout") == "7"
    # elapsed > 7 in whole epoch seconds: 8 (06d: leg_timeout=5 gave duration 6)
    assert int(b.get("variable_duration")) == 8
    assert final(events, A).get("Hangup-Cause") == "ALLOTTED_TIMEOUT"


@pytest.mark.parametrize(
    ("timeout_var", "cause", "job_before_complete", "duration"),
    [
        ("originate_timeout=12", "NO_ANSWER", True, 12),  # elapsed >= 12 (06a, 20)
        ("leg_timeout=12", "ALLOTTED_TIMEOUT", False, 13),  # elapsed > 12 (06d, 20b)
    ],
)
def test_caller_ring_timeouts(switch, listener, timeout_var, cause, job_before_complete, duration):
    events = run_call(
        switch, listener, c2c_originate("15551230408", "15551230002", a_vars="," + timeout_var)
    )
    a = final(events, A)
    assert a.get("Hangup-Cause") == cause and int(a.get("variable_duration")) == duration
    assert job_body(events) == f"-ERR {cause}\n"
    order = names(events)
    assert (order.index("BACKGROUND_JOB") < order.index("CHANNEL_HANGUP_COMPLETE")) is (
        job_before_complete
    )


def test_caller_rings_60s_by_default(switch, listener):
    events = run_call(
        switch, listener, c2c_originate("15551230408", "15551230002", a_vars=",call_timeout=5")
    )
    assert int(final(events, A).get("variable_duration")) == 60


def test_gateway_down_fails_without_any_channel(switch, listener):
    events = run_call(switch, listener, c2c_originate("15551230809", "15551230002"))
    assert names(events) == ["BACKGROUND_JOB"]
    assert job_body(events) == "-ERR GATEWAY_DOWN\n"


def test_callee_gateway_down_leaves_its_cause_on_the_caller(switch, listener):
    events = run_call(switch, listener, c2c_originate("15551230001", "15551230809"))
    assert B not in {e.unique_id for e in events}
    a = final(events, A)
    assert a.get("Hangup-Cause") == "GATEWAY_DOWN"
    assert a.get("variable_originate_disposition") == "GATEWAY_DOWN"


def test_error_endpoint_fails_at_once(switch):
    assert switch.api_command("originate error/user_busy &park") == "-ERR USER_BUSY\n"


def test_early_media_counts_as_answer_unless_ignored(switch, listener):
    # ...0183 sends a 183 with SDP after 0.5 s and answers at 2 s.
    command = f"originate {{origination_uuid={A}}}sofia/gateway/gw1/+15551230183 &park"
    events = run_call_until(switch, listener, command, "CHANNEL_ANSWER")
    all_names = names(events)
    assert all_names.index("CHANNEL_PROGRESS_MEDIA") < all_names.index("BACKGROUND_JOB")
    assert all_names.index("BACKGROUND_JOB") < all_names.index("CHANNEL_ANSWER")
    switch.api_command(f"uuid_kill {A}")


def test_ignore_early_media_waits_for_the_answer(switch, listener):
    command = (
        f"originate {{origination_uuid={A},ignore_early_media=true}}"
        "sofia/gateway/gw1/+15551230183 &park"
    )
    events = run_call_until(switch, listener, command, "BACKGROUND_JOB")
    all_names = names(events)
    assert all_names.index("CHANNEL_PROGRESS_MEDIA") < all_names.index("CHANNEL_ANSWER")
    assert all_names.index("CHANNEL_ANSWER") < all_names.index("BACKGROUND_JOB")
    switch.api_command(f"uuid_kill {A}")


def run_call_until(switch, listener, command, event_name):
    listener.command("bgapi " + command)
    listener.wait_event(lambda e: e.name == event_name)
    gevent.sleep(0.05)
    return listener.events()


# ------------------------------------------------------------------------------------------
# variables c2c sets


def test_caller_id_variables(switch, listener):
    events = run_call(
        switch,
        listener,
        c2c_originate(
            "15551230001",
            "15551230002",
            a_vars=",origination_caller_id_number=5551234567,origination_caller_id_name=Alice,"
            "effective_caller_id_number=5557654321,effective_caller_id_name=Shop",
        ),
    )
    a_create = next(e for e in events if e.name == "CHANNEL_CREATE" and e.unique_id == A)
    assert a_create.get("Caller-Caller-ID-Number") == "5551234567"
    assert a_create.get("Caller-Caller-ID-Name") == "Alice"
    b_create = next(e for e in events if e.name == "CHANNEL_CREATE" and e.unique_id == B)
    assert b_create.get("Caller-Caller-ID-Number") == "5557654321"
    assert b_create.get("Caller-Caller-ID-Name") == "Shop"
    assert b_create.get("variable_effective_caller_id_number") is None  # not inherited


def test_callee_origination_caller_id_wins(switch, listener):
    events = run_call(
        switch,
        listener,
        c2c_originate(
            "15551230001", "15551230002", b_vars=",origination_caller_id_number=5550001111"
        ),
    )
    b_create = next(e for e in events if e.name == "CHANNEL_CREATE" and e.unique_id == B)
    assert b_create.get("Caller-Caller-ID-Number") == "5550001111"


def test_caller_variables_are_not_inherited_except_the_fixed_list(switch, listener):
    command = (
        f"originate {{origination_uuid={A},ignore_early_media=true,c2c_call_id=9,call_timeout=9}}"
        f"sofia/gateway/gw1/+15551230001 &bridge(sofia/gateway/gw1/+15551230002)"
    )
    events = run_call(switch, listener, command)
    b_uuid = next(e.unique_id for e in events if e.unique_id not in (None, A))
    b_create = next(e for e in events if e.name == "CHANNEL_CREATE" and e.unique_id == b_uuid)
    assert b_create.get("variable_c2c_call_id") is None
    assert b_create.get("variable_call_timeout") is None
    assert b_create.get("variable_ignore_early_media") == "true"


def test_execute_on_answer_sched_hangup_limits_the_call(switch, listener):
    events = run_call(
        switch,
        listener,
        c2c_originate(
            "15550000999",
            "15550000999",
            a_vars=",execute_on_answer='sched_hangup +90 ALLOTTED_TIMEOUT'",
        ),
    )
    a, b = final(events, A), final(events, B)
    assert a.get("Hangup-Cause") == "ALLOTTED_TIMEOUT"
    assert a.get("variable_execute_on_answer") == "sched_hangup +90 ALLOTTED_TIMEOUT"
    assert a.get("variable_billsec") == "90"
    assert b.get("Hangup-Cause") == "NORMAL_CLEARING"
    assert b.get("variable_last_bridge_hangup_cause") == "ALLOTTED_TIMEOUT"
    order = names(events)
    assert order[-5:] == [
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP",
        "CHANNEL_UNBRIDGE",
        "CHANNEL_HANGUP_COMPLETE",
        "CHANNEL_HANGUP_COMPLETE",
    ]


def test_execute_on_answer_on_the_callee_leg(switch, listener):
    events = run_call(
        switch,
        listener,
        c2c_originate("15550000999", "15550000999", b_vars=",execute_on_answer='sched_hangup +60'"),
    )
    b = final(events, B)
    assert b.get("Hangup-Cause") == "ALLOTTED_TIMEOUT" and b.get("variable_billsec") == "60"
    assert final(events, A).get("Hangup-Cause") == "NORMAL_CLEARING"


def test_api_on_answer_runs_an_api_command(switch, listener):
    events = run_call(
        switch,
        listener,
        c2c_originate(
            "15550000999",
            "15550000999",
            b_vars=f",api_on_answer='sched_hangup +30 {B} ALLOTTED_TIMEOUT'",
        ),
    )
    assert final(events, B).get("variable_billsec") == "30"


# ------------------------------------------------------------------------------------------
# api commands on channels


@pytest.fixture
def slow_switch():
    fake = make_switch(time_scale=0.01).start()
    yield fake
    fake.stop()


def start_connected_call(switch: FakeSwitch) -> None:
    """Both legs ...0999: answer after 1 s, never hang up."""
    assert switch.api_command(c2c_originate("15550000999", "15550000999")) == f"+OK {A}\n"
    assert switch.wait_for(lambda: B in switch.channels and switch.legs[B].peer is not None)


def test_uuid_exists_and_kill(slow_switch):
    start_connected_call(slow_switch)
    assert slow_switch.api_command(f"uuid_exists {A}") == "true"
    assert slow_switch.api_command("uuid_exists 00000000-0000-0000-0000-000000000000") == "false"
    assert slow_switch.api_command(f"uuid_kill {B} USER_BUSY") == "+OK\n"
    assert slow_switch.wait_for(lambda: not slow_switch.legs)
    assert slow_switch.api_command(f"uuid_kill {A}") == "-ERR No such channel!\n"
    assert slow_switch.api_command("uuid_kill") == "-USAGE: <uuid> [cause]\n"


def test_killing_the_callee_ends_the_caller_normal_clearing(slow_switch):
    raw = RawClient(slow_switch.port)
    raw.login()
    raw.command("event plain CHANNEL_HANGUP_COMPLETE CHANNEL_UNBRIDGE")
    start_connected_call(slow_switch)
    slow_switch.api_command(f"uuid_kill {B} BOGUS_CAUSE")  # unknown cause: NORMAL_CLEARING
    raw.wait_event(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.unique_id == A)
    assert [(e.name, e.unique_id) for e in raw.events()] == [
        ("CHANNEL_HANGUP_COMPLETE", B),
        ("CHANNEL_UNBRIDGE", A),
        ("CHANNEL_HANGUP_COMPLETE", A),
    ]
    assert raw.events()[0].get("variable_sip_hangup_disposition") == "send_bye"
    raw.close()


def test_sched_hangup_api(slow_switch):
    start_connected_call(slow_switch)
    assert slow_switch.api_command(f"sched_hangup +1 {A}") == "+OK\n"
    assert slow_switch.api_command("sched_hangup +1") == "-USAGE: [+]<time> <uuid> [<cause>]\n"
    assert slow_switch.api_command(f"sched_hangup +1 {A[:-1]}0") == "-ERR No such channel!\n"
    assert slow_switch.wait_for(lambda: not slow_switch.legs)


def test_hupall(slow_switch):
    start_connected_call(slow_switch)
    reply = slow_switch.api_command("hupall")
    assert reply == "+OK hangup all channels with cause MANAGER_REQUEST\n"
    assert not slow_switch.legs


def test_show_channels(slow_switch):
    assert slow_switch.api_command("show channels as json") == '{"row_count": 0}\n'
    assert slow_switch.api_command("show channels").endswith("\n\n0 total.\n")
    start_connected_call(slow_switch)
    import json

    data = json.loads(slow_switch.api_command("show channels as json"))
    assert data["row_count"] == 2
    assert {row["uuid"] for row in data["rows"]} == {A, B}
    assert all(isinstance(value, str) for row in data["rows"] for value in row.values())
    assert slow_switch.api_command("show channels count") == "\n2 total.\n"


def test_uuid_dump(slow_switch):
    start_connected_call(slow_switch)
    import json

    dump = json.loads(slow_switch.api_command(f"uuid_dump {A} json"))
    assert dump["Event-Name"] == "CHANNEL_DATA" and dump["Unique-ID"] == A
    assert dump["variable_c2c_call_id"] == "42"
    text = slow_switch.api_command(f"uuid_dump {B}")
    assert "variable_c2c_call_id: 42\n" in text
    assert slow_switch.api_command("uuid_dump nope") == "-ERR No such channel!\n"


def test_duplicate_origination_uuid_is_refused(slow_switch):
    start_connected_call(slow_switch)
    command = f"originate {{origination_uuid={A}}}sofia/gateway/gw1/+15550000999 &park"
    assert slow_switch.api_command(command) == "-ERR DESTINATION_OUT_OF_ORDER\n"


def test_channels_property_and_forget_calls(slow_switch):
    start_connected_call(slow_switch)
    assert set(slow_switch.channels) == {A, B}
    assert slow_switch.channels[A].variables.get("c2c_call_id") == "42"
    slow_switch.forget_calls()
    assert slow_switch.channels == {}
    assert slow_switch.api_command(f"uuid_exists {A}") == "false"


# ------------------------------------------------------------------------------------------
# load


def test_thousands_of_concurrent_calls_at_time_scale_zero():
    fake = make_switch(0.0).start()
    try:
        raw = RawClient(fake.port)
        raw.login()
        raw.command("event plain CHANNEL_ANSWER BACKGROUND_JOB")
        calls = 1500
        started = time.monotonic()
        for index in range(calls):
            raw.send(
                f"bgapi originate {{origination_uuid=cccccccc-0000-4000-8000-{index:012d}}}"
                f"sofia/gateway/gw1/+1555000{index:04d}0999 &bridge(sofia/gateway/gw1/"
                f"+1555100{index:04d}0999)"
            )
        assert fake.wait_for(lambda: fake.switchboard.count == 2 * calls, timeout=60)
        assert fake.wait_for(lambda: len(raw.frames) >= 4 * calls, timeout=60)
        fake.switchboard.hupall("MANAGER_REQUEST")
        assert not fake.legs
        assert time.monotonic() - started < 30
        raw.close()
    finally:
        fake.stop()


def test_caller_leaving_while_the_callee_rings_cancels_it(slow_switch):
    raw = RawClient(slow_switch.port)
    raw.login()
    raw.command("event plain CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE")
    reply = slow_switch.api_command(c2c_originate("15550000999", "15551230408"))
    assert reply == f"+OK {A}\n"
    assert slow_switch.wait_for(lambda: B in slow_switch.channels)
    assert slow_switch.api_command(f"uuid_kill {A}") == "+OK\n"
    assert slow_switch.wait_idle()
    raw.wait_event(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.unique_id == A)
    seen = [(e.name, e.unique_id, e.get("Hangup-Cause")) for e in raw.events()]
    assert seen == [
        ("CHANNEL_HANGUP", A, "NORMAL_CLEARING"),
        ("CHANNEL_HANGUP", B, "ORIGINATOR_CANCEL"),
        ("CHANNEL_HANGUP_COMPLETE", B, "ORIGINATOR_CANCEL"),
        ("CHANNEL_HANGUP_COMPLETE", A, "NORMAL_CLEARING"),
    ]
    raw.close()


def test_scenario_may_be_a_path():
    from tests.fixtures.fakeswitch.helpers import SIPP_SCENARIO

    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", scenario=str(SIPP_SCENARIO), time_scale=0)
    fake.start()
    try:
        assert fake.api_command("originate sofia/internal/1000@127.0.0.1:5093 &park") == (
            "-ERR NORMAL_TEMPORARY_FAILURE\n"
        )
    finally:
        fake.stop()

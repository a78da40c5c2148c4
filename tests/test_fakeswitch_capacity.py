"""A switch that will not take a call, over TCP, against recordings 22-24: ``fsctl pause``,
``pause outbound`` once the caller's leg exists, ``fsctl sps``, ``fsctl max_sessions``, and
``status`` / ``show calls`` with a call up.

The lab's phones were sessions of the same FreeSWITCH (a bridged call was 4 sessions there), so
in 23 and 23b it was a *phone* that got refused, with SIP 503. The simulator's phones are not
sessions: its own legs are what a limit refuses, as FreeSWITCH refuses them (the A leg: -ERR
DESTINATION_OUT_OF_ORDER and no event, 22, 23; the B leg: 22b's way). Those tests compare the
replies, the figures and the refused calls with the recording, and the legs with 22b.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from c2c.esl.protocol import Frame, parse_event
from c2c.fakeswitch.scenarios import Scenario
from c2c.fakeswitch.server import FakeSwitch
from tests.fixtures.fakeswitch.helpers import (
    FIXTURES,
    RawClient,
    Recording,
    describe,
    frame_signature,
    key_differences,
    keyed_events,
    load_recording,
    replay,
    swapped,
)

LAB_PHONES = FIXTURES / "lab_phones.json"
UUID = re.compile(r"origination_uuid=([0-9a-f-]{36})")
# The caller answers at once, so its callee's leg is asked for within the same second.
QUICK_CALLER = Scenario.from_dict(
    {
        "rules": [
            {
                "role": "caller",
                "action": "answer",
                "progress_after": 0,
                "answer_after": 0,
                "hangup_after": None,
                "identity": "number",
            },
            {"action": "answer", "answer_after": 0.5, "hangup_after": 5, "identity": "number"},
        ]
    }
)


def lab_switch(time_scale: float = 1.0, **kwargs) -> FakeSwitch:
    scenario = kwargs.pop("scenario", Scenario.load(LAB_PHONES))
    return FakeSwitch(
        "127.0.0.1",
        0,
        "ClueCon",
        scenario=scenario,
        time_scale=time_scale,
        heartbeat=None,
        max_sessions=4000,
        sps=1000,
        **kwargs,
    ).start()


@pytest.fixture
def switches() -> Iterator[list[FakeSwitch]]:
    started: list[FakeSwitch] = []
    yield started
    for switch in started:
        switch.stop()


def api_bodies(frames: list[Frame]) -> list[str]:
    return [f.body.decode() for f in frames if f.content_type == "api/response"]


def status_shape(text: str) -> str:
    """A status answer with its figures (and their plural s) taken out."""
    text = re.sub(
        r"-?\d+(\.\d+)? (year|day|hour|minute|second|millisecond|microsecond)s?", r"N \2", text
    )
    return re.sub(r"-?\d+(\.\d+)?", "N", text)


def jobs(frames: list[Frame]) -> list[tuple[str, str]]:
    """(the originate's A uuid, the BACKGROUND_JOB body) of every job result."""
    found = []
    for frame in frames:
        if frame.is_event and parse_event(frame).name == "BACKGROUND_JOB":
            event = parse_event(frame)
            match = UUID.search(event.get("Job-Command-Arg") or "")
            found.append((match.group(1) if match else "", (event.body or "").strip()))
    return found


def channel_uuids(frames: list[Frame]) -> set[str]:
    return {
        parse_event(f).unique_id or ""
        for f in frames
        if f.is_event and parse_event(f).name.startswith("CHANNEL_")
    }


def replies(client: RawClient) -> int:
    return len([f for f in client.frames if not f.is_event])


def more_replies(client: RawClient, seen: int) -> bool:
    return replies(client) > seen


def drive(
    recording: Recording,
    port: int,
    until: Callable[[RawClient], bool],
    on_wait: Callable[[], None] | None = None,
    before: Callable[[str, RawClient], None] | None = None,
) -> list[Frame]:
    """Send the recording's commands one after the other, each once the previous one's reply
    is in (not after the recorded events, which differ here), call ``on_wait`` where the
    recording client waited on purpose and ``before`` ahead of each command, and return the
    frames once ``until`` holds."""
    client = RawClient(port)
    try:
        client.wait_frames(1)
        for send in recording.sends:
            if send.pause > 0.5 and on_wait is not None:
                on_wait()
            line = send.data.decode().strip()
            if line == "exit":
                break
            if before is not None:
                before(line, client)
            seen = replies(client)
            client.send_raw(send.data)
            assert client.wait_for(partial(more_replies, client, seen)), line
        assert client.wait_for(lambda: until(client)), [describe(f) for f in client.frames]
        return list(client.frames)
    finally:
        client.close()


# -- 22: fsctl pause, a refused originate, fsctl resume --------------------------------------


def test_a_paused_switch_refuses_the_originate_before_any_channel_recording_22(switches):
    switch = lab_switch()
    switches.append(switch)
    recording = load_recording("22_fsctl_pause_originate_resume")
    simulated = replay(recording, switch.port, time_scale=0.01)
    assert [frame_signature(f) for f in simulated] == [frame_signature(f) for f in recording.frames]
    recorded, got = api_bodies(recording.frames), api_bodies(simulated)
    assert got[0] == recorded[0] == "+OK\n"  # fsctl pause
    assert status_shape(got[1]) == status_shape(recorded[1])  # ... is not ready
    assert "is not ready\n" in got[1]
    assert got[2] == recorded[2] == "+OK\n"  # fsctl resume
    assert status_shape(got[3]) == status_shape(recorded[3]) and "is ready\n" in got[3]
    assert jobs(simulated) == jobs(recording.frames)  # -ERR DESTINATION_OUT_OF_ORDER
    assert jobs(simulated)[0][1] == "-ERR DESTINATION_OUT_OF_ORDER"
    assert not key_differences(keyed_events(recording.frames), keyed_events(simulated))
    assert switch.limits.since_startup == 0  # no session was created


# -- 22b and the other ways a callee's leg is refused -----------------------------------------


def test_pause_outbound_once_the_caller_exists_refuses_the_callee_recording_22b(switches):
    switch = lab_switch(time_scale=1.0)  # the pause must come before the answer at 0.5 s
    switches.append(switch)
    recording = load_recording("22b_fsctl_pause_outbound_callee_leg_refused")
    simulated = replay(recording, switch.port, time_scale=1.0)
    assert [frame_signature(f) for f in simulated] == [frame_signature(f) for f in recording.frames]
    problems = key_differences(keyed_events(recording.frames), keyed_events(simulated))
    assert not problems, "\n".join(problems)
    hangup = parse_event(
        next(f for f in simulated if f.is_event and "HANGUP_COMPLETE" in frame_signature(f))
    )
    assert hangup.get("Hangup-Cause") == "DESTINATION_OUT_OF_ORDER"
    assert hangup.get("variable_DIALSTATUS") == "INVALIDARGS"
    assert hangup.get("variable_originate_failed_cause") == "DESTINATION_OUT_OF_ORDER"
    assert hangup.get("variable_last_bridge_hangup_cause") is None
    assert api_bodies(simulated)[:2] == ["+OK\n", "+OK\n"]  # pause / resume outbound
    assert "is ready\n" in api_bodies(simulated)[2]


def refuse_the_callee(switch: FakeSwitch) -> list[Frame]:
    """22b's originate and subscription, on a switch set up to refuse the callee's leg."""
    recording = load_recording("22b_fsctl_pause_outbound_callee_leg_refused")
    client = RawClient(switch.port)
    try:
        client.login()
        for send in recording.sends[1:5]:  # event plain ..., the three filters
            client.command(send.data.decode().strip())
        client.send_raw(recording.sends[5].data)  # the bgapi originate
        assert client.wait_for(
            lambda: any("HANGUP_COMPLETE" in frame_signature(f) for f in client.frames)
        )
        return list(client.frames)
    finally:
        client.close()


@pytest.mark.parametrize("limit", ["sps", "max_sessions"])
def test_a_callee_leg_over_a_limit_is_refused_as_in_22b(switches, limit):
    """The caller's leg fits, the callee's does not: sessions-per-second 2 (the caller takes the
    second's one session), or max-sessions 1 (the caller is that one)."""
    switch = lab_switch(time_scale=1000, scenario=QUICK_CALLER)  # no refill on its own
    switches.append(switch)
    if limit == "sps":
        assert switch.api_command("fsctl sps 2") == "+OK sessions per second: 2\n"
        switch.limits.tick()  # the next once-a-second refill
    else:
        assert switch.api_command("fsctl max_sessions 1") == "+OK max sessions: 1\n"
    simulated = refuse_the_callee(switch)
    recording = load_recording("22b_fsctl_pause_outbound_callee_leg_refused")
    problems = key_differences(keyed_events(recording.frames), keyed_events(simulated))
    assert not problems, "\n".join(problems)
    assert switch.wait_idle()


# -- 23: fsctl sps 2, a burst of six --------------------------------------------------------


def test_sps_2_lets_one_new_leg_through_and_refuses_the_burst_recording_23(switches):
    switch = lab_switch(time_scale=1000)  # the refill comes when the test says
    switches.append(switch)
    recording = load_recording("23_fsctl_sps2_burst_of_6")
    calls = [UUID.search(s.data.decode()).group(1) for s in recording.sends if b"bgapi" in s.data]
    assert len(calls) == 6
    simulated = drive(
        recording,
        switch.port,
        until=lambda c: len(jobs(c.frames)) == 5 and calls[0] in channel_uuids(c.frames),
        on_wait=lambda: switch.limits.tick(switch.switchboard.count),  # the 1.5 s wait
    )
    recorded, got = api_bodies(recording.frames), api_bodies(simulated)
    assert got[0] == recorded[0] == "+OK sessions per second: 2\n"
    assert status_shape(got[1]) == status_shape(recorded[1])
    per_second = next(line for line in got[1].splitlines() if "per Sec" in line)
    assert per_second.startswith("-998 session(s) per Sec out of max 2,")  # as recorded
    assert got[2] == recorded[2] == "+OK sessions per second: 1000\n"
    refused = [(uuid, "-ERR DESTINATION_OUT_OF_ORDER") for uuid in calls[1:]]
    assert sorted(jobs(simulated)) == sorted(refused)
    assert sorted(job for job in jobs(recording.frames) if job[0] != calls[0]) == sorted(refused)
    assert channel_uuids(simulated) == {calls[0]}  # the refused five: not one event
    assert set(switch.legs) == {calls[0]}


# -- 23b: fsctl max_sessions 2, three calls ------------------------------------------------


def test_max_sessions_refuses_a_leg_that_would_pass_it_recording_23b(switches):
    """Here two calls' first legs fit in 2 and the third is refused (in the lab it was the
    second, since the first call's phone took a session); once the first caller answers, its
    callee's leg would be the third session and is refused as in 22b. The limit is restored
    only then (the lab restored it once its first call had failed)."""
    switch = lab_switch(time_scale=0.5)  # the three originates come well before the answer
    switches.append(switch)
    recording = load_recording("23b_fsctl_max_sessions2_three_calls")
    calls = [UUID.search(s.data.decode()).group(1) for s in recording.sends if b"bgapi" in s.data]

    def first_caller_gone(client: RawClient) -> bool:
        return any(
            f.is_event
            and parse_event(f).name == "CHANNEL_HANGUP_COMPLETE"
            and parse_event(f).unique_id == calls[0]
            for f in client.frames
        )

    def before(line: str, client: RawClient) -> None:
        if line == "api fsctl max_sessions 4000":
            assert client.wait_for(lambda: first_caller_gone(client))

    simulated = drive(recording, switch.port, first_caller_gone, before=before)
    recorded, got = api_bodies(recording.frames), api_bodies(simulated)
    assert got[0] == recorded[0] == "+OK max sessions: 2\n"
    assert status_shape(got[1]) == status_shape(recorded[1])
    assert "\n2 session(s) max\n" in got[1]
    assert got[2] == recorded[2] == "+OK max sessions: 4000\n"
    assert "\n4000 session(s) max\n" in got[3]
    results = dict(jobs(simulated))
    assert results[calls[2]] == "-ERR DESTINATION_OUT_OF_ORDER"  # as recorded for calls 2, 3
    assert dict(jobs(recording.frames))[calls[2]] == "-ERR DESTINATION_OUT_OF_ORDER"
    assert calls[2] not in channel_uuids(simulated)
    assert results[calls[0]] == f"+OK {calls[0]}"
    hangup = next(
        parse_event(f)
        for f in simulated
        if f.is_event
        and parse_event(f).name == "CHANNEL_HANGUP_COMPLETE"
        and parse_event(f).unique_id == calls[0]
    )
    assert hangup.get("Hangup-Cause") == "DESTINATION_OUT_OF_ORDER"
    assert hangup.get("variable_DIALSTATUS") == "INVALIDARGS"
    switch.switchboard.hupall("MANAGER_REQUEST")


# -- 24: show calls as json and status with a call up ---------------------------------------


def test_show_calls_and_status_with_one_call_up_recording_24(switches):
    switch = lab_switch(time_scale=0.05)
    switches.append(switch)
    recording = load_recording("24_show_calls_json_and_status_one_call_up")
    simulated = replay(recording, switch.port, time_scale=0.05)
    # A and B both end in the same millisecond on uuid_kill; the simulator keeps 09b's order,
    # in which B reports after A and so with the bridge's cause
    expected = swapped(keyed_events(recording.frames), 8, 9)
    expected[9].values["variable_bridge_hangup_cause"] = "NORMAL_CLEARING"
    problems = key_differences(expected, keyed_events(simulated))
    assert not problems, "\n".join(problems)
    recorded_calls = json.loads(api_bodies(recording.frames)[0])
    simulated_calls = json.loads(api_bodies(simulated)[0])
    a = UUID.search(recording.sends[5].data.decode()).group(1)
    (recorded_row,) = [row for row in recorded_calls["rows"] if row["uuid"] == a]
    # the lab's two phones were rows of their own; here only the c2c call is
    assert simulated_calls["row_count"] == 1
    (row,) = simulated_calls["rows"]
    assert list(row) == list(recorded_row)  # the columns, in order
    times = {"created", "created_epoch", "b_created", "b_created_epoch", "call_created_epoch"}
    differing = {
        k: (recorded_row[k], row[k])
        for k in row
        if k not in times | {"hostname"} and row[k] != recorded_row[k]
    }
    assert not differing
    assert all(row[k].isdigit() for k in ("created_epoch", "b_created_epoch", "call_created_epoch"))
    recorded_status, status = api_bodies(recording.frames)[1], api_bodies(simulated)[1]
    assert status_shape(status) == status_shape(recorded_status)
    assert "\n2 session(s) - peak 2, last 5min 2 \n" in status  # the lab's 4 counted phones
    assert api_bodies(simulated)[2] == "+OK\n"  # uuid_kill


def test_show_calls_while_the_callee_rings_and_show_channels(switches):
    switch = lab_switch(time_scale=0.05)
    switches.append(switch)
    a, b = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    reply = switch.api_command(
        f"originate {{origination_uuid={a},origination_caller_id_number=14150000999}}"
        f"sofia/internal/12120000100@127.0.0.1:5080 &bridge({{origination_uuid={b}}}"
        "sofia/internal/14150000999@127.0.0.1:5080)"
    )
    assert reply == f"+OK {a}\n"
    assert switch.wait_for(lambda: b in switch.channels)
    rows = json.loads(switch.api_command("show calls as json"))["rows"]
    assert [(r["uuid"], r["b_uuid"]) for r in rows] == [(a, ""), (b, "")]  # not bridged yet
    assert switch.api_command("show calls count") == "\n2 total.\n"
    channels = json.loads(switch.api_command("show channels as json"))["rows"]
    assert [(r["uuid"], r["ip_addr"], r["callee_direction"]) for r in channels] == [
        (a, "", ""),
        (b, "127.0.0.1", ""),
    ]
    text = switch.api_command("show calls")
    assert text.startswith("uuid,direction,created,") and text.endswith("\n\n2 total.\n")
    switch.switchboard.hupall("MANAGER_REQUEST")
    assert switch.api_command("show calls as json") == '{"row_count": 0}\n'


# -- what a restart forgets ------------------------------------------------------------------


def test_a_restart_forgets_what_fsctl_changed(switches):
    switch = lab_switch(time_scale=0.05)
    switches.append(switch)
    switch.api_command("fsctl pause")
    switch.api_command("fsctl max_sessions 3")
    switch.restart()
    status = switch.api_command("status")
    assert "is ready\n" in status and "\n4000 session(s) max\n" in status
    assert "out of max 1000," in status

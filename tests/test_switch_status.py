"""What a switch says about its load: `api status` text and HEARTBEAT events, read from the
recordings (21-24) and from the simulator; nothing unreadable ever raises."""

from __future__ import annotations

import pytest

from c2c.domain.switch_state import SwitchLoad
from c2c.esl.protocol import Event, parse_event_plain
from c2c.esl.status import load_from_heartbeat, parse_status
from c2c.fakeswitch.server import FakeSwitch
from tests.esl_captures import received


def status_answers(recording: str) -> list[str]:
    """Every `api status` answer in a recording, in order."""
    return [
        frame.body.decode()
        for frame in received(recording)
        if frame.content_type == "api/response" and frame.body.startswith(b"UP ")
    ]


def heartbeats(recording: str) -> list[Event]:
    events = [
        parse_event_plain(frame.body)
        for frame in received(recording)
        if frame.content_type == "text/event-plain"
    ]
    return [event for event in events if event.name == "HEARTBEAT"]


def test_status_of_a_paused_switch_then_resumed_recording_22() -> None:
    paused, resumed = status_answers("22_fsctl_pause_originate_resume")
    assert parse_status(paused) == SwitchLoad(
        ready=False,
        sessions=0,
        max_sessions=4000,
        sps_limit=1000,
        sps_last=0,
        idle_cpu=97.67,
        min_idle_cpu=0.0,
    )
    assert parse_status(resumed).ready is True


def test_status_after_fsctl_sps_2_recording_23() -> None:
    (text,) = status_answers("23_fsctl_sps2_burst_of_6")
    load = parse_status(text)
    assert load.sps_limit == 2
    assert load.sps_last is None  # "-998 session(s) per Sec": the budget not yet refilled
    assert (load.ready, load.sessions, load.max_sessions) == (True, 0, 4000)


def test_status_after_fsctl_max_sessions_2_recording_23b() -> None:
    first, second = status_answers("23b_fsctl_max_sessions2_three_calls")
    assert parse_status(first).max_sessions == 2
    assert parse_status(second).max_sessions == 4000  # restored
    assert parse_status(second).sessions == 1


def test_status_with_a_call_up_recording_24() -> None:
    (text,) = status_answers("24_show_calls_json_and_status_one_call_up")
    load = parse_status(text)
    assert (load.sessions, load.max_sessions, load.sps_limit, load.sps_last) == (4, 4000, 1000, 0)
    assert load.idle_cpu == 98.07


def test_status_of_the_simulator() -> None:
    switch = FakeSwitch(time_scale=0, heartbeat=None, max_sessions=40)
    load = parse_status(switch.api_command("status"))
    assert load.ready is True
    assert (load.sessions, load.max_sessions) == (0, 40)
    assert load.sps_limit is not None and load.idle_cpu is not None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-ERR status Command not found!\n",
        "-ERR simulated failure\n",
        "+OK status\n",
        "\x00\xff garbage \n\n\n",
        "99999999999999999999 session(s) max\n",  # absurd figure: unknown, not a crash
        "FreeSWITCH (Version x) is maybe ready\n",
    ],
)
def test_status_that_says_nothing_gives_no_figures(text: str) -> None:
    assert parse_status(text) == SwitchLoad()


def test_status_lines_are_read_each_on_its_own() -> None:
    text = (
        "FreeSWITCH (Version 1.10.12-release  64bit) is ready\n"
        "7 session(s) - peak 9, last 5min 9 \n"
        "min idle cpu 10.00/3.50\n"
    )
    assert parse_status(text) == SwitchLoad(
        ready=True, sessions=7, idle_cpu=3.5, min_idle_cpu=10.0
    )


def test_heartbeats_of_recording_21() -> None:
    first, second = heartbeats("21_heartbeat_only_45s")
    assert load_from_heartbeat(first) == SwitchLoad(
        ready=None,  # "System Ready" is sent paused or not
        sessions=4,
        max_sessions=4000,
        sps_last=0,
        sps_left=1000,
        idle_cpu=42.766667,
    )
    assert load_from_heartbeat(second).sps_last == 4
    assert load_from_heartbeat(second).sps_limit is None  # a heartbeat never says the limit


def test_a_paused_heartbeat_and_unreadable_headers() -> None:
    event = Event(
        [
            ("Event-Name", "HEARTBEAT"),
            ("Event-Info", "System Not Ready"),
            ("Session-Count", "-1"),
            ("Max-Sessions", "lots"),
            ("Idle-CPU", "nan"),
            ("Session-Per-Sec", ""),
        ]
    )
    assert load_from_heartbeat(event) == SwitchLoad(ready=False)
    assert load_from_heartbeat(Event([("Event-Name", "HEARTBEAT")])) == SwitchLoad()


def test_a_reading_fills_what_it_does_not_say_from_an_older_one() -> None:
    status = SwitchLoad(ready=True, sessions=10, max_sessions=100, sps_limit=30, idle_cpu=90.0)
    heartbeat = SwitchLoad(ready=False, sessions=12, max_sessions=100, sps_left=29)
    merged = heartbeat.fill_from(status)
    assert merged == SwitchLoad(
        ready=False, sessions=12, max_sessions=100, sps_limit=30, sps_left=29, idle_cpu=90.0
    )
    assert heartbeat.fill_from(None) is heartbeat


def test_a_heartbeat_never_says_whether_the_switch_takes_calls() -> None:
    """FreeSWITCH sends "System Ready" paused or not: the heartbeat must not undo what `status`
    said (a paused switch stays paused until `status` says it is ready)."""
    switch = FakeSwitch(time_scale=0, heartbeat=None)
    switch.api_command("fsctl pause")
    paused = parse_status(switch.api_command("status"))
    assert paused.ready is False
    beat = Event([("Event-Name", "HEARTBEAT"), ("Event-Info", "System Ready"),
                  ("Session-Count", "3"), ("Session-Per-Sec", "4294967295")])
    load = load_from_heartbeat(beat)
    assert load.ready is None
    assert load.sessions == 3
    assert load.sps_left is None  # -1 printed unsigned: no figure
    assert load.fill_from(paused).ready is False

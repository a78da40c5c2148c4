"""The simulator against recordings 16-20: ringback, early media, press-1 confirmation.

Each test replays what the recording client sent, over TCP, to a simulator whose scenario plays
the lab's phones (tests/fixtures/fakeswitch/lab_phones.json), then compares the events (name, leg,
order), the job results and the headers that carry the behaviour (KEY_HEADERS: causes,
dispositions, the early-media and confirmation variables, caller ids, DTMF), and what the caller
heard (the simulator's timeline) with the ``.heard.txt`` analysis of the caller's recording.
Those recordings' phones were FreeSWITCH itself, whose SIP details differ from sipp's, so the
full header-by-header comparison of test_fakeswitch_conformance.py is not made here.
"""

from __future__ import annotations

import json

import pytest

from c2c.esl.protocol import parse_event
from c2c.fakeswitch.scenarios import Scenario
from c2c.fakeswitch.server import FakeSwitch
from tests.fixtures.fakeswitch.helpers import (
    CAPTURES,
    FIXTURES,
    RawClient,
    compare_frames,
    key_differences,
    keyed_events,
    load_recording,
    replay,
    swapped,
    without_heartbeats,
)

LAB_PHONES = FIXTURES / "lab_phones.json"
TIME_SCALE = 0.05  # recording 20b's 19.5 s take 1 s

# name -> the recorded races to undo (pairs of event indexes, see ``swapped``)
RECORDINGS = {
    "16_transfer_ringback_and_ringback_caller_0210_callee_0305": [],
    # B's CHANNEL_CREATE came before the BACKGROUND_JOB that precedes it in 16 and 16c
    "16b_ringback_only_caller_0210_callee_0305": [(3, 4)],
    # both hangups in the same millisecond, the caller's first; 16, 16b and 17* have B's first
    "16c_no_ringback_caller_0210_callee_0305": [(8, 9)],
    "16d_transfer_ringback_callee_180_only_0999_leg_timeout4": [],
    "16e_transfer_ringback_commas_not_escaped": [],
    "17_bridge_early_media_on_callee_leg_caller_0210_callee_0305": [],
    "17b_bridge_early_media_and_ignore_early_media_false_callee_0305": [],
    "17c_transfer_ringback_plus_bridge_early_media_callee_0305": [],
    "17d_transfer_ringback_plus_bridge_early_media_callee_180_only": [],
    "18_bridge_early_media_callee_0405_announcement_then_404": [],
    "18b_bridge_early_media_ignore_false_callee_0405": [],
    "18c_transfer_ringback_plus_bridge_early_media_callee_0405": [],
    "19_group_confirm_caller_0701_presses_1": [],
    "19b_group_confirm_caller_0701_with_dtmf_filter": [],
    "20_group_confirm_caller_0700_never_presses": [],
}


@pytest.fixture(scope="module")
def switch():
    fake = FakeSwitch(
        "127.0.0.1",
        0,
        "ClueCon",
        scenario=Scenario.load(LAB_PHONES),
        time_scale=TIME_SCALE,
        heartbeat=None,
    ).start()
    yield fake
    fake.stop()


def simulate(switch: FakeSwitch, name: str):
    recording = without_heartbeats(load_recording(name))
    simulated = replay(recording, switch.port, time_scale=TIME_SCALE, timeout=30)
    assert switch.wait_idle(timeout=10), "every call of the recording has ended"
    return recording, simulated


@pytest.mark.parametrize("name", RECORDINGS)
def test_events_causes_and_key_variables_match(switch, name):
    recording, simulated = simulate(switch, name)
    expected = keyed_events(recording.frames)
    for first, second in RECORDINGS[name]:
        expected = swapped(expected, first, second)
    problems = key_differences(expected, keyed_events(simulated))
    assert not problems, "\n".join(problems[:40])


def test_concurrent_unconfirmed_callers_end_by_the_four_timeout_rules(switch):
    """20b: originate_timeout (NO_ANSWER), group_confirm_timeout from the answer and leg_timeout
    after it (ALLOTTED_TIMEOUT), the cancel that leaves only originate_timeout; no callee leg."""
    recording, simulated = simulate(switch, "20b_group_confirm_timeouts_never_pressed")
    problems = key_differences(
        keyed_events(recording.frames), keyed_events(simulated), per_leg=True
    )
    assert not problems, "\n".join(problems[:40])


def test_dtmf_event_matches_the_recording_header_for_header(switch):
    """19b: the DTMF event carries the channel data and the caller profile but no variables, so
    a filter on a variable drops it; here it passed through `filter Event-Name DTMF`."""
    recording, simulated = simulate(switch, "19b_group_confirm_caller_0701_with_dtmf_filter")

    def dtmf(frames):
        return [f for f in frames if f.is_event and parse_event(f).name == "DTMF"]

    assert len(dtmf(simulated)) == 1
    problems = compare_frames(dtmf(recording.frames), dtmf(simulated))
    assert not problems, "\n".join(problems)


def test_the_dtmf_event_is_dropped_by_the_call_id_filter(switch):
    """19: without `filter Event-Name DTMF`, the variable filter drops the DTMF event."""
    _, simulated = simulate(switch, "19_group_confirm_caller_0701_presses_1")
    assert "DTMF" not in [parse_event(f).name for f in simulated if f.is_event]


def test_confirmation_clears_group_confirm_and_marks_the_winner(switch):
    """19: A's variables after the key, in FreeSWITCH's order."""
    _, simulated = simulate(switch, "19_group_confirm_caller_0701_presses_1")
    bridge = next(
        parse_event(f) for f in simulated if f.is_event and parse_event(f).name == "CHANNEL_BRIDGE"
    )
    names = [name for name, _ in bridge.headers if name.startswith("variable_")]
    assert not [name for name in names if name.startswith("variable_group_confirm_")]
    tail = [
        "variable_endpoint_disposition",
        "variable_playback_last_offset_pos",
        "variable_playback_seconds",
        "variable_playback_ms",
        "variable_playback_samples",
        "variable_read_result",
        "variable_group_dial_status",
        "variable_pre_transfer_caller_id_number",
    ]
    start = names.index(tail[0])
    assert names[start : start + len(tail)] == tail
    assert bridge.get("variable_playback_ms") == "2000"  # 1.76 s of the prompt, rounded up


# ------------------------------------------------------------------------------------------
# what the caller heard


HEARD = [
    "16_transfer_ringback_and_ringback_caller_0210_callee_0305",
    "16b_ringback_only_caller_0210_callee_0305",
    "16c_no_ringback_caller_0210_callee_0305",
    "16d_transfer_ringback_callee_180_only_0999_leg_timeout4",
    "17_bridge_early_media_on_callee_leg_caller_0210_callee_0305",
    "17b_bridge_early_media_and_ignore_early_media_false_callee_0305",
    "17c_transfer_ringback_plus_bridge_early_media_callee_0305",
    "17d_transfer_ringback_plus_bridge_early_media_callee_180_only",
    "18_bridge_early_media_callee_0405_announcement_then_404",
    "18b_bridge_early_media_ignore_false_callee_0405",
    "18c_transfer_ringback_plus_bridge_early_media_callee_0405",
]
AUDIBLE = 300  # RMS, as the .heard.txt files define it
MARGIN = 0.25  # s around a segment boundary where a 100 ms window may hold either side


def recorded_windows(name: str) -> list[tuple[float, int, str]]:
    """(t_wav, rms, tone) of each 100 ms window of the caller's recording."""
    lines = (CAPTURES / f"{name}.heard.txt").read_text().splitlines()
    start = lines.index("t_wav\tt\trms\ttone") + 1
    windows = []
    for line in lines[start:]:
        t_wav, _, rms, tone = line.split("\t")
        windows.append((float(t_wav), int(rms), tone))
    return windows


def heard_kind(tone: str) -> str | None:
    """The simulator's segment kind for a lab tone; None for windows that mix two."""
    if "(ringback" in tone:
        return "ringback"
    if tone.startswith(("660+820", "SIT")):
        return "early_media"
    if tone.startswith("1000"):
        return "callee"
    return None


def heard_over_tcp(port: int, uuid: str) -> dict:
    client = RawClient(port)
    try:
        client.login()
        reply = client.command(f"api fakeswitch_heard {uuid}")
        return json.loads(reply.body)
    finally:
        client.close()


@pytest.mark.parametrize("name", HEARD)
def test_the_caller_heard_what_the_recording_heard(switch, name):
    _, simulated = simulate(switch, name)
    caller = next(parse_event(f).unique_id for f in simulated if f.is_event)
    heard = heard_over_tcp(switch.port, caller)
    assert heard == switch.heard(caller)
    assert heard["answered"] and heard["ended"]
    segments = heard["segments"]
    boundaries = [segment["start"] for segment in segments] + [segments[-1]["end"]]

    def segment_at(t: float) -> dict | None:
        for segment in segments:
            if segment["start"] <= t < segment["end"]:
                return segment
        return None

    checked = 0
    sounded: set[int] = set()  # segments in which the recording has a window of their kind
    for t_wav, rms, tone in recorded_windows(name):
        middle = t_wav + 0.05
        if any(abs(middle - boundary) < MARGIN for boundary in boundaries):
            continue
        segment = segment_at(middle)
        if segment is None:
            continue  # the recorder still ran after our model of the call ended
        checked += 1
        if rms < AUDIBLE:
            # a tone's or the phone's own pause, or nothing at all; never while they talk
            assert segment["heard"] != "callee", (t_wav, segment)
            continue
        kind = heard_kind(tone)
        if kind is None:
            continue
        assert segment["heard"] == kind, (t_wav, tone, segment)
        sounded.add(segments.index(segment))
        if kind == "ringback":
            recorded_tone = tone.split("(ringback ", 1)[1].rstrip(")")
            assert segment["value"].startswith(recorded_tone), (tone, segment)
    assert checked >= 20
    for index, segment in enumerate(segments):
        # every sound the model claims for a second or more was heard in the recording
        if segment["heard"] != "silence" and segment["end"] - segment["start"] >= 1:
            assert index in sounded, (segment, "never heard in the recording")


def test_heard_of_an_unknown_call(switch):
    client = RawClient(switch.port)
    try:
        client.login()
        reply = client.command("api fakeswitch_heard 00000000-0000-0000-0000-000000000000")
        assert reply.body == b"-ERR no such call\n"
        assert client.command("api fakeswitch_heard").body == b"-USAGE: <caller-uuid>\n"
    finally:
        client.close()
    assert switch.heard("nope") is None

"""The simulator against the recordings of a real FreeSWITCH (esl-captures/).

Each test replays what the recording client sent, at the same points of the exchange, to a
simulator whose scenario plays the recorded phones (tests/fixtures/fakeswitch/sipp_phones.json),
and compares the frames: the same sequence of content types and event names, the same header
names in the same order in every event, and the same values except those in
``IGNORED_VALUES`` (identities, clocks, sequence numbers, durations, made-up SIP details), with
UUIDs compared by their order of appearance.
"""

from __future__ import annotations

import pytest

from c2c.fakeswitch.scenarios import Scenario
from c2c.fakeswitch.server import FakeSwitch
from tests.fixtures.fakeswitch.helpers import (
    SIPP_SCENARIO,
    compare_frames,
    load_recording,
    replay,
)

TIME_SCALE = 0.02  # a 60 s ring timeout takes 1.2 s; phones still answer in recorded order

RECORDINGS = [
    "01_auth_wrong_password",
    "01b_command_before_auth",
    "03_sipp_answer_bridge_5090_to_5091",
    "04_sipp_486_busy",
    "05_sipp_503_congestion",
    "06_sipp_ring_noanswer_call_timeout5",
    "06a_sipp_ring_noanswer_originate_timeout5",
    "06b_sipp_answer_then_bridge_to_486",
    "06c_sipp_answer_then_bridge_to_noanswer_leg_timeout5",
    "06d_sipp_ring_noanswer_leg_timeout5",
    "07_uuid_kill_answered",
    "07b_uuid_kill_with_cause",
    "07c_uuid_kill_while_ringing",
    "08_sched_hangup_api_plus3",
    "09_execute_on_answer_sched_hangup5",
    "09b_execute_on_answer_sched_hangup5_bridged",
    "13_protocol_misc",
    "14_exit_with_pending_bgapi",
]


@pytest.fixture
def switch():
    fake = FakeSwitch(
        "127.0.0.1", 0, "ClueCon", scenario=Scenario.load(SIPP_SCENARIO), time_scale=TIME_SCALE
    ).start()
    yield fake
    fake.stop()


@pytest.mark.parametrize("name", RECORDINGS)
def test_simulator_matches_recording(switch, name):
    recording = load_recording(name)
    expected = list(recording.frames)
    if name.startswith("08_"):
        # The recording client sent sched_hangup the instant it saw CHANNEL_ANSWER, and won the
        # race against the BACKGROUND_JOB (20 ms later on that FreeSWITCH); the simulator fires
        # the job result right after the answer, so the reply comes after it.
        expected[7], expected[8] = expected[8], expected[7]
    simulated = replay(recording, switch.port, time_scale=TIME_SCALE)
    problems = compare_frames(expected, simulated)
    assert not problems, "\n".join(problems[:40])
    assert not switch.channels, "every call of the recording has ended"


def test_comparison_notices_differences():
    """Guard against a comparison that passes everything: two different recordings differ."""
    busy = load_recording("04_sipp_486_busy").frames
    congestion = load_recording("05_sipp_503_congestion").frames
    problems = compare_frames(busy, congestion)
    assert any("Hangup-Cause" in problem for problem in problems)
    assert compare_frames(busy, busy[:-1])


def test_event_json_matches_recording(switch):
    """Recording 11, its sofia part: the same busy call seen through `event json`."""
    recording = load_recording("11_event_json_loopback_originate_bridge")
    auth, subscribe, _loopback_call, sofia_call, exit_ = recording.sends
    sofia_call.after_frames, exit_.after_frames = 3, 7
    recording.sends = [auth, subscribe, sofia_call, exit_]
    expected = recording.frames[:3] + recording.frames[18:]
    simulated = replay(recording, switch.port, time_scale=TIME_SCALE)
    problems = compare_frames(expected, simulated)
    assert not problems, "\n".join(problems[:40])

"""Press 1 to connect (group_confirm_*) over the Event Socket, in c2c's originate shape, at time
scale 0, against the rules of recordings 19, 19b, 20 and 20b (test_fakeswitch_recordings_media.py
replays those recordings themselves).

The default scenario's caller presses 1 a second after answering, ...0701 1.5 s after, and
...0700 (a voicemail) never does.
"""

from __future__ import annotations

import math

import pytest

from c2c.fakeswitch.scenarios import Scenario
from c2c.fakeswitch.server import FakeSwitch
from tests.fixtures.fakeswitch.c2c_shape import (
    NA_RINGBACK,
    PROMPT,
    A,
    B,
    CallEvents,
    heard,
    kinds,
    listen,
    originate,
    run_call,
)

CONFIRM = f",group_confirm_key=1,group_confirm_file={PROMPT}"
TALKER = "15551230002"


@pytest.fixture
def switch():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", time_scale=0, heartbeat=None).start()
    yield fake
    fake.stop()


def seconds(event, name: str) -> float:
    return int(event.get(f"variable_{name}_uepoch")) / 1e6


def assert_unconfirmed_end(call: CallEvents, cause: str, job_first: bool) -> None:
    """Recording 20: what an answered caller who never confirmed ends with."""
    assert B not in {e.unique_id for e in call.events}, "the callee is never dialled"
    assert call.job() == f"-ERR {cause}\n"
    a = call.final(A)
    assert a.get("Hangup-Cause") == cause
    assert a.get("variable_endpoint_disposition") == "ANSWER"
    assert a.get("variable_sip_hangup_disposition") == "send_bye"
    assert a.get("variable_sip_invite_failure_status") is None
    assert a.get("variable_group_confirm_key") == "1"  # still set
    assert a.get("variable_group_dial_status") is None
    assert a.get("variable_originate_disposition") is None
    answered, ended = seconds(a, "answer"), seconds(a, "end")
    assert int(a.get("variable_billsec")) == math.floor(ended) - math.floor(answered)
    names = call.names()
    assert (names.index("BACKGROUND_JOB") < names.index("CHANNEL_HANGUP_COMPLETE")) is job_first


# ------------------------------------------------------------------------------------------
# a caller who presses 1


@pytest.mark.parametrize(("caller", "pressed_after"), [("15551230001", 1.0), ("15551230701", 1.5)])
def test_a_confirming_caller_is_bridged(switch, caller, pressed_after):
    """19/19b: the job result waits for the key; then the bridge runs."""
    call = run_call(
        switch, originate(caller, TALKER, CONFIRM + f",transfer_ringback={NA_RINGBACK}")
    )
    assert call.legs()[:6] == [
        ("CHANNEL_CREATE", "A"),
        ("CHANNEL_PROGRESS", "A"),
        ("CHANNEL_ANSWER", "A"),
        ("DTMF", "A"),
        ("BACKGROUND_JOB", None),
        ("CHANNEL_CREATE", "B"),
    ]
    assert call.job() == f"+OK {A}\n"
    answer, dtmf = call.first("CHANNEL_ANSWER", A), call.first("DTMF")
    # the digit's event comes as the digit ends: 2080 samples after it began
    assert call.seconds(dtmf, answer) == pytest.approx(pressed_after + 0.26, abs=0.02)
    assert (dtmf.get("DTMF-Digit"), dtmf.get("DTMF-Duration"), dtmf.get("DTMF-Source")) == (
        "1",
        "2080",
        "RTP",
    )
    assert not [name for name, _ in dtmf.headers if name.startswith("variable_")]
    assert answer.get("variable_group_confirm_key") == "1"
    bridge = call.first("CHANNEL_BRIDGE")
    for event in (bridge, call.final(A)):
        assert event.get("variable_group_dial_status") == "winner"
        assert event.get("variable_group_confirm_key") is None
        assert event.get("variable_group_confirm_file") is None
        assert event.get("variable_read_result") == "success"
    assert call.final(A).get("variable_originate_disposition") == "SUCCESS"
    for event in call.events:
        if event.unique_id == B:
            assert not [n for n, _ in event.headers if n.startswith("variable_group_")]
    segments = heard(switch)["segments"]
    assert [s["heard"] for s in segments] == ["prompt", "ringback", "callee"]
    assert segments[1]["variable"] == "transfer_ringback"
    assert segments[0]["value"] == "tone_stream://%(500,500,440);loops=10"
    assert segments[0]["end"] == pytest.approx(pressed_after + 0.26, abs=0.02)


def test_without_confirmation_the_default_caller_behaves_as_before(switch):
    """The default caller's 1 matters only when the originate asks for it."""
    call = run_call(switch, originate("15551230001", TALKER), dtmf=False)
    assert call.legs()[3] == ("BACKGROUND_JOB", None)
    assert call.first("CHANNEL_BRIDGE").get("variable_group_dial_status") is None


def test_a_wrong_key_is_ignored():
    scenario = Scenario.from_dict(
        {
            "rules": [
                {"suffix": "1", "role": "caller", "action": "answer", "dtmf": "21"},
                {"suffix": "2", "role": "caller", "action": "answer", "dtmf": "2"},
                {"action": "answer", "hangup_after": 1},
            ]
        }
    )
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", scenario=scenario, time_scale=0, heartbeat=None)
    fake.start()
    try:
        confirmed = run_call(fake, originate("15550000001", TALKER, CONFIRM))
        assert [e.get("DTMF-Digit") for e in confirmed.events if e.name == "DTMF"] == ["2", "1"]
        assert confirmed.job() == f"+OK {A}\n"
        assert "CHANNEL_BRIDGE" in confirmed.names()
        wrong = run_call(fake, originate("15550000002", TALKER, CONFIRM + ",originate_timeout=8"))
        assert_unconfirmed_end(wrong, "NO_ANSWER", job_first=True)
    finally:
        fake.stop()


# ------------------------------------------------------------------------------------------
# a caller who never does (20, 20b)


def test_originate_timeout_counts_from_the_originate(switch):
    """20 and 20b's first call: NO_ANSWER, the -ERR before A's HANGUP_COMPLETE, in whole seconds."""
    call = run_call(switch, originate("15551230700", TALKER, CONFIRM + ",originate_timeout=10"))
    assert_unconfirmed_end(call, "NO_ANSWER", job_first=True)
    a = call.final(A)
    started, ended = seconds(a, "start"), seconds(a, "end")
    assert math.floor(ended) - math.floor(started) == 10
    assert 9 < ended - started <= 10.1
    assert a.get("variable_caller_id") == "0000000000"  # never flipped: no application ran


def test_leg_timeout_keeps_running_after_the_answer(switch):
    """20b's fourth call: ALLOTTED_TIMEOUT at leg_timeout, counted from the originate (> L)."""
    call = run_call(
        switch, originate("15551230700", TALKER, CONFIRM + ",originate_timeout=40,leg_timeout=15")
    )
    assert_unconfirmed_end(call, "ALLOTTED_TIMEOUT", job_first=False)
    a = call.final(A)
    assert math.floor(seconds(a, "end")) - math.floor(seconds(a, "start")) == 16


def test_group_confirm_timeout_replaces_leg_timeout_from_the_answer(switch):
    """20b's second call: ALLOTTED_TIMEOUT group_confirm_timeout after the answer."""
    call = run_call(
        switch,
        originate(
            "15551230700",
            TALKER,
            CONFIRM + ",originate_timeout=40,leg_timeout=10,group_confirm_timeout=15",
        ),
    )
    assert_unconfirmed_end(call, "ALLOTTED_TIMEOUT", job_first=False)
    a = call.final(A)
    assert math.floor(seconds(a, "end")) - math.floor(seconds(a, "answer")) == 16
    assert a.get("variable_playback_ms") == "10000"  # the 10 s prompt played to its end


def test_group_confirm_cancel_timeout_removes_leg_timeout(switch):
    """20b's third call: only originate_timeout is left: NO_ANSWER."""
    call = run_call(
        switch,
        originate(
            "15551230700",
            TALKER,
            CONFIRM + ",originate_timeout=20,leg_timeout=10,group_confirm_cancel_timeout=true",
        ),
    )
    assert_unconfirmed_end(call, "NO_ANSWER", job_first=True)
    a = call.final(A)
    assert math.floor(seconds(a, "end")) - math.floor(seconds(a, "start")) == 20


def test_c2c_shape_for_a_voicemail(switch):
    """Issue 11's shape: leg_timeout=R bounds the ringing, group_confirm_timeout=N the wait for
    the key, originate_timeout=R+N+5 is a backstop that never fires first."""
    shape = CONFIRM + ",group_confirm_timeout=10,leg_timeout=30,originate_timeout=45"
    call = run_call(switch, originate("15551230700", TALKER, shape))
    assert_unconfirmed_end(call, "ALLOTTED_TIMEOUT", job_first=False)
    a = call.final(A)
    assert math.floor(seconds(a, "end")) - math.floor(seconds(a, "answer")) == 11
    timeline = heard(switch)
    assert kinds(timeline) == ["prompt", "silence"]
    assert timeline["segments"][0]["end"] == pytest.approx(10, abs=0.05)


def test_c2c_shape_for_a_caller_who_never_answers(switch):
    shape = CONFIRM + ",group_confirm_timeout=10,leg_timeout=30,originate_timeout=45"
    call = run_call(switch, originate("15551230408", TALKER, shape))
    assert call.job() == "-ERR ALLOTTED_TIMEOUT\n"
    a = call.final(A)
    assert math.floor(seconds(a, "end")) - math.floor(seconds(a, "start")) == 31
    assert not heard(switch)["answered"]


def test_a_voicemail_that_hangs_up_during_the_prompt():
    scenario = Scenario.from_dict(
        {"rules": [{"role": "caller", "action": "answer", "hangup_after": 3}]}
    )
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", scenario=scenario, time_scale=0, heartbeat=None)
    fake.start()
    try:
        call = run_call(fake, originate("15550000001", TALKER, CONFIRM + ",originate_timeout=30"))
    finally:
        fake.stop()
    assert call.job() == "-ERR NORMAL_CLEARING\n"
    a = call.final(A)
    assert a.get("variable_sip_hangup_disposition") == "recv_bye"
    assert a.get("variable_billsec") in ("3", "4")
    assert B not in {e.unique_id for e in call.events}


def test_killing_an_unconfirmed_caller():
    fake = FakeSwitch("127.0.0.1", 0, "ClueCon", time_scale=0.01, heartbeat=None).start()
    client = listen(fake)
    try:
        client.command("bgapi " + originate("15551230700", TALKER, CONFIRM))
        client.wait_event(lambda e: e.name == "CHANNEL_ANSWER")
        assert fake.api_command(f"uuid_kill {A}") == "+OK\n"
        assert fake.wait_idle()
        job = client.wait_event(lambda e: e.name == "BACKGROUND_JOB")
        assert job.body == "-ERR NORMAL_CLEARING\n"
        final = client.wait_event(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE")
        assert final.get("variable_sip_hangup_disposition") == "send_bye"
    finally:
        client.close()
        fake.stop()


def test_the_dtmf_event_needs_its_own_filter(switch):
    """19: a variable filter drops the DTMF event (it has no variables); 19b: an Event-Name
    filter lets it through."""
    for extra, seen in (([], False), (["filter Event-Name DTMF"], True)):
        client = listen(switch)
        client.command("filter variable_c2c_call_id /^c2c-media-/")
        client.command("filter Event-Name BACKGROUND_JOB")
        for line in extra:
            client.command(line)
        try:
            call = run_call(switch, originate("15551230701", TALKER, CONFIRM), client=client)
        finally:
            client.close()
        assert ("DTMF" in call.names()) is seen
        assert call.job() == f"+OK {A}\n"

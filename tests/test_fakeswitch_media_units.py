"""Pure parts of the simulator's ringback, early media, confirmation and caller-hears model:
the API splitter's escapes, tones, the early-media policy, whole-second timeouts, the key
collector, the timeline, and the scenario format's new keys."""

from __future__ import annotations

import pytest

from c2c.fakeswitch import heard as hearing
from c2c.fakeswitch import sofia, timeouts
from c2c.fakeswitch.channels import Variables
from c2c.fakeswitch.confirm import (
    DTMF_SECONDS,
    ConfirmSettings,
    KeyCollector,
    digit_offsets,
    playback_variables,
)
from c2c.fakeswitch.heard import Heard, HeardLog
from c2c.fakeswitch.media import EarlyMedia, Ringback, is_true, ringback_source
from c2c.fakeswitch.originate import parse_originate, parse_target, split_arguments
from c2c.fakeswitch.scenarios import CALLEE, CALLER, Scenario, ScenarioError
from c2c.fakeswitch.tones import FILE, NONE, SILENCE, TONE, classify, play_seconds, tone_is_valid

NA_TONE = r"%(2000\,4000\,440\,480)"
UK_TONE = r"%(400\,200\,400\,450);%(400\,2000\,400\,450)"

# ------------------------------------------------------------------------------------------
# the API splitter and the {} parser


def test_backslash_comma_survives_the_api_splitter():
    """Recording 16: ``\\,`` reaches the {} parser, which makes it a comma."""
    assert split_arguments(r"{a=%(1\,2)} b") == [r"{a=%(1\,2)}", "b"]
    request = parse_originate(
        f"{{origination_uuid=A,transfer_ringback={NA_TONE},ringback={UK_TONE}}}"
        "sofia/internal/12123010210@127.0.0.1:5080 &bridge({x=1}sofia/internal/2@127.0.0.1)"
    )
    assert request.leg.variables["transfer_ringback"] == "%(2000,4000,440,480)"
    assert request.leg.variables["ringback"] == "%(400,200,400,450);%(400,2000,400,450)"


def test_unescaped_commas_split_the_tone():
    """Recording 16e: A gets ``transfer_ringback=%(2000``; the rest has no '=' and is dropped."""
    request = parse_originate(
        "{origination_uuid=A,transfer_ringback=%(2000,4000,440,480),c2c_leg=caller}"
        "sofia/internal/1@127.0.0.1:5080 &park"
    )
    assert request.leg.variables == {
        "origination_uuid": "A",
        "transfer_ringback": "%(2000",
        "c2c_leg": "caller",
    }


def test_a_quoted_name_with_a_space_and_an_escaped_comma():
    r"""What c2c writes for a display name (channel_values.in_braces): quotes for the space,
    ``\,`` for the comma."""
    request = parse_originate(
        r"{origination_caller_id_name='Acme\, Inc Sales',origination_caller_id_number=+15551230000}"
        "sofia/gateway/gw1/+15551230001 &park"
    )
    assert request.leg.variables["origination_caller_id_name"] == "Acme, Inc Sales"
    assert request.leg.variables["origination_caller_id_number"] == "+15551230000"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (r"a\ b c", ["a b", "c"]),
        (r"\'x\' \\y", ["'x'", "\\y"]),
        (r"a\sb", ["a b"]),
        (r"a\,b a\$c", [r"a\,b", r"a\$c"]),
        ("{n='Acme Sales',m=+15551230000} x", ["{n=Acme Sales,m=+15551230000}", "x"]),
        ("O'Brien x", ["O'Brien", "x"]),  # a quote with no partner stays
    ],
)
def test_api_splitter_escapes(text, words):
    assert split_arguments(text) == words


# ------------------------------------------------------------------------------------------
# tones


@pytest.mark.parametrize(
    ("value", "kind", "playable"),
    [
        ("%(2000,4000,440,480)", TONE, True),
        ("%(400,200,400,450);%(400,2000,400,450)", TONE, True),
        ("v=-7;%(1000,4000,425)", TONE, True),
        ("%(2000", TONE, False),
        ("%(2000,4000)", TONE, False),
        ("ring", TONE, False),
        ("tone_stream://%(500,500,440);loops=10", FILE, True),
        ("tone_stream://%(500", FILE, False),
        ("/usr/share/freeswitch/sounds/press1.wav", FILE, True),
        ("silence_stream://1000", FILE, True),
        ("silence", SILENCE, True),
        ("silence:1000", SILENCE, True),
        ("", NONE, False),
        (None, NONE, False),
    ],
)
def test_classify(value, kind, playable):
    sound = classify(value)
    assert (sound.kind, sound.playable) == (kind, playable)
    assert sound.fails_bridge == (kind == TONE and not playable)


def test_tone_validity_and_play_time():
    assert tone_is_valid("%(1000, 4000, 425.5)") and not tone_is_valid("L=3")
    assert play_seconds("tone_stream://%(500,500,440);loops=10") == pytest.approx(10)
    assert play_seconds("tone_stream://%(400,200,400,450);%(400,2000,400,450)") == pytest.approx(3)
    assert play_seconds("tone_stream://%(500,500,440);loops=-1") is None
    assert play_seconds("/tmp/prompt.wav") is None and play_seconds(None) is None


# ------------------------------------------------------------------------------------------
# early media and ringback


@pytest.mark.parametrize(
    ("variables", "counts", "passes"),
    [
        ({}, True, False),  # FreeSWITCH's default: a 183 is an answer
        ({"ignore_early_media": "true"}, False, False),
        ({"ignore_early_media": "consume"}, False, False),
        # 17: bridge_early_media on B, ignore_early_media=true inherited from A, overrides it
        ({"bridge_early_media": "true", "ignore_early_media": "true"}, False, False),
        # 17b: the callee's early media reaches the caller, the 183 is no answer
        ({"bridge_early_media": "true", "ignore_early_media": "false"}, False, True),
        ({"bridge_early_media": "true"}, False, True),
        ({"ignore_early_media": "false"}, True, False),
    ],
)
def test_early_media_policy(variables, counts, passes):
    policy = EarlyMedia.of(variables.get)
    assert (policy.counts_as_answer, policy.passes_through) == (counts, passes)


def test_ringback_source_prefers_transfer_ringback_once_answered():
    both = {"transfer_ringback": "%(1,1,440)", "ringback": "%(2,2,440)"}.get
    assert ringback_source(both, True) == Ringback("transfer_ringback", "%(1,1,440)")
    assert ringback_source(both, False) == Ringback("ringback", "%(2,2,440)")  # 16 vs early A
    assert ringback_source({"ringback": "%(2,2,440)"}.get, True) == Ringback(
        "ringback", "%(2,2,440)"
    )  # 16b
    assert ringback_source({}.get, True) is None  # 16c


def test_is_true():
    assert all(is_true(v) for v in ("true", "YES", "on", "1", "2"))
    assert not any(is_true(v) for v in (None, "false", "0", "no", "banana"))


def test_caller_variables_a_bridge_leg_inherits():
    """Finding 17: early-media and group_confirm settings come over, the ringback ones do not;
    the leg's own {} wins (sofia.leg_create skips what the dial string sets)."""
    a = Variables()
    a.update(
        [
            ("ignore_early_media", "true"),
            ("bridge_early_media", "true"),
            ("group_confirm_key", "1"),
            ("transfer_ringback", "%(1,1,440)"),
            ("ringback", "%(1,1,440)"),
            ("c2c_call_id", "x"),
        ]
    )
    inherited = dict(sofia.inherited_variables(a))
    assert inherited == {
        "ignore_early_media": "true",
        "bridge_early_media": "true",
        "group_confirm_key": "1",
    }


# ------------------------------------------------------------------------------------------
# whole-second timeouts


def test_timeouts_are_whole_second_arithmetic():
    # 20: the originate went out at .712 past a second; originate_timeout=10 ended it 9.3 s later
    start = 1_796_396_719.712
    assert timeouts.originate_deadline(start, 10) - start == pytest.approx(9.3, abs=0.02)
    # 06d: leg_timeout=5 from .035: 5.98 s
    start = 1_000.035
    assert timeouts.leg_deadline(start, 5) - start == pytest.approx(5.98, abs=0.02)
    # 20b: answered 1.03 s after a boundary; group_confirm_timeout=15 ended it at boundary + 17
    start, answered = 2_000.512, 2_001.032
    assert timeouts.confirm_deadline(answered, 15) - start == pytest.approx(16.5, abs=0.02)
    # never before the boundary, whatever the fraction
    for fraction in (0.0, 0.001, 0.5, 0.999):
        due = timeouts.originate_deadline(3_000 + fraction, 30)
        assert int(due) == 3_030


# ------------------------------------------------------------------------------------------
# confirmation


def test_confirm_settings():
    settings = ConfirmSettings.of(
        {
            "group_confirm_key": "1",
            "group_confirm_file": "tone_stream://%(500,500,440);loops=10",
            "group_confirm_timeout": "15",
            "group_confirm_cancel_timeout": "true",
        }.get
    )
    assert settings is not None
    assert (settings.key, settings.timeout, settings.cancel_timeout) == ("1", 15, True)
    assert ConfirmSettings.of({}.get) is None
    assert ConfirmSettings.of({"group_confirm_key": "exec"}.get) is None
    undef = ConfirmSettings.of({"group_confirm_key": "1", "group_confirm_file": "undef"}.get)
    assert undef is not None and undef.file is None and undef.timeout is None


def test_key_collector_ignores_a_wrong_key():
    collector = KeyCollector("1")
    assert collector.press("2") is False and collector.press("1") is True
    two = KeyCollector("12")
    assert two.press("1") is None and two.press("3") is False
    assert two.press("1") is None and two.press("2") is True


def test_digits_end_after_their_duration():
    # 19b: pressed 1.5 s after the answer, the DTMF event came 1.77 s after it
    assert digit_offsets("1", 1.5) == [("1", pytest.approx(1.5 + DTMF_SECONDS))]
    (first, t1), (second, t2) = digit_offsets("12", 0)
    assert (first, second) == ("1", "2") and t2 - t1 == pytest.approx(DTMF_SECONDS + 0.1)


def test_playback_variables_as_recorded():
    assert dict(playback_variables(1.768)) == {  # 19
        "playback_last_offset_pos": "14080",
        "playback_seconds": "2",
        "playback_ms": "2000",
        "playback_samples": "16000",
    }
    assert dict(playback_variables(10.0))["playback_last_offset_pos"] == "80000"  # 20b
    assert dict(playback_variables(10.0))["playback_ms"] == "10000"


# ------------------------------------------------------------------------------------------
# the timeline


def test_heard_segments_start_at_the_answer_and_stop_at_the_end():
    heard = Heard("a")
    heard.hear(10.0, hearing.RINGBACK, variable="ringback", value="x")  # before the answer
    heard.answer(11.0)
    heard.hear(11.5, hearing.RINGBACK, variable="ringback", value="x")  # no change
    heard.hear(12.0, hearing.CALLEE, leg="b")
    assert heard.segments()[-1]["end"] is None  # still talking
    heard.end(15.0)
    heard.hear(16.0, hearing.SILENCE)  # after the end: ignored
    assert heard.segments() == [
        {"start": 0.0, "end": 1.0, "heard": "ringback", "variable": "ringback", "value": "x"},
        {"start": 1.0, "end": 4.0, "heard": "callee", "leg": "b"},
    ]
    assert heard.to_json()["answered"] and heard.to_json()["ended"]


def test_heard_of_a_caller_who_never_answered_is_empty():
    heard = Heard("a")
    heard.hear(1.0, hearing.SILENCE)
    heard.end(2.0)
    assert heard.segments() == [] and not heard.to_json()["answered"]


def test_heard_log_keeps_the_last_calls():
    log = HeardLog(keep=2)
    for uuid in "abc":
        log.start(uuid)
    assert log.get("a") is None and log.get("c") is not None


# ------------------------------------------------------------------------------------------
# the scenario format


def behaviour(number: str, role: str = CALLEE, scenario: Scenario | None = None):
    scenario = scenario or Scenario.default()
    return scenario.behaviour_for(parse_target(f"sofia/gateway/gw/+{number}"), role)


def test_default_scenario_additions():
    assert behaviour("15551230305").early_media_after == 0
    assert behaviour("15551230305").progress_after is None
    announcement = behaviour("15551230405")
    assert (announcement.action, announcement.sip_status) == ("refuse", 404)
    assert announcement.early_media_after == 0 and announcement.refuse_after == 3
    voicemail = behaviour("15551230700", CALLER)
    assert voicemail.action == "answer" and voicemail.dtmf is None
    person = behaviour("15551230701", CALLER)
    assert (person.dtmf, person.dtmf_after) == ("1", 1.5)
    caller = behaviour("15551230001", CALLER)
    assert (caller.dtmf, caller.dtmf_after, caller.hangup_after) == ("1", 1.0, None)
    callee = behaviour("15551230001", CALLEE)
    assert callee.dtmf is None and callee.hangup_after == 5
    assert behaviour("15551230486").sip_status == 486  # old meanings kept


def test_scenario_keys_dtmf_identity_and_early_media_before_a_refusal():
    scenario = Scenario.from_dict(
        {
            "rules": [
                {"suffix": "1", "action": "answer", "dtmf": "12#", "dtmf_after": 0.5},
                {"suffix": "2", "action": "invalid", "early_media_after": 0.1, "after": 2},
                {"suffix": "3", "action": "answer", "identity": "number"},
                {"suffix": "4", "action": "no_answer", "identity": "Front Desk"},
            ]
        }
    )
    assert (
        behaviour("1", scenario=scenario).dtmf,
        behaviour("1", scenario=scenario).dtmf_after,
    ) == (
        "12#",
        0.5,
    )
    refusal = behaviour("2", scenario=scenario)
    assert (refusal.early_media_after, refusal.refuse_after) == (0.1, 2)
    assert behaviour("3", scenario=scenario).identity_for("+1555") == ("+1555", "+1555")
    assert behaviour("4", scenario=scenario).identity_for("44") == ("Front Desk", "44")
    assert behaviour("5", scenario=scenario).identity_for("5") is None  # the fallback


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "answer", "dtmf": "1x"},
        {"action": "answer", "dtmf": ""},
        {"action": "answer", "dtmf": 1},
        {"action": "answer", "dtmf": "1", "dtmf_after": -1},
        {"action": "answer", "identity": ""},
        {"action": "busy", "identity": 5},
        {"action": "invalid", "early_media_after": "soon"},
    ],
)
def test_bad_new_keys_are_refused(rule):
    with pytest.raises(ScenarioError):
        Scenario.from_dict({"rules": [rule]})

import dataclasses
import re
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2c.calls.originate import (
    BILLSEC_SAFETY_SECONDS,
    CONFIRM_MARGIN_SECONDS,
    OriginateSpec,
    PressToConnect,
    build_originate,
    dial_target,
)
from c2c.numbers import PhoneNumber
from tests import esl_captures
from tests.support.originate_model import (
    parse_originate,
    read_braces,
    split_originate,
)

TEMPLATE = "sofia/gateway/default/+{country_code}{number}"
CALL_ID = "7f1c2a8e-3b1d-4c52-9a0e-0d4b6f1e2a10"
CALLER_UUID = "1b9f4e0a-5d6c-4f7e-8a9b-0c1d2e3f4a5b"
CALLEE_UUID = "2c0a5f1b-6e7d-4a8f-9b0c-1d2e3f4a5b6c"

SPEC = OriginateSpec(
    call_id=CALL_ID,
    caller=PhoneNumber("1", "5551230001"),
    callee=PhoneNumber("1", "5551230002"),
    caller_uuid=CALLER_UUID,
    callee_uuid=CALLEE_UUID,
    caller_id_for_callee="+15551230001",
    caller_id_for_caller="+15551230002",
    ring_timeout=30,
    time_limit_seconds=10 * 60,
    caller_id_name_for_callee="+15551230001",
    caller_id_name_for_caller="+15551230002",
    ringback="%(2000,4000,440,480)",
)

EXPECTED = (
    "originate {origination_uuid=1b9f4e0a-5d6c-4f7e-8a9b-0c1d2e3f4a5b,"
    "c2c_call_id=7f1c2a8e-3b1d-4c52-9a0e-0d4b6f1e2a10,c2c_leg=caller,ignore_early_media=true,"
    "originate_timeout=30,origination_caller_id_number=+15551230002,"
    "origination_caller_id_name=+15551230002,transfer_ringback=%(2000\\,4000\\,440\\,480)}"
    "sofia/gateway/default/+15551230001 "
    "&bridge({origination_uuid=2c0a5f1b-6e7d-4a8f-9b0c-1d2e3f4a5b6c,"
    "c2c_call_id=7f1c2a8e-3b1d-4c52-9a0e-0d4b6f1e2a10,c2c_leg=callee,ignore_early_media=false,"
    "bridge_early_media=true,leg_timeout=30,origination_caller_id_number=+15551230001,"
    "origination_caller_id_name=+15551230001,"
    "execute_on_answer='sched_hangup +599 ALLOTTED_TIMEOUT'}"
    "sofia/gateway/default/+15551230002)"
)

CONFIRM = PressToConnect(prompt="tone_stream://%(500,500,440);loops=10", timeout=10)


# --- the model of how FreeSWITCH reads the command: tests/support/originate_model.py ------------


def test_the_model_reads_the_recorded_commands_as_freeswitch_did():
    # esl-captures 09 (SENT line) and its CHANNEL_CREATE: variable_execute_on_answer:
    # sched_hangup%20%2B5%20ALLOTTED_TIMEOUT
    recorded = (
        "originate {origination_uuid=e47071de-ecaa-404d-bad6-88c70883e540,ignore_early_media=true,"
        "call_timeout=20,origination_caller_id_number=5551230000,"
        "execute_on_answer='sched_hangup +5 ALLOTTED_TIMEOUT'}sofia/internal/1000@127.0.0.1:5090"
        " &bridge({leg_timeout=5}sofia/internal/2000@127.0.0.1:5094)"
    )
    a_vars, a_target, b_vars, b_target = parse_originate(recorded)
    assert a_vars["execute_on_answer"] == "sched_hangup +5 ALLOTTED_TIMEOUT"
    assert a_target == "sofia/internal/1000@127.0.0.1:5090"
    assert b_vars == {"leg_timeout": "5"} and b_target == "sofia/internal/2000@127.0.0.1:5094"


def _channel_variables(recording: str) -> dict[str, dict[str, str]]:
    """Each channel's variables as its first CHANNEL_CREATE in the recording shows them."""
    seen: dict[str, dict[str, str]] = {}
    for frame in esl_captures.received(recording):
        if frame.content_type != "text/event-plain":
            continue
        lines = frame.body.decode().split("\n")
        headers = dict(line.split(": ", 1) for line in lines if ": " in line)
        if headers.get("Event-Name") == "CHANNEL_CREATE":
            seen.setdefault(
                headers["Unique-ID"],
                {
                    k[len("variable_") :]: unquote(v)
                    for k, v in headers.items()
                    if k.startswith("variable_")
                },
            )
    return seen


@pytest.mark.parametrize(
    "recording",
    [
        "16_transfer_ringback_and_ringback_caller_0210_callee_0305",
        "16b_ringback_only_caller_0210_callee_0305",
        "16e_transfer_ringback_commas_not_escaped",
        "17b_bridge_early_media_and_ignore_early_media_false_callee_0305",
        "19_group_confirm_caller_0701_presses_1",
        "20b_group_confirm_timeouts_never_pressed",
    ],
)
def test_the_model_reads_recordings_16_to_20_as_freeswitch_did(recording):
    """Every variable the model reads from the originate sent is what FreeSWITCH put on that
    leg: the escaped tones whole (16, 19), the unescaped one cut at its comma (16e)."""
    channels = _channel_variables(recording)
    commands = [
        block.raw.decode()[len("bgapi ") :].rstrip("\n")
        for block in esl_captures.sent(recording)
        if block.raw.startswith(b"bgapi originate ")
    ]
    assert commands
    checked = 0
    for command in commands:
        a_dial, b_dial = split_originate(command)
        for dial in (a_dial, b_dial):
            pairs, _, _ = read_braces(dial)
            uuid_ = dict(pairs)["origination_uuid"]
            if uuid_ not in channels:  # a callee never dialed (20b)
                continue
            for name, value in pairs:
                assert channels[uuid_][name] == value, (recording, name)
                checked += 1
    assert checked
    if recording.startswith("16e"):
        a_pairs, _, dropped = read_braces(split_originate(commands[0])[0])
        assert dropped == ["4000", "440", "480)"]
        a_vars = channels[dict(a_pairs)["origination_uuid"]]
        assert a_vars["transfer_ringback"] == "%(2000"


# --- the builder ---------------------------------------------------------------------------------


def test_sample_command_exactly():
    assert build_originate(SPEC, TEMPLATE) == EXPECTED


def test_each_leg_carries_its_own_variables():
    a_vars, a_target, b_vars, b_target = parse_originate(build_originate(SPEC, TEMPLATE))
    assert a_target == "sofia/gateway/default/+15551230001"
    assert b_target == "sofia/gateway/default/+15551230002"
    assert a_vars == {
        "origination_uuid": CALLER_UUID,
        "c2c_call_id": CALL_ID,
        "c2c_leg": "caller",
        "ignore_early_media": "true",  # a 183 must not count as the caller answering
        "originate_timeout": "30",  # the caller's ring timeout (NO_ANSWER, capture 06a)
        "origination_caller_id_number": "+15551230002",
        "origination_caller_id_name": "+15551230002",
        # what the answered caller hears while the callee rings (16), commas intact
        "transfer_ringback": "%(2000,4000,440,480)",
    }
    assert b_vars == {
        "origination_uuid": CALLEE_UUID,
        "c2c_call_id": CALL_ID,  # A's {} is not inherited by the &bridge leg
        "c2c_leg": "callee",
        # the callee's early media reaches the caller (17b); set here, or A's true is copied (17)
        "ignore_early_media": "false",
        "bridge_early_media": "true",
        "leg_timeout": "30",  # the callee's ring timeout (ALLOTTED_TIMEOUT on both legs, 06c)
        "origination_caller_id_number": "+15551230001",
        "origination_caller_id_name": "+15551230001",
        "execute_on_answer": "sched_hangup +599 ALLOTTED_TIMEOUT",
    }


@pytest.mark.parametrize(
    ("limit_seconds", "scheduled"),
    [(1, 1), (2, 1), (60, 59), (600, 599), (1440 * 60, 1440 * 60 - 1)],
)
def test_the_hangup_is_scheduled_just_inside_the_limit(limit_seconds, scheduled):
    spec = dataclasses.replace(SPEC, time_limit_seconds=limit_seconds)
    _, _, b_vars, _ = parse_originate(build_originate(spec, TEMPLATE))
    assert b_vars["execute_on_answer"] == f"sched_hangup +{scheduled} ALLOTTED_TIMEOUT"
    if limit_seconds % 60 == 0 and limit_seconds > 60:
        # billsec may come out one second above the scheduled time and still bill N minutes
        assert -(-(scheduled + BILLSEC_SAFETY_SECONDS) // 60) == limit_seconds // 60


@pytest.mark.parametrize(
    ("template", "caller_target"),
    [
        ("sofia/gateway/default/+{country_code}{number}", "sofia/gateway/default/+15551230001"),
        ("sofia/gateway/default/{e164}", "sofia/gateway/default/+15551230001"),
        ("sofia/gateway/carrier/00{country_code}{number}", "sofia/gateway/carrier/0015551230001"),
        (
            "sofia/external/{e164}@sip.example.com;transport=tcp",
            "sofia/external/+15551230001@sip.example.com;transport=tcp",
        ),
        ("loopback/{number}/default", "loopback/5551230001/default"),
    ],
)
def test_dial_string_templates(template, caller_target):
    assert dial_target(template, SPEC.caller) == caller_target
    _, a_target, _, _ = parse_originate(build_originate(SPEC, template))
    assert a_target == caller_target


@pytest.mark.parametrize(
    "template",
    [
        "sofia/gateway/default/+{country_code} {number}",
        "sofia/gateway/a,b/{e164}",
        "sofia/gateway/default/{e164})",
        "sofia/gateway/default/{e164}|sofia/gateway/backup/{e164}",
        "sofia/gateway/default/{e164}:_:sofia/gateway/b/{e164}",
        "{{x=1}}sofia/gateway/default/{e164}",
        "[x=1]sofia/gateway/default/{e164}",
        "sofia/gateway/default/{number.__class__}",
        "sofia/gateway/default/{number:>20}",
        "sofia/gateway/default/{0}",
        "sofia/gateway/default/{unknown}",
        "sofia/gateway/default/{e164}'",
        "sofia/gateway/$${default_gw}/{e164}",
        "sofia/gateway/default/{e164}&x",
        "",
    ],
)
def test_unsafe_templates_are_refused(template):
    with pytest.raises(ValueError):
        build_originate(SPEC, template)


INJECTIONS = [
    "5551230000,c2c_call_id=evil",
    "5551230000}sofia/gateway/evil/1",
    "5551230000'",
    "5551230000 &park",
    "${system(id)}",
    "5551230000|sofia/gateway/evil/1",
    "5551230000\n\nbgapi hupall",
    "++15551230000",
    "15551230000+",
    "5551230000)",
    "555123000٠",
    "",
    "+",
    "1" * 25,
]


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("field", ["caller_id_for_callee", "caller_id_for_caller"])
def test_caller_id_numbers_must_be_digits_with_an_optional_plus(field, value):
    with pytest.raises(ValueError, match="caller id"):
        build_originate(dataclasses.replace(SPEC, **{field: value}), TEMPLATE)


@pytest.mark.parametrize("field", ["caller_id_for_callee", "caller_id_for_caller"])
@pytest.mark.parametrize("value", [None, 5551230000, b"5551230000"])
def test_caller_ids_must_be_text(field, value):
    with pytest.raises(ValueError):
        build_originate(dataclasses.replace(SPEC, **{field: value}), TEMPLATE)


@pytest.mark.parametrize(
    ("number", "leg"),
    [("+442071234567", "b"), ("442071234567", "b"), ("02071234567", "b"), ("+15551230002", "a")],
)
def test_caller_id_numbers_in_every_format_pass_unchanged(number, leg):
    field = "caller_id_for_callee" if leg == "b" else "caller_id_for_caller"
    a_vars, _, b_vars, _ = parse_originate(
        build_originate(dataclasses.replace(SPEC, **{field: number}), TEMPLATE)
    )
    assert (b_vars if leg == "b" else a_vars)["origination_caller_id_number"] == number


# --- caller-ID names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Acme",
        "Acme Sales",
        "Acme Sales Line 2",
        "A&B Ltd.",
        "Dr. Who #1",
        "sales@acme",
        "+442071234567",
    ],
)
def test_names_reach_both_legs_whole_spaces_and_all(name):
    spec = dataclasses.replace(SPEC, caller_id_name_for_callee=name, caller_id_name_for_caller=name)
    command = build_originate(spec, TEMPLATE)
    a_vars, _, b_vars, _ = parse_originate(command)
    assert a_vars["origination_caller_id_name"] == name
    assert b_vars["origination_caller_id_name"] == name
    if " " in name:
        assert f"origination_caller_id_name='{name}'" in command


def test_a_blank_name_leaves_the_variable_unset():
    spec = dataclasses.replace(SPEC, caller_id_name_for_callee="", caller_id_name_for_caller="")
    a_vars, _, b_vars, _ = parse_originate(build_originate(spec, TEMPLATE))
    assert "origination_caller_id_name" not in a_vars
    assert "origination_caller_id_name" not in b_vars


HOSTILE_NAMES = [
    "O'Brien",
    "Acme, Inc",
    "Acme (Sales)",
    "Acme)",
    "{x=1}",
    "${system(id)}",
    "$${sounds_dir}",
    "a|b",
    "back\\slash",
    'say "hi"',
    "a:_:b",
    "x=1",
    "[x=1]",
    "<x=1>",
    "^^;a=1",
    "50%",
    " Acme",
    "Acme ",
    "Acme  Sales",
    "Acme\tSales",
    "Acme\nbgapi hupall",
    "Müller",
    "",
    "x" * 51,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES[:-2])
@pytest.mark.parametrize("field", ["caller_id_name_for_callee", "caller_id_name_for_caller"])
def test_hostile_names_are_refused(field, name):
    with pytest.raises(ValueError, match="name"):
        build_originate(dataclasses.replace(SPEC, **{field: name}), TEMPLATE)


@pytest.mark.parametrize("field", ["caller_id_name_for_callee", "caller_id_name_for_caller"])
@pytest.mark.parametrize("name", [None, 42, "x" * 51])
def test_names_must_be_text_of_a_sane_length(field, name):
    with pytest.raises(ValueError):
        build_originate(dataclasses.replace(SPEC, **{field: name}), TEMPLATE)


# --- ringback and early media ----------------------------------------------------------------


@pytest.mark.parametrize(
    "tone",
    [
        "%(2000,4000,440,480)",
        "%(400,200,400,450);%(400,2000,400,450)",
        "%(1000,4000,425)",
        "tone_stream://%(1000,4000,425);loops=-1",
        "tone_stream://v=-7;%(100,0,941.0,1477.0)",
        "local_stream://moh",
        "/usr/share/freeswitch/sounds/c2c/ringback.wav",
        "c2c/ringback.wav",
    ],
)
def test_the_ringback_reaches_the_caller_leg_whole(tone):
    command = build_originate(dataclasses.replace(SPEC, ringback=tone), TEMPLATE)
    a_vars, _, b_vars, _ = parse_originate(command)
    assert a_vars["transfer_ringback"] == tone
    assert "transfer_ringback" not in b_vars and "ringback" not in b_vars
    # every comma escaped, as in recording 16
    written = command.split("transfer_ringback=", 1)[1].split("}", 1)[0]
    assert written.count("\\,") == tone.count(",")


def test_no_ringback_when_off():
    a_vars, _, _, _ = parse_originate(
        build_originate(dataclasses.replace(SPEC, ringback=""), TEMPLATE)
    )
    assert "transfer_ringback" not in a_vars and "ringback" not in a_vars


HOSTILE_MEDIA = [
    "%(2000,4000,440,480)}sofia/gateway/evil/1",
    "%(2000,4000,440,480) &park",
    "/tmp/a file.wav",
    "/tmp/it's.wav",
    '/tmp/"x".wav',
    "${sounds_dir}/x.wav",
    "$${sounds_dir}/x.wav",
    "/tmp/x.wav|/tmp/y.wav",
    "/tmp/x.wav,c2c_call_id=evil",
    "/tmp/{x}.wav",
    "/tmp/[x].wav",
    "/tmp/<x>.wav",
    "/tmp/x\\,y.wav",
    "/tmp/x.wav\n",
    "/tmp/x:_:y.wav",
    "/tmp//x.wav",
    "/tmp/x/",
    "tone_stream://%(1,2,3)}x",
    "tone_stream://%(1,2,(3))",
    "tone_stream://%(1,2,3",
    "tone_stream://1,2,3)",
    "tone_stream://",
    "tone_stream://%(1,2,3):_:x",
    "tone_stream://%(1,2,3);>=2",
    "local_stream://",
    "local_stream://moh/../x",
    "http://example.com/x.wav",
    "shout://example.com/x.mp3",
    "say:hello",
    "é.wav",
    "",
    "/" + "x" * 600,
]


@pytest.mark.parametrize("value", HOSTILE_MEDIA)
def test_hostile_ringback_and_prompt_values_are_refused(value):
    with pytest.raises(ValueError, match="ringback"):
        build_originate(dataclasses.replace(SPEC, ringback=value or 5), TEMPLATE)
    with pytest.raises(ValueError, match="prompt"):
        build_originate(
            dataclasses.replace(SPEC, confirm=PressToConnect(prompt=value, timeout=10)), TEMPLATE
        )


def test_a_183_is_never_an_answer_on_either_leg_whatever_is_set():
    for spec in (SPEC, dataclasses.replace(SPEC, ringback="", confirm=CONFIRM)):
        a_vars, _, b_vars, _ = parse_originate(build_originate(spec, TEMPLATE))
        assert a_vars["ignore_early_media"] == "true"
        # 17b: with bridge_early_media, B's 183 is passed on but is not its answer
        assert (b_vars["ignore_early_media"], b_vars["bridge_early_media"]) == ("false", "true")


# --- press 1 to connect -------------------------------------------------------------------------


@pytest.mark.parametrize(("ring", "timeout"), [(30, 10), (5, 3), (300, 60), (10, 15)])
def test_press_1_variables_and_timeouts(ring, timeout):
    prompt = "/usr/share/freeswitch/sounds/c2c/press-1.wav"
    spec = dataclasses.replace(
        SPEC, ring_timeout=ring, confirm=PressToConnect(prompt=prompt, timeout=timeout)
    )
    a_vars, _, b_vars, _ = parse_originate(build_originate(spec, TEMPLATE))
    assert a_vars["group_confirm_key"] == "1"
    assert a_vars["group_confirm_file"] == prompt
    assert a_vars["group_confirm_timeout"] == str(timeout)  # from the answer (20b)
    assert a_vars["leg_timeout"] == str(ring)  # the caller's ring time
    # the backstop must outlast ring + confirmation, or it ends the call first (20b)
    assert int(a_vars["originate_timeout"]) == ring + timeout + CONFIRM_MARGIN_SECONDS
    assert int(a_vars["originate_timeout"]) > ring + timeout + 1
    assert not any(name.startswith("group_confirm") for name in b_vars)
    assert b_vars["leg_timeout"] == str(ring)


def test_the_recorded_prompt_tone_is_written_as_recording_19_wrote_it():
    command = build_originate(dataclasses.replace(SPEC, confirm=CONFIRM), TEMPLATE)
    assert "group_confirm_file=tone_stream://%(500\\,500\\,440);loops=10," in command
    a_vars, _, _, _ = parse_originate(command)
    assert a_vars["group_confirm_file"] == CONFIRM.prompt


def test_without_press_1_there_is_no_group_confirm_and_no_caller_leg_timeout():
    a_vars, _, _, _ = parse_originate(build_originate(SPEC, TEMPLATE))
    assert not any(name.startswith("group_confirm") for name in a_vars)
    assert "leg_timeout" not in a_vars


@pytest.mark.parametrize("timeout", [0, -1, 301, True, "10", 10.0, None])
def test_the_confirm_timeout_must_be_an_int_in_range(timeout):
    spec = dataclasses.replace(SPEC, confirm=PressToConnect(prompt=CONFIRM.prompt, timeout=timeout))
    with pytest.raises(ValueError, match="confirm timeout"):
        build_originate(spec, TEMPLATE)


@pytest.mark.parametrize("field", ["call_id", "caller_uuid", "callee_uuid"])
@pytest.mark.parametrize(
    "value",
    [
        "not-a-uuid",
        CALL_ID.upper(),
        "{" + CALL_ID + "}",
        "urn:uuid:" + CALL_ID,
        CALL_ID.replace("-", ""),
        CALL_ID + ",x=1",
        " " + CALL_ID,
        CALL_ID + "\n",
        "",
        None,
        42,
    ],
)
def test_ids_must_be_canonical_uuids(field, value):
    with pytest.raises(ValueError):
        build_originate(dataclasses.replace(SPEC, **{field: value}), TEMPLATE)


def test_ids_must_differ():
    with pytest.raises(ValueError):
        build_originate(dataclasses.replace(SPEC, callee_uuid=CALLER_UUID), TEMPLATE)
    with pytest.raises(ValueError):
        build_originate(dataclasses.replace(SPEC, call_id=CALLEE_UUID), TEMPLATE)


@pytest.mark.parametrize("field", ["ring_timeout", "time_limit_seconds"])
@pytest.mark.parametrize("value", [0, -1, True, "30", 30.0, None, 10**9])
def test_integers_must_be_ints_in_range(field, value):
    with pytest.raises(ValueError):
        build_originate(dataclasses.replace(SPEC, **{field: value}), TEMPLATE)


@pytest.mark.parametrize("role", ["caller", "callee"])
@pytest.mark.parametrize(
    ("country_code", "national"),
    [("1", "5551230001,x=1"), ("1}", "5551230001"), ("1", "555123000١"), ("1", "")],
)
def test_forged_phone_numbers_are_refused(role, country_code, national):
    forged = PhoneNumber("1", "5551230009")
    object.__setattr__(forged, "country_code", country_code)  # bypass the value's own check
    object.__setattr__(forged, "national", national)
    with pytest.raises(ValueError):
        build_originate(dataclasses.replace(SPEC, **{role: forged}), TEMPLATE)


@given(st.text(max_size=20), st.text(max_size=20))
def test_any_caller_id_is_refused_or_stays_one_variable(for_callee, for_caller):
    spec = dataclasses.replace(
        SPEC, caller_id_for_callee=for_callee, caller_id_for_caller=for_caller
    )
    try:
        command = build_originate(spec, TEMPLATE)
    except ValueError:
        return
    a_vars, _, b_vars, _ = parse_originate(command)
    assert a_vars["origination_caller_id_number"] == for_caller
    assert b_vars["origination_caller_id_number"] == for_callee
    assert re.fullmatch(r"\+?[0-9]+", for_caller) and re.fullmatch(r"\+?[0-9]+", for_callee)
    assert len(a_vars) == 8 and len(b_vars) == 9


_PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)


@given(
    st.one_of(_PRINTABLE, st.text(max_size=30)),
    st.one_of(_PRINTABLE, st.text(max_size=30)),
    st.one_of(_PRINTABLE, st.sampled_from(["%(", "tone_stream://%(", "/"])).map(
        lambda value: value if not value.endswith("(") else value + "1,2,3)"
    ),
)
def test_any_name_ringback_or_prompt_is_refused_or_read_back_exactly(name, ringback, prompt):
    """Whatever text goes in: refused, or FreeSWITCH's reading (the model) gives back exactly
    that value, in that one variable, with no other variable added or changed."""
    spec = dataclasses.replace(
        SPEC,
        caller_id_name_for_callee=name,
        caller_id_name_for_caller=name,
        ringback=ringback,
        confirm=PressToConnect(prompt=prompt, timeout=10),
    )
    try:
        command = build_originate(spec, TEMPLATE)
    except ValueError:
        return
    a_vars, a_target, b_vars, b_target = parse_originate(command)
    assert (a_target, b_target) == (
        "sofia/gateway/default/+15551230001",
        "sofia/gateway/default/+15551230002",
    )
    if name:
        assert a_vars.pop("origination_caller_id_name") == name
        assert b_vars.pop("origination_caller_id_name") == name
    if ringback:
        assert a_vars.pop("transfer_ringback") == ringback
    assert a_vars.pop("group_confirm_file") == prompt
    assert set(a_vars) == {
        "origination_uuid",
        "c2c_call_id",
        "c2c_leg",
        "ignore_early_media",
        "originate_timeout",
        "leg_timeout",
        "origination_caller_id_number",
        "group_confirm_key",
        "group_confirm_timeout",
    }
    assert set(b_vars) == {
        "origination_uuid",
        "c2c_call_id",
        "c2c_leg",
        "ignore_early_media",
        "bridge_early_media",
        "leg_timeout",
        "origination_caller_id_number",
        "execute_on_answer",
    }
    assert a_vars["c2c_call_id"] == b_vars["c2c_call_id"] == CALL_ID


# --- routes: each leg its own templates, several make a failover list ----------------------------

PRIMARY = "sofia/gateway/primary/{e164}"
BACKUP = "sofia/gateway/backup/00{country_code}{number}"
UK = "sofia/gateway/uk/{e164}"


def test_one_template_in_a_list_is_sent_exactly_as_before():
    assert build_originate(SPEC, (TEMPLATE,)) == EXPECTED
    assert build_originate(SPEC, TEMPLATE, [TEMPLATE]) == EXPECTED
    assert "fail_on_single_reject" not in EXPECTED


def test_each_leg_is_dialed_by_its_own_templates_joined_for_failover():
    a_vars, a_target, b_vars, b_target = parse_originate(
        build_originate(SPEC, (PRIMARY, BACKUP), (UK,))
    )
    assert a_target == "sofia/gateway/primary/+15551230001|sofia/gateway/backup/0015551230001"
    assert b_target == "sofia/gateway/uk/+15551230002"
    # Only the leg with a list moves on, and only when its gateway refused before dialing.
    assert a_vars["fail_on_single_reject"] == "!GATEWAY_DOWN:INVALID_GATEWAY"
    assert "fail_on_single_reject" not in b_vars
    # The {} in front of the list applies to every target of it: the same uuid and call id.
    assert a_vars["origination_uuid"] == CALLER_UUID and a_vars["c2c_leg"] == "caller"

    a_vars, a_target, b_vars, b_target = parse_originate(
        build_originate(SPEC, (UK,), (PRIMARY, BACKUP))
    )
    assert a_target == "sofia/gateway/uk/+15551230001"
    assert "fail_on_single_reject" not in a_vars
    # Inside &bridge(...) the list and its rule go into the callee's own {}.
    assert b_target == "sofia/gateway/primary/+15551230002|sofia/gateway/backup/0015551230002"
    assert b_vars["fail_on_single_reject"] == "!GATEWAY_DOWN:INVALID_GATEWAY"
    assert b_vars["origination_uuid"] == CALLEE_UUID


def test_the_callee_takes_the_callers_templates_when_given_none():
    _, a_target, b_vars, b_target = parse_originate(build_originate(SPEC, (PRIMARY, BACKUP)))
    assert a_target.split("|") == [
        "sofia/gateway/primary/+15551230001",
        "sofia/gateway/backup/0015551230001",
    ]
    assert b_target.split("|") == [
        "sofia/gateway/primary/+15551230002",
        "sofia/gateway/backup/0015551230002",
    ]
    assert b_vars["fail_on_single_reject"] == "!GATEWAY_DOWN:INVALID_GATEWAY"


def test_failover_with_press_1_keeps_the_confirm_variables():
    spec = dataclasses.replace(SPEC, confirm=CONFIRM)
    a_vars, _, _, _ = parse_originate(build_originate(spec, (PRIMARY, BACKUP), (UK, PRIMARY)))
    assert a_vars["group_confirm_key"] == "1"
    assert a_vars["fail_on_single_reject"] == "!GATEWAY_DOWN:INVALID_GATEWAY"


@pytest.mark.parametrize(
    "bad",
    [
        "sofia/gateway/b/{e164}|sofia/gateway/evil/1",  # a bar inside one template: a 3rd target
        "sofia/gateway/b/{e164},sofia/gateway/evil/1",
        "sofia/gateway/b/{e164}:_:sofia/gateway/evil/1",
        "[leg_timeout=1]sofia/gateway/b/{e164}",
        "{{origination_uuid=evil}}sofia/gateway/b/{e164}",
        "sofia/gateway/b/{e164})",
        "sofia/gateway/${evil}/{e164}",
        "sofia/gateway/b/{unknown}",
        "",
    ],
)
@pytest.mark.parametrize("leg", ["caller", "callee"])
def test_every_target_of_a_list_is_checked_on_its_own(bad, leg):
    templates = (PRIMARY, bad)
    args = (templates, (UK,)) if leg == "caller" else ((UK,), templates)
    with pytest.raises(ValueError, match=f"the {leg}'s template 2"):
        build_originate(SPEC, *args)


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ((), "no dial-string template"),
        ((PRIMARY,) * 11, "more than 10 failover targets"),
        ((PRIMARY, 5), "template 2 is not text"),
    ],
)
def test_lists_that_are_empty_too_long_or_not_text_are_refused(templates, message):
    with pytest.raises(ValueError, match=message):
        build_originate(SPEC, templates)
    with pytest.raises(ValueError, match=message):
        build_originate(SPEC, TEMPLATE, templates)


@given(
    gateways=st.lists(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), min_size=1, max_size=10
    ),
    national=st.from_regex(r"[2-9][0-9]{9}", fullmatch=True),
)
def test_the_targets_are_the_templates_filled_in_order(gateways, national):
    templates = tuple(f"sofia/gateway/{g}/{{e164}}" for g in gateways)
    spec = dataclasses.replace(SPEC, callee=PhoneNumber("44", national))
    _, a_target, b_vars, b_target = parse_originate(build_originate(spec, TEMPLATE, templates))
    assert a_target == "sofia/gateway/default/+15551230001"
    assert b_target.split("|") == [f"sofia/gateway/{g}/+44{national}" for g in gateways]
    assert ("fail_on_single_reject" in b_vars) == (len(gateways) > 1)

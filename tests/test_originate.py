import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2c.calls.originate import (
    BILLSEC_SAFETY_SECONDS,
    OriginateSpec,
    build_originate,
    dial_target,
)
from c2c.numbers import PhoneNumber

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
    caller_id_for_callee="15551230001",
    caller_id_for_caller="15551230002",
    ring_timeout=30,
    time_limit_seconds=10 * 60,
)

EXPECTED = (
    "originate {origination_uuid=1b9f4e0a-5d6c-4f7e-8a9b-0c1d2e3f4a5b,"
    "c2c_call_id=7f1c2a8e-3b1d-4c52-9a0e-0d4b6f1e2a10,c2c_leg=caller,ignore_early_media=true,"
    "originate_timeout=30,origination_caller_id_number=15551230002}"
    "sofia/gateway/default/+15551230001 "
    "&bridge({origination_uuid=2c0a5f1b-6e7d-4a8f-9b0c-1d2e3f4a5b6c,"
    "c2c_call_id=7f1c2a8e-3b1d-4c52-9a0e-0d4b6f1e2a10,c2c_leg=callee,ignore_early_media=true,"
    "leg_timeout=30,origination_caller_id_number=15551230001,"
    "execute_on_answer='sched_hangup +599 ALLOTTED_TIMEOUT'}"
    "sofia/gateway/default/+15551230002)"
)


# --- a model of how FreeSWITCH reads the command (esl-reference.md 2.1 and 2.2) -----------------


def api_split(command: str) -> list[str]:
    """switch_separate_string on ' ': single quotes group and are removed, backslash escapes."""
    tokens, current, quoted, escaped = [], "", False, False
    for char in command:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == "'":
            quoted = not quoted
        elif char == " " and not quoted:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if current:
        tokens.append(current)
    return tokens


def parse_leg(dial: str) -> tuple[dict[str, str], str]:
    """The {} variables (split on ',', no quoting left at this stage) and the dial target."""
    assert dial.startswith("{"), dial
    inner, _, target = dial[1:].partition("}")
    variables = {}
    for item in inner.split(","):
        name, sep, value = item.partition("=")
        assert sep, f"not name=value: {item!r}"
        assert name not in variables, f"{name} set twice"
        variables[name] = value
    return variables, target


def parse_originate(command: str):
    argv = api_split(command)
    assert argv[0] == "originate"
    assert len(argv) == 3, argv  # originate, A leg, &bridge(...)
    a_vars, a_target = parse_leg(argv[1])
    app, _, rest = argv[2].partition("(")
    assert app == "&bridge"
    arg, close, tail = rest.partition(")")  # the argument ends at the FIRST ')'
    assert close == ")" and tail == ""
    b_vars, b_target = parse_leg(arg)
    return a_vars, a_target, b_vars, b_target


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
        "origination_caller_id_number": "15551230002",
    }
    assert b_vars == {
        "origination_uuid": CALLEE_UUID,
        "c2c_call_id": CALL_ID,  # A's {} is not inherited by the &bridge leg
        "c2c_leg": "callee",
        "ignore_early_media": "true",
        "leg_timeout": "30",  # the callee's ring timeout (ALLOTTED_TIMEOUT on both legs, 06c)
        "origination_caller_id_number": "15551230001",
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
    "+15551230000",
    "5551230000)",
    "555123000٠",
    "",
    "1" * 18,
]


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("field", ["caller_id_for_callee", "caller_id_for_caller"])
def test_caller_ids_must_be_digits(field, value):
    with pytest.raises(ValueError):
        build_originate(dataclasses.replace(SPEC, **{field: value}), TEMPLATE)


@pytest.mark.parametrize("field", ["caller_id_for_callee", "caller_id_for_caller"])
@pytest.mark.parametrize("value", [None, 5551230000, b"5551230000"])
def test_caller_ids_must_be_text(field, value):
    with pytest.raises(ValueError):
        build_originate(dataclasses.replace(SPEC, **{field: value}), TEMPLATE)


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
    assert re.fullmatch(r"[0-9]+", for_caller) and re.fullmatch(r"[0-9]+", for_callee)
    assert len(a_vars) == 6 and len(b_vars) == 7

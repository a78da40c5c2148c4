"""The simulator's '|' failover list, as switch_ivr_originate.c runs it: a target that fails
before its channel ran gives way to the next unless fail_on_single_reject says the cause fails
the whole originate; the target that dials is the one whose events and channel name show."""

from __future__ import annotations

import pytest

from c2c.fakeswitch.originate import failover_chain, moves_on, parse_dial_string, parse_originate
from c2c.fakeswitch.scenarios import Scenario
from tests.test_fakeswitch_calls import (
    A,
    B,
    final,
    job_body,
    make_switch,
    names,
    run_call,
)

# gw1 is down for everyone; gw3 refuses before any channel with a cause that is not a gateway's.
SCENARIO = Scenario.from_dict(
    {
        "rules": [
            {"dial_string": "/gw1/", "action": "fail", "cause": "GATEWAY_DOWN"},
            {"dial_string": "/gw3/", "action": "fail", "cause": "INCOMPATIBLE_DESTINATION"},
            {"role": "caller", "action": "answer", "answer_after": 0, "hangup_after": None},
            {"action": "answer", "answer_after": 0, "hangup_after": 1},
        ]
    }
)
ONLY_GATEWAYS = ",fail_on_single_reject=!GATEWAY_DOWN:INVALID_GATEWAY"


def test_the_chain_is_the_first_leg_of_each_failover_group():
    legs = parse_dial_string("{x=1}sofia/gateway/gw1/+1,sofia/gateway/gw2/+1|sofia/gateway/gw3/+1")
    assert [leg.after for leg in legs] == ["", ",", "|"]
    chain = failover_chain(legs)
    assert [leg.target.gateway for leg in chain] == ["gw1", "gw3"]
    assert all(leg.variables == {"x": "1"} for leg in chain)  # {} applies to every target
    request = parse_originate("{x=1}sofia/gateway/gw1/+1|sofia/gateway/gw2/+1 &park")
    assert request.leg.target.gateway == "gw1"
    assert [leg.target.gateway for leg in request.alternatives] == ["gw2"]


@pytest.mark.parametrize(
    ("cause", "rule", "moves"),
    [
        ("GATEWAY_DOWN", None, True),
        ("USER_BUSY", None, True),
        ("USER_BUSY", "false", True),
        ("GATEWAY_DOWN", "true", False),
        ("USER_BUSY", "USER_BUSY:CALL_REJECTED", False),
        ("GATEWAY_DOWN", "USER_BUSY:CALL_REJECTED", True),
        ("GATEWAY_DOWN", "!GATEWAY_DOWN:INVALID_GATEWAY", True),
        ("invalid_gateway", "!GATEWAY_DOWN:INVALID_GATEWAY", True),
        ("USER_BUSY", "!GATEWAY_DOWN:INVALID_GATEWAY", False),
    ],
)
def test_whether_a_failed_target_gives_way(cause, rule, moves):
    assert moves_on(cause, rule) is moves


@pytest.fixture
def failing_switch():
    from tests.fixtures.fakeswitch.helpers import RawClient
    from tests.test_fakeswitch_calls import CHANNEL_EVENTS

    fake = make_switch(scenario=SCENARIO).start()
    raw = RawClient(fake.port)
    raw.login()
    raw.command(CHANNEL_EVENTS)
    yield fake, raw
    raw.close()
    fake.stop()


def _originate(caller_targets: str, callee_targets: str, extra: str = "") -> str:
    a = f"origination_uuid={A},ignore_early_media=true,c2c_call_id=42{extra}"
    b = f"origination_uuid={B},ignore_early_media=true,c2c_call_id=42{extra}"
    return f"originate {{{a}}}{caller_targets} &bridge({{{b}}}{callee_targets})"


def test_a_gateway_down_gives_way_to_the_next_on_both_legs(failing_switch):
    switch, listener = failing_switch
    command = _originate(
        "sofia/gateway/gw1/+15551230001|sofia/gateway/gw2/+15551230001",
        "sofia/gateway/gw1/+15551230002|sofia/gateway/gw2/+15551230002",
        ONLY_GATEWAYS,
    )
    events = run_call(switch, listener, command)
    assert job_body(events) == f"+OK {A}\n"
    # No event tells of the refused target; each leg runs on the second gateway, same uuid.
    creates = [e for e in events if e.name == "CHANNEL_CREATE"]
    assert [e.get("Channel-Name") for e in creates] == [
        "sofia/external/+15551230001",
        "sofia/external/+15551230002",
    ]
    assert [e.get("variable_sip_to_host") for e in creates] == ["gw2:5060", "gw2:5060"]
    assert final(events, B).get("Hangup-Cause") == "NORMAL_CLEARING"
    assert "CHANNEL_BRIDGE" in names(events, A)


def test_a_cause_the_rule_does_not_pass_fails_the_leg(failing_switch):
    switch, listener = failing_switch
    command = _originate(
        "sofia/gateway/gw3/+15551230001|sofia/gateway/gw2/+15551230001",
        "sofia/gateway/gw2/+15551230002",
        ONLY_GATEWAYS,
    )
    events = run_call(switch, listener, command)
    assert job_body(events) == "-ERR INCOMPATIBLE_DESTINATION\n"
    assert names(events) == ["BACKGROUND_JOB"]


def test_without_a_rule_any_failure_before_a_channel_gives_way(failing_switch):
    switch, listener = failing_switch
    command = _originate(
        "sofia/gateway/gw3/+15551230001|sofia/gateway/gw1/+15551230001|sofia/gateway/gw2/+15551230001",
        "sofia/gateway/gw2/+15551230002",
    )
    events = run_call(switch, listener, command)
    assert job_body(events) == f"+OK {A}\n"


def test_when_every_target_fails_the_last_ones_cause_is_the_answer(failing_switch):
    switch, listener = failing_switch
    command = _originate(
        "sofia/gateway/gw3/+15551230001|sofia/gateway/gw1/+15551230001",
        "sofia/gateway/gw2/+15551230002",
    )
    events = run_call(switch, listener, command)
    assert job_body(events) == "-ERR GATEWAY_DOWN\n"

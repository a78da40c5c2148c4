"""Pure parts of the simulator: originate parsing, scenarios, filters, causes, the clock, the
hangup arithmetic."""

from __future__ import annotations

import gevent
import gevent.event
import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2c.fakeswitch import causes, sofia
from c2c.fakeswitch.channels import CallerProfile, Channel, ProfileTimes, Variables
from c2c.fakeswitch.clock import Clock
from c2c.fakeswitch.events import FsEvent
from c2c.fakeswitch.originate import (
    DialStringError,
    OriginateUsageError,
    parse_application,
    parse_dial_string,
    parse_originate,
    parse_target,
    parse_variables,
    split_arguments,
)
from c2c.fakeswitch.scenarios import CALLEE, CALLER, Scenario, ScenarioError
from c2c.fakeswitch.subscriptions import Subscription, passes_filters

# ------------------------------------------------------------------------------------------
# originate


def test_split_arguments_quotes_and_escapes():
    text = r"{a='x y',b=1}sofia/gw &bridge(x) XML default 'John Doe' 123 \'z"
    assert split_arguments(text) == [
        "{a=x y,b=1}sofia/gw",
        "&bridge(x)",
        "XML",
        "default",
        "John Doe",
        "123",
        "'z",
    ]
    assert split_arguments("  a   b ") == ["a", "b"]


def test_parse_variables():
    assert parse_variables("a=1,b=2") == {"a": "1", "b": "2"}
    assert parse_variables(r"a=1\,2,b=3") == {"a": "1,2", "b": "3"}
    assert parse_variables("^^;a=1,2;b=3") == {"a": "1,2", "b": "3"}
    assert parse_variables("a='x,y',b") == {"a": "x,y"}
    assert list(parse_variables("a=1,b=2,a=3")) == ["b", "a"]


def test_dial_string_global_and_leg_variables():
    legs = parse_dial_string(
        "{a=1,b=2}{c=3}[b=9,d=4]sofia/gateway/gw1/+15551230001,sofia/internal/2000@10.0.0.1:5070"
    )
    first = legs[0]
    assert first.variables == {"a": "1", "c": "3", "b": "9", "d": "4"}
    assert list(first.variables) == ["a", "c", "b", "d"]
    assert first.target.gateway == "gw1" and first.target.number == "15551230001"
    assert first.target.channel_name == "sofia/external/+15551230001"
    second = legs[1].target
    assert (second.user, second.host, second.port, second.number) == (
        "2000",
        "10.0.0.1",
        5070,
        "2000",
    )
    assert second.channel_name == "sofia/internal/2000@10.0.0.1:5070"


def test_targets():
    assert parse_target("loopback/9998/default").number == "9998"
    assert parse_target("error/user_busy").cause == "USER_BUSY"
    with pytest.raises(DialStringError) as info:
        parse_target("woomera/1234")
    assert info.value.cause == "CHAN_NOT_IMPLEMENTED"
    with pytest.raises(DialStringError):
        parse_target("sofia/gateway/gw1")


def test_application_args_end_at_the_first_paren():
    assert parse_application("&bridge({a=1}sofia/gateway/g/+1)") == (
        "bridge",
        "{a=1}sofia/gateway/g/+1",
    )
    assert parse_application("&park") == ("park", "")
    assert parse_application("&bridge(x(y)z)") == ("bridge", "x(y")


def test_parse_originate():
    request = parse_originate(
        "{origination_uuid=u1,execute_on_answer='sched_hangup +5 ALLOTTED_TIMEOUT'}"
        "sofia/gateway/gw1/+15551230001 &bridge([leg_timeout=5]sofia/gateway/gw1/+15551230002)"
        " undef undef Alice 555 30"
    )
    assert request.leg.variables["execute_on_answer"] == "sched_hangup +5 ALLOTTED_TIMEOUT"
    assert request.application == "bridge"
    assert request.application_args == "[leg_timeout=5]sofia/gateway/gw1/+15551230002"
    assert (request.cid_name, request.cid_num, request.timeout) == ("Alice", "555", 30)
    assert parse_originate("sofia/gateway/g/+1 1000").extension == "1000"
    assert parse_originate("sofia/gateway/g/+1 &park a b c d 0").timeout == 60
    for bad in ("sofia/gateway/g/+1", "a b c d e f g h"):
        with pytest.raises(OriginateUsageError):
            parse_originate(bad)


# ------------------------------------------------------------------------------------------
# scenarios


def test_default_scenario_table():
    scenario = Scenario.default()

    def action(number: str, role: str = CALLEE) -> str:
        behaviour = scenario.behaviour_for(parse_target(f"sofia/gateway/gw/+{number}"), role)
        return behaviour.action if behaviour.action != "refuse" else str(behaviour.sip_status)

    assert action("15551230486") == "486"
    assert action("15551230503") == "503"
    assert action("15551230603") == "603"
    assert action("15551230404") == "404"
    assert action("15551230408") == "no_answer"
    assert action("15551230809") == "fail"
    callee = scenario.behaviour_for(parse_target("sofia/gateway/gw/+15551230001"), CALLEE)
    assert (callee.answer_after, callee.hangup_after) == (1.0, 5.0)
    caller = scenario.behaviour_for(parse_target("sofia/gateway/gw/+15551230001"), CALLER)
    assert caller.hangup_after is None
    forever = scenario.behaviour_for(parse_target("sofia/gateway/gw/+15551230999"), CALLEE)
    assert forever.action == "answer" and forever.hangup_after is None


@given(st.from_regex(r"[1-9][0-9]{3,9}", fullmatch=True))
def test_busy_suffix_whatever_the_prefix(prefix):
    scenario = Scenario.default()
    behaviour = scenario.behaviour_for(parse_target(f"sofia/gateway/gw/+{prefix}0486"), CALLER)
    assert behaviour.refuse_cause == "USER_BUSY"


def test_rule_matching_order_and_keys():
    scenario = Scenario.from_dict(
        {
            "rules": [
                {"exact": "100", "action": "busy"},
                {"prefix": "44", "role": "caller", "action": "reject"},
                {"regex": "^1555", "action": "congestion"},
                {"dial_string": "@10\\.", "action": "invalid"},
                {"action": "no_answer"},
            ]
        }
    )

    def status(target: str, role: str = CALLEE) -> object:
        behaviour = scenario.behaviour_for(parse_target(target), role)
        return behaviour.sip_status if behaviour.action == "refuse" else behaviour.action

    assert status("sofia/gateway/g/100") == 486
    assert status("sofia/gateway/g/+4420", CALLER) == 603
    assert status("sofia/gateway/g/+4420", CALLEE) == "no_answer"
    assert status("sofia/gateway/g/+15550") == 503
    assert status("sofia/internal/2000@10.1.1.1") == 404
    assert status("sofia/internal/2000@127.0.0.1") == "no_answer"


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "explode"},
        {"action": "busy", "bogus": 1},
        {"prefix": "1a", "action": "busy"},
        {"regex": "(", "action": "busy"},
        {"action": "refuse", "sip_status": 200},
        {"action": "answer", "answer_after": -1},
        {"action": "fail", "cause": "NOT_A_CAUSE"},
        {"role": "boss", "action": "busy"},
    ],
)
def test_bad_rules_are_refused(rule):
    with pytest.raises(ScenarioError):
        Scenario.from_dict({"rules": [rule]})


def test_scenario_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"rules": [{"suffix": "7", "action": "answer", "hangup_after": 3}]}')
    rule = Scenario.load(path).rules[0]
    assert rule.behaviour.hangup_after == 3.0
    with pytest.raises(ScenarioError):
        Scenario.load(tmp_path / "missing.json")


# ------------------------------------------------------------------------------------------
# filters


def event(**headers: str) -> FsEvent:
    return FsEvent([("Event-Name", headers.pop("name", "CHANNEL_CREATE")), *headers.items()])


def test_filters_match_like_mod_event_socket():
    call = event(variable_c2c_call_id="c2c-abc-1", Unique_ID="u1")
    job = event(name="BACKGROUND_JOB")
    assert passes_filters(call, [("variable_c2c_call_id", "/^c2c-abc/")])
    assert not passes_filters(job, [("variable_c2c_call_id", "/^c2c-abc/")])
    assert passes_filters(
        job, [("variable_c2c_call_id", "/^c2c/"), ("Event-Name", "background_job")]
    )
    assert not passes_filters(call, [("variable_c2c_call_id", "/^C2C-ABC/")])
    assert passes_filters(call, [("variable_c2c_call_id", "/^C2C-ABC/i")])
    assert passes_filters(call, [("variable_c2c_call_id", "C2C-ABC-1")])
    assert not passes_filters(call, [("variable_c2c_call_id", "c2c-abc")])


def test_negative_filters_and_the_literal_quirk():
    call = event(variable_x="a", Other="b")
    assert not passes_filters(call, [("Other", "b"), ("variable_x", "-a")])
    assert passes_filters(call, [("Other", "b"), ("variable_x", "-z")])
    # regex mode comes from the stored value's first char: '-/a/' compares literally
    assert passes_filters(call, [("Other", "b"), ("variable_x", "-/a/")])
    assert passes_filters(event(variable_x="/a/"), [("variable_x", "+/a/")])
    assert passes_filters(event(variable_x="15551234567"), [("variable_x", "_1NXXXXXXXXX")])


def test_subscription_commands():
    subscription = Subscription()
    assert subscription.subscribe("json CHANNEL_CREATE") == "+OK event listener enabled json"
    assert subscription.wants(event()) and not subscription.wants(event(name="HEARTBEAT"))
    assert subscription.subscribe("ALL") == "+OK event listener enabled plain"
    assert subscription.unsubscribe("HEARTBEAT") == "+OK events nixed"
    assert not subscription.all_events and "CHANNEL_ANSWER" in subscription.names
    assert not subscription.wants(event(name="HEARTBEAT"))
    assert subscription.subscribe("plain CUSTOM sofia::register") == (
        "+OK event listener enabled plain"
    )
    assert subscription.wants(event(name="CUSTOM", **{"Event-Subclass": "sofia::register"}))
    assert subscription.filter_command("add Unique-ID u1") == "+OK filter added. [Unique-ID]=[u1]"
    assert subscription.filter_command("delete Unique-ID") == ("+OK filter deleted. [Unique-ID][]")
    assert subscription.filters == []


# ------------------------------------------------------------------------------------------
# causes, variables, clock, hangup arithmetic


def test_causes():
    assert causes.cause_from_string("user_busy") == "USER_BUSY"
    assert causes.cause_from_string("17") == "USER_BUSY"
    assert causes.cause_from_string("BOGUS") == "NORMAL_CLEARING"
    assert causes.q850("ALLOTTED_TIMEOUT") == 16 and causes.q850("USER_BUSY") == 17
    assert causes.sip_status_to_cause(503) == "NORMAL_TEMPORARY_FAILURE"
    assert causes.sip_status_to_cause(499) == "NORMAL_UNSPECIFIED"
    assert causes.dialstatus("CALL_REJECTED") == "DONTCALL"


def test_setting_a_variable_again_moves_it_to_the_end():
    variables = Variables()
    variables.update([("a", "1"), ("b", "2"), ("c", "3")])
    variables.set("a", "1")
    variables.touch("b")
    variables.touch("missing")
    assert [name for name, _ in variables.items()] == ["c", "a", "b"]
    variables.set("c", None)
    assert "c" not in variables


def test_clock_at_scale_zero_fires_in_virtual_order():
    clock = Clock(0)
    clock.start()
    fired: list[tuple[str, float]] = []
    start = clock.now()
    clock.call_later(60, lambda: fired.append(("timeout", clock.now() - start)))
    clock.call_later(1, lambda: fired.append(("answer", clock.now() - start)))
    cancelled = clock.call_later(2, lambda: fired.append(("cancelled", 0)))
    cancelled.cancel()
    gevent.sleep(0.05)
    clock.stop()
    assert [name for name, _ in fired] == ["answer", "timeout"]
    assert fired[0][1] == pytest.approx(1, abs=0.05)
    assert fired[1][1] == pytest.approx(60, abs=0.05)


def test_clock_scales_real_time():
    clock = Clock(0.01)
    clock.start()
    done = gevent.event.Event()
    clock.call_later(5, done.set)  # 50 ms
    assert done.wait(timeout=2)
    clock.stop()


def test_billsec_is_whole_second_arithmetic_on_epoch_seconds():
    second = 1_795_733_931_000_000
    times = ProfileTimes(
        profile_created=second + 900_000, created=second + 900_000, answered=second + 950_000
    )
    channel = Channel("u", "sofia/x/1", CallerProfile(caller_id_number="1", times=times))
    sofia.hangup_timestamps(channel, "NORMAL_CLEARING", None, None, second + 2_100_000)
    v = channel.variables
    assert v.get("billsec") == "2"  # 1795733933 - 1795733931, though only 1.15 s passed
    assert v.get("billmsec") == "1150" and v.get("billusec") == "1150000"
    assert v.get("duration") == "2" and v.get("mduration") == "1200"
    assert v.get("hangup_cause_q850") == "16" and v.get("answer_epoch") == "1795733931"
    assert "bridge_stamp" not in v and v.get("bridge_epoch") == "0"

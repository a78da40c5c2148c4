import json
from pathlib import Path

import pytest

from c2c.calls.outcome import (
    CallOutcome,
    billable_minutes,
    minutes_from_seconds,
    reason_for,
    reason_for_cause,
)
from c2c.domain.confirmation import Confirmation
from c2c.domain.states import Reason
from tests.esl_captures import captures_dir

_CAPTURES_DIR = captures_dir()
CAPTURES = (_CAPTURES_DIR or Path("/nonexistent")) / "summary.json"


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(0, 0), (1, 1), (59, 1), (60, 1), (61, 2), (119, 2), (120, 2), (121, 3), (3600, 60)],
)
def test_minutes_round_up(seconds, minutes):
    assert minutes_from_seconds(seconds) == minutes


def test_negative_seconds_are_a_bug():
    with pytest.raises(ValueError):
        minutes_from_seconds(-1)


@pytest.mark.parametrize(
    ("seconds", "limit", "billed"),
    [
        (0, 5, 0),
        (1, 5, 1),
        (299, 5, 5),
        (300, 5, 5),
        (301, 5, 5),  # rounding up would bill 6: the limit wins
        (3600, 5, 5),
        (61, 1, 1),
        (61, None, 2),
        (-3, 5, 0),  # clock skew between legs bills nothing rather than failing settlement
        (30, 0, 0),
    ],
)
def test_billable_minutes_never_exceed_the_limit(seconds, limit, billed):
    assert billable_minutes(seconds, limit) == billed


CAUSES = [
    ("USER_BUSY", Reason.BUSY),
    ("NO_ANSWER", Reason.RING_TIMEOUT),
    ("NO_USER_RESPONSE", Reason.RING_TIMEOUT),
    ("RECOVERY_ON_TIMER_EXPIRE", Reason.RING_TIMEOUT),
    ("ALLOTTED_TIMEOUT", Reason.RING_TIMEOUT),
    ("NORMAL_CIRCUIT_CONGESTION", Reason.CONGESTION),
    ("SWITCH_CONGESTION", Reason.CONGESTION),
    ("NORMAL_TEMPORARY_FAILURE", Reason.CONGESTION),
    ("ORIGINATOR_CANCEL", Reason.HUNG_UP),
    ("NORMAL_CLEARING", Reason.HUNG_UP),
    ("CALL_REJECTED", Reason.HUNG_UP),
    # all else: failed
    ("UNALLOCATED_NUMBER", Reason.FAILED),
    ("GATEWAY_DOWN", Reason.FAILED),
    ("INVALID_GATEWAY", Reason.FAILED),
    ("DESTINATION_OUT_OF_ORDER", Reason.FAILED),
    ("INCOMPATIBLE_DESTINATION", Reason.FAILED),
    ("SYSTEM_SHUTDOWN", Reason.FAILED),
    ("MANAGER_REQUEST", Reason.FAILED),
    ("PROGRESS_TIMEOUT", Reason.FAILED),
    ("NORMAL_UNSPECIFIED", Reason.FAILED),
    ("BOGUS", Reason.FAILED),
    ("", Reason.FAILED),
    (None, Reason.FAILED),
    # tolerant of case and stray whitespace
    ("user_busy", Reason.BUSY),
    (" NO_ANSWER\n", Reason.RING_TIMEOUT),
]


@pytest.mark.parametrize(("cause", "reason"), CAUSES)
def test_each_cause_on_the_caller_leg_before_answer(cause, reason):
    assert reason_for_cause(cause) is reason
    assert reason_for(cause, None, caller_answered=False, bridged=False, caller_vars={}) is reason


@pytest.mark.parametrize(("cause", "reason"), [row for row in CAUSES if row[0]])
def test_each_cause_on_the_callee_leg_after_the_caller_answered(cause, reason):
    # The caller's leg usually ends NORMAL_CLEARING whatever befell the callee: it must not decide.
    assert reason_for("NORMAL_CLEARING", cause, True, False, {}) is reason


def test_the_callee_leg_does_not_decide_while_the_caller_never_answered():
    assert reason_for("USER_BUSY", "NO_ANSWER", False, False, {}) is Reason.BUSY


@pytest.mark.parametrize(
    ("caller_vars", "reason"),
    [
        ({"originate_disposition": "GATEWAY_DOWN"}, Reason.FAILED),
        ({"variable_originate_disposition": "USER_BUSY"}, Reason.BUSY),
        (
            {"originate_disposition": "SUCCESS", "last_bridge_hangup_cause": "NO_ANSWER"},
            Reason.RING_TIMEOUT,
        ),
        (
            {"originate_disposition": "", "variable_last_bridge_hangup_cause": "USER_BUSY"},
            Reason.BUSY,
        ),
        ({"originate_failed_cause": "NORMAL_TEMPORARY_FAILURE"}, Reason.CONGESTION),
        ({}, Reason.HUNG_UP),  # nothing known: the caller's own NORMAL_CLEARING
    ],
)
def test_callee_channel_that_never_existed(caller_vars, reason):
    assert reason_for("NORMAL_CLEARING", None, True, False, caller_vars) is reason


@pytest.mark.parametrize(
    "causes",
    [
        ("NORMAL_CLEARING", "NORMAL_CLEARING"),
        ("ALLOTTED_TIMEOUT", "NORMAL_CLEARING"),
        ("SYSTEM_SHUTDOWN", None),
    ],
)
def test_bridged_calls_have_no_reason(causes):
    assert reason_for(causes[0], causes[1], True, True, {}) is None


# The cause combinations recorded on a real FreeSWITCH (esl-captures/summary.json), as a two-leg
# call sees them: (scenario, caller cause, callee cause, caller answered, bridged, caller's
# originate_disposition / last_bridge_hangup_cause, expected reason).
RECORDED = [
    ("03_sipp_answer_bridge_5090_to_5091", "NORMAL_CLEARING", "NORMAL_CLEARING", True, True,
     {"originate_disposition": "SUCCESS", "last_bridge_hangup_cause": "NORMAL_CLEARING"}, None),
    ("04_sipp_486_busy", "USER_BUSY", None, False, False, {}, Reason.BUSY),
    ("05_sipp_503_congestion", "NORMAL_TEMPORARY_FAILURE", None, False, False, {}, Reason.CONGESTION),
    ("06_sipp_ring_noanswer_call_timeout5", "NO_ANSWER", None, False, False, {}, Reason.RING_TIMEOUT),
    ("06a_sipp_ring_noanswer_originate_timeout5", "NO_ANSWER", None, False, False, {},
     Reason.RING_TIMEOUT),
    ("06d_sipp_ring_noanswer_leg_timeout5", "ALLOTTED_TIMEOUT", None, False, False, {},
     Reason.RING_TIMEOUT),
    ("06e_sipp_ring_noanswer_positional_timeout5", "NO_ANSWER", None, False, False, {},
     Reason.RING_TIMEOUT),
    ("06b_sipp_answer_then_bridge_to_486", "USER_BUSY", "USER_BUSY", True, False,
     {"originate_disposition": "USER_BUSY", "last_bridge_hangup_cause": "USER_BUSY"}, Reason.BUSY),
    ("06c_sipp_answer_then_bridge_to_noanswer_leg_timeout5", "ALLOTTED_TIMEOUT", "ALLOTTED_TIMEOUT",
     True, False,
     {"originate_disposition": "ALLOTTED_TIMEOUT", "last_bridge_hangup_cause": "ALLOTTED_TIMEOUT"},
     Reason.RING_TIMEOUT),
    ("07c_uuid_kill_while_ringing", "NORMAL_CLEARING", None, False, False, {}, Reason.HUNG_UP),
    ("09b_execute_on_answer_sched_hangup5_bridged", "ALLOTTED_TIMEOUT", "NORMAL_CLEARING", True,
     True, {"originate_disposition": "SUCCESS"}, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("scenario", "caller", "callee", "answered", "bridged", "caller_vars", "reason"),
    RECORDED,
    ids=[row[0] for row in RECORDED],
)
def test_recorded_scenarios(scenario, caller, callee, answered, bridged, caller_vars, reason):
    assert reason_for(caller, callee, answered, bridged, caller_vars) is reason
    if callee is not None and not bridged:
        # the same call judged from the caller leg's variables alone (a lost callee event)
        assert reason_for(caller, None, answered, bridged, caller_vars) is reason


@pytest.mark.skipif(not CAPTURES.exists(), reason="the shared recordings are not present")
def test_the_recorded_table_matches_summary_json():
    rows = json.loads(CAPTURES.read_text())
    by_scenario: dict[str, dict[str, dict]] = {}
    for row in rows:
        leg = row.get("leg") or ""
        # the A leg dials 1000@...; the bridged leg dials 2000@...
        role = "callee" if "/2000@" in leg else "caller"
        by_scenario.setdefault(row["scenario"], {})[role] = row
    for scenario, caller, callee, *_ in RECORDED:
        legs = by_scenario[scenario]
        assert legs["caller"]["Hangup-Cause"] == caller, scenario
        if callee is not None:
            assert legs["callee"]["Hangup-Cause"] == callee, scenario


def test_call_outcome_answered():
    outcome = CallOutcome.decide(
        caller_cause="NORMAL_CLEARING",
        callee_cause="ALLOTTED_TIMEOUT",
        caller_answered=True,
        bridged=True,
        bridged_seconds=599,
        limit_minutes=10,
    )
    assert outcome == CallOutcome(answered=True, minutes=10, reason=None, billsec=599)


def test_call_outcome_not_answered_bills_nothing():
    outcome = CallOutcome.decide(
        caller_cause="NORMAL_CLEARING",
        callee_cause="USER_BUSY",
        caller_answered=True,
        bridged=False,
        bridged_seconds=7,  # ignored: the two were never connected
        limit_minutes=10,
    )
    assert outcome == CallOutcome(answered=False, minutes=0, reason=Reason.BUSY, billsec=0)


def test_call_outcome_is_capped_at_the_limit():
    outcome = CallOutcome.decide(
        caller_cause="NORMAL_CLEARING",
        callee_cause="NORMAL_CLEARING",
        caller_answered=True,
        bridged=True,
        bridged_seconds=61,
        limit_minutes=1,
    )
    assert (outcome.minutes, outcome.billsec) == (1, 61)


@pytest.mark.skipif(not CAPTURES.exists(), reason="the shared recordings are not present")
def test_every_recorded_unconfirmed_caller_is_a_ring_timeout():
    """Recordings 20 and 20b: callers who answered and never pressed 1 ended NO_ANSWER or
    ALLOTTED_TIMEOUT, the job said -ERR, no callee leg existed: all reason 3, none billed."""
    rows = [row for row in json.loads(CAPTURES.read_text())
            if row["scenario"].startswith(("20_", "20b_"))]
    assert len(rows) == 5
    assert {row["Hangup-Cause"] for row in rows} == {"NO_ANSWER", "ALLOTTED_TIMEOUT"}
    for row in rows:
        assert row["bgapi_reply_body"].startswith("-ERR ")
        assert row["variable_endpoint_disposition"] == "ANSWER"  # the caller's leg was answered
        outcome = CallOutcome.decide(
            caller_cause=row["Hangup-Cause"], callee_cause=None, caller_answered=True,
            bridged=False, bridged_seconds=int(row["variable_billsec"]), limit_minutes=5,
            confirm=Confirmation.UNCONFIRMED)
        assert (outcome.answered, outcome.minutes, outcome.reason, outcome.confirm) == (
            False, 0, Reason.RING_TIMEOUT, "unconfirmed")

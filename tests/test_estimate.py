"""A call whose end was never seen: the estimate from what the store saw (pure, no store)."""

from __future__ import annotations

from typing import Any

import pytest

from c2c.calls.estimate import (
    end_seen,
    estimated_seconds,
    known_alive_until,
    remeasured,
    settle_unseen,
)
from c2c.calls.lanes import retry_delay
from c2c.domain.states import Reason

T = 1_800_000_000.0


def row(**fields: Any) -> dict[str, Any]:
    """A call row bridged at T+10 (caller answered at T+5), no end seen, 5 minutes reserved."""
    base: dict[str, Any] = {
        "state": "bridged",
        "caller_answered_at": T + 5,
        "callee_answered_at": T + 10,
        "bridged_at": T + 10,
        "caller_gone_at": None,
        "callee_gone_at": None,
        "caller_hangup_cause": None,
        "callee_hangup_cause": None,
        "originate_error": None,
        "callee_fate": None,
        "billsec": None,
        "confirm": None,
        "alive_at": None,
        "max_minutes": 5,
        "deadline_at": T + 500,
        "recheck_at": None,
    }
    return {**base, **fields}


def test_billed_from_the_bridge_to_the_switchs_last_sign_of_life():
    outcome, ended_at = settle_unseen(row(), switch_heard_at=T + 130.9)
    assert (outcome.answered, outcome.billsec, outcome.minutes, outcome.reason) == (
        True, 120, 2, None)
    assert outcome.estimated and ended_at == T + 130


def test_the_latest_of_the_heartbeat_and_the_channel_found_alive_wins():
    call = row(alive_at=T + 200)
    assert known_alive_until(call, T + 130) == T + 200
    assert known_alive_until(call, T + 250) == T + 250
    assert known_alive_until(row(), None) is None
    outcome, _ = settle_unseen(call, switch_heard_at=T + 130)
    assert (outcome.billsec, outcome.minutes) == (190, 4)


@pytest.mark.parametrize(
    ("alive", "seconds", "minutes"),
    [
        (T + 10, 1, 1),  # the bridge itself: they were connected, at least a moment
        (T + 9, 1, 1),  # clock skew between the switch's and our times
        (T + 70, 60, 1),  # exactly a minute
        (T + 70.99, 60, 1),  # whole seconds, as FreeSWITCH counts billsec
        (T + 71, 61, 2),  # rounded up as usual
        (T + 310, 300, 5),  # the whole reservation
        (T + 9_999, 300, 5),  # never beyond it
    ],
)
def test_rounding_and_the_cap_at_the_reservation(alive, seconds, minutes):
    assert estimated_seconds(row(), alive) == seconds
    outcome, _ = settle_unseen(row(alive_at=alive))
    assert (outcome.answered, outcome.billsec, outcome.minutes) == (True, seconds, minutes)


def test_only_with_nothing_better_the_deadline():
    outcome, ended_at = settle_unseen(row(deadline_at=T + 100))
    assert (outcome.billsec, outcome.minutes, outcome.estimated) == (90, 2, True)
    assert ended_at == T + 100
    outcome, _ = settle_unseen(row())  # deadline far away: the reservation
    assert outcome.minutes == 5


def test_bridged_known_from_the_callee_answer_alone():
    outcome, _ = settle_unseen(row(bridged_at=None), switch_heard_at=T + 40)
    assert (outcome.answered, outcome.billsec, outcome.minutes) == (True, 30, 1)


def test_a_seen_end_is_not_an_estimate():
    caller_end = row(caller_gone_at=T + 75, caller_hangup_cause="NORMAL_CLEARING")
    outcome, ended_at = settle_unseen(caller_end, switch_heard_at=T + 400)
    assert (outcome.billsec, outcome.minutes, outcome.estimated) == (65, 2, False)
    assert ended_at is None
    callee_end = row(callee_gone_at=T + 40, billsec=30, callee_hangup_cause="NORMAL_CLEARING")
    assert end_seen(callee_end)
    outcome, _ = settle_unseen(callee_end, switch_heard_at=T + 400)
    assert (outcome.billsec, outcome.minutes, outcome.estimated) == (30, 1, False)


def test_caller_answered_no_bridge_is_the_usual_not_answered_outcome():
    call = row(state="caller_answered", callee_answered_at=None, bridged_at=None)
    outcome, ended_at = settle_unseen(call, switch_heard_at=T + 20)
    assert (outcome.answered, outcome.minutes, outcome.reason, outcome.estimated) == (
        False, 0, Reason.FAILED, True)
    assert ended_at == T + 20
    fated = {**call, "callee_fate": "USER_BUSY"}  # from the caller leg's variables
    assert settle_unseen(fated)[0].reason is Reason.BUSY


def test_press_1_never_pressed_is_ring_timeout_from_what_is_known():
    call = row(state="caller_answered", callee_answered_at=None, bridged_at=None,
               confirm="required", originate_error="NO_ANSWER")
    outcome, _ = settle_unseen(call)
    assert (outcome.answered, outcome.reason, outcome.confirm) == (
        False, Reason.RING_TIMEOUT, "unconfirmed")


def test_nothing_seen_is_failed_as_before():
    call = row(state="queued", caller_answered_at=None, callee_answered_at=None, bridged_at=None)
    outcome, ended_at = settle_unseen(call)
    assert (outcome.answered, outcome.minutes, outcome.reason, outcome.billsec) == (
        False, 0, Reason.FAILED, 0)
    assert outcome.estimated and ended_at is None


def test_a_confirmed_call_is_recorded_confirmed():
    outcome, _ = settle_unseen(row(confirm="required"), switch_heard_at=T + 20)
    assert (outcome.answered, outcome.confirm) == (True, "confirmed")


def test_remeasured_waits_for_an_end_and_ignores_the_estimated_billsec():
    settled = row(state="ended", billsec=120, minutes=2, estimated=True)
    assert remeasured(settled, {"recheck_at": T + 99}) is None  # no end in it
    # The callee's CDR: its own billsec.
    callee = {**settled, "callee_gone_at": T + 250}
    outcome = remeasured(callee, {"callee_gone_at": T + 250, "billsec": 240})
    assert outcome is not None and (outcome.billsec, outcome.minutes) == (240, 4)
    assert not outcome.estimated
    # The caller's CDR: from the bridge to its end, not the estimate's 120 s.
    caller = {**settled, "caller_gone_at": T + 45.5}
    outcome = remeasured(caller, {"caller_gone_at": T + 45.5})
    assert outcome is not None and (outcome.billsec, outcome.minutes) == (35, 1)


def test_remeasured_can_find_an_estimated_failure_was_answered():
    settled = row(state="ended", caller_answered_at=None, callee_answered_at=None,
                  bridged_at=None, billsec=0, minutes=0, estimated=True)
    late = {**settled, "caller_answered_at": T + 5, "callee_answered_at": T + 12,
            "bridged_at": T + 12, "caller_gone_at": T + 200}
    outcome = remeasured(late, {"caller_gone_at": T + 200})
    assert outcome is not None and (outcome.answered, outcome.minutes) == (True, 4)


def test_event_retry_delays_double_up_to_a_bound():
    assert [retry_delay(n) for n in (1, 2, 3, 4, 5, 6, 7, 20)] == [
        0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]

"""Ending a call on request, below the HTTP edge: the pure rules of c2c.calls.hangup, the store's
forward-only record and the conditional advance, and the listener's part (a leg seen on a call
whose hangup was requested is ended; press 1 marked 'confirmed' at the callee's ringing, with no
write for the callee legs of calls not asked), on SQLite and MariaDB."""

from __future__ import annotations

import time
from typing import Any

import pytest

from c2c.calls import hangup
from c2c.calls.listener import CallEventListener
from c2c.calls.outcome import CallOutcome
from c2c.calls.settlement import outcome_of
from c2c.domain.states import CallState, Reason
from c2c.esl.protocol import Event
from c2c.store import Store
from tests.support.call_rows import seed_call

NOW = 1_700_000_000.0


def _row(**columns: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "c1", "state": "queued", "caller_uuid": "a-uuid", "callee_uuid": "b-uuid",
        "caller_answered_at": None, "callee_answered_at": None, "bridged_at": None,
        "caller_gone_at": None, "callee_gone_at": None, "originate_error": None,
        "hangup_requested_at": None,
    }
    row.update(columns)
    return row


# -- pure rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("columns", "expected"), [
    ({}, [("a-uuid", "ORIGINATOR_CANCEL")]),
    ({"state": "caller_ringing"}, [("a-uuid", "ORIGINATOR_CANCEL")]),
    ({"state": "caller_answered", "caller_answered_at": NOW},
     [("a-uuid", "NORMAL_CLEARING"), ("b-uuid", "ORIGINATOR_CANCEL")]),
    ({"caller_answered_at": NOW}, [("a-uuid", "NORMAL_CLEARING"), ("b-uuid", "ORIGINATOR_CANCEL")]),
    ({"state": "bridged", "caller_answered_at": NOW, "callee_answered_at": NOW, "bridged_at": NOW},
     [("a-uuid", "NORMAL_CLEARING"), ("b-uuid", "NORMAL_CLEARING")]),
])
def test_which_channels_are_ended_with_which_cause(columns: dict[str, Any],
                                                   expected: list[tuple[str, str]]) -> None:
    assert [(k.channel, k.cause) for k in hangup.kills(_row(**columns))] == expected


def test_a_call_ended_on_request_before_the_bridge_reads_hung_up() -> None:
    asked = {"hangup_requested_at": NOW}
    never_pressed = _row(state="caller_answered", caller_answered_at=NOW, caller_gone_at=NOW + 3,
                         caller_hangup_cause="NORMAL_CLEARING", callee_hangup_cause=None,
                         confirm="unconfirmed", billsec=None, max_minutes=5, callee_fate=None)
    assert outcome_of(never_pressed).reason is Reason.RING_TIMEOUT
    assert outcome_of({**never_pressed, **asked}).reason is Reason.HUNG_UP
    failed = CallOutcome(answered=False, minutes=0, reason=Reason.FAILED, billsec=0)
    assert hangup.as_requested(_row(**asked), failed).reason is Reason.HUNG_UP
    assert hangup.as_requested(_row(), failed) is failed
    talked = CallOutcome(answered=True, minutes=2, reason=None, billsec=61)
    assert hangup.as_requested(_row(**asked), talked) is talked


def test_only_a_call_of_which_nothing_was_seen_is_untraced() -> None:
    assert hangup.untraced(_row())
    for seen in ({"state": "caller_ringing"}, {"caller_gone_at": NOW}, {"callee_gone_at": NOW},
                 {"originate_error": "GATEWAY_DOWN"}):
        assert not hangup.untraced(_row(**seen)), seen
    outcome = hangup.cancelled_outcome(_row())
    assert (outcome.answered, outcome.minutes, outcome.reason, outcome.estimated) == (
        False, 0, Reason.HUNG_UP, False)


class _Connection:
    """What end_legs needs of an EslConnection: api() answering as the switch does."""

    def __init__(self, there: set[str]) -> None:
        self.there = there
        self.sent: list[str] = []

    def api(self, cmd: str, timeout: float | None = None, check: bool = True) -> str:
        self.sent.append(cmd)
        return "+OK\n" if cmd.split()[1] in self.there else "-ERR No such channel!\n"


def test_end_legs_says_whether_any_channel_was_there() -> None:
    answered = _row(caller_answered_at=NOW)
    connection = _Connection({"b-uuid"})
    assert hangup.end_legs(connection, answered)  # type: ignore[arg-type]
    assert connection.sent == ["uuid_kill a-uuid NORMAL_CLEARING",
                               "uuid_kill b-uuid ORIGINATOR_CANCEL"]
    assert not hangup.end_legs(_Connection(set()), answered)  # type: ignore[arg-type]
    # A channel id that is not one of ours never reaches the switch.
    odd = _Connection({"a-uuid"})
    assert not hangup.end_legs(odd, _row(caller_uuid="x\napi hupall"))  # type: ignore[arg-type]
    assert odd.sent == []


# -- the store ----------------------------------------------------------------------------------


def test_the_request_is_recorded_once_and_only_while_every_leg_is_up(store: Store) -> None:
    account = store.accounts.create("a", 10)
    other = store.accounts.create("b", 10)
    calls = store.calls
    up = seed_call(store, account.id, state="caller_ringing")
    assert not calls.request_hangup(up, other.id, NOW)  # another account's: untouched
    assert calls.request_hangup(up, account.id, NOW)
    assert not calls.request_hangup(up, account.id, NOW + 5)
    assert calls.get(up)["hangup_requested_at"] == NOW  # type: ignore[index]
    for ending in ({"caller_gone_at": NOW}, {"callee_gone_at": NOW},
                   {"originate_error": "NORMAL_CLEARING"}):
        call_id = seed_call(store, account.id, state="caller_answered", **ending)
        assert not calls.request_hangup(call_id, account.id, NOW), ending
    assert not calls.request_hangup(seed_call(store, account.id), account.id, NOW)  # ended
    assert not calls.request_hangup("no-such-call", account.id, NOW)
    with pytest.raises(ValueError):  # nothing else writes it
        calls.set_fields(up, {"hangup_requested_at": None})


def test_an_advance_unless_set_leaves_an_asked_call_alone(store: Store) -> None:
    account = store.accounts.create("a", 10)
    calls = store.calls
    call_id = seed_call(store, account.id, state="queued")
    unless = ("hangup_requested_at",)
    assert calls.advance(call_id, [CallState.QUEUED], CallState.CALLER_RINGING,
                         unless_set=unless)
    assert calls.request_hangup(call_id, account.id, NOW)
    fill = {"caller_answered_at": NOW}
    assert not calls.advance(call_id, [CallState.CALLER_RINGING], CallState.CALLER_ANSWERED,
                             fill=fill, unless_set=unless)
    row = calls.get(call_id)
    assert row is not None and (row["state"], row["caller_answered_at"]) == ("caller_ringing",
                                                                             None)
    assert calls.advance(call_id, [CallState.CALLER_RINGING], CallState.CALLER_ANSWERED,
                         fill=fill)
    with pytest.raises(ValueError):
        calls.advance(call_id, [CallState.QUEUED], CallState.BRIDGED, unless_set=("nope",))


def test_a_call_asked_to_end_needs_attention_after_a_while(store: Store) -> None:
    account = store.accounts.create("a", 10)
    switch = "s1:8021"
    quiet = seed_call(store, account.id, state="caller_ringing", switch=switch)
    asked = seed_call(store, account.id, state="caller_ringing", switch=switch,
                      hangup_requested_at=NOW)
    seed_call(store, account.id, switch=switch, hangup_requested_at=NOW)  # ended
    now = time.time()
    assert store.calls.needing_attention(switch, now) == []
    assert store.calls.needing_attention(switch, now, hangups_before=NOW - 1) == []
    found = store.calls.needing_attention(switch, now, hangups_before=NOW)
    assert [c["id"] for c in found] == [asked] and quiet != asked


# -- the listener -------------------------------------------------------------------------------


def _event(name: str, call_id: str, leg: str, **variables: str) -> Event:
    return Event([("Event-Name", name), ("Event-Date-Timestamp", str(int(time.time() * 1e6))),
                  ("variable_c2c_call_id", call_id), ("variable_c2c_leg", leg),
                  *((f"variable_{k}", v) for k, v in variables.items())])


def test_a_leg_seen_on_a_call_asked_to_end_is_ended_and_recorded(store: Store) -> None:
    account = store.accounts.create("a", 10)
    ended: list[dict[str, Any]] = []
    listener = CallEventListener(store, end_legs=lambda call: ended.append(dict(call)))
    call_id = seed_call(store, account.id, state="queued", hangup_requested_at=NOW)
    listener.handle(_event("CHANNEL_PROGRESS", call_id, "caller"))
    row = store.calls.get(call_id)
    assert row is not None and row["state"] == "caller_ringing"  # recorded all the same
    assert [(k.channel, k.cause) for k in hangup.kills(ended[0])] == [
        (row["caller_uuid"], "ORIGINATOR_CANCEL")]
    listener.handle(_event("CHANNEL_ANSWER", call_id, "caller"))
    row = store.calls.get(call_id)
    assert row is not None and row["state"] == "caller_answered"
    assert [k.cause for k in hangup.kills(ended[1])] == ["NORMAL_CLEARING", "ORIGINATOR_CANCEL"]
    # A call not asked: nothing read, nothing ended.
    other = seed_call(store, account.id, state="queued")
    listener.handle(_event("CHANNEL_PROGRESS", other, "caller"))
    assert len(ended) == 2


def test_press_1_is_marked_at_the_callees_ringing_only_for_calls_asked(store: Store) -> None:
    account = store.accounts.create("a", 10)
    listener = CallEventListener(store)
    writes: list[str] = []
    original = store.calls.set_if_null

    def set_if_null(call_id: str, fields: Any) -> bool:
        writes.append(call_id)
        return original(call_id, fields)

    store.calls.set_if_null = set_if_null  # type: ignore[method-assign]
    asked = seed_call(store, account.id, state="caller_ringing", confirm="required")
    not_asked = seed_call(store, account.id, state="caller_ringing")
    listener.handle(_event("CHANNEL_ANSWER", asked, "caller", group_confirm_key="1"))
    listener.handle(_event("CHANNEL_ANSWER", not_asked, "caller"))
    assert store.calls.get(asked)["confirm"] == "required"  # type: ignore[index]
    listener.handle(_event("CHANNEL_PROGRESS", not_asked, "callee"))
    assert writes == []
    listener.handle(_event("CHANNEL_PROGRESS", asked, "callee"))
    listener.handle(_event("CHANNEL_PROGRESS", asked, "callee"))  # remembered once
    assert writes == [asked]
    assert store.calls.get(asked)["confirm"] == "confirmed"  # type: ignore[index]
    assert store.calls.get(not_asked)["confirm"] is None  # type: ignore[index]

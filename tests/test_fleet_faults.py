"""Faults of one switch among two, under load: real gunicorn (gevent workers), MariaDB, two
simulator processes posting their CDRs to gunicorn (issue 12's "Done when").

Each test sends a bounded stream of requests while one switch freezes, pauses, fills up or is
drained, then asserts where every call went, exact counts (sent, accepted, settled, called
back; nothing lost or doubled) and `c2c check`. Run with -s to see each run's figures. Timers
are short: heartbeats every second, liveness in seconds, a 6 s settle grace.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest

from c2c.esl.switches import SHARED_REFRESH_SECONDS
from tests.support.faults import (
    Answer,
    FleetDeployment,
    RequestStream,
    Tally,
    account_calls,
    assert_consistent,
    count_streams,
    tally,
    wait_all_delivered,
    wait_all_settled,
    write_scenario,
)
from tests.support.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

CREDITS = 100_000
A, B = 0, 1  # the switches' places in C2C_SWITCHES
HEARTBEAT_SECONDS = 1
ESL_TIMEOUT = 3.0  # tests.support.deployment's C2C_ESL_TIMEOUT
SETTLE_GRACE = 6
TIMERS = {
    "C2C_RING_TIMEOUT": "5",
    "C2C_SETTLE_GRACE": str(SETTLE_GRACE),
    "C2C_LEASE_SECONDS": "3",
}
# The first switch's smaller max-sessions makes the second the less used by share of its
# sessions (c2c.esl.choice) while it has fewer than ten times the first's calls: it gets most calls
# while it can take them (so that it has calls running when the fault comes, and the first
# requests after the fault go to it), and gets calls again as soon as it can.
SECOND_PREFERRED = (("--max-sessions", "200"), ("--max-sessions", "2000"))
# The sender's log line when a switch refused an originate before any leg existed and the call
# went to the other one (c2c.calls.sending).
RETRIED = re.compile(
    r"call ([0-9a-f-]{36}): refused by (\S+) before any leg existed; sent to (\S+)"
)


def _fleet(
    tmp_path,
    mysql_url,
    *,
    talk_seconds: float,
    liveness: float,
    short_suffix: str | None = None,
    short_talk: float = 1.0,
) -> FleetDeployment:
    scenario = write_scenario(
        tmp_path / "scenario.json", talk_seconds, short_suffix=short_suffix, short_talk=short_talk
    )
    return FleetDeployment(
        tmp_path,
        mysql_url,
        workers=3,
        time_scale=1.0,
        credits=CREDITS,
        cdr=True,
        scenario=scenario,
        simulator_args=("--heartbeat-interval", str(HEARTBEAT_SECONDS)),
        switch_args=SECOND_PREFERRED,
        env={**TIMERS, "C2C_ESL_LIVENESS_SECONDS": str(liveness)},
    )


def _calls(d: FleetDeployment, answers: Iterable[Answer]) -> list[dict[str, Any]]:
    """The call rows of the accepted ``answers``."""
    rows = [d.store.calls.get(a.call_id) for a in answers if a.code == 0 and a.call_id]
    assert all(rows)
    return rows  # type: ignore[return-value]


def _started(stream: RequestStream, since: float, until: float = float("inf")) -> list[Answer]:
    return [a for a in stream.answers if since <= a.started < until]


def _by_switch(rows: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(row["switch"] for row in rows)


def _all_answered_once(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that did not talk their minute with a measured end (empty: all did)."""
    return [
        row
        for row in rows
        if (row["answered"], row["minutes"], row["reason"], bool(row["estimated"]))
        != (True, 1, None, False)
    ]


def _settle_and_count(d: FleetDeployment, name: str, *streams: RequestStream) -> Tally:
    wait_all_settled(d, 60)
    wait_all_delivered(d, 20)
    time.sleep(1)  # a second delivery, if there were one, would come now
    result = count_streams(tally(name, d, None), *streams)
    accepted = {call_id for s in streams for call_id in s.accepted}
    result.rows_without_a_0 = len({c["id"] for c in account_calls(d)} - accepted)
    return result


def _consistent(result: Tally, d: FleetDeployment, *streams: RequestStream) -> None:
    """assert_consistent over several streams: every 0 has its call row, every row its 0."""
    accepted = {call_id for s in streams for call_id in s.accepted}
    rows = {c["id"] for c in account_calls(d)}
    assert accepted == rows, (sorted(accepted - rows), sorted(rows - accepted))
    assert_consistent(result, d, None, CREDITS)


def _back_on(d: FleetDeployment, index: int) -> RequestStream:
    """Once every worker finds switch ``index`` usable again: a few more requests."""
    d.usable_everywhere(index, True)
    assert d.gunicorn is not None
    back = RequestStream(d.gunicorn.base_url, d.request_params(), 10, concurrency=2, interval=0.2)
    back.start().join(30)
    return back


SHORT_CALLEE = "2125550111"  # the frozen test's scenario: this callee talks 2 s, others 12 s


def test_a_frozen_switch_is_given_up_and_its_calls_settle(tmp_path, mysql_url):
    """The second switch freezes for 10 s (its sockets stay open, not a byte comes back; its
    calls go on and post their CDRs) while 60 requests come in for calls that talk 2 s, with 6
    calls that talk 12 s placed just before. Every request answers 0; once its connections have
    been silent for the liveness window (3 s) no worker sends it calls; the 2 s calls talking on
    it settle from their CDRs; the 12 s ones, still up when it has been unheard for the grace,
    settle answered on an estimate, which their CDRs (or their hangups, heard after the thaw)
    correct once; calls sent to it as it froze (their originate never ran, the request answered
    0 when no reply came) settle failed; after the thaw it takes calls again."""
    liveness, frozen_for = 3.0, 10.0
    with _fleet(
        tmp_path,
        mysql_url,
        talk_seconds=12,
        liveness=liveness,
        short_suffix=SHORT_CALLEE[-4:],
        short_talk=2,
    ) as d:
        assert d.gunicorn is not None
        a, b = d.names
        base, short = d.gunicorn.base_url, d.request_params(callee_phone_number=SHORT_CALLEE)
        long = RequestStream(base, d.request_params(), 6, concurrency=2, interval=0.2)
        long.start().join(30)
        stream = RequestStream(base, short, 60, concurrency=3, interval=0.6).start()
        stream.wait_answered(12)
        d.freeze(B)
        frozen_at = time.time()
        d.usable_everywhere(B, False)
        detected = time.time() - frozen_at
        wait_until(lambda: not d.switch_rows()[b]["live"], 15, 0.1, "`c2c switches` B not live")
        listed_dead = time.time() - frozen_at
        time.sleep(max(0.0, frozen_at + frozen_for - time.time()))  # the freeze lasts
        d.thaw(B)
        thawed_at = time.time()
        stream.join(60)
        back = RequestStream(base, short, 10, concurrency=2, interval=0.2)
        d.usable_everywhere(B, True)
        back.start().join(30)
        back_after = back.answers[0].started - thawed_at
        result = _settle_and_count(d, "one of two switches frozen 10 s", long, stream, back)
        estimated = [row for row in _calls(d, long.answers) if row["switch"] == b]
        wait_until(
            lambda: all(d.store.calls.get(row["id"])["corrected_at"] for row in estimated),
            30,
            0.2,
            "every estimate corrected",
        )
        estimated = [d.store.calls.get(row["id"]) for row in estimated]

        # Every worker has given it up by then: its connections have been silent for the
        # liveness window (a second more for a frame read late on a busy machine).
        decided_at = frozen_at + liveness + 1.0
        while_frozen = _calls(d, _started(stream, decided_at, thawed_at))
        at_the_freeze = _calls(d, _started(stream, frozen_at - 0.5, decided_at))
        after_thaw = _calls(d, [*_started(stream, thawed_at), *back.answers])
        short_on_b = [row for row in _calls(d, stream.answers) if row["switch"] == b]
        # Talking on B when it froze: their ends were only ever told by their CDRs.
        ended_frozen = [
            row
            for row in short_on_b
            if row["answered"] and frozen_at < (row["caller_gone_at"] or 0) < thawed_at
        ]
        never_ran = [row for row in short_on_b if not row["answered"]]
        result.extra = {
            "given up by every worker after s": round(detected, 1),
            "`c2c switches` not live after s": round(listed_dead, 1),
            "calls at the freeze by switch": dict(_by_switch(at_the_freeze)),
            "calls while frozen by switch": dict(_by_switch(while_frozen)),
            "ended while frozen, from CDRs": len(ended_frozen),
            "estimated, then corrected": len(estimated),
            "sent as it froze, never ran": len(never_ran),
            "max answer s": round(stream.max_elapsed(), 2),
            "calls after the thaw by switch": dict(_by_switch(after_thaw)),
            "thaw to usable everywhere s": round(back_after, 1),
        }
        print("\n" + result.line())

        assert result.sent == 76 and result.errors == 0 and result.accepted == 76
        assert while_frozen and _by_switch(while_frozen) == Counter({a: len(while_frozen)})
        assert ended_frozen, "no call was talking on the switch when it froze"
        assert estimated, "no long call was on the switch when it froze"
        for row in estimated:
            # Settled on an estimate while it was unheard (billed up to its last heartbeat, a
            # few seconds), then measured (12 s): a minute either way, so the correction moved
            # no credit; one callback (assert_consistent).
            assert row["estimated"] and row["corrected_at"], row
            assert (row["answered"], row["minutes"], row["reason"]) == (True, 1, None), row
            assert row["caller_hangup_cause"] == "NORMAL_CLEARING" and row["billsec"] >= 11, row
        for row in short_on_b:
            if row["answered"]:
                # Measured: its CDR (or an estimate its CDR corrected).
                assert (row["minutes"], row["reason"]) == (1, None), row
                assert row["caller_hangup_cause"] == "NORMAL_CLEARING", row
                assert not row["estimated"] or row["corrected_at"], row
            else:
                # Its originate went out as the switch froze and never ran (a frozen host runs
                # no command; the connection was closed before it thawed): failed, estimated.
                assert row["created_at"] >= frozen_at - ESL_TIMEOUT, row
                assert (row["reason"], row["minutes"], row["estimated"]) == (0, 0, True), row
                assert row["caller_answered_at"] is None, row
        on_a = [row for row in _calls(d, [*long.answers, *stream.answers]) if row["switch"] == a]
        assert not _all_answered_once([*on_a, *_calls(d, back.answers)])
        assert _by_switch(after_thaw)[b] >= 1, "the thawed switch took no call"
        # Every request answered at once, or once its originate's reply had not come for the
        # liveness window or the command timeout: none hung on the frozen switch.
        assert stream.max_elapsed() < ESL_TIMEOUT + 2
        log = d.gunicorn.log_text()
        assert re.search(rf"switch {re.escape(b)}: connection lost \((silent for|probe)", log)
        _consistent(result, d, long, stream, back)


def _no_call_dialing_on(d: FleetDeployment, name: str) -> bool:
    """Every call on ``name`` is bridged or ended: none has a leg yet to be created there."""
    calls = d.store.calls.list(limit=10_000, account_id=d.account_id)
    return all(c["state"] in ("bridged", "ended") for c in calls if c["switch"] == name)


@pytest.mark.parametrize("fault", ["paused", "full"])
def test_a_paused_or_full_switch_sends_every_call_to_the_other(tmp_path, mysql_url, fault):
    """The second switch stops taking calls while 40 requests come in: paused (`fsctl pause`),
    or full (a call c2c does not know of holds its only session after `fsctl max_sessions 1`).
    Every request answers 0 and every call placed from then on lands on the first switch: at
    first through a refused originate sent on to it (the workers' last `status` probe, up to
    5 s old, still says the second can take calls, and, being the less used by share of its
    max-sessions, it is their choice), then by the choice itself. Every call talks, settles
    once and is called back once; when the switch takes calls again, it gets some."""
    # The first request each worker sends after the fault goes to the second switch (preferred,
    # see SECOND_PREFERRED), until a probe says why it should not.
    liveness = 15.0  # probes every 5 s: the fault lands between two of them
    with _fleet(tmp_path, mysql_url, talk_seconds=3, liveness=liveness) as d:
        assert d.gunicorn is not None
        a, b = d.names
        stream = RequestStream(
            d.gunicorn.base_url, d.request_params(), 40, concurrency=3, interval=0.4
        ).start()
        stream.wait_answered(10)
        # Between two requests, and while no call on the second switch still has a leg to be
        # created there: a switch that stops taking sessions refuses the callee's leg of a call
        # whose caller it already rang (recording 22b), and that call fails, as it would in
        # production; this test is about the calls placed after the fault.
        stream.pause()
        wait_until(lambda: _no_call_dialing_on(d, b), 10, 0.05, "no call dialing on B")
        parked = str(uuid.uuid4())
        if fault == "paused":
            assert d.api(B, "fsctl pause") == "+OK\n"
        else:
            dialed = d.api(
                B,
                f"originate {{origination_uuid={parked}}}sofia/gateway/default/+12125550177 &park",
            )
            assert dialed.startswith("+OK"), dialed
            assert d.api(B, "fsctl max_sessions 1") == "+OK max sessions: 1\n"
        fault_at = time.time()
        stream.resume()
        d.usable_everywhere(B, False)
        known = time.time() - fault_at
        stream.join(60)
        if fault == "paused":
            assert d.api(B, "fsctl resume") == "+OK\n"
        else:
            assert d.api(B, "fsctl max_sessions 2000") == "+OK max sessions: 2000\n"
            assert d.api(B, f"uuid_kill {parked}").startswith("+OK")
        undone_at = time.time()
        back = _back_on(d, B)
        result = _settle_and_count(d, f"one of two switches {fault}", stream, back)
        taking_again = _calls(d, back.answers)

        log = d.gunicorn.log_text()
        retried = {m.group(1): (m.group(2), m.group(3)) for m in RETRIED.finditer(log)}
        after = _calls(d, _started(stream, fault_at, undone_at))
        result.extra = {
            "known to every worker after s": round(known, 1),
            "calls after the fault by switch": dict(_by_switch(after)),
            "refused and sent on": len(retried),
            "max answer s": round(stream.max_elapsed(), 2),
            "calls once it takes calls again by switch": dict(_by_switch(taking_again)),
        }
        print("\n" + result.line())

        assert result.sent == 50 and result.errors == 0 and result.accepted == 50
        assert after and _by_switch(after) == Counter({a: len(after)})
        # The retry path: a refusal before any leg existed, the call moved to the other switch.
        assert retried, "no originate was refused and sent on"
        assert set(retried.values()) == {(b, a)}
        for call_id in retried:
            row = d.store.calls.get(call_id)
            assert row is not None and row["switch"] == a and row["originate_error"] is None
            assert len(d.callbacks_for(call_id)) == 1
        # Every call of both streams talked its minute, measured from its events or CDRs.
        assert not _all_answered_once(_calls(d, [*stream.answers, *back.answers]))
        assert _by_switch(taking_again)[b] >= 1, "the switch took no call again"
        _consistent(result, d, stream, back)


def test_a_drained_switch_takes_no_new_calls_and_its_running_calls_settle(tmp_path, mysql_url):
    """`c2c switches drain` of the second switch while 48 requests come in and calls talk for
    4 s: every request answers 0; within the drain's refresh (2 s) no worker sends it a call;
    its event holder stays and the calls running there settle from their events as usual;
    `c2c switches undrain` brings it back."""
    with _fleet(tmp_path, mysql_url, talk_seconds=4, liveness=6.0) as d:
        assert d.gunicorn is not None
        a, b = d.names
        stream = RequestStream(
            d.gunicorn.base_url, d.request_params(), 48, concurrency=3, interval=0.6
        ).start()
        stream.wait_answered(12)
        holder = d.holder_of(B)
        drained = d.c2c("switches", "drain", b)
        drained_at = time.time()
        assert drained.returncode == 0 and f"{b}: draining" in drained.stdout, drained
        running = [
            c["id"]
            for c in d.store.calls.list(limit=10_000, account_id=d.account_id)
            if c["switch"] == b and c["state"] != "ended"
        ]
        listed = d.switch_rows()[b]
        stream.join(60)
        wait_until(
            lambda: all(d.store.calls.get(i)["state"] == "ended" for i in running),
            20,
            0.1,
            "the drained switch's calls settled",
        )
        held_throughout = d.holder_of(B) == holder
        undrained = d.c2c("switches", "undrain", b)
        undone_at = time.time()
        assert undrained.returncode == 0 and f"{b}: takes calls again" in undrained.stdout
        back = _back_on(d, B)
        result = _settle_and_count(d, "one of two switches drained", stream, back)
        undrained_calls = _calls(d, [*_started(stream, undone_at), *back.answers])

        honoured_by = drained_at + SHARED_REFRESH_SECONDS + 1.0
        after = _calls(d, _started(stream, honoured_by, undone_at))
        last_on_b = max(
            (row["created_at"] for row in _calls(d, stream.answers) if row["switch"] == b),
            default=drained_at,
        )
        result.extra = {
            "calls running on it at the drain": len(running),
            "last call placed on it, after the drain s": round(last_on_b - drained_at, 1),
            "calls after the drain by switch": dict(_by_switch(after)),
            "calls once undrained by switch": dict(_by_switch(undrained_calls)),
        }
        print("\n" + result.line())

        assert result.sent == 58 and result.errors == 0 and result.accepted == 58
        # Draining, its calls going on, its event holder still listening.
        assert listed["draining"] and listed["in_flight"] >= 1 and listed["live"], listed
        assert running, "no call was running on the switch when it was drained"
        assert held_throughout, "the drained switch's event holder changed"
        assert after and _by_switch(after) == Counter({a: len(after)})
        assert last_on_b < honoured_by
        # The drained switch's running calls, and every other, settled from their events.
        assert not _all_answered_once(_calls(d, [*stream.answers, *back.answers]))
        for call_id in running:
            assert d.store.calls.get(call_id)["callee_hangup_cause"] == "NORMAL_CLEARING"
        assert _by_switch(undrained_calls)[b] >= 1, "the undrained switch took no call"
        _consistent(result, d, stream, back)

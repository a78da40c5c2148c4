"""Faults under load: real gunicorn (gevent workers), MariaDB, the simulator as a process.

Each test sends a bounded stream of requests while one thing breaks, then asserts exact counts
and `c2c check`. Run with -s to see each run's figures.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

from c2c.calls.events import LegEnd
from c2c.calls.listener import CallEventListener
from c2c.calls.settlement import outcome_of
from c2c.store import Store
from tests.support.faults import (
    FaultDeployment,
    RequestStream,
    TcpProxy,
    account_calls,
    assert_consistent,
    esl_api,
    run_c2c,
    tally,
    wait_all_delivered,
    wait_all_settled,
    write_scenario,
)
from tests.support.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

CREDITS = 100_000
# Short timers so that a call with no trace settles soon: deadline = created + 2 * ring timeout
# + 1 minute (max_duration=1) + grace = 75 s.
FAST_TIMERS = {"C2C_RING_TIMEOUT": "5", "C2C_SETTLE_GRACE": "5", "C2C_LEASE_SECONDS": "3"}
# "Within seconds": the 3 s lease runs out, a worker renewing every second takes it.
FAST_TAKEOVER = 6.0


def _deployment(
    tmp_path, mysql_url, talk_seconds: float, scenario_short: str | None = None, **kwargs
) -> FaultDeployment:
    env = {**FAST_TIMERS, **kwargs.pop("env", {})}
    scenario = write_scenario(tmp_path / "scenario.json", talk_seconds, short_suffix=scenario_short)
    return FaultDeployment(
        tmp_path,
        mysql_url,
        workers=kwargs.pop("workers", 3),
        time_scale=1.0,
        credits=CREDITS,
        env=env,
        scenario=scenario,
        **kwargs,
    )


def _new_listener(d: FaultDeployment, old: int, timeout: float = 15.0) -> int:
    """The pid of a live worker other than ``old`` holding the event lease, once there is one."""

    def other() -> int | None:
        holder = d.listener_holder()
        return holder if holder not in (None, old) else None

    return wait_until(other, timeout, 0.05, "another worker listening")  # type: ignore[return-value]


def test_callee_end_lost_in_a_listener_gap_is_billed_from_the_callers_end():
    """What the sweeper settles when a bridged call's callee HANGUP_COMPLETE was lost (store
    down, listener gap) and its CDR is still spooled: answered, billed the bridge up to the
    caller's end, not 0 minutes (as the store-down test once saw)."""
    row = {
        "state": "bridged",
        "caller_answered_at": 100.2,
        "callee_answered_at": 101.1,
        "bridged_at": 101.1,
        "caller_gone_at": 164.9,
        "callee_gone_at": None,
        "caller_hangup_cause": "NORMAL_CLEARING",
        "callee_hangup_cause": None,
        "originate_error": None,
        "billsec": None,
        "max_minutes": 5,
        "callee_fate": None,
        "deadline_at": 1e12,
        "recheck_at": 166.9,
    }
    outcome = outcome_of(row)
    assert (outcome.answered, outcome.billsec, outcome.minutes, outcome.reason) == (
        True,
        63,
        2,
        None,
    )
    assert outcome_of({**row, "billsec": 60}).minutes == 1  # its own end wins when known


def test_a_talked_call_whose_callee_events_were_lost_settles_answered(tmp_path, make_call):
    """The store-down test once saw a call that talked settle as "hung up" (reason 1): the
    callee's answer and end were lost with the store down, its CDR still spooled, and the
    caller's CDR alone came in. The caller's leg was bridged, which happens only once the callee
    answered: that is recorded, so the call settles answered and billed to the caller's end."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'c2c.sqlite3'}")
    store.upgrade()
    account = store.accounts.create("lost callee", 10)
    call = make_call(account.id, max_duration=5)
    store.accept_call(
        account.id,
        call,
        flood_seconds=0,
        max_call_minutes=120,
        ring_timeout=30,
        settle_grace=120,
        now=1000.0,
    )
    listener = CallEventListener(store, clock=lambda: 2000.0)
    listener.leg_ended(
        LegEnd(
            call.id,
            "caller",
            "NORMAL_CLEARING",
            "200",
            answered_at=1001.0,
            bridged_at=1003.2,
            ended_at=1066.9,
            billsec=65,
            bridge_failure_cause="NORMAL_CLEARING",
        )
    )
    row = store.calls.get(call.id)
    assert row is not None and row["state"] != "ended"  # the callee's end may still come
    assert (row["callee_answered_at"], row["bridged_at"]) == (1003.2, 1003.2)
    outcome = outcome_of(row)  # what the sweeper settles once the callee's channel is gone
    assert (outcome.answered, outcome.billsec, outcome.minutes, outcome.reason) == (
        True,
        63,
        2,
        None,
    )
    store.dispose()


def test_listener_worker_killed_mid_call_settles_the_call_once(tmp_path, mysql_url):
    """Issue 4: the worker holding the listener is killed mid-call; the call still settles once."""
    with _deployment(tmp_path, mysql_url, talk_seconds=8) as d:
        code, call_id = d.place(max_duration="1")
        assert code == 0 and call_id
        wait_until(
            lambda: d.store.calls.get(call_id)["state"] == "bridged", 10, 0.05, "the call bridged"
        )
        victim = d.listener_pid()
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        successor = _new_listener(d, victim)
        takeover = time.monotonic() - killed_at
        assert takeover < FAST_TAKEOVER
        call = d.wait_settled(call_id, timeout=20)
        settled_after = time.monotonic() - killed_at
        assert call["answered"] and call["minutes"] == 1 and call["reason"] is None
        assert call["callee_hangup_cause"] == "NORMAL_CLEARING"
        wait_all_delivered(d, 15)
        time.sleep(1)  # a second delivery, if there were one, would come now
        result = tally("issue-4 single call", d, None)
        result.extra = {
            "killed": victim,
            "successor": successor,
            "takeover s": round(takeover, 1),
            "settled after kill s": round(settled_after, 1),
        }
        print("\n" + result.line())
        assert (result.settled, result.debit_rows, result.delivered) == (1, 1, 1)
        assert len(d.callbacks_for(call_id)) == 1
        assert_consistent(result, d, None, CREDITS)


def test_listener_worker_killed_under_load(tmp_path, mysql_url):
    """kill -9 of the worker holding the switch's listener while 30 requests come in and ~20
    calls are talking: another worker takes over within seconds and every call settles once."""
    with _deployment(tmp_path, mysql_url, talk_seconds=9) as d:
        victim = d.listener_pid()
        stream = RequestStream(
            d.gunicorn.base_url, d.request_params(), 30, concurrency=3, interval=0.7
        ).start()
        stream.wait_answered(10)
        # Between two requests, so that no request dies with the worker: one cut between its
        # commit and its originate would only settle (failed) at its 75 s deadline. Calls are
        # talking; requests go on during the outage.
        stream.pause()
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        stream.resume()
        successor = _new_listener(d, victim)
        takeover = time.monotonic() - killed_at
        stream.join(60)
        wait_all_settled(d, 30)
        settled_at = time.monotonic()
        wait_all_delivered(d, 20)
        time.sleep(1)
        result = tally("kill -9 listener", d, stream)
        result.extra = {
            "takeover s": round(takeover, 1),
            "all settled after kill s": round(settled_at - killed_at, 1),
        }
        print("\n" + result.line())
        assert result.sent == 30 and result.errors == 0
        assert result.accepted + result.code_11 == 30
        assert result.answered_calls == result.call_rows == result.accepted
        assert_consistent(result, d, stream, CREDITS)
        assert successor != victim and takeover < FAST_TAKEOVER


def test_event_socket_dropped_during_live_calls(tmp_path, mysql_url):
    """The switch closes every Event Socket connection every 2 s (--fault-drop-every) while
    40 requests come in and calls talk for 3 s: each call settles once, with its true outcome
    (a call whose hangup events fell into a reconnect gap is explained by its CDR)."""
    with _deployment(
        tmp_path, mysql_url, talk_seconds=3, cdr=True, simulator_args=("--fault-drop-every", "2")
    ) as d:
        stream = RequestStream(
            d.gunicorn.base_url, d.request_params(), 40, concurrency=4, interval=0.8
        ).start()
        stream.join(60)
        ended_at = time.monotonic()
        wait_all_settled(d, 90)
        settled_after = time.monotonic() - ended_at
        wait_all_delivered(d, 20)
        time.sleep(1)
        result = tally("drop every 2 s", d, stream)
        result.extra = {
            "settled after the stream s": round(settled_after, 1),
            "listener reconnects": d.gunicorn.log_text().count("reconciling "),
            "legs applied from CDRs": d.gunicorn.log_text().count("applied from its CDR"),
        }
        print("\n" + result.line())
        assert result.sent == 40 and result.errors == 0
        assert result.accepted + result.code_11 == 40
        assert result.call_rows == result.accepted
        # Every call the switch received really talked 3 s: answered and billed. A drop between
        # an originate's write and its reply leaves c2c not knowing whether the switch read it:
        # the call is kept (a retry could ring the phone twice) and, if the switch never ran it,
        # settled failed from what is known. The simulator is asked which it ran.
        log = d.gunicorn.log_text()
        calls = account_calls(d)
        not_answered = [c for c in calls if not c["answered"]]
        talked = next(c for c in calls if c["answered"])
        assert _simulator_answer(d, f"fakeswitch_heard {talked['caller_uuid']}").startswith("{")
        for call in not_answered:
            assert f"call {call['id']}: no reply to originate" in log, call
            assert call["estimated"] and not call["minutes"], call
            ran = _simulator_answer(d, f"fakeswitch_heard {call['caller_uuid']}")
            assert ran.startswith("-ERR no such call"), (call, ran)
        assert len(not_answered) <= 3, not_answered  # a drop every 2 s, a few ms wide each
        answered = result.call_rows - len(not_answered)
        assert result.answered_calls == answered and result.minutes == answered
        assert_consistent(result, d, stream, CREDITS)


def _simulator_answer(d: FaultDeployment, command: str) -> str:
    """``api COMMAND`` on the deployment's switch, again when a drop cut the connection."""
    for _ in range(5):
        try:
            return esl_api(d.simulator.port, d.simulator.password, command)
        except (ConnectionError, OSError):
            continue
    raise AssertionError(f"the switch never answered {command!r}")


SHORT_CALLEE = "2125550111"  # the scenario's callee that hangs up after 1 s


def test_switch_restarted_calls_gone(tmp_path, mysql_url):
    """The switch process is killed (its calls vanish: no event, no CDR) and a new one starts on
    the same port. Calls that ended before the crash are settled by their events and CDRs;
    calls that were talking when it died settle answered, billed as estimated from the bridge
    to the last time the switch was heard before the crash (the reconciliation after the
    restart finds their channels gone; a grace for a CDR, then the estimate); requests during
    the outage answer 11; service comes back by itself."""
    with _deployment(
        tmp_path, mysql_url, talk_seconds=120, cdr=True, scenario_short=SHORT_CALLEE[-4:]
    ) as d:
        base = d.gunicorn.base_url
        # 10 calls that will be talking when the switch dies, 10 that end before.
        doomed = RequestStream(base, d.request_params(), 10, concurrency=2, interval=0.05)
        doomed.start().join(30)
        finished = RequestStream(
            base,
            d.request_params(callee_phone_number=SHORT_CALLEE),
            10,
            concurrency=2,
            interval=0.05,
        )
        finished.start().join(30)
        wait_until(
            lambda: all(d.store.calls.get(i)["state"] == "ended" for i in finished.accepted),
            15,
            0.1,
            "short calls settled",
        )
        wait_until(
            lambda: all(d.store.calls.get(i)["state"] == "bridged" for i in doomed.accepted),
            15,
            0.1,
            "long calls bridged",
        )
        # The crash, with requests coming in during the outage and after the restart: 8 s of
        # them, so that the stream outlasts the reconnect's backoff (up to 3.2 s after a 2 s
        # outage) even when the restarted switch is slow to listen on a loaded machine.
        during = RequestStream(
            base,
            d.request_params(callee_phone_number=SHORT_CALLEE),
            20,
            concurrency=2,
            interval=0.8,
        )
        d.kill_simulator()
        crashed_at = time.monotonic()
        during.start()
        time.sleep(2)
        d.start_simulator_again()
        restarted_at = time.time()
        during.join(60)
        recovered = min(
            (a.started for a in during.answers if a.code == 0 and a.started >= restarted_at),
            default=None,
        )
        assert recovered is not None, "no call accepted after the restart"
        wait_all_settled(d, 100)
        vanished_settled = time.monotonic() - crashed_at
        wait_all_delivered(d, 20)
        time.sleep(1)
        result = tally("switch restart", d, None)
        sent = [doomed, finished, during]
        result.sent = sum(len(s.answers) for s in sent)
        result.accepted = sum(len(s.accepted) for s in sent)
        result.code_11 = sum(s.codes.get(11, 0) for s in sent)
        result.errors = sum(len(s.errors) for s in sent)
        result.extra = {
            "recovered after restart s": round(recovered - restarted_at, 1),
            "vanished settled after crash s": round(vanished_settled, 1),
            "max 11 latency s": round(during.max_elapsed(11), 2),
            "legs applied from CDRs": d.gunicorn.log_text().count("applied from its CDR"),
        }
        print("\n" + result.line())
        assert result.sent == 40 and result.errors == 0
        assert len(doomed.accepted) == 10 and len(finished.accepted) == 10
        assert result.call_rows == result.accepted
        for call_id in doomed.accepted:
            call = d.store.calls.get(call_id)
            # Bridged, then talking for seconds before the crash: 1 minute (its whole limit).
            assert (call["answered"], call["minutes"], call["reason"]) == (True, 1, None), call
            assert call["estimated"] and call["alive_at"] >= call["bridged_at"], call
        for call_id in finished.accepted + during.accepted:
            call = d.store.calls.get(call_id)
            assert (call["answered"], call["minutes"], call["reason"]) == (True, 1, None), call
        assert during.codes.get(11, 0) >= 1 and during.max_elapsed(11) < 2
        assert_consistent(result, d, None, CREDITS)


def test_switch_killed_during_talk_and_gone_bills_the_talking_calls_as_estimated(
    tmp_path, mysql_url
):
    """The switch process is killed while 10 calls talk and does not come back: the event
    holder cannot reach it, and once it has not been heard from for the grace (5 s here), its
    talking calls settle answered, billed from the bridge to its last sign of life and marked
    estimated, at once rather than at their deadline; requests meanwhile answer 11."""
    with _deployment(tmp_path, mysql_url, talk_seconds=120, cdr=True) as d:
        base = d.gunicorn.base_url
        talking = RequestStream(base, d.request_params(max_duration="3"), 10, concurrency=2,
                                interval=0.05)
        talking.start().join(30)
        wait_until(
            lambda: all(d.store.calls.get(i)["state"] == "bridged" for i in talking.accepted),
            15,
            0.1,
            "calls bridged",
        )
        time.sleep(2)  # they talk
        d.kill_simulator()
        killed_at = time.monotonic()
        during = RequestStream(base, d.request_params(), 5, concurrency=1, interval=0.2)
        during.start().join(30)
        wait_all_settled(d, 60)
        settled_after = time.monotonic() - killed_at
        wait_all_delivered(d, 20)
        time.sleep(1)
        result = tally("switch killed, gone", d, None)
        result.sent = len(talking.answers) + len(during.answers)
        result.accepted = len(talking.accepted) + len(during.accepted)
        result.code_11 = talking.codes.get(11, 0) + during.codes.get(11, 0)
        result.errors = len(talking.errors) + len(during.errors)
        result.extra = {"talking calls settled after the kill s": round(settled_after, 1)}
        print("\n" + result.line())
        assert result.sent == 15 and result.errors == 0
        assert len(talking.accepted) == 10 and during.codes == Counter({11: 5})
        for call_id in talking.accepted:
            call = d.store.calls.get(call_id)
            assert (call["answered"], call["reason"], call["estimated"]) == (True, None, True)
            # From the bridge to the last event or heartbeat heard before the kill (the
            # simulator's heartbeat comes every 20 s, like FreeSWITCH's): at least a second,
            # never more than they talked.
            assert call["minutes"] == 1 and 1 <= call["billsec"] <= 2 + 3, call
        # The grace after its last sign of life, plus a sweep: not the 6.2 min of a deadline.
        assert settled_after < 30
        assert_consistent(result, d, None, CREDITS)


def test_store_unavailable_under_load(tmp_path, mysql_url):
    """MariaDB unreachable for 4 s (a proxy between c2c and it resets every connection and
    refuses new ones) while 48 requests come in and calls talk for 2 s. Requests answer 11 at
    once; nothing is half-written; the listener lets go of the switch (it cannot prove its
    lease) and takes it back after; calls whose hangups came during the outage are settled from
    the CDRs FreeSWITCH could not post and spooled (`c2c cdr replay`, the operator's timer)."""
    proxy, proxied_url = TcpProxy.for_url(mysql_url)
    proxy.start()
    try:
        with _deployment(
            tmp_path, mysql_url, talk_seconds=2, cdr=True, app_database_url=proxied_url
        ) as d:
            stream = RequestStream(
                d.gunicorn.base_url, d.request_params(), 48, concurrency=3, interval=0.5
            ).start()
            stream.wait_answered(9)
            proxy.cut()
            cut_at = time.time()
            time.sleep(4)
            proxy.restore()
            restored_at = time.time()
            stream.join(60)
            # Sent and answered while it was down (one that straddles the restore may get 0).
            during = [
                a
                for a in stream.answers
                if cut_at <= a.started and a.started + a.elapsed < restored_at
            ]
            recovered = min(
                (a.started for a in stream.answers if a.code == 0 and a.started >= restored_at),
                default=None,
            )
            assert recovered is not None, "no call accepted after the store came back"
            listening = wait_until(d.listener_holder, 15, 0.1, "a listener after the outage")
            # The operator's timer: replay what FreeSWITCH spooled while we answered 503.
            # Its last retry (2 x 0.5 s) of a CDR refused during the outage is long over.
            time.sleep(max(0.0, restored_at + 2.5 - time.time()))
            spooled = len(list(d.spool.glob("*.cdr.xml")))
            replay = run_c2c(d.database_url, "cdr", "replay", "--min-age", "0", str(d.spool))
            assert replay.returncode == 0, replay.stdout + replay.stderr
            wait_all_settled(d, 90)
            settled_at = time.time()
            wait_all_delivered(d, 20)
            time.sleep(1)
            result = tally("store down 4 s", d, stream)
            result.extra = {
                "answers during the outage": dict(
                    sorted(
                        Counter(a.code if a.code is not None else "error" for a in during).items(),
                        key=str,
                    )
                ),
                "max latency during the outage s": round(
                    max((a.elapsed for a in during), default=0), 2
                ),
                "recovered after restore s": round(recovered - restored_at, 1),
                "all settled after restore s": round(settled_at - restored_at, 1),
                "spooled CDRs replayed": spooled,
                "listener": listening,
            }
            print("\n" + result.line())
            assert result.sent == 48 and result.errors == 0 and spooled > 0
            odd = [
                (a.index, a.code, round(a.started - cut_at, 3), round(a.elapsed, 3))
                for a in during
                if a.code != 11 or a.elapsed >= 2
            ]
            assert during and not odd, f"answers during the outage: {odd}"
            assert result.accepted + result.code_11 == 48
            # Every call talked 2 s: each is answered and billed its minute, whatever path
            # (events, CDR, spooled CDR, the sweeper) settled it.
            assert result.answered_calls == result.accepted == result.minutes
            assert_consistent(result, d, stream, CREDITS)
    finally:
        proxy.stop()


def test_callback_receiver_down_then_up(tmp_path, mysql_url):
    """The customer's callback endpoint refuses connections for 5 s while 24 calls settle:
    every callback is retried with backoff and delivered exactly once when it is back."""
    with _deployment(tmp_path, mysql_url, talk_seconds=1) as d:
        d.receiver.go_down()
        down_at = time.monotonic()
        stream = RequestStream(
            d.gunicorn.base_url, d.request_params(), 24, concurrency=3, interval=0.2
        ).start()
        stream.join(60)
        wait_all_settled(d, 20)
        assert d.receiver.requests == []
        time.sleep(max(0.0, down_at + 5 - time.monotonic()))
        retried = sum(
            1
            for c in account_calls(d)
            if (d.store.callbacks.get_for_call(c["id"]) or {}).get("attempts", 0) > 0
        )
        d.receiver.come_up()
        up_at = time.monotonic()
        delivered_after = wait_all_delivered(d, 30)
        time.sleep(2)  # a duplicate, if any, would arrive now
        result = tally("callback receiver down 5 s", d, stream)
        attempts = [len(d.store.callbacks.list_for_call(c["id"])) for c in account_calls(d)]
        result.extra = {
            "callbacks retried while down": retried,
            "all delivered after up s": round(delivered_after, 1),
            "attempts per callback max": max(attempts),
            "down for s": round(up_at - down_at, 1),
        }
        print("\n" + result.line())
        assert result.sent == 24 and result.errors == 0 and result.accepted == 24
        assert retried == 24
        assert all(a.header("X-C2C-Call-Id") for a in d.receiver.requests)
        assert len(d.receiver.requests) == 24
        assert_consistent(result, d, stream, CREDITS)


def test_graceful_reload_under_load(tmp_path, mysql_url):
    """gunicorn HUP (new workers, old ones finish their requests and stop) while 40 requests
    come in: every request is answered, every 0 has a call row that settles once; the event
    listener moves to a new worker (its hangup-event gap is covered by the CDRs)."""
    with _deployment(tmp_path, mysql_url, talk_seconds=2, cdr=True) as d:
        old_workers = set(d.gunicorn.worker_pids())
        old_listener = d.listener_pid()
        stream = RequestStream(
            d.gunicorn.base_url, d.request_params(), 40, concurrency=4, interval=0.3
        ).start()
        stream.wait_answered(10)
        hup_at = time.monotonic()
        d.gunicorn.signal(signal.SIGHUP)
        wait_until(
            lambda: (
                not old_workers & set(d.gunicorn.worker_pids())
                and len(d.gunicorn.worker_pids()) == d.workers
            ),
            40,
            0.05,
            "old workers replaced",
        )
        replaced = time.monotonic() - hup_at
        new_listener = _new_listener(d, old_listener)
        moved = time.monotonic() - hup_at
        stream.join(60)
        wait_all_settled(d, 90)
        wait_all_delivered(d, 20)
        time.sleep(1)
        result = tally("gunicorn HUP", d, stream)
        result.extra = {
            "old workers gone after s": round(replaced, 1),
            "listener moved after s": round(moved, 1),
            "max request latency s": round(stream.max_elapsed(), 2),
            "errors": [a.error for a in stream.errors],
        }
        print("\n" + result.line())
        assert new_listener not in old_workers
        assert result.sent == 40
        assert result.errors == 0, "a request lost in the reload"
        assert result.accepted == 40
        assert result.answered_calls == result.minutes == 40
        assert_consistent(result, d, stream, CREDITS)

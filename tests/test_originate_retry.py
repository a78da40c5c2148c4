"""Retry before anyone rang (issue 12): an originate a switch refuses before any leg exists goes
once to another switch; never once the caller's leg existed.

The pure rule first; then the originate's first word on a real connection to the simulator; the
store's two guarded writes (the move, and the refusal recorded only on a call still on its job) on
SQLite and MariaDB; the soft steering away from a switch that just refused; and the whole thing
through the falcon app with two in-process simulators, one of which refuses (a scenario that
fails every caller leg with DESTINATION_OUT_OF_ORDER, max-sessions reached, `fsctl pause`):
every request answers 0 and its call lands on the other switch with one row, one settlement and
one callback; when both refuse, 11 and nothing left behind; a refusal after the caller's leg
existed is never retried.

Everything runs in this process on gevent without monkey patching (tests.support.app_harness):
waits yield, never time.sleep.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import falcon.testing
import gevent
import pytest

from c2c.api.app import create_app
from c2c.api.runtime import Runtime
from c2c.calls import listener as listener_module
from c2c.calls.events import JobResult
from c2c.calls.listener import CallEventListener
from c2c.calls.retry import REFUSAL_CAUSES, Verdict, may_be_retried, may_move, verdict
from c2c.config import Config, SwitchAddress
from c2c.domain.states import CallState
from c2c.esl.connection import EslConnection, SwitchState
from c2c.esl.protocol import Event
from c2c.esl.switches import Switches
from c2c.fakeswitch.scenarios import Scenario
from c2c.fakeswitch.server import FakeSwitch
from c2c.store import Move, Store, make_engine
from c2c.store.invariants import check_invariants
from tests.callback_receiver import CallbackReceiver
from tests.conftest import ACCEPT_DEFAULTS, CallFactory
from tests.support.app_harness import AppHarness, fresh_number, gevent_wait

PASSWORD = "retry-pw"
TIME_SCALE = 0.02
REFUSE_EVERY_CALLER = Scenario.from_dict(
    {"rules": [{"role": "caller", "action": "fail", "cause": "DESTINATION_OUT_OF_ORDER"}]}
)
# The caller's leg is created and its phone refuses it with 503, as recording 23's call 1.
CALLER_LEG_REFUSED = Scenario.from_dict(
    {"rules": [{"role": "caller", "action": "refuse", "sip_status": 503, "after": 0.3}]}
)


def wait(predicate: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
    return gevent_wait(predicate, timeout, message=message)


@pytest.fixture(autouse=True)
def short_hold(monkeypatch) -> None:
    """The event holder keeps a refusal 3 s before applying it; tests need not wait that long."""
    monkeypatch.setattr(listener_module, "HOLD_SECONDS", 0.3)


# -- the pure rule --------------------------------------------------------------------------


def test_the_first_word_decides() -> None:
    refused = JobResult("j", False, "DESTINATION_OUT_OF_ORDER")
    assert verdict(False, refused) is Verdict.REFUSED
    # the caller's leg existed: never retried, whatever the job says afterwards (22b, 23 call 1)
    assert verdict(True, refused) is Verdict.TAKEN
    assert verdict(True, JobResult("j", False, "NORMAL_TEMPORARY_FAILURE")) is Verdict.TAKEN
    assert verdict(True, None) is Verdict.TAKEN
    assert verdict(False, JobResult("j", True, None)) is Verdict.TAKEN
    # failed before any channel for a reason of the route's: settles as a failed call
    assert verdict(False, JobResult("j", False, "GATEWAY_DOWN")) is Verdict.FAILED
    assert verdict(False, JobResult("j", False, "USER_BUSY")) is Verdict.FAILED
    assert verdict(False, None) is Verdict.UNHEARD
    assert REFUSAL_CAUSES == {"DESTINATION_OUT_OF_ORDER"}


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "state": "queued",
        "caller_answered_at": None,
        "caller_gone_at": None,
        "originate_error": None,
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    "row, movable",
    [
        (_row(), True),
        (_row(state="caller_ringing"), False),
        (_row(caller_answered_at=1.0), False),
        (_row(caller_gone_at=1.0), False),
        (_row(originate_error="DESTINATION_OUT_OF_ORDER"), False),
        (_row(state="ended"), False),
    ],
)
def test_only_a_call_with_no_trace_of_a_caller_leg_may_move(row, movable) -> None:
    assert may_move(row) is movable
    assert may_be_retried("DESTINATION_OUT_OF_ORDER", row) is movable
    assert may_be_retried("GATEWAY_DOWN", row) is False
    assert may_be_retried(None, row) is False


# -- the originate's first word, on a real connection -------------------------------------


def _address(switch: FakeSwitch) -> SwitchAddress:
    return SwitchAddress("127.0.0.1", switch.port, PASSWORD)


@pytest.fixture
def switch() -> Iterator[FakeSwitch]:
    fake = FakeSwitch("127.0.0.1", 0, PASSWORD, heartbeat=None, time_scale=TIME_SCALE).start()
    yield fake
    fake.stop()


@pytest.fixture
def connections() -> Iterator[list[EslConnection]]:
    made: list[EslConnection] = []
    yield made
    for connection in made:
        connection.stop()


def _watching(
    switch: FakeSwitch, connections: list[EslConnection], heard: list[Event] | None = None
) -> EslConnection:
    connection = EslConnection(
        _address(switch),
        2.0,
        watch_originates=True,
        on_event=heard.append if heard is not None else None,
    )
    connections.append(connection)
    connection.start()
    wait(lambda: connection.state is SwitchState.CONNECTED, 5, "connected")
    return connection


def _originate(connection: EslConnection, number: str) -> tuple[str, str]:
    job, leg = connection.tagged_uuid(), connection.tagged_uuid()
    connection.bgapi(
        f"originate {{origination_uuid={leg}}}sofia/gateway/default/+1{number} &park",
        job_uuid=job,
        leg_uuid=leg,
    )
    return job, leg


def test_each_connection_hears_only_its_own_originates(switch, connections) -> None:
    mine: list[Event] = []
    theirs: list[Event] = []
    connection = _watching(switch, connections, mine)
    other = _watching(switch, connections, theirs)
    assert connection.tag != other.tag and len(connection.tag or "") == 8
    job, leg = _originate(connection, "6465550999")  # answers after 1 s (scaled), stays up
    assert job.startswith(connection.tag or "?") and leg.startswith(connection.tag or "?")
    uuid.UUID(job)  # still a UUID
    first = connection.originate_verdict(job, leg, 2.0)
    assert first is not None and first.name == "CHANNEL_CREATE" and first.unique_id == leg
    wait(lambda: any(event.name == "BACKGROUND_JOB" for event in mine), 5, "the job's +OK")
    # Per call, the worker that placed it hears its caller leg's creation and its job's result;
    # no other worker hears anything of it (the callee's leg is not tagged).
    assert [(event.name, event.unique_id or event.job_uuid) for event in mine] == [
        ("CHANNEL_CREATE", leg),
        ("BACKGROUND_JOB", job),
    ]
    gevent.sleep(0.1)
    assert theirs == []
    switch.api_command(f"uuid_kill {leg}")


def test_a_paused_switch_refuses_before_any_leg(switch, connections) -> None:
    connection = _watching(switch, connections)
    assert switch.api_command("fsctl pause") == "+OK\n"
    job, leg = _originate(connection, "6465550999")
    first = connection.originate_verdict(job, leg, 2.0)
    assert first is not None and first.name == "BACKGROUND_JOB"
    assert (first.body or "").strip() == "-ERR DESTINATION_OUT_OF_ORDER"
    assert not switch.switchboard.legs


def test_the_leg_wins_when_its_creation_and_the_jobs_failure_are_both_in(connections) -> None:
    with FakeSwitch(
        "127.0.0.1", 0, PASSWORD, heartbeat=None, time_scale=TIME_SCALE, scenario=CALLER_LEG_REFUSED
    ) as refusing:
        heard: list[Event] = []
        connection = _watching(refusing, connections, heard)
        job, leg = _originate(connection, "6465550123")
        wait(lambda: any(event.name == "BACKGROUND_JOB" for event in heard), 5, "the -ERR")
        first = connection.originate_verdict(job, leg, 0.0)
        assert first is not None and first.name == "CHANNEL_CREATE"


def test_no_word_in_time_is_none_and_nothing_is_kept(switch, connections) -> None:
    connection = _watching(switch, connections)
    assert connection.originate_verdict("never-sent", "no-such-leg", 0.05) is None
    job, leg = _originate(connection, "6465550999")
    connection.originate_verdict(job, leg, 2.0)
    assert connection._legs == {} and job not in connection._jobs
    switch.api_command(f"uuid_kill {leg}")


def test_a_connection_that_does_not_watch_subscribes_nothing(switch, connections) -> None:
    plain = EslConnection(_address(switch), 2.0)
    connections.append(plain)
    plain.start()
    wait(lambda: plain.state is SwitchState.CONNECTED, 5, "connected")
    assert plain.tag is None and plain.events == () and plain.filters == []
    uuid.UUID(plain.tagged_uuid())


# -- the store: the move and the refusal, each guarded by the job ----------------------------


@pytest.fixture
def queued(store: Store, make_call: CallFactory) -> dict[str, Any]:
    account = store.accounts.create("retry", 100)
    call = make_call(account.id, switch="a:8021")
    store.accept_call(account.id, call, now=time.time(), **ACCEPT_DEFAULTS)
    row = store.calls.get(call.id)
    assert row is not None
    return row


def _move(to: str = "b:8021") -> Move:
    return Move(to, str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))


def test_a_queued_call_moves_with_fresh_ids_and_keeps_the_rest(store, queued) -> None:
    move = _move()
    assert store.move_call(queued["id"], queued["job_uuid"], move, recheck_at=123.0)
    row = store.calls.get(queued["id"])
    assert (row["switch"], row["job_uuid"], row["caller_uuid"], row["callee_uuid"]) == (
        move.switch,
        move.job_uuid,
        move.caller_uuid,
        move.callee_uuid,
    )
    assert row["recheck_at"] == 123.0
    kept = ("created_at", "deadline_at", "max_minutes", "state", "account_id")
    assert {k: row[k] for k in kept} == {k: queued[k] for k in kept}
    # the first switch's refusal no longer applies to it, and it does not move twice
    assert not store.record_originate_error(
        queued["id"], queued["job_uuid"], "DESTINATION_OUT_OF_ORDER"
    )
    assert store.calls.get(queued["id"])["originate_error"] is None
    assert not store.move_call(queued["id"], queued["job_uuid"], _move("c:8021"), recheck_at=1.0)
    assert check_invariants(store, now=time.time()) == []


def test_a_recorded_refusal_pins_the_call_to_its_switch(store, queued) -> None:
    assert store.record_originate_error(
        queued["id"], queued["job_uuid"], "DESTINATION_OUT_OF_ORDER"
    )
    assert store.record_originate_error(queued["id"], queued["job_uuid"], "OTHER")  # replayed
    assert store.calls.get(queued["id"])["originate_error"] == "DESTINATION_OUT_OF_ORDER"
    assert not store.move_call(queued["id"], queued["job_uuid"], _move(), recheck_at=1.0)
    assert store.calls.get(queued["id"])["switch"] == "a:8021"


@pytest.mark.parametrize(
    "trace",
    [
        {"caller_answered_at": 1.0},
        {"caller_gone_at": 1.0},
    ],
)
def test_a_call_with_a_trace_of_its_caller_leg_never_moves(store, queued, trace) -> None:
    store.calls.set_fields(queued["id"], trace)
    assert not store.move_call(queued["id"], queued["job_uuid"], _move(), recheck_at=1.0)


def test_a_ringing_call_never_moves(store, queued) -> None:
    store.calls.advance(queued["id"], [CallState.QUEUED], CallState.CALLER_RINGING)
    assert not store.move_call(queued["id"], queued["job_uuid"], _move(), recheck_at=1.0)


# -- the first switch's event holder: a refusal held back, then applied only if still due ------


def _refusal(row: dict[str, Any], cause: str = "DESTINATION_OUT_OF_ORDER") -> JobResult:
    return JobResult(row["job_uuid"], False, cause)


def test_the_holder_holds_a_refusal_back_then_settles_the_call_still_on_its_job(
    store, queued
) -> None:
    listener = CallEventListener(store)
    listener.originate_failed(_refusal(queued))
    assert store.calls.get(queued["id"])["originate_error"] is None  # held: it may be moving
    row = wait(
        lambda: (r := store.calls.get(queued["id"]))["state"] == "ended" and r,
        5,
        "settled after the hold",
    )
    assert (row["answered"], row["reason"], row["originate_error"]) == (
        False,
        0,
        "DESTINATION_OUT_OF_ORDER",
    )
    assert not store.move_call(queued["id"], queued["job_uuid"], _move(), recheck_at=1.0)
    assert check_invariants(store, now=time.time()) == []


def test_a_call_moved_while_its_refusal_was_held_is_left_alone(store, queued) -> None:
    listener = CallEventListener(store)
    listener.originate_failed(_refusal(queued))
    assert store.move_call(queued["id"], queued["job_uuid"], _move(), recheck_at=1.0)
    gevent.sleep(3 * listener_module.HOLD_SECONDS)
    row = store.calls.get(queued["id"])
    assert (row["state"], row["switch"], row["originate_error"]) == ("queued", "b:8021", None)


def test_other_failures_before_any_leg_settle_at_once(store, queued) -> None:
    CallEventListener(store).originate_failed(_refusal(queued, "GATEWAY_DOWN"))
    row = store.calls.get(queued["id"])
    assert (row["state"], row["originate_error"]) == ("ended", "GATEWAY_DOWN")


# -- two switches ---------------------------------------------------------------------------


class Pair:
    """A worker (Runtime, its background work, the falcon app) on two in-process simulators."""

    def __init__(
        self, store_url: str, first: FakeSwitch, second: FakeSwitch, **config: Any
    ) -> None:
        self.first, self.second = first, second
        self.store = Store(make_engine(store_url), coverage_cache_seconds=0)
        self.store.upgrade()
        self.config = Config.defaults(
            database_url=store_url,
            switches=(_address(first), _address(second)),
            callback_allow_private=True,
            account_cache_seconds=0,
            esl_timeout=2.0,
            lease_seconds=2,
            flood_seconds=0,
            ring_timeout=10,
            **config,
        )
        self.runtime = Runtime(self.config, self.store, Switches(self.config))
        self.client = falcon.testing.TestClient(create_app(self.runtime))
        self.a, self.b = (address.name for address in self.config.switches)
        self.api_key = self.store.accounts.create("pair", 1000).api_key

    def start(self) -> Pair:
        self.runtime.start()
        wait(lambda: all(view.live for view in self.runtime.switches.views()), 10, "both live")
        wait(lambda: all(owner.holding for owner in self.runtime.owners), 10, "both held")
        for fake in (self.first, self.second):
            wait(lambda fake=fake: fake.bus.wanted("CHANNEL_HANGUP_COMPLETE"), 10, "listening")
        gevent.sleep(0.05)  # the holders' first reconciliation
        return self

    def stop(self) -> None:
        self.runtime.stop()
        self.store.dispose()

    def place(self, callback_url: str | None = None, **numbers: str) -> tuple[int, str | None]:
        params = {
            "api_key": self.api_key,
            "caller_phone_number": numbers.get("caller", fresh_number()),
            "caller_country_code": "1",
            "callee_phone_number": numbers.get("callee", fresh_number()),
            "callee_country_code": "1",
        }
        if callback_url:
            params["callback_url"] = callback_url
        result = self.client.simulate_get("/api/clicktocall/", query_string=urlencode(params))
        assert result.status_code == 200
        return int(result.text), result.headers.get("x-c2c-call-id")

    def settled(self, call_id: str, timeout: float = 15.0) -> dict[str, Any]:
        return wait(
            lambda: (row := self.store.calls.get(call_id)) and row["state"] == "ended" and row,
            timeout,
            f"call {call_id} settled",
        )

    def call_rows(self) -> list[dict[str, Any]]:
        return self.store.calls.list(limit=1000)

    def refused_on_first(self, caplog) -> int:
        return sum(
            f"refused by {self.a} before any leg existed; sent to {self.b}" in record.getMessage()
            for record in caplog.records
        )


def _simulator(**kwargs: Any) -> FakeSwitch:
    return FakeSwitch(
        "127.0.0.1", 0, PASSWORD, heartbeat=None, time_scale=TIME_SCALE, **kwargs
    ).start()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    with CallbackReceiver() as running:
        yield running


@pytest.fixture
def pairs() -> Iterator[list[Pair]]:
    made: list[Pair] = []
    yield made
    for pair in made:
        pair.stop()
        pair.first.stop()
        pair.second.stop()


def _pair(pairs: list[Pair], store_url: str, first: FakeSwitch, **config: Any) -> Pair:
    pair = Pair(store_url, first, _simulator(), **config)
    pairs.append(pair)
    return pair.start()


def _each_settles_once_on_the_second(
    pair: Pair, placed: list[tuple[int, str | None]], receiver: CallbackReceiver
) -> None:
    assert [code for code, _ in placed] == [0] * len(placed)
    call_ids = [call_id for _, call_id in placed]
    for call_id in call_ids:
        assert call_id is not None
        row = pair.settled(call_id)
        assert row["switch"] == pair.b
        assert (row["answered"], row["minutes"], row["originate_error"]) == (True, 1, None)
    wait(lambda: len(receiver.requests) >= len(call_ids), 10, "every callback")
    gevent.sleep(2 * listener_module.HOLD_SECONDS)  # the first switch's held refusals resolve
    rows = pair.call_rows()
    assert sorted(row["id"] for row in rows) == sorted(call_ids)  # one row each
    assert {row["state"] for row in rows} == {"ended"}
    delivered = [request.header("X-C2C-Call-Id") for request in receiver.requests]
    assert sorted(delivered) == sorted(call_ids)  # one callback each
    assert not pair.first.switchboard.legs
    account = pair.store.accounts.find_by_key(pair.api_key)
    assert account is not None and account.reserved == 0
    assert account.credits == 1000 - len(call_ids)  # one settlement each, one minute each
    assert check_invariants(pair.store, now=time.time()) == []


def test_a_refusing_switch_sends_every_call_to_the_other(
    store_url, pairs, receiver, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="c2c")
    pair = _pair(pairs, store_url, _simulator(scenario=REFUSE_EVERY_CALLER))
    placed = [pair.place(receiver.url("/cb")) for _ in range(4)]
    # The first went to the first switch (config order, both idle), was refused and moved; the
    # refusal steers the next ones away until a probe could say why.
    assert pair.refused_on_first(caplog) >= 1
    _each_settles_once_on_the_second(pair, placed, receiver)
    scraped = pair.client.simulate_get("/metrics").text
    assert 'c2c_originate_retries_total{result="moved"} ' in scraped
    assert 'c2c_originate_retries_total{result="moved"} 0.0' not in scraped


def test_a_full_switch_sends_its_calls_to_the_other(store_url, pairs, receiver) -> None:
    first = _simulator()
    pair = _pair(pairs, store_url, first)
    # A call c2c does not know of takes the first switch's only session (as another
    # application's would); its next probe will say so, until then only the refusal tells.
    gevent.spawn(
        first.api_command,
        "originate {origination_uuid="
        + str(uuid.uuid4())
        + "}sofia/gateway/default/+16465550999 &park",
    )
    wait(lambda: first.switchboard.count == 1, 5, "one session up")
    assert first.api_command("fsctl max_sessions 1") == "+OK max sessions: 1\n"
    placed = [pair.place(receiver.url("/cb")) for _ in range(3)]
    first.api_command("hupall")
    _each_settles_once_on_the_second(pair, placed, receiver)


def test_a_paused_switch_sends_its_calls_to_the_other(store_url, pairs, receiver) -> None:
    first = _simulator()
    pair = _pair(pairs, store_url, first)
    assert first.api_command("fsctl pause") == "+OK\n"
    placed = [pair.place(receiver.url("/cb")) for _ in range(3)]
    _each_settles_once_on_the_second(pair, placed, receiver)


def test_when_both_refuse_the_request_answers_11_and_leaves_nothing(store_url, pairs) -> None:
    pair = Pair(
        store_url,
        _simulator(scenario=REFUSE_EVERY_CALLER),
        _simulator(scenario=REFUSE_EVERY_CALLER),
    )
    pairs.append(pair)
    pair.start()
    before = (pair.call_rows(), pair.store.accounts.find_by_key(pair.api_key))
    assert [pair.place()[0] for _ in range(3)] == [11, 11, 11]
    scraped = pair.client.simulate_get("/metrics").text
    assert 'c2c_originate_retries_total{result="refused_again"} 0.0' not in scraped
    gevent.sleep(2 * listener_module.HOLD_SECONDS)  # both holders' refusals resolve to nothing
    assert (pair.call_rows(), pair.store.accounts.find_by_key(pair.api_key)) == before
    assert check_invariants(pair.store, now=time.time()) == []


def test_a_refusal_after_the_callers_leg_existed_is_never_retried(store_url, pairs) -> None:
    """Recording 23's call 1: the caller's leg is created and its phone refuses it (503): the
    job fails with NORMAL_TEMPORARY_FAILURE, and the call settles on the first switch."""
    pair = _pair(pairs, store_url, _simulator(scenario=CALLER_LEG_REFUSED))
    code, call_id = pair.place()
    assert code == 0 and call_id is not None
    row = pair.settled(call_id)
    assert (row["switch"], row["answered"], row["reason"]) == (pair.a, False, 8)
    assert row["caller_hangup_cause"] == "NORMAL_TEMPORARY_FAILURE"
    assert pair.second.switchboard.sessions_since_startup == 0
    assert len(pair.call_rows()) == 1
    assert check_invariants(pair.store, now=time.time()) == []


def test_a_callee_leg_refused_once_the_caller_answered_is_never_retried(store_url, pairs) -> None:
    """Recording 22b: the switch is paused for new legs after the caller's leg exists; the
    caller answers, the callee's leg cannot be created and the caller's leg ends
    DESTINATION_OUT_OF_ORDER. A phone rang: the call settles on the first switch."""
    first = FakeSwitch("127.0.0.1", 0, PASSWORD, heartbeat=None, time_scale=0.2).start()
    pair = _pair(pairs, store_url, first)
    code, call_id = pair.place()  # the caller answers 1 s (scaled: 0.2 s) after its creation
    assert code == 0 and call_id is not None
    assert first.api_command("fsctl pause outbound") == "+OK\n"
    row = pair.settled(call_id)
    assert (row["switch"], row["answered"], row["minutes"]) == (pair.a, False, 0)
    assert "DESTINATION_OUT_OF_ORDER" in (row["caller_hangup_cause"], row["callee_fate"])
    assert pair.second.switchboard.sessions_since_startup == 0
    assert check_invariants(pair.store, now=time.time()) == []


# -- steering away from a switch that just refused -----------------------------------------


def test_a_switch_that_just_refused_gets_calls_only_when_no_other_can(store_url, pairs) -> None:
    pair = _pair(pairs, store_url, _simulator())
    switches = pair.runtime.switches
    assert switches.pick().name == pair.a  # config order among equals
    switches.note_refusal(pair.a)
    assert switches.pick().name == pair.b
    pair.store.switch_states.set_draining(pair.b, True, time.time())
    switches.refresh()
    assert switches.pick().name == pair.a  # soft: better than answering 11
    switches.note_refusal("not-a-switch:1")  # ignored


def test_a_refusal_is_forgotten_once_a_probe_could_have_said_why() -> None:
    first, second = _simulator(), _simulator()
    now = [1000.0]
    config = Config.defaults(
        switches=(_address(first), _address(second)), esl_liveness_seconds=9.0
    )  # a probe every 3 s
    switches = Switches(config, monotonic=lambda: now[0])
    a, b = (address.name for address in config.switches)
    try:
        switches.start()
        wait(lambda: all(view.live for view in switches.views()), 10, "both live")
        switches.note_refusal(a)
        now[0] += 2.9
        assert switches.pick().name == b
        now[0] += 0.2
        assert switches.pick().name == a
    finally:
        switches.stop()
        first.stop()
        second.stop()


def test_the_setting_is_read_and_checked() -> None:
    assert Config.defaults().originate_verdict_seconds == 1.0
    assert Config.from_env({"C2C_ORIGINATE_VERDICT_SECONDS": "0"}).originate_verdict_seconds == 0
    for bad in ("-1", "11", "nan", "soon"):
        with pytest.raises(Exception, match="C2C_ORIGINATE_VERDICT_SECONDS"):
            Config.from_env({"C2C_ORIGINATE_VERDICT_SECONDS": bad})


# -- one switch (the refusal answered 11, or without the wait: tests/test_api_component.py) ----


def test_the_originate_tells_its_leg_and_job_apart_from_other_workers(store_url) -> None:
    with AppHarness(store_url) as h:
        result = h.get({"api_key": h.account().api_key, **h.numbers()})
        assert h.code(result) == 0
        row = h.store.calls.get(result.headers["x-c2c-call-id"])
        tag = h.connection.tag
        assert row["job_uuid"].startswith(tag) and row["caller_uuid"].startswith(tag)
        assert not row["callee_uuid"].startswith(tag)
        assert json.loads(h.switch.api_command("show channels as json"))["row_count"] >= 1

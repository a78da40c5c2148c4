"""The callback dispatcher on a real store and a real local receiver, driven by run_once()."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time

import gevent
import pytest

from c2c.callbacks.backoff import CAP_SECONDS, next_delay, should_give_up
from c2c.callbacks.dispatcher import CallbackDispatcher
from c2c.callbacks.sender import SendResult
from c2c.config import Config
from c2c.store import SettledOutcome
from tests.callback_receiver import CallbackReceiver

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def signature_ok(secret: str, request) -> bool:
    """Checked the way a customer would, without c2c.callbacks.signing."""
    payload = f"{request.header('X-C2C-Timestamp')}.{request.target}".encode()
    expected = "v1=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.header("X-C2C-Signature") or "")


@pytest.fixture
def receiver():
    with CallbackReceiver() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def account(store):
    return store.accounts.create("acme", credits=1000, now=T0 - 3600)


@pytest.fixture
def enqueue(store, make_call, account):
    """Accept and settle a call whose callback goes to ``url``; the callback is due at ``at``."""

    def settle_one(url: str, *, at: float = T0, answered: bool = True, minutes: int = 2) -> str:
        call = make_call(account.id, callback_url=url, secret="s3")
        store.accept_call(
            account.id,
            call,
            flood_seconds=0,
            max_call_minutes=120,
            ring_timeout=30,
            settle_grace=120,
            now=at - 300,
        )
        outcome = SettledOutcome(
            answered=answered,
            minutes=minutes if answered else 0,
            reason=None if answered else 5,
            billsec=minutes * 60 - 30 if answered else 0,
        )
        assert store.calls.settle(call.id, outcome, ended_at=at, now=at)
        return call.id

    return settle_one


@pytest.fixture
def make_dispatcher(store, clock):
    def build(concurrency: int = 4, **settings) -> CallbackDispatcher:
        settings.setdefault("callback_allow_private", True)  # the receiver is on loopback
        settings.setdefault("callback_timeout", 1.0)
        config = Config.defaults(**settings)
        # rng 0: every delay is the low end of its window (1 s, 2 s, 4 s...), for exact checks.
        return CallbackDispatcher(store, config, concurrency, clock=clock, rng=lambda: 0.0)

    return build


def row(store, call_id: str) -> dict:
    callback = store.callbacks.get_for_call(call_id)
    assert callback is not None
    return callback


def attempts(store, call_id: str) -> list[tuple[float, int | None, str | None]]:
    return [(a["at"], a["http_status"], a["error"]) for a in store.callbacks.list_for_call(call_id)]


def run_until_settled(dispatcher, store, clock, call_id: str, max_rounds: int = 60) -> None:
    """Advance the clock to each retry and run a round, until the callback is no longer pending."""
    for _ in range(max_rounds):
        callback = row(store, call_id)
        if callback["status"] != "pending":
            return
        clock.now = max(clock.now, callback["next_attempt_at"])
        dispatcher.run_once()
    raise AssertionError("callback still pending")


# -- delivery --


def test_delivers_the_result_signed_and_only_once(
    store, account, enqueue, receiver, make_dispatcher, clock
):
    call_id = enqueue(receiver.url("/hooks/c2c?site=7"))
    dispatcher = make_dispatcher()

    assert dispatcher.run_once() == 1

    [request] = receiver.requests
    assert request.path == "/hooks/c2c"
    assert request.query == [
        ("site", "7"),
        ("caller_phone_number", "5552104427"),
        ("callee_phone_number", "2071234567"),
        ("minutes", "2"),
        ("secret", "s3"),
        ("answered", "1"),
        ("reason", ""),
    ]
    assert request.header("X-C2C-Call-Id") == call_id
    assert request.header("X-C2C-Timestamp") == str(int(T0))
    assert signature_ok(account.webhook_secret, request)
    assert not signature_ok("another-secret", request)

    callback = row(store, call_id)
    assert (callback["status"], callback["attempts"], callback["delivered_at"]) == (
        "delivered",
        1,
        T0,
    )
    assert attempts(store, call_id) == [(T0, 200, None)]

    clock.now += 7 * 86400
    assert dispatcher.run_once() == 0
    assert len(receiver.requests) == 1


def test_unanswered_call_reports_its_reason(store, enqueue, receiver, make_dispatcher):
    enqueue(receiver.url("/cb"), answered=False)
    make_dispatcher().run_once()
    query = dict(receiver.requests[0].query)
    assert (query["answered"], query["minutes"], query["reason"]) == ("0", "0", "5")


def test_server_error_then_success(store, account, enqueue, receiver, make_dispatcher, clock):
    receiver.fail_next(1, status=500)
    call_id = enqueue(receiver.url("/cb"))
    dispatcher = make_dispatcher()

    assert dispatcher.run_once() == 1
    callback = row(store, call_id)
    assert (callback["status"], callback["attempts"], callback["last_error"]) == (
        "pending",
        1,
        "HTTP 500",
    )
    assert callback["next_attempt_at"] == T0 + 1.0

    clock.now = T0 + 0.5
    assert dispatcher.run_once() == 0  # not due yet

    clock.now = T0 + 1.0
    assert dispatcher.run_once() == 1
    assert row(store, call_id)["status"] == "delivered"
    assert attempts(store, call_id) == [(T0, 500, "HTTP 500"), (T0 + 1.0, 200, None)]
    assert [r.header("X-C2C-Call-Id") for r in receiver.requests] == [call_id, call_id]
    assert all(signature_ok(account.webhook_secret, r) for r in receiver.requests)
    assert [r.header("X-C2C-Timestamp") for r in receiver.requests] == [
        str(int(T0)),
        str(int(T0 + 1.0)),
    ]


def test_retry_delays_double(store, enqueue, receiver, make_dispatcher, clock):
    receiver.fail_next(4, status=503)
    call_id = enqueue(receiver.url("/cb"))
    run_until_settled(make_dispatcher(), store, clock, call_id)
    times = [at for at, _, _ in attempts(store, call_id)]
    assert [b - a for a, b in zip(times, times[1:], strict=False)] == [1.0, 2.0, 4.0, 8.0]
    assert row(store, call_id)["status"] == "delivered"


def test_a_stalled_receiver_times_out_and_is_retried(
    store, enqueue, receiver, make_dispatcher, clock
):
    receiver.stall_next(1, seconds=10)
    call_id = enqueue(receiver.url("/cb"))
    dispatcher = make_dispatcher(callback_timeout=0.5)

    started = time.monotonic()
    assert dispatcher.run_once() == 1
    assert time.monotonic() - started < 3
    callback = row(store, call_id)
    assert callback["status"] == "pending"
    assert "timed out" in callback["last_error"]

    clock.now = callback["next_attempt_at"]
    dispatcher.run_once()
    assert row(store, call_id)["status"] == "delivered"


def test_connection_refused_is_retried(store, enqueue, receiver, make_dispatcher):
    receiver.go_down()
    call_id = enqueue(receiver.url("/cb"))
    make_dispatcher().run_once()
    callback = row(store, call_id)
    assert callback["status"] == "pending"
    assert "connection refused" in callback["last_error"]


def test_receiver_down_for_a_while_gets_it_once_back_up(
    store, enqueue, receiver, make_dispatcher, clock
):
    receiver.go_down()
    call_id = enqueue(receiver.url("/cb"))
    dispatcher = make_dispatcher()
    for _ in range(3):
        clock.now = row(store, call_id)["next_attempt_at"]
        assert dispatcher.run_once() == 1
    assert row(store, call_id)["status"] == "pending"

    receiver.come_up()
    run_until_settled(dispatcher, store, clock, call_id)

    assert row(store, call_id)["status"] == "delivered"
    assert len(receiver.requests) == 1
    statuses = [status for _, status, _ in attempts(store, call_id)]
    assert statuses == [None, None, None, 200]


def test_gives_up_at_the_horizon(store, enqueue, receiver, make_dispatcher, clock):
    receiver.go_down()
    call_id = enqueue(receiver.url("/cb"))
    run_until_settled(make_dispatcher(callback_horizon=60), store, clock, call_id)

    callback = row(store, call_id)
    assert callback["status"] == "failed"
    assert "connection refused" in callback["last_error"]
    times = [at for at, _, _ in attempts(store, call_id)]
    # 1, 2, 4, 8, 16 s apart, then the next (32 s) would pass the horizon: the last try is on it.
    assert times == [T0, T0 + 1, T0 + 3, T0 + 7, T0 + 15, T0 + 31, T0 + 60]

    clock.now += 86400
    assert make_dispatcher().run_once() == 0


def test_redirect_is_refused_and_retried(store, enqueue, receiver, make_dispatcher):
    receiver.redirect_next(1, location=receiver.url("/elsewhere"))
    call_id = enqueue(receiver.url("/cb"))
    make_dispatcher().run_once()
    callback = row(store, call_id)
    assert (callback["status"], callback["last_error"]) == (
        "pending",
        "redirect refused (HTTP 302)",
    )
    assert [r.path for r in receiver.requests] == ["/cb"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.1", "2130706433"])
def test_private_address_is_refused_for_good_unless_allowed(
    store, enqueue, receiver, make_dispatcher, host
):
    call_id = enqueue(receiver.url("/cb", host=host))
    make_dispatcher(callback_allow_private=False).run_once()
    callback = row(store, call_id)
    assert callback["status"] == "failed"
    assert "non-public" in callback["last_error"]
    assert receiver.requests == []


def test_private_address_is_sent_when_allowed(store, enqueue, receiver, make_dispatcher):
    call_id = enqueue(receiver.url("/cb", host="localhost"))
    make_dispatcher(callback_allow_private=True).run_once()
    assert row(store, call_id)["status"] == "delivered"


# -- claims --


def test_claim_of_a_dead_worker_expires_and_is_sent(
    store, enqueue, receiver, make_dispatcher, clock
):
    call_id = enqueue(receiver.url("/cb"))
    dispatcher = make_dispatcher()
    # Another worker claims the row and dies before sending or recording anything.
    assert len(store.callbacks.claim_due(T0, 10, dispatcher.lease_seconds)) == 1

    clock.now = T0 + 1
    assert dispatcher.run_once() == 0
    assert receiver.requests == []

    clock.now = T0 + dispatcher.lease_seconds + 1
    assert dispatcher.run_once() == 1
    assert row(store, call_id)["status"] == "delivered"
    assert len(receiver.requests) == 1


def test_two_dispatchers_never_send_the_same_callback(store, enqueue, receiver, make_dispatcher):
    call_ids = {enqueue(receiver.url(f"/cb/{n}")) for n in range(20)}
    sent: list[int] = []

    def drain(dispatcher: CallbackDispatcher) -> None:
        while claimed := dispatcher.run_once():
            sent.append(claimed)

    threads = [threading.Thread(target=drain, args=(make_dispatcher(3),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(sent) == 20
    assert sorted(r.header("X-C2C-Call-Id") for r in receiver.requests) == sorted(call_ids)


def test_many_callbacks_each_once_in_batches(store, enqueue, receiver, make_dispatcher):
    call_ids = {enqueue(receiver.url(f"/cb/{n}")) for n in range(5)}
    dispatcher = make_dispatcher(concurrency=2)
    assert [dispatcher.run_once() for _ in range(4)] == [2, 2, 1, 0]
    assert sorted(r.header("X-C2C-Call-Id") for r in receiver.requests) == sorted(call_ids)
    assert all(row(store, call_id)["status"] == "delivered" for call_id in call_ids)


def test_a_send_past_its_deadline_is_a_failed_attempt(store, enqueue, make_dispatcher):
    def hangs(*args, **kwargs) -> SendResult:
        gevent.sleep(30)
        raise AssertionError("not interrupted")

    call_id = enqueue("https://hooks.example.com/cb")
    dispatcher = make_dispatcher()
    dispatcher._send = hangs
    dispatcher.send_deadline = 0.1
    assert dispatcher.run_once() == 1
    callback = row(store, call_id)
    assert callback["status"] == "pending"
    assert "no complete answer within 0.1s" in callback["last_error"]


def test_an_unexpected_error_is_logged_and_the_claim_left_to_expire(
    store, enqueue, make_dispatcher, caplog
):
    def broken(*args, **kwargs) -> SendResult:
        raise RuntimeError("bug in a sender")

    call_id = enqueue("https://hooks.example.com/cb?secret=hunter2")
    dispatcher = make_dispatcher()
    dispatcher._send = broken
    with caplog.at_level(logging.ERROR, logger="c2c.callbacks.dispatcher"):
        assert dispatcher.run_once() == 1
    assert call_id in caplog.text and "bug in a sender" in caplog.text
    callback = row(store, call_id)
    assert (callback["status"], callback["attempts"]) == ("pending", 0)


def test_logs_never_show_the_secret_parameter(store, enqueue, make_dispatcher, caplog):
    def refused(*args, **kwargs) -> SendResult:
        return SendResult(False, 500, "HTTP 500")

    call_id = enqueue("https://user:pw@hooks.example.com/cb?secret=topsecret")
    dispatcher = make_dispatcher()
    dispatcher._send = refused
    with caplog.at_level(logging.DEBUG):
        dispatcher.run_once()
    assert call_id in caplog.text
    assert "hooks.example.com/cb?" in caplog.text
    assert "secret=s3" not in caplog.text  # the call's own secret, appended at settlement
    assert "topsecret" not in caplog.text and ":pw@" not in caplog.text


# -- the running loop --


def test_wake_sends_within_milliseconds(store, enqueue, receiver):
    config = Config.defaults(callback_allow_private=True, callback_timeout=1.0)
    dispatcher = CallbackDispatcher(store, config, concurrency=2, idle_interval=30.0)
    dispatcher.start()
    try:
        gevent.sleep(0.05)  # the loop finds nothing due and rests (30 s) until woken
        call_id = enqueue(receiver.url("/cb"), at=time.time())
        woken_at = time.monotonic()
        dispatcher.wake()
        while row(store, call_id)["status"] == "pending" and time.monotonic() - woken_at < 5:
            gevent.sleep(0.005)
        assert row(store, call_id)["status"] == "delivered"
        assert time.monotonic() - woken_at < 1.0
    finally:
        dispatcher.stop(timeout=2)
    assert len(receiver.requests) == 1


def test_loop_polls_without_a_wake(store, enqueue, receiver):
    config = Config.defaults(callback_allow_private=True, callback_timeout=1.0)
    dispatcher = CallbackDispatcher(store, config, concurrency=2, idle_interval=0.05)
    dispatcher.start()
    try:
        call_id = enqueue(receiver.url("/cb"), at=time.time())
        deadline = time.monotonic() + 5
        while row(store, call_id)["status"] == "pending" and time.monotonic() < deadline:
            gevent.sleep(0.01)
        assert row(store, call_id)["status"] == "delivered"
    finally:
        dispatcher.stop(timeout=2)


def test_stop_returns_while_a_send_hangs(store, enqueue):
    def hangs(*args, **kwargs) -> SendResult:
        gevent.sleep(30)
        raise AssertionError("not interrupted")

    config = Config.defaults(callback_allow_private=True)
    dispatcher = CallbackDispatcher(store, config, concurrency=2, idle_interval=0.01, send=hangs)
    enqueue("https://hooks.example.com/cb", at=time.time())
    dispatcher.start()
    gevent.sleep(0.1)
    started = time.monotonic()
    dispatcher.stop(timeout=0.2)
    assert time.monotonic() - started < 3


# -- backoff (pure) --


def test_first_retry_is_one_to_two_seconds():
    assert next_delay(1, rng=lambda: 0.0) == 1.0
    assert next_delay(1, rng=lambda: 0.999) == pytest.approx(2.0, abs=0.01)


def test_delays_double_then_cap():
    lows = [next_delay(n, rng=lambda: 0.0) for n in range(1, 12)]
    assert lows[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert lows[-1] == CAP_SECONDS / 2
    assert next_delay(10_000, rng=lambda: 1.0) == CAP_SECONDS
    assert next_delay(0, rng=lambda: 0.0) == 1.0  # nonsense counts are treated as the first


def test_delay_is_jittered_within_its_window():
    delays = {next_delay(3) for _ in range(50)}
    assert len(delays) > 1
    assert all(4.0 <= d <= 8.0 for d in delays)


def test_should_give_up():
    assert not should_give_up(T0, T0 + 59.9, 60)
    assert should_give_up(T0, T0 + 60, 60)

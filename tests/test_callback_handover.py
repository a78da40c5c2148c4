"""Callbacks handed over by the settling transaction: written claimed, sent by this process's
dispatcher without a claim, and never lost if it does not send them (the claim expires)."""

from __future__ import annotations

import time

import gevent
import pytest

from c2c.callbacks import dispatcher as dispatcher_module
from c2c.callbacks.dispatcher import CallbackDispatcher
from c2c.calls.listener import CallEventListener
from c2c.calls.outcome import CallOutcome
from c2c.config import Config
from c2c.store import SettledOutcome
from tests.callback_receiver import CallbackReceiver

ANSWERED = SettledOutcome(answered=True, minutes=1, reason=None, billsec=42)


@pytest.fixture
def receiver():
    with CallbackReceiver() as running:
        yield running


@pytest.fixture
def account(store):
    return store.accounts.create("acme", credits=1000, now=time.time() - 3600)


@pytest.fixture
def accepted(store, make_call, account):
    """Accept calls: accepted(url or None, ...) -> their ids."""

    def accept(*urls: str | None) -> list[str]:
        ids = []
        for n, url in enumerate(urls):
            call = make_call(account.id, f"1555210{n:04d}", f"44207123{n:04d}",
                             callback_url=url, secret="s3")
            store.accept_call(account.id, call, flood_seconds=0, max_call_minutes=120,
                              ring_timeout=30, settle_grace=120, now=time.time() - 60)
            ids.append(call.id)
        return ids

    return accept


def _settle(store, call_ids, take, lease=60.0, now=None):
    return store.calls.settle_ready(call_ids, lambda call: (ANSWERED, time.time()), now=now,
                                    claim_callbacks=(lease, take))


def test_settling_writes_the_callbacks_claimed_and_hands_them_over(store, accepted, account):
    ids = accepted("https://hooks.example.com/a", None, "https://hooks.example.com/b")
    taken = []
    now = time.time()
    settled = _settle(store, ids, taken.extend, lease=60.0, now=now)
    assert sorted(call_id for call_id, _ in settled) == sorted(ids)
    assert sorted(job.call_id for job in taken) == sorted([ids[0], ids[2]])
    for job in taken:
        assert job.webhook_secret == account.webhook_secret
        assert job.attempts == 0 and job.url.startswith("https://hooks.example.com/")
        assert store.callbacks.get_for_call(job.call_id)["claimed_until"] == pytest.approx(
            now + 60)
    # Claimed: no dispatcher claims them meanwhile; once the claim lapses, any one does.
    assert store.callbacks.claim_due(now + 1, 10, 30) == []
    late = store.callbacks.claim_due(now + 61, 10, 30)
    assert sorted(job.id for job in late) == sorted(job.id for job in taken)


def test_nothing_is_handed_for_a_group_that_settles_nothing(store, accepted):
    ids = accepted("https://hooks.example.com/a")
    taken = []
    assert store.calls.settle_ready(ids, lambda call: None,
                                    claim_callbacks=(60.0, taken.extend)) == []
    assert taken == []


def _dispatcher(store):
    """A dispatcher that sends to the local receiver and, once started, polls only every 30 s
    (what it sends sooner, it was handed or woken for)."""
    config = Config.defaults(callback_allow_private=True, callback_timeout=1.0)
    return CallbackDispatcher(store, config, concurrency=2, idle_interval=30.0)


def _wait_sent(store, call_ids):
    with gevent.Timeout(5):
        while any(store.callbacks.get_for_call(c)["status"] == "pending" for c in call_ids):
            gevent.sleep(0.005)


def _counting_claims(store):
    claims = []
    original = store.callbacks.claim_due

    def claim_due(*args, **kwargs):
        claims.append(kwargs.get("look_first", True))
        return original(*args, **kwargs)

    store.callbacks.claim_due = claim_due
    return claims


def test_a_handed_callback_is_sent_at_once_without_a_claim(store, accepted, receiver):
    claims = _counting_claims(store)
    dispatcher = _dispatcher(store)
    dispatcher.start()
    try:
        with gevent.Timeout(5):
            while not claims:  # its first look, then it rests (30 s) until woken
                gevent.sleep(0.005)
        ids = accepted(receiver.url("/a"), receiver.url("/b"))
        _settle(store, ids, dispatcher.take_claimed, lease=dispatcher.lease_seconds)
        for call_id in ids:
            dispatcher.wake(call_id)  # what settlement says: nothing due in the store for it
        _wait_sent(store, ids)
    finally:
        dispatcher.stop(timeout=2)
    assert len(receiver.requests) == 2
    assert claims == [True]  # the start's look only: no claim for the handed ones
    for call_id in ids:
        callback = store.callbacks.get_for_call(call_id)
        assert callback["attempts"] == 1 and callback["claimed_until"] is None


def test_a_handed_callback_left_waiting_is_sent_after_its_claim_lapses(
        store, accepted, receiver, monkeypatch):
    monkeypatch.setattr(dispatcher_module, "CLAIM_MARGIN_SECONDS", -1.0)  # every one stale
    dispatcher = _dispatcher(store)
    dispatcher.start()
    try:
        (call_id,) = accepted(receiver.url("/a"))
        _settle(store, [call_id], dispatcher.take_claimed, lease=0.5)
        gevent.sleep(0.2)
        assert receiver.requests == []  # left to the claim
        assert store.callbacks.get_for_call(call_id)["status"] == "pending"
        gevent.sleep(0.4)  # the claim lapses
        dispatcher.wake()
        _wait_sent(store, [call_id])
    finally:
        dispatcher.stop(timeout=2)
    assert len(receiver.requests) == 1


class _Job:
    def __init__(self, call_id):
        self.call_id = call_id


def test_the_dispatcher_refuses_a_handover_beyond_what_its_senders_get_through(
        store, monkeypatch):
    """A burst (a hupall) handed over beyond the senders' pace would wait past the claim's
    margin and then for the lease: past a backlog per sender, or once the oldest waited too
    long, handovers are refused and the callbacks go to the outbox unclaimed."""
    dispatcher = _dispatcher(store)
    # Not started: nothing sends, so what is handed stays waiting.
    assert dispatcher.accepts_handover()
    backlog = 2 * dispatcher_module.HANDOVER_BACKLOG_PER_SENDER
    dispatcher.take_claimed([_Job(f"c{n}") for n in range(backlog - 1)])
    assert dispatcher.accepts_handover()
    dispatcher.take_claimed([_Job("last")])
    assert not dispatcher.accepts_handover()

    waiting = _dispatcher(store)
    monkeypatch.setattr(dispatcher_module, "HANDOVER_MAX_WAIT_SECONDS", 0.05)
    waiting.take_claimed([_Job("one")])
    assert waiting.accepts_handover()
    time.sleep(0.1)
    assert not waiting.accepts_handover()  # one, but waiting too long


def test_a_refused_handover_leaves_the_callbacks_to_the_claim_loop(
        store, accepted, receiver, monkeypatch):
    monkeypatch.setattr(dispatcher_module, "HANDOVER_BACKLOG_PER_SENDER", 0)  # always refused
    dispatcher = _dispatcher(store)
    listener = CallEventListener(store, callbacks=dispatcher,
                                 on_settled=lambda call_id, _: dispatcher.wake(call_id))
    dispatcher.start()
    try:
        ids = accepted(receiver.url("/a"), receiver.url("/b"))
        outcome = CallOutcome(answered=True, minutes=1, reason=None, billsec=42)
        assert listener.settle_decided(ids, lambda call: (outcome, time.time())) == 2
        for call_id in ids:  # written unclaimed, due now
            assert store.callbacks.get_for_call(call_id)["claimed_until"] is None
        _wait_sent(store, ids)
    finally:
        dispatcher.stop(timeout=2)
    assert len(receiver.requests) == 2

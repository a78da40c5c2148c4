"""The group settler: calls handed over while a group is being settled go together in the next."""

from __future__ import annotations

import gevent
import gevent.event

from c2c.calls import settle_batch
from c2c.calls.settle_batch import SettleBatcher
from c2c.errors import StoreError


def test_calls_gathered_meanwhile_settle_together_in_order_and_once():
    groups: list[list[str]] = []
    first_running = gevent.event.Event()
    release = gevent.event.Event()

    def settle(group):
        groups.append(group)
        if len(groups) == 1:
            first_running.set()
            release.wait(5)

    batcher = SettleBatcher(settle, max_group=3)
    batcher.submit("a")
    assert first_running.wait(5)
    for call_id in ("b", "c", "b", "d", "e"):  # "b" twice: settled once
        batcher.submit(call_id)
    assert batcher.pending() == 4
    release.set()
    with gevent.Timeout(5):
        while batcher.pending() or len(groups) < 3:
            gevent.sleep(0.01)
    assert groups == [["a"], ["b", "c", "d"], ["e"]]
    batcher.stop()


def test_a_failed_group_is_tried_again_then_left_to_the_sweep(monkeypatch):
    monkeypatch.setattr(settle_batch, "RETRY_PAUSE", 0.01)
    tries: list[list[str]] = []

    def settle(group):
        tries.append(group)
        raise StoreError("database down")

    batcher = SettleBatcher(settle)
    batcher.submit("a")
    with gevent.Timeout(5):
        while len(tries) < settle_batch.ATTEMPTS:
            gevent.sleep(0.01)
    gevent.sleep(0.05)
    assert tries == [["a"]] * settle_batch.ATTEMPTS
    # The settler goes on with later calls.
    tries.clear()
    batcher.submit("b")
    with gevent.Timeout(5):
        while not tries:
            gevent.sleep(0.01)
    assert tries[0] == ["b"]
    batcher.stop()


def test_stop_drops_what_it_holds():
    started = gevent.event.Event()

    def settle(group):
        started.set()
        gevent.sleep(10)

    batcher = SettleBatcher(settle)
    batcher.submit("a")
    assert started.wait(5)
    batcher.submit("b")
    batcher.stop()
    assert batcher.pending() == 0

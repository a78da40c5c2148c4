"""Accepts of one account grouped per worker: each request gets its own answer, in order."""

from __future__ import annotations

import gevent
import pytest

from c2c.calls.accept_groups import AcceptGroups
from c2c.errors import RequestRejected, StoreError


class Call:
    def __init__(self, name: str) -> None:
        self.id = name


def test_requests_arriving_while_a_group_runs_go_together_and_each_gets_its_answer():
    groups: list[list[str]] = []

    def accept_many(account_id, calls):
        groups.append([call.id for call, _ in calls])
        gevent.sleep(0.01)  # the transaction's round trips
        return [RequestRejected(6, "flooded") if call.id.endswith("7") else f"ok:{call.id}"
                for call, _ in calls]

    accepts = AcceptGroups(accept_many, max_group=5)
    names = [f"c{i}" for i in range(12)]
    jobs = [gevent.spawn(accepts.accept, 1, Call(name), 0.0) for name in names]
    gevent.joinall(jobs, timeout=5)
    for name, job in zip(names, jobs, strict=True):
        if name.endswith("7"):
            assert isinstance(job.exception, RequestRejected) and job.exception.code == 6
        else:
            assert job.value == f"ok:{name}"
    assert [name for group in groups for name in group] == names  # each once, in order
    assert groups[0] == ["c0"] and max(len(g) for g in groups) == 5
    assert accepts._queues == {}  # nothing left behind


def test_accounts_do_not_wait_for_each_other():
    running = []

    def accept_many(account_id, calls):
        running.append(account_id)
        gevent.sleep(0.05)
        return [account_id for _ in calls]

    accepts = AcceptGroups(accept_many)
    jobs = [gevent.spawn(accepts.accept, account, Call("x"), 0.0) for account in (1, 2, 3)]
    gevent.sleep(0.01)
    assert sorted(running) == [1, 2, 3]  # all three transactions at once
    gevent.joinall(jobs, timeout=5)
    assert [job.value for job in jobs] == [1, 2, 3]


def test_a_failed_group_fails_each_of_its_requests_and_the_next_group_runs():
    calls_seen = []

    def accept_many(account_id, calls):
        calls_seen.append(len(calls))
        gevent.sleep(0.01)
        if len(calls_seen) == 1:
            raise StoreError("database down")
        return ["ok" for _ in calls]

    accepts = AcceptGroups(accept_many)
    first = gevent.spawn(accepts.accept, 1, Call("a"), 0.0)
    gevent.sleep(0.001)
    later = [gevent.spawn(accepts.accept, 1, Call(n), 0.0) for n in "bcd"]
    gevent.joinall([first, *later], timeout=5)
    assert isinstance(first.exception, StoreError)
    assert [job.value for job in later] == ["ok"] * 3
    with pytest.raises(StoreError):
        first.get()

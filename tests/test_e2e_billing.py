"""Billing and key limits end to end (issue 14): real gunicorn with 4 gevent workers, the
simulator over TCP, a callback receiver, on both stores. One deployment per store runs every
scenario in turn: limits that must be exact across workers (calls in flight, calls per minute,
credits per day), a key's allowed networks behind the trusted proxy, a rotated key's grace, a
call priced from the rate table, and `c2c check` clean at the end."""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from c2c.store import schema
from c2c.store.invariants import check_invariants
from tests.support.deployment import Deployment
from tests.support.processes import http_get, wait_until

pytestmark = pytest.mark.slow

WORKERS = 4
ACCOUNT_CACHE_SECONDS = 2.0  # C2C_ACCOUNT_CACHE_SECONDS: each worker's copy of an account
ROTATION_GRACE = 3.0
RATE = Decimal("0.035")


class Phones:
    """Fresh NANP numbers, one per request. The simulator's default scenario goes by the last
    four digits: x0999 answers and never hangs up (the call stays in flight), any other number
    answers and the callee hangs up 5 s (scaled) later; 1000-8999 avoids its special endings."""

    def __init__(self) -> None:
        self._ordinary = itertools.count(1000)
        self._held = itertools.count(200)

    def ordinary(self, area: str = "312") -> str:
        return f"{area}555{next(self._ordinary):04d}"

    def in_flight(self) -> str:
        return f"312{next(self._held):03d}0999"


def ask(d: Deployment, api_key: str, caller: str, callee: str,
        headers: Mapping[str, str] | None = None, **params: str) -> tuple[int, str | None]:
    """One clicktocall request as a customer sends it: the code (the body's digits) and the
    call id header."""
    assert d.gunicorn is not None
    query = {"api_key": api_key, "caller_phone_number": caller, "caller_country_code": "1",
             "callee_phone_number": callee, "callee_country_code": "1", **params}
    status, response_headers, body = http_get(
        f"{d.gunicorn.base_url}/api/clicktocall/?{urlencode(query)}", timeout=20,
        headers=headers)
    assert status == 200, (status, body)
    return int(body.decode()), response_headers.get("x-c2c-call-id")


def code_of(d: Deployment, api_key: str, caller: str, callee: str, **params: str) -> int:
    return ask(d, api_key, caller, callee, **params)[0]


def burst(requests: list[Callable[[], int]]) -> Counter[int]:
    """All the requests released at the same instant from their own threads; their codes."""
    barrier = threading.Barrier(len(requests), timeout=30)
    codes: list[int] = []
    errors: list[BaseException] = []

    def run(request: Callable[[], int]) -> None:
        try:
            barrier.wait()
            codes.append(request())
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(codes) == len(requests)
    return Counter(codes)


def clear_of_boundary(period: int, margin: int) -> None:
    """Until the clock is at least 1 s into a ``period`` and ``margin`` s from its end, so that
    a burst counted per clock minute (or UTC day) falls in one window."""
    wait_until(lambda: 1 <= time.time() % period < period - margin, margin + 5, 0.05,
               f"clear of a {period} s boundary")


def new_account(d: Deployment, name: str, credits: int, **limits: object) -> tuple[int, str]:
    """An account with its limits set before its first request (no worker has cached it)."""
    account_id, api_key, _ = d.store.accounts.create(name, credits)
    if limits:
        assert d.store.accounts.set_limits(account_id, **limits) is not None
    return account_id, api_key


def call_rows(d: Deployment, account_id: int) -> int:
    with d.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.calls)
                            .where(schema.calls.c.account_id == account_id)).scalar_one()


def active_calls(d: Deployment, account_id: int) -> int | None:
    a = schema.accounts
    with d.store.engine.connect() as conn:
        return conn.execute(select(a.c.active_calls).where(a.c.id == account_id)).scalar_one()


# --- the scenarios, in the order the test runs them ---------------------------------------

def concurrency_limit_is_exact(d: Deployment, phones: Phones) -> None:
    account_id, key = new_account(d, "five at once", 1000, max_concurrent=5)
    requests = [partial(code_of, d, key, phones.ordinary(), phones.in_flight())
                for _ in range(40)]
    assert burst(requests) == {0: 5, 6: 35}
    assert call_rows(d, account_id) == 5
    assert active_calls(d, account_id) == 5


def per_minute_limit_is_exact(d: Deployment, phones: Phones) -> None:
    account_id, key = new_account(d, "seven a minute", 1000, max_per_minute=7)
    requests = [partial(code_of, d, key, phones.ordinary(), phones.ordinary())
                for _ in range(40)]
    clear_of_boundary(60, 10)
    assert burst(requests) == {0: 7, 6: 33}
    assert call_rows(d, account_id) == 7


def daily_credits_are_exact(d: Deployment, phones: Phones) -> None:
    account_id, key = new_account(d, "three a day", 1000, daily_credits=Decimal(3))
    requests = [partial(code_of, d, key, phones.ordinary(), phones.in_flight(),
                        max_duration="1") for _ in range(10)]
    clear_of_boundary(86400, 10)
    assert burst(requests) == {0: 3, 2: 7}
    assert call_rows(d, account_id) == 3


def allowed_networks_behind_the_trusted_proxy(d: Deployment, phones: Phones) -> None:
    _, key = new_account(d, "office only", 1000, allow_ips=("10.0.0.0/8",))

    def code(forwarded_for: str | None) -> int:
        headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
        return ask(d, key, phones.ordinary(), phones.ordinary(), headers=headers)[0]

    # 127.0.0.1, the test's own address, is a trusted proxy (C2C_TRUSTED_PROXIES' default).
    assert code("10.1.2.3") == 0
    assert code("192.0.2.1") == 1
    assert code(None) == 1  # the peer itself is not in 10/8
    assert code("10.1.2.3, 192.0.2.1") == 1  # the rightmost untrusted hop is the client


class Rotation:
    """A rotated key: both keys work during the grace, only the new one once it is over (and
    every worker's cached copy of the old one has expired)."""

    def __init__(self, d: Deployment, phones: Phones) -> None:
        self.d, self.phones = d, phones
        self.account_id, self.old_key = new_account(d, "rotated", 1000)

    def code(self, api_key: str) -> int:
        return ask(self.d, api_key, self.phones.ordinary(), self.phones.ordinary())[0]

    def rotate_while_in_use(self) -> None:
        assert self.code(self.old_key) == 0  # some worker now caches the old key
        self.rotated_at = time.time()
        rotated = self.d.store.accounts.rotate(self.account_id, grace_seconds=ROTATION_GRACE,
                                               now=self.rotated_at)
        assert rotated is not None
        self.new_key = rotated.api_key
        assert self.code(self.new_key) == 0
        assert self.code(self.old_key) == 0
        assert time.time() < self.rotated_at + ROTATION_GRACE  # those were within the grace

    def after_the_grace(self) -> None:
        over = self.rotated_at + ROTATION_GRACE + ACCOUNT_CACHE_SECONDS + 0.2
        wait_until(lambda: time.time() > over, over - time.time() + 5, 0.05, "grace over")
        assert self.code(self.old_key) == 1
        assert self.code(self.new_key) == 0
        assert call_rows(self.d, self.account_id) == 4


def a_call_is_priced_from_the_rate_table(d: Deployment, phones: Phones) -> None:
    account_id, key = new_account(d, "rated", 10)
    d.store.rates.import_csv(io.StringIO("1212,0.035\n"), replace=True)
    code, call_id = ask(d, key, phones.ordinary(), phones.ordinary(area="212"),
                        callback_url=d.receiver.url("/cb"))
    assert code == 0 and call_id
    call = d.wait_settled(call_id)
    minutes = call["minutes"]
    assert call["answered"] and minutes == 1  # 0.25 s talked (5 s scaled), rounded up
    (callback,) = wait_until(lambda: d.callbacks_for(call_id), 30, 0.05, "the callback")
    assert dict(callback.query)["minutes"] == str(minutes)
    cost = minutes * RATE
    assert call["rate"] == RATE
    assert call["charged"] == cost
    lg = schema.ledger
    with d.store.engine.connect() as conn:
        debits = conn.execute(select(lg.c.delta, lg.c.kind, lg.c.rate, lg.c.balance_after)
                              .where(lg.c.call_id == call_id)).all()
    assert [tuple(row) for row in debits] == [(-cost, "debit", RATE, 10 - cost)]
    account = d.store.accounts.find(account_id)
    assert account is not None
    assert (account.credits, account.reserved) == (10 - cost, 0)


def test_limits_rotation_and_rates_through_gunicorn(tmp_path, store_url):
    env = {"C2C_ACCOUNT_CACHE_SECONDS": str(ACCOUNT_CACHE_SECONDS), "C2C_LOG_LEVEL": "WARNING"}
    with Deployment(tmp_path, store_url, workers=WORKERS, env=env) as d:
        phones = Phones()
        rotation = Rotation(d, phones)
        rotation.rotate_while_in_use()  # its grace runs out while the next scenarios run
        concurrency_limit_is_exact(d, phones)
        per_minute_limit_is_exact(d, phones)
        daily_credits_are_exact(d, phones)
        allowed_networks_behind_the_trusted_proxy(d, phones)
        rotation.after_the_grace()
        a_call_is_priced_from_the_rate_table(d, phones)
        # Calls still in flight (the x0999 ones) are within their deadlines.
        assert check_invariants(d.store, now=time.time()) == []

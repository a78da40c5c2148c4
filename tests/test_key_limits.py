"""Limits per key and key rotation (issue 14), on both stores: calls in flight at once and per
clock minute (6), credits per UTC day (2), client networks (1); a rotated key's grace window and
callbacks signed with both webhook secrets meanwhile."""

from __future__ import annotations

import pytest

from c2c.callbacks.dispatcher import signing_secrets
from c2c.callbacks.signing import signature_header, verify
from c2c.domain.networks import address_in, client_address, parse_cidrs
from c2c.errors import RequestRejected
from c2c.store import SettledOutcome
from c2c.store.invariants import check_invariants
from tests.conftest import ACCEPT_DEFAULTS

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC: a minute and a day have just begun
TRUSTED = ("127.0.0.0/8", "::1/128")


def accept(store, call, now=NOW):
    return store.accept_call(call.account_id, call, now=now, **ACCEPT_DEFAULTS)


def refused(store, call, now=NOW) -> int:
    with pytest.raises(RequestRejected) as rejected:
        accept(store, call, now)
    return rejected.value.code


def calls_of(make_call, account_id, count, start=0, **kwargs):
    return [make_call(account_id, caller=f"1555210{start + i:04d}",
                      callee=f"4420712{start + i:05d}", **kwargs) for i in range(count)]


def settle(store, call_id, minutes, at):
    assert store.calls.settle(call_id, SettledOutcome(minutes > 0, minutes, None, minutes * 60),
                              ended_at=at, now=at)


# --- pure ---------------------------------------------------------------------------------

def test_networks_parse_and_match():
    assert parse_cidrs("10.0.0.7, 192.168.0.0/16,::1") == ("10.0.0.7/32", "192.168.0.0/16",
                                                          "::1/128")
    for bad in ("10.0.0.300", "", "example.com", "10.0.0.0/33"):
        with pytest.raises(ValueError):
            parse_cidrs(bad)
    assert address_in("192.168.4.5", ("192.168.0.0/16",))
    assert address_in("::ffff:192.168.4.5", ("192.168.0.0/16",))  # IPv4 seen over IPv6
    assert not address_in("10.1.1.1", ("192.168.0.0/16",))
    assert not address_in("garbage", ("0.0.0.0/0",)) and not address_in(None, ("0.0.0.0/0",))


def test_the_client_is_named_by_a_trusted_proxy_only():
    # Straight from the client: its own address, whatever header it sends.
    assert client_address("203.0.113.9", "10.0.0.1", TRUSTED) == "203.0.113.9"
    # Through nginx on this host: the address nginx appended.
    assert client_address("127.0.0.1", "10.0.0.1", TRUSTED) == "10.0.0.1"
    # A client that forges a header gets its forged entry ignored: nginx appends the real one.
    assert client_address("127.0.0.1", "10.0.0.1, 198.51.100.4", TRUSTED) == "198.51.100.4"
    assert client_address("127.0.0.1", "198.51.100.4, 127.0.0.2", TRUSTED) == "198.51.100.4"
    assert client_address("127.0.0.1", None, TRUSTED) == "127.0.0.1"
    assert client_address("127.0.0.1", "not-an-ip", TRUSTED) is None
    assert client_address("127.0.0.1", "10.0.0.1", ()) == "127.0.0.1"  # no proxy trusted


# --- limits on both stores ----------------------------------------------------------------

def test_no_limits_by_default(store, make_call):
    account = store.accounts.create("free", 100_000)
    limits = store.accounts.find(account.id).limits
    assert (limits.max_concurrent, limits.max_per_minute, limits.daily_credits,
            limits.allow_ips) == (None, None, None, ())
    for call in calls_of(make_call, account.id, 30):
        accept(store, call)
    assert check_invariants(store, now=NOW + 1) == []


def test_calls_in_flight_at_once(store, make_call):
    account = store.accounts.create("three at once", 1000)
    store.accounts.set_limits(account.id, max_concurrent=3)
    first, second, third, fourth = calls_of(make_call, account.id, 4)
    for call in (first, second, third):
        accept(store, call)
    assert refused(store, fourth) == 6
    settle(store, first.id, 1, NOW + 90)
    accept(store, fourth, NOW + 100)  # one ended: room for one more
    store.cancel_call(second.id)  # a call that never reached a switch frees its place too
    [fifth, sixth] = calls_of(make_call, account.id, 2, start=10)
    accept(store, fifth, NOW + 101)
    assert refused(store, sixth, NOW + 102) == 6
    store.accounts.set_limits(account.id, max_concurrent=None)
    accept(store, sixth, NOW + 103)
    assert check_invariants(store, now=NOW + 200) == []


def test_calls_per_clock_minute(store, make_call):
    account = store.accounts.create("five a minute", 1000)
    store.accounts.set_limits(account.id, max_per_minute=5)
    calls = calls_of(make_call, account.id, 8)
    for i, call in enumerate(calls[:5]):
        accept(store, call, NOW + i)
    assert refused(store, calls[5], NOW + 59.9) == 6
    accept(store, calls[5], NOW + 60)  # the next minute
    accept(store, calls[6], NOW + 61)
    assert check_invariants(store, now=NOW + 70) == []


def test_a_group_of_accepts_counts_each_call(store, make_call):
    account = store.accounts.create("grouped", 1000)
    store.accounts.set_limits(account.id, max_per_minute=3, max_concurrent=10)
    calls = calls_of(make_call, account.id, 5)
    results = store.accept_calls(account.id, [(c, NOW + i * 0.01) for i, c in enumerate(calls)],
                                 **ACCEPT_DEFAULTS)
    assert [getattr(r, "code", 0) for r in results] == [0, 0, 0, 6, 6]
    assert check_invariants(store, now=NOW + 1) == []


def test_credits_per_utc_day(store, make_call):
    """A call holds its reservation against the day's limit until it ends; then only what it
    cost still counts."""
    account = store.accounts.create("ten a day", 1000)
    store.accounts.set_limits(account.id, daily_credits=10)
    first, second, third = calls_of(make_call, account.id, 3, max_duration=6)
    assert accept(store, first).max_minutes == 6
    # Only 4 of the day's credits are left: the second call is limited to 4 minutes.
    assert accept(store, second, NOW + 1).max_minutes == 4
    assert refused(store, third, NOW + 2) == 2
    settle(store, first.id, 2, NOW + 200)  # used 2 of its 6: 4 are back for today
    assert accept(store, third, NOW + 201).max_minutes == 4
    tomorrow = calls_of(make_call, account.id, 1, start=20, max_duration=6)[0]
    assert accept(store, tomorrow, NOW + 86_400).max_minutes == 6
    assert store.ledger.check() == []  # reserved and active_calls match the calls in flight


def test_an_address_outside_the_list_reads_as_an_unknown_key(store):
    account = store.accounts.create("office only", 10)
    changed = store.accounts.set_limits(account.id, allow_ips=parse_cidrs("10.0.0.0/8,::1"))
    assert changed.limits.allow_ips == ("10.0.0.0/8", "::1/128")
    assert store.accounts.find_by_key(account.api_key).limits.allow_ips == (
        "10.0.0.0/8", "::1/128")
    assert store.accounts.set_limits(account.id, allow_ips=()).limits.allow_ips == ()
    assert store.accounts.find(account.id).limits.allow_ips == ()


# --- rotation -----------------------------------------------------------------------------

def test_a_rotated_key_works_through_its_grace_period_only(store):
    account = store.accounts.create("rotating", 10)
    rotated = store.accounts.rotate(account.id, grace_seconds=300, now=NOW)
    assert rotated.api_key != account.api_key and rotated.webhook_secret is None
    assert store.accounts.find_by_key(rotated.api_key, now=NOW).id == account.id
    assert store.accounts.find_by_key(account.api_key, now=NOW + 299).id == account.id
    assert store.accounts.find_by_key(account.api_key, now=NOW + 300) is None
    assert store.accounts.find(rotated.api_key).id == account.id
    # Rotating again forgets the first key at once; without grace the old key stops now.
    again = store.accounts.rotate(rotated.api_key, now=NOW + 10)
    for key in (account.api_key, rotated.api_key):
        assert store.accounts.find_by_key(key, now=NOW + 10) is None
    assert store.accounts.find_by_key(again.api_key, now=NOW + 10).id == account.id
    assert store.accounts.rotate(999_999) is None


def test_a_rotated_webhook_secret_signs_beside_the_new_one(store, make_call):
    account = store.accounts.create("new secret", 10)
    call = make_call(account.id, callback_url="https://shop.example/cb")
    accept(store, call)
    rotated = store.accounts.rotate(account.id, grace_seconds=600, webhook_secret=True, now=NOW)
    settle(store, call.id, 1, NOW + 100)
    [job] = store.callbacks.claim_due(NOW + 101, limit=10, lease_seconds=30)
    assert signing_secrets(job) == (rotated.webhook_secret, account.webhook_secret)
    header = signature_header(signing_secrets(job), int(NOW + 101), "/cb?x=1")
    for secret in (rotated.webhook_secret, account.webhook_secret):  # either receiver accepts
        assert verify(secret, str(int(NOW + 101)), "/cb?x=1", header, now=NOW + 101)
    assert not verify("another", str(int(NOW + 101)), "/cb?x=1", header, now=NOW + 101)
    store.callbacks.mark_delivered(job.id, at=NOW + 102, http_status=200)
    # After the grace period only the new secret signs.
    later = make_call(account.id, caller="15552100999", callee="442071200999",
                      callback_url="https://shop.example/cb")
    accept(store, later, NOW + 700)
    settle(store, later.id, 1, NOW + 800)
    [job] = store.callbacks.claim_due(NOW + 801, limit=10, lease_seconds=30)
    assert signing_secrets(job) == (rotated.webhook_secret,)

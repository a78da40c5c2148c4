"""Idempotent requests (issue 13): the Idempotency-Key header or request_id parameter.

Three tiers: the pure rules (the key, the parameters' fingerprint); the store's keys on SQLite and
MariaDB (claims, answers, release, abandoned and expired claims, concurrent claims); the request
through the falcon app and the in-process simulator (replays byte for byte, mismatches, what is
kept and what is not, the check order); and ten concurrent duplicates through real gunicorn with
two workers, on both stores, placing exactly one call.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlencode

import gevent
import gevent.event
import pytest
from sqlalchemy import func, select

from c2c.calls.idempotent import (
    KEY_TTL_SECONDS,
    STALE_CLAIM_SECONDS,
    IdempotentRequests,
    fingerprint,
    idempotency_key,
)
from c2c.calls.placement import Placement
from c2c.calls.request import API_KEY, KNOWN_PARAMETERS, REQUEST_ID, validate_clicktocall
from c2c.errors import RequestRejected
from c2c.store import Store, schema
from c2c.store.idempotency import KeyState, KeyTimes, key_digest
from tests.support.app_harness import AppHarness
from tests.support.deployment import Deployment
from tests.support.processes import http_get

JSON = {"Accept": "application/json"}
NOW = 1_750_000_000.0


def times(now: float = NOW) -> KeyTimes:
    return KeyTimes(now=now, expired_before=now - KEY_TTL_SECONDS,
                    stale_before=now - STALE_CLAIM_SECONDS)


# ------------------------------------------------------------------------------------------
# the pure rules


def test_the_key_comes_from_the_header_or_request_id_and_must_be_well_formed():
    assert idempotency_key(None, None) is None
    assert idempotency_key("order-17", None) == "order-17"
    assert idempotency_key(None, "order-17") == "order-17"
    assert idempotency_key("order-17", "order-17") == "order-17"
    assert idempotency_key(None, "x" * 64) == "x" * 64
    assert idempotency_key(None, " a b ~") == " a b ~"
    for header in ("", "x" * 65, "caf\xe9", "tab\there", "nl\n", "\x7f"):
        with pytest.raises(RequestRejected) as raised:
            idempotency_key(None, header)
        assert raised.value.code == 4, header
    with pytest.raises(RequestRejected) as raised:
        idempotency_key("order-17", "order-18")
    assert raised.value.code == 4


def test_request_id_is_validated_with_the_other_parameters():
    base = [("api_key", "k"), ("caller_country_code", "1"), ("caller_phone_number", "2125550123"),
            ("callee_country_code", "1"), ("callee_phone_number", "2125550199")]
    assert validate_clicktocall(base).request_id is None
    assert validate_clicktocall([*base, ("request_id", "")]).request_id is None  # blank: none
    assert validate_clicktocall([*base, ("request_id", "r" * 64)]).request_id == "r" * 64
    for bad in ([("request_id", "r" * 65)], [("request_id", "a"), ("request_id", "a")],
                [("request_id", "caf\xe9")]):
        with pytest.raises(RequestRejected) as raised:
            validate_clicktocall(base + bad)
        assert raised.value.code == 4, bad


def test_the_fingerprint_ignores_order_unknown_parameters_the_api_key_and_the_key():
    params = [("caller_country_code", "1"), ("caller_phone_number", "2125550123"),
              ("callee_country_code", "1"), ("callee_phone_number", "2125550199"),
              ("secret", "s")]
    same = [*reversed(params), ("utm_source", "ad"), ("api_key", "other"), ("request_id", "r")]
    assert fingerprint(params) == fingerprint(same)
    assert len(fingerprint(params)) == 64
    # A blank value is not an absent one; another value is another request.
    assert fingerprint(params) != fingerprint([*params, ("max_duration", "")])
    assert fingerprint(params) != fingerprint([*params[:-1], ("secret", "t")])


def test_every_known_parameter_but_the_key_and_api_key_is_compared():
    params = [("caller_country_code", "1"), ("caller_phone_number", "2125550123")]
    compared = KNOWN_PARAMETERS - {API_KEY, REQUEST_ID}
    assert {"caller_phone_number", "callee_phone_number", "max_duration", "caller_id",
            "callback_url", "secret", "status_callback_url", "status_events"} <= compared
    for name in compared:
        assert fingerprint(params) != fingerprint([*params, (name, "x")]), name
    for name in (API_KEY, REQUEST_ID, "unknown"):
        assert fingerprint(params) == fingerprint([*params, (name, "x")]), name


# ------------------------------------------------------------------------------------------
# the store


def _call_id() -> str:
    return str(uuid.uuid4())


def test_a_key_is_claimed_once_answered_and_replayed(store: Store):
    keys = store.idempotency
    first = _call_id()
    assert keys.claim(7, "k1", "p" * 64, first, times()).state is KeyState.CLAIMED
    held = keys.claim(7, "k1", "p" * 64, _call_id(), times(NOW + 1))
    assert held.state is KeyState.IN_PROGRESS
    assert keys.peek(7, "k1", "p" * 64, times(NOW + 1)).state is KeyState.IN_PROGRESS
    assert keys.claim(7, "k1", "q" * 64, _call_id(), times(NOW + 1)).state is KeyState.MISMATCH
    assert keys.record(7, "k1", first, 0, first, NOW + 2)
    assert not keys.record(7, "k1", first, 0, first, NOW + 2)  # once
    replay = keys.claim(7, "k1", "p" * 64, _call_id(), times(NOW + 3))
    assert (replay.state, replay.code, replay.call_id) == (KeyState.ANSWERED, 0, first)
    assert keys.peek(7, "k1", "p" * 64, times(NOW + 3)) == replay
    assert keys.claim(7, "k1", "q" * 64, _call_id(), times(NOW + 3)).state is KeyState.MISMATCH
    # The same key is another account's own key; another key is another request.
    assert keys.claim(8, "k1", "q" * 64, _call_id(), times()).state is KeyState.CLAIMED
    assert keys.claim(7, "k2", "p" * 64, _call_id(), times()).state is KeyState.CLAIMED
    with store.engine.connect() as conn:
        row = conn.execute(select(schema.idempotency_keys).where(
            schema.idempotency_keys.c.account_id == 7,
            schema.idempotency_keys.c.idem_key == key_digest("k1"))).one()
    assert (row.code, row.call_id, row.created_at, row.answered_at) == (0, first, NOW, NOW + 2)


def test_keys_differing_in_case_or_trailing_spaces_are_different_keys(store: Store):
    keys = store.idempotency
    for key in ("abc", "ABC", "abc ", " abc"):
        assert keys.claim(1, key, "p" * 64, _call_id(), times()).state is KeyState.CLAIMED, key


def test_a_rejection_is_kept_without_a_call_id(store: Store):
    keys = store.idempotency
    first = _call_id()
    keys.claim(1, "k", "p" * 64, first, times())
    assert keys.record(1, "k", first, 6, None, NOW)
    held = keys.claim(1, "k", "p" * 64, _call_id(), times(NOW + 1))
    assert (held.state, held.code, held.call_id) == (KeyState.ANSWERED, 6, None)


def test_a_released_key_is_free_again(store: Store):
    keys = store.idempotency
    first = _call_id()
    keys.claim(1, "k", "p" * 64, first, times())
    assert not keys.release(1, "k", _call_id())  # not the claim's own
    assert keys.release(1, "k", first)
    assert keys.peek(1, "k", "p" * 64, times()).state is KeyState.FREE
    # Free for any parameters: nothing was kept.
    assert keys.claim(1, "k", "q" * 64, _call_id(), times()).state is KeyState.CLAIMED


def test_a_claim_whose_call_row_exists_is_not_released(store: Store, make_call):
    account = store.accounts.create("a", 10)
    call = make_call(account.id)
    keys = store.idempotency
    keys.claim(account.id, "k", "p" * 64, call.id, times())
    store.accept_call(account.id, call, flood_seconds=60, max_call_minutes=120, ring_timeout=30,
                      settle_grace=120, now=NOW)
    assert not keys.release(account.id, "k", call.id)
    assert keys.peek(account.id, "k", "p" * 64, times()).state is KeyState.IN_PROGRESS


def test_an_abandoned_claim_without_a_call_is_taken_over(store: Store):
    keys = store.idempotency
    abandoned, taker = _call_id(), _call_id()
    keys.claim(1, "k", "p" * 64, abandoned, times())
    later = NOW + STALE_CLAIM_SECONDS - 1
    assert keys.claim(1, "k", "p" * 64, taker, times(later)).state is KeyState.IN_PROGRESS
    later = NOW + STALE_CLAIM_SECONDS + 1
    assert keys.peek(1, "k", "p" * 64, times(later)).state is KeyState.FREE
    held = keys.claim(1, "k", "p" * 64, taker, times(later))
    assert (held.state, held.call_id) == (KeyState.CLAIMED, taker)
    assert not keys.record(1, "k", abandoned, 0, abandoned, later)  # the old claim is gone
    assert keys.record(1, "k", taker, 0, taker, later)
    assert keys.claim(1, "k", "p" * 64, _call_id(), times(later)).call_id == taker


def test_an_abandoned_claim_whose_call_was_accepted_answers_0_with_it(store: Store, make_call):
    account = store.accounts.create("a", 10)
    call = make_call(account.id)
    keys = store.idempotency
    keys.claim(account.id, "k", "p" * 64, call.id, times())
    store.accept_call(account.id, call, flood_seconds=60, max_call_minutes=120, ring_timeout=30,
                      settle_grace=120, now=NOW)
    later = times(NOW + STALE_CLAIM_SECONDS + 1)
    mismatch = keys.claim(account.id, "k", "q" * 64, _call_id(), later)
    assert mismatch.state is KeyState.MISMATCH
    held = keys.claim(account.id, "k", "p" * 64, _call_id(), later)
    assert (held.state, held.code, held.call_id) == (KeyState.ANSWERED, 0, call.id)


def test_a_key_older_than_a_day_is_never_matched_and_is_pruned(store: Store):
    keys = store.idempotency
    first = _call_id()
    keys.claim(1, "old", "p" * 64, first, times())
    keys.record(1, "old", first, 0, first, NOW)
    keys.claim(1, "young", "p" * 64, _call_id(), times(NOW + 10))
    day_later = NOW + KEY_TTL_SECONDS + 1
    assert keys.peek(1, "old", "q" * 64, times(day_later)).state is KeyState.FREE
    assert keys.prune(NOW + 5) == 1
    assert keys.peek(1, "old", "p" * 64, times()).state is KeyState.FREE
    assert keys.peek(1, "young", "p" * 64, times(NOW + 10)).state is KeyState.IN_PROGRESS
    # An expired row still in the table (not yet pruned) is taken over, whatever it held.
    keys.claim(1, "k", "p" * 64, first, times())
    keys.record(1, "k", first, 0, first, NOW)
    taker = _call_id()
    held = keys.claim(1, "k", "q" * 64, taker, times(day_later))
    assert (held.state, held.call_id) == (KeyState.CLAIMED, taker)


def test_concurrent_claims_of_one_key_have_one_winner(store: Store):
    keys = store.idempotency
    claimants = 10
    barrier = threading.Barrier(claimants, timeout=30)
    results: list[KeyState] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            barrier.wait()
            results.append(keys.claim(3, "race", "p" * 64, _call_id(), times()).state)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(claimants)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert Counter(results) == {KeyState.CLAIMED: 1, KeyState.IN_PROGRESS: claimants - 1}


# ------------------------------------------------------------------------------------------
# the duplicate's wait (IdempotentRequests on a real store)


def _requests(store: Store, wait_seconds: float = 5.0) -> IdempotentRequests:
    return IdempotentRequests(store.idempotency, wait_seconds=wait_seconds)


def _placing(code: int, gate: gevent.event.Event | None = None, placed: list[str] | None = None):
    def place(call_id: str) -> Placement:
        if gate is not None:
            assert gate.wait(10)
        if placed is not None:
            placed.append(call_id)
        return Placement(code, "placed", call_id if code == 0 else None)

    return place


def test_a_duplicate_waits_for_the_first_answer(store: Store):
    requests = _requests(store)
    gate, placed = gevent.event.Event(), []
    first = gevent.spawn(requests.answer, 1, "k", "p" * 64, _placing(0, gate, placed), Placement)
    gevent.sleep(0.05)
    duplicate = gevent.spawn(requests.answer, 1, "k", "p" * 64, _placing(0, None, placed),
                             Placement)
    gevent.sleep(0.1)
    assert not duplicate.ready()  # waiting, not placing
    gate.set()
    answers = [first.get(timeout=10), duplicate.get(timeout=10)]
    assert len(placed) == 1
    assert answers == [Placement(0, "placed", placed[0]), Placement(0, "replayed", placed[0], True)]


def test_a_duplicate_answers_11_when_the_first_takes_too_long(store: Store):
    requests = _requests(store, wait_seconds=0.3)
    gate = gevent.event.Event()
    first = gevent.spawn(requests.answer, 1, "k", "p" * 64, _placing(0, gate), Placement)
    gevent.sleep(0.05)
    started = time.monotonic()
    answer = requests.answer(1, "k", "p" * 64, _placing(0), Placement)
    assert (answer.code, answer.call_id, answer.replayed) == (11, None, False)
    assert time.monotonic() - started < 5
    gate.set()
    assert first.get(timeout=10).code == 0


def test_a_duplicate_runs_the_request_itself_when_the_first_gives_its_key_up(store: Store):
    requests = _requests(store)
    gate, placed = gevent.event.Event(), []
    first = gevent.spawn(requests.answer, 1, "k", "p" * 64, _placing(11, gate), Placement)
    gevent.sleep(0.05)
    duplicate = gevent.spawn(requests.answer, 1, "k", "p" * 64, _placing(0, None, placed),
                             Placement)
    gevent.sleep(0.1)
    gate.set()
    assert first.get(timeout=10).code == 11
    answer = duplicate.get(timeout=10)
    assert (answer.code, answer.replayed, [answer.call_id]) == (0, False, placed)


def test_a_mismatch_while_the_first_is_in_progress_is_4_at_once(store: Store):
    requests = _requests(store)
    gate = gevent.event.Event()
    first = gevent.spawn(requests.answer, 1, "k", "p" * 64, _placing(0, gate), Placement)
    gevent.sleep(0.05)
    assert requests.answer(1, "k", "q" * 64, _placing(0), Placement).code == 4
    gate.set()
    first.get(timeout=10)


# ------------------------------------------------------------------------------------------
# through the app


@pytest.fixture
def h(store_url: str) -> Iterator[AppHarness]:
    with AppHarness(store_url) as harness:
        yield harness


@pytest.fixture
def key(h: AppHarness) -> str:
    return h.account(credits=100_000, name="idem").api_key


def request_params(api_key: str, **overrides: str) -> dict[str, str]:
    params = {"api_key": api_key, **AppHarness.numbers(), "max_duration": "5",
              "callback_url": "http://127.0.0.1:9/cb", "secret": "s3cret"}
    params.update(overrides)
    return params


def keys_count(h: AppHarness) -> int:
    with h.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.idempotency_keys)).scalar_one()


def test_without_a_key_a_repeat_is_a_new_request_as_before(h, key):
    params = request_params(key)
    first, again = h.get(params), h.get(params)
    assert (h.code(first), h.code(again)) == (0, 6)  # flood protection, as always
    assert "idempotent-replayed" not in first.headers and "idempotent-replayed" not in again.headers
    assert keys_count(h) == 0


def test_a_replay_is_the_first_answer_byte_for_byte_and_places_nothing(h, key):
    params = request_params(key)
    first = h.get(params, headers={"Idempotency-Key": "order-1"})
    assert h.code(first) == 0
    assert "idempotent-replayed" not in first.headers
    call_id = first.headers["x-c2c-call-id"]
    again = h.get(params, headers={"Idempotency-Key": "order-1"})
    assert again.content == first.content == b"0"
    assert again.headers["x-c2c-call-id"] == call_id
    assert again.headers["idempotent-replayed"] == "true"
    assert {k: v for k, v in again.headers.items() if k != "idempotent-replayed"} == dict(
        first.headers)
    # JSON mode replays the same answer in that mode, byte for byte like a first JSON answer.
    as_json = h.get(params, headers={"Idempotency-Key": "order-1", **JSON})
    assert as_json.status_code == 200
    assert as_json.json == {"code": 0, "message": "accepted: the call will be attempted shortly",
                            "call_id": call_id}
    assert as_json.headers["idempotent-replayed"] == "true"
    assert h.call_count() == 1 and len(h.sent) == 1


def test_a_json_first_answer_is_replayed_identically(h, key):
    params = request_params(key)
    first = h.get(params, headers={"Idempotency-Key": "j", **JSON})
    again = h.get(params, headers={"Idempotency-Key": "j", **JSON})
    assert (first.status, first.content) == (again.status, again.content)
    assert first.json["code"] == 0 and again.headers["x-c2c-call-id"] == first.json["call_id"]
    assert h.call_count() == 1


def test_request_id_header_order_unknown_parameters_and_post_are_the_same_request(h, key):
    params = request_params(key)
    first = h.get({**params, "request_id": "r-1"})
    assert h.code(first) == 0
    call_id = first.headers["x-c2c-call-id"]
    pairs = [*reversed(list(params.items())), ("utm_campaign", "spring")]
    replays = [
        h.get(pairs, headers={"Idempotency-Key": "r-1"}),
        h.get({**params, "request_id": "r-1"}, headers={"Idempotency-Key": "r-1"}),
        h.request("POST", body=urlencode({**params, "request_id": "r-1"}),
                  headers={"Content-Type": "application/x-www-form-urlencoded"}),
        h.get({**params, "request_id": "r-1"}, path="/api/clicktocall"),
    ]
    for replay in replays:
        assert h.code(replay) == 0
        assert replay.headers["x-c2c-call-id"] == call_id
        assert replay.headers["idempotent-replayed"] == "true"
    assert h.call_count() == 1 and len(h.sent) == 1


def test_the_same_key_with_other_parameters_is_4_and_changes_nothing(h, key):
    params = request_params(key)
    assert h.code(h.get(params, headers={"Idempotency-Key": "k"})) == 0
    before = h.snapshot()
    for changed in ({"secret": "other"}, {"max_duration": ""},
                    {"callee_phone_number": AppHarness.numbers()["callee_phone_number"]}):
        text = h.get({**params, **changed}, headers={"Idempotency-Key": "k"})
        assert h.code(text) == 4
        assert "idempotent-replayed" not in text.headers
        as_json = h.get({**params, **changed}, headers={"Idempotency-Key": "k", **JSON})
        assert as_json.status_code == 400 and as_json.json["code"] == 4
    assert h.snapshot() == before
    # The original parameters still get their answer.
    assert h.code(h.get(params, headers={"Idempotency-Key": "k"})) == 0
    assert h.call_count() == 1


@pytest.mark.parametrize("headers, extra", [
    ({"Idempotency-Key": "x" * 65}, {}),
    ({"Idempotency-Key": ""}, {}),
    ({"Idempotency-Key": "caf\xe9"}, {}),
    ({}, {"request_id": "x" * 65}),
    ({}, {"request_id": "caf\xe9"}),
    ({"Idempotency-Key": "a"}, {"request_id": "b"}),
])
def test_a_malformed_key_is_4_and_leaves_nothing(h, key, headers, extra):
    before = h.snapshot()
    assert h.code(h.get({**request_params(key), **extra}, headers=headers)) == 4
    assert h.snapshot() == before and keys_count(h) == 0


def test_a_repeated_request_id_is_4(h, key):
    pairs = [*request_params(key).items(), ("request_id", "a"), ("request_id", "a")]
    assert h.code(h.get(pairs)) == 4
    assert keys_count(h) == 0


def test_codes_1_and_5_come_first_and_are_not_kept(h):
    disabled = h.account(enabled=False)
    for api_key, code in (("no-such-key", 1), (disabled.api_key, 5)):
        params = request_params(api_key)
        assert h.code(h.get(params, headers={"Idempotency-Key": "x" * 65})) == code
        assert h.code(h.get(params, headers={"Idempotency-Key": "k"})) == code
    assert keys_count(h) == 0


def test_a_malformed_request_with_a_key_is_4_and_the_key_stays_free(h, key):
    params = request_params(key)
    assert h.code(h.get({**params, "max_duration": "0"}, headers={"Idempotency-Key": "k"})) == 4
    assert keys_count(h) == 0
    assert h.code(h.get(params, headers={"Idempotency-Key": "k"})) == 0


def test_a_4_decided_after_the_claim_is_not_kept(store_url):
    """The callback host's check (DNS, private addresses) runs after the claim: its 4 frees the
    key, and the corrected request may use it."""
    with AppHarness(store_url, callback_allow_private=False) as h:
        api_key = h.account().api_key
        private = request_params(api_key, callback_url="http://127.0.0.1:9/cb")
        assert h.code(h.get(private, headers={"Idempotency-Key": "k"})) == 4
        assert keys_count(h) == 0
        public = {**private, "callback_url": "http://192.0.43.10/cb"}  # a literal: no DNS
        assert h.code(h.get(public, headers={"Idempotency-Key": "k"})) == 0
        assert keys_count(h) == 1


def test_a_rejection_after_the_claim_is_kept_and_replayed(h, key):
    france = request_params(key, callee_country_code="33", callee_phone_number="612345678")
    first = h.get(france, headers={"Idempotency-Key": "fr", **JSON})
    assert (first.status_code, first.json["code"]) == (422, 10)
    # Covered now; the key still answers what its first request answered.
    h.store.coverage.allow_country("33")
    again = h.get(france, headers={"Idempotency-Key": "fr", **JSON})
    assert (again.status, again.content) == (first.status, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert "x-c2c-call-id" not in again.headers
    assert h.code(h.get(france, headers={"Idempotency-Key": "fr"})) == 10
    assert h.call_count() == 0
    assert h.code(h.get(france, headers={"Idempotency-Key": "fr-2"})) == 0


def test_11_is_not_kept_so_a_retry_with_the_key_places_the_call(h, key):
    params = request_params(key)
    h.switch.faults.error_all = True
    assert h.code(h.get(params, headers={"Idempotency-Key": "retry"})) == 11
    assert keys_count(h) == 0 and h.call_count() == 0
    h.switch.faults.error_all = False
    retried = h.get(params, headers={"Idempotency-Key": "retry"})
    assert h.code(retried) == 0
    assert "idempotent-replayed" not in retried.headers
    assert h.call_count() == 1


def test_the_key_is_the_accounts_own(h, key):
    other = h.account(name="other").api_key
    # Other numbers (flood protection), so that a replay across accounts would show as one.
    first = h.get(request_params(key), headers={"Idempotency-Key": "shared"})
    second = h.get(request_params(other), headers={"Idempotency-Key": "shared"})
    assert h.code(first) == h.code(second) == 0
    assert first.headers["x-c2c-call-id"] != second.headers["x-c2c-call-id"]
    assert "idempotent-replayed" not in second.headers
    assert h.call_count() == 2


def test_concurrent_duplicates_in_one_worker_place_one_call(h, key):
    params = request_params(key)
    greenlets = [gevent.spawn(h.get, params, headers={"Idempotency-Key": "burst"})
                 for _ in range(10)]
    gevent.joinall(greenlets, timeout=30, raise_error=True)
    results = [greenlet.value for greenlet in greenlets]
    answers = [(h.code(r), r.headers["x-c2c-call-id"], r.headers.get("idempotent-replayed"))
               for r in results]
    assert {(code, call_id) for code, call_id, _ in answers} == {(0, answers[0][1])}
    assert Counter(replayed for _, _, replayed in answers) == {"true": 9, None: 1}
    assert h.call_count() == 1 and len(h.sent) == 1


# ------------------------------------------------------------------------------------------
# end to end: real gunicorn, two workers


def _burst(url: str, key: str, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` requests with the same key, released at the same instant."""
    barrier = threading.Barrier(count, timeout=30)
    answers: list[tuple[int, dict[str, str], bytes]] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait()
            answers.append(http_get(url, timeout=30, headers={"Idempotency-Key": key}))
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return answers


def _workers_that_answered(log_text: str, call_id: str) -> set[str]:
    """The pids of the workers whose log names the call: the one that placed it ("accepted
    on") and those that replayed it ("got its first answer again")."""
    lines = re.finditer(rf"\[(\d+)\] INFO .*call {call_id}", log_text)
    return {line.group(1) for line in lines}


@pytest.mark.slow
def test_ten_concurrent_duplicates_across_two_workers_place_exactly_one_call(tmp_path,
                                                                              store_url):
    duplicates, rounds = 10, 5
    with Deployment(tmp_path, store_url, workers=2, env={"C2C_LOG_LEVEL": "INFO"}) as d:
        assert d.gunicorn is not None
        query = {"api_key": d.api_key, "caller_phone_number": "2125550123",
                 "caller_country_code": "1", "callee_phone_number": "2125550199",
                 "callee_country_code": "1", "secret": "s3cret",
                 "callback_url": d.receiver.url("/cb?order=42")}
        url = f"{d.gunicorn.base_url}/api/clicktocall/?{urlencode(query)}"
        placed: list[str] = []
        # Which worker takes which connection is the kernel's choice: bursts (each with its
        # own key) until one was answered by both workers; each places exactly one call.
        for burst in range(rounds):
            answers = _burst(url, f"visit-8f2c-{burst}", duplicates)
            assert [(status, body) for status, _, body in answers] == [(200, b"0")] * duplicates
            call_ids = {headers["x-c2c-call-id"] for _, headers, _ in answers}
            assert len(call_ids) == 1
            (call_id,) = call_ids
            replayed = Counter(headers.get("idempotent-replayed") for _, headers, _ in answers)
            assert replayed == {"true": duplicates - 1, None: 1}
            placed.append(call_id)
            with d.store.engine.connect() as conn:
                ids = conn.execute(select(schema.calls.c.id)).scalars().all()
            assert sorted(ids) == sorted(placed)
            if len(_workers_that_answered(d.gunicorn.log_text(), call_id)) == 2:
                break
        else:
            pytest.fail(f"no burst of {rounds} was answered by both workers")
        # The calls run their course: one final callback each.
        for call_id in placed:
            d.wait_settled(call_id)
        d.wait_callbacks(len(placed))
        assert sorted(r.header("X-C2C-Call-Id") for r in d.receiver.requests) == sorted(placed)
        # A late retry still gets the same answer, and still places nothing.
        status, headers, body = http_get(url, headers={"Idempotency-Key": "visit-8f2c-0"})
        assert (status, body, headers["x-c2c-call-id"]) == (200, b"0", placed[0])
        assert headers["idempotent-replayed"] == "true"
        with d.store.engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(schema.calls)).scalar_one()
        assert count == len(placed)

"""The customer's read API (`GET /api/calls/{id}`, `GET /api/calls`): authentication, what a
call shows, the 404 that never tells another account's call from no call, keyset pages, filters,
problems, on SQLite and MariaDB, in-process (tests.support.app_harness)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from c2c.domain.call_status import PublicState
from c2c.fakeswitch.scenarios import Scenario
from c2c.store import schema
from tests.support.app_harness import AppHarness
from tests.support.call_rows import SEED_SWITCH, seed_call, seed_callback
from tests.support.processes import free_port

PROBLEM = "application/problem+json"
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def harness(store_url: str) -> Iterator[AppHarness]:
    with AppHarness(store_url) as h:
        yield h


def call_of(h: AppHarness, key: str, call_id: str) -> Any:
    result = h.request("GET", f"/api/calls/{call_id}", headers=bearer(key))
    assert result.status_code == 200, result.text
    assert result.headers["content-type"] == "application/json"
    assert result.headers["cache-control"] == "no-store"
    return result.json


def page_of(h: AppHarness, key: str, **params: Any) -> Any:
    result = h.request("GET", "/api/calls", urlencode(params), bearer(key))
    assert result.status_code == 200, result.text
    return result.json


def all_pages(h: AppHarness, key: str, **params: Any) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(1000):
        page = page_of(h, key, **params, **({"cursor": cursor} if cursor else {}))
        ids += [call["id"] for call in page["calls"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
        assert page["calls"], "a page with a next cursor is never empty"
    raise AssertionError("paging never ended")


def assert_problem(result: Any, status: int, kind: str) -> dict[str, Any]:
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == PROBLEM
    body = result.json
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["type"] == kind and body["status"] == status
    assert body["title"] and body["detail"]
    return body


# -- one call -----------------------------------------------------------------------------------


def test_an_ended_call_shows_its_outcome_legs_and_callback(harness: AppHarness) -> None:
    account = harness.account()
    call_id = seed_call(
        harness.store, account.id, created_at=T0 + 0.25, state="ended",
        caller_answered_at=T0 + 5, callee_answered_at=T0 + 9.5, bridged_at=T0 + 9.5,
        ended_at=T0 + 70.125, answered=True, minutes=2, reason=None, billsec=61,
        caller_hangup_cause="NORMAL_CLEARING", caller_sip_status=None,
        callee_hangup_cause="NORMAL_CLEARING", callee_sip_status="200", max_minutes=7,
        callback_url="https://example.com/cb", confirm="confirmed")
    seed_callback(harness.store, call_id, account.id, status="delivered",
                  attempts=((T0 + 71, 500), (T0 + 73.5, 200)), delivered_at=T0 + 73.5)
    assert call_of(harness, account.api_key, call_id) == {
        "id": call_id,
        "state": "ended",
        "caller": {"number": "+15552104427", "hangup_cause": "NORMAL_CLEARING",
                   "sip_status": None},
        "callee": {"number": "+442071234567", "hangup_cause": "NORMAL_CLEARING",
                   "sip_status": 200},
        "created_at": "2023-11-14T22:13:20.250Z",
        "caller_answered_at": "2023-11-14T22:13:25.000Z",
        "bridged_at": "2023-11-14T22:13:29.500Z",
        "ended_at": "2023-11-14T22:14:30.125Z",
        "answered": True,
        "minutes": 2,
        "reason": None,
        "estimated": False,
        "corrected_at": None,
        "max_minutes": 7,
        "rate": 1,
        "caller_rate": None,
        "cost": 2,
        "confirm": "confirmed",
        "switch": SEED_SWITCH,
        "callback": {"status": "delivered", "attempts": 2, "last_http_status": 200,
                     "last_attempt_at": "2023-11-14T22:14:33.500Z",
                     "delivered_at": "2023-11-14T22:14:33.500Z"},
    }


def test_a_call_shows_its_rates_and_what_it_cost(harness: AppHarness) -> None:
    account = harness.account()
    running = seed_call(harness.store, account.id, state="bridged", rate="0.035",
                        caller_rate="0.01", reserved_credits="4.2")
    shown = call_of(harness, account.api_key, running)
    assert (shown["rate"], shown["caller_rate"], shown["cost"]) == (0.035, 0.01, None)
    ended = seed_call(harness.store, account.id, answered=True, minutes=3, reason=None,
                      rate="0.035", caller_rate="0.01", caller_minutes=4, charged="0.145")
    shown = call_of(harness, account.api_key, ended)
    assert (shown["rate"], shown["caller_rate"], shown["cost"]) == (0.035, 0.01, 0.145)


def test_a_leg_without_a_channel_shows_what_the_switch_said_instead(harness: AppHarness) -> None:
    account = harness.account()
    never_rang = seed_call(harness.store, account.id, reason=0,
                           originate_error="GATEWAY_DOWN")
    callee_busy = seed_call(harness.store, account.id, reason=5,
                            caller_hangup_cause="NORMAL_CLEARING", callee_fate="USER_BUSY",
                            callee_sip_status="486")
    shown = call_of(harness, account.api_key, never_rang)
    assert shown["caller"]["hangup_cause"] == "GATEWAY_DOWN"
    assert shown["callee"]["hangup_cause"] is None
    shown = call_of(harness, account.api_key, callee_busy)
    assert shown["callee"] == {"number": "+442071234567", "hangup_cause": "USER_BUSY",
                               "sip_status": 486}
    assert (shown["answered"], shown["minutes"], shown["reason"]) == (False, 0, 5)


def test_outcome_is_null_until_the_call_ended(harness: AppHarness) -> None:
    account = harness.account()
    call_id = seed_call(harness.store, account.id, state="bridged", bridged_at=T0,
                        callback_url="https://example.com/cb")
    shown = call_of(harness, account.api_key, call_id)
    assert shown["state"] == "bridged"
    assert (shown["answered"], shown["minutes"], shown["reason"], shown["ended_at"]) == (
        None, None, None, None)
    assert shown["callback"] == {"status": "waiting", "attempts": 0, "last_http_status": None,
                                 "last_attempt_at": None, "delivered_at": None}
    no_callback = seed_call(harness.store, account.id)
    assert call_of(harness, account.api_key, no_callback)["callback"] is None


def test_estimated_minutes_until_corrected(harness: AppHarness) -> None:
    account = harness.account()
    estimated = seed_call(harness.store, account.id, estimated=True, answered=True, minutes=3,
                          reason=None)
    corrected = seed_call(harness.store, account.id, estimated=True, answered=True, minutes=2,
                          reason=None, corrected_at=T0 + 600)
    shown = call_of(harness, account.api_key, estimated)
    assert (shown["estimated"], shown["corrected_at"]) == (True, None)
    shown = call_of(harness, account.api_key, corrected)
    assert (shown["estimated"], shown["corrected_at"]) == (False, "2023-11-14T22:23:20.000Z")


@pytest.mark.parametrize(
    ("state", "confirm", "public"),
    [
        ("queued", None, "queued"),
        ("caller_ringing", None, "dialing_caller"),
        ("caller_ringing", "required", "dialing_caller"),
        ("caller_answered", None, "dialing_callee"),
        ("caller_answered", "required", "caller_answered"),
        ("caller_answered", "confirmed", "dialing_callee"),
        ("caller_answered", "unconfirmed", "caller_answered"),
        ("bridged", None, "bridged"),
        ("bridged", "confirmed", "bridged"),
        ("ended", "unconfirmed", "ended"),
    ],
)
def test_the_public_state_of_a_row(harness: AppHarness, state: str, confirm: str | None,
                                   public: str) -> None:
    account = harness.account()
    call_id = seed_call(harness.store, account.id, state=state, confirm=confirm)
    shown = call_of(harness, account.api_key, call_id)
    assert (shown["state"], shown["confirm"]) == (public, confirm)
    assert [c["id"] for c in page_of(harness, account.api_key, state=public)["calls"]] == [call_id]
    others = [s.value for s in PublicState if s.value != public]
    for other in others:
        assert page_of(harness, account.api_key, state=other)["calls"] == []


# -- who may see it -----------------------------------------------------------------------------


def test_another_accounts_call_is_the_same_404_as_no_call(harness: AppHarness) -> None:
    owner, other = harness.account(), harness.account()
    call_id = seed_call(harness.store, owner.id)
    theirs = harness.request("GET", f"/api/calls/{call_id}", headers=bearer(other.api_key))
    missing = harness.request("GET", "/api/calls/3f1c9a52-8d7e-4c2b-9d0e-5b1f2a6c7e90",
                              headers=bearer(other.api_key))
    assert assert_problem(theirs, 404, "about:blank") == assert_problem(missing, 404,
                                                                         "about:blank")
    assert theirs.headers == missing.headers
    assert page_of(harness, other.api_key)["calls"] == []
    assert [c["id"] for c in page_of(harness, owner.api_key)["calls"]] == [call_id]


@pytest.mark.parametrize("call_id", ["x" * 37, "%C3%A9", "a%00b", "'%20OR%201=1", "%ED%A0%80",
                                     "-", "A" * 36])
def test_ids_that_name_no_call_are_404(harness: AppHarness, call_id: str) -> None:
    account = harness.account()
    result = harness.request("GET", f"/api/calls/{call_id}", headers=bearer(account.api_key))
    assert_problem(result, 404, "about:blank")


def test_the_key_as_a_query_parameter_or_any_case_of_bearer(harness: AppHarness) -> None:
    account = harness.account()
    call_id = seed_call(harness.store, account.id)
    path = f"/api/calls/{call_id}"
    by_query = harness.request("GET", path, urlencode({"api_key": account.api_key}))
    by_header = harness.request("GET", path, headers={"Authorization": f"bearer  {account.api_key}"})
    assert by_query.status_code == by_header.status_code == 200
    assert by_query.json == by_header.json


@pytest.mark.parametrize(
    ("headers", "query", "status", "kind", "challenge"),
    [
        ({}, "", 401, "unauthorized", 'Bearer realm="c2c"'),
        ({}, "api_key=", 401, "unauthorized", 'Bearer realm="c2c", error="invalid_token"'),
        ({}, "api_key=nobody", 401, "unauthorized",
         'Bearer realm="c2c", error="invalid_token"'),
        ({"Authorization": "Bearer nobody"}, "", 401, "unauthorized",
         'Bearer realm="c2c", error="invalid_token"'),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "", 401, "unauthorized",
         'Bearer realm="c2c", error="invalid_request"'),
        ({"Authorization": "Bearer"}, "", 401, "unauthorized",
         'Bearer realm="c2c", error="invalid_request"'),
        ({"Authorization": "Bearer a b"}, "", 401, "unauthorized",
         'Bearer realm="c2c", error="invalid_request"'),
        ({}, "api_key=%FF%FE", 401, "unauthorized", 'Bearer realm="c2c", error="invalid_token"'),
        ({}, "api_key=KEY&api_key=KEY", 400, "invalid-parameter", None),
        ({"Authorization": "Bearer KEY"}, "api_key=KEY", 400, "invalid-parameter", None),
    ],
)
def test_authentication_problems(harness: AppHarness, headers: dict[str, str], query: str,
                                 status: int, kind: str, challenge: str | None) -> None:
    account = harness.account()
    headers = {name: value.replace("KEY", account.api_key) for name, value in headers.items()}
    query = query.replace("KEY", account.api_key)
    for path in ("/api/calls", f"/api/calls/{seed_call(harness.store, account.id)}"):
        result = harness.request("GET", path, query, headers)
        body = assert_problem(result, status, f"urn:c2c:problem:{kind}")
        assert result.headers.get("www-authenticate") == challenge
        assert account.api_key not in body["detail"]


def test_a_disabled_key_is_403(harness: AppHarness) -> None:
    account = harness.account(enabled=False)
    call_id = seed_call(harness.store, account.id)
    for path in ("/api/calls", f"/api/calls/{call_id}"):
        result = harness.request("GET", path, headers=bearer(account.api_key))
        assert_problem(result, 403, "urn:c2c:problem:key-disabled")


def test_an_unreachable_store_is_503_with_retry_after(tmp_path: Any, store_url: str) -> None:
    if store_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}/no/such/dir/c2c.sqlite3"
    else:
        url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/c2c"
    with AppHarness(url, upgrade=False) as h:
        for path in ("/api/calls", "/api/calls/3f1c9a52-8d7e-4c2b-9d0e-5b1f2a6c7e90"):
            result = h.request("GET", path, headers=bearer("some-key"))
            assert_problem(result, 503, "urn:c2c:problem:unavailable")
            assert result.headers["retry-after"] == "5"
        # The original contract is untouched: code 11 in text mode.
        assert h.place("some-key") == 11


# -- lists --------------------------------------------------------------------------------------


def test_pages_newest_first_with_ties_and_no_gaps(harness: AppHarness) -> None:
    account, other = harness.account(), harness.account()
    expected = []
    for n in range(23):
        expected.append((T0 + n, seed_call(harness.store, account.id, created_at=T0 + n)))
    # Five calls accepted in the same instant: the id breaks the tie, across page boundaries.
    for _ in range(5):
        expected.append((T0 + 10, seed_call(harness.store, account.id, created_at=T0 + 10)))
    seed_call(harness.store, other.id, created_at=T0 + 5)
    expected.sort(reverse=True)
    want = [call_id for _, call_id in expected]
    for limit in (1, 3, 7, 28, 100):
        assert all_pages(harness, account.api_key, limit=limit) == want
    first = page_of(harness, account.api_key)
    assert len(first["calls"]) == 20 and first["next_cursor"]
    assert page_of(harness, account.api_key, limit=28)["next_cursor"] is None


def test_pages_stay_put_while_calls_arrive(harness: AppHarness) -> None:
    account = harness.account()
    old = [seed_call(harness.store, account.id, created_at=T0 + n) for n in range(10)]
    seen: list[str] = []
    first = page_of(harness, account.api_key, limit=4)
    seen += [c["id"] for c in first["calls"]]
    cursor = first["next_cursor"]
    arrived = [seed_call(harness.store, account.id, created_at=T0 + 100 + n) for n in range(6)]
    while cursor:
        page = page_of(harness, account.api_key, limit=4, cursor=cursor)
        seen += [c["id"] for c in page["calls"]]
        cursor = page["next_cursor"]
        arrived.append(seed_call(harness.store, account.id))  # newer than anything paged
    assert seen == old[::-1]
    assert all_pages(harness, account.api_key, limit=5)[:len(arrived)] == arrived[::-1]


def test_since_and_state_filter_together(harness: AppHarness) -> None:
    account = harness.account()
    states = itertools.cycle(["ended", "bridged", "queued"])
    rows = [(T0 + n * 3600, next(states)) for n in range(12)]
    ids = {seed_call(harness.store, account.id, created_at=t, state=s): (t, s) for t, s in rows}

    def expected(since: float, state: str | None) -> list[str]:
        chosen = [(t, i) for i, (t, s) in ids.items() if t >= since and state in (None, s)]
        return [i for _, i in sorted(chosen, reverse=True)]

    since = "2023-11-15T03:13:20Z"  # T0 + 5 h
    assert all_pages(harness, account.api_key, since=since, limit=2) == expected(T0 + 5 * 3600,
                                                                                None)
    assert all_pages(harness, account.api_key, since="2023-11-15T04:13:20+01:00",
                     state="ended", limit=1) == expected(T0 + 5 * 3600, "ended")
    assert all_pages(harness, account.api_key, since="2023-11-15") == expected(T0 + 6400, None)
    assert all_pages(harness, account.api_key, since="2023-11-14T22:13:20.000001Z") == expected(
        T0 + 0.5, None)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"), ("limit=101", "limit"), ("limit=05", "limit"), ("limit=x", "limit"),
        ("limit=", "limit"), ("limit=1&limit=1", "limit"), ("limit=%2B5", "limit"),
        ("state=ringing", "state"), ("state=", "state"), ("state=ENDED", "state"),
        ("since=yesterday", "since"), ("since=2025-01-01T00:00:00", "since"),
        ("since=2025-13-01", "since"), ("since=2025-02-30T00:00:00Z", "since"),
        ("since=2025-01-01T24:00:00Z", "since"), ("since=2025-01-01T00:00:60Z", "since"),
        ("since=2025-01-01T00:00:00%2B24:00", "since"), ("since=0000-01-01", "since"), ("since=2025-W01", "since"),
        ("since=%F0%9F%98%80", "since"), ("since=", "since"),
        ("cursor=", "cursor"), ("cursor=c1.", "cursor"), ("cursor=c1.bm9wZQ", "cursor"),
        ("cursor=c1.aW5mfmFiYw", "cursor"), ("cursor=c1.%FF", "cursor"),
        ("cursor=" + "c1." + "A" * 300, "cursor"), ("cursor=x&cursor=y", "cursor"),
    ],
)
def test_bad_list_parameters_are_400(harness: AppHarness, query: str, parameter: str) -> None:
    account = harness.account()
    result = harness.request("GET", "/api/calls", query, bearer(account.api_key))
    body = assert_problem(result, 400, "urn:c2c:problem:invalid-parameter")
    assert body["detail"].startswith(f"{parameter}:")


def test_unknown_list_parameters_are_ignored(harness: AppHarness) -> None:
    account = harness.account()
    seed_call(harness.store, account.id)
    assert len(page_of(harness, account.api_key, order="asc", page="2")["calls"]) == 1


# -- problems everywhere ------------------------------------------------------------------------


def test_http_errors_of_every_route_are_problems(harness: AppHarness) -> None:
    result = harness.request("PUT", "/api/calls")
    assert_problem(result, 405, "about:blank")
    assert "GET" in result.headers["allow"]
    assert_problem(harness.request("DELETE", "/api/clicktocall/"), 405, "about:blank")
    assert_problem(harness.request("GET", "/api/nothing"), 404, "about:blank")
    # The contract's own answers are untouched.
    assert harness.code(harness.get({"api_key": "nobody"})) == 1


# -- a live call --------------------------------------------------------------------------------

PHASES = Scenario.from_dict({"rules": [
    {"role": "caller", "action": "answer", "progress_after": 0.5, "answer_after": 2,
     "hangup_after": None, "dtmf": "1", "dtmf_after": 2},
    {"action": "answer", "answer_after": 2, "hangup_after": 2},
]})


@pytest.mark.parametrize(("confirm", "expected"), [
    ("off", ["dialing_caller", "dialing_callee", "bridged", "ended"]),
    ("key", ["dialing_caller", "caller_answered", "bridged", "ended"]),
])
def test_status_follows_a_call_through_its_states(store_url: str, confirm: str,
                                                  expected: list[str]) -> None:
    with AppHarness(store_url, background=True, scenario=PHASES, time_scale=0.25,
                    confirm=confirm) as h:
        account = h.account()
        result = h.get({"api_key": account.api_key, **h.numbers()})
        assert h.code(result) == 0
        call_id = result.headers["x-c2c-call-id"]
        seen: list[str] = []

        def ended() -> bool:
            state = call_of(h, account.api_key, call_id)["state"]
            if not seen or seen[-1] != state:
                seen.append(state)
            return state == "ended"

        h.wait_until(ended, timeout=20, message="the call ended")
        order = [s.value for s in PublicState]
        assert seen == sorted(seen, key=order.index), seen  # forward only
        assert [s for s in seen if s in expected] == expected, seen
        shown = call_of(h, account.api_key, call_id)
        assert shown["answered"] is True and shown["minutes"] == 1 and shown["reason"] is None
        assert shown["bridged_at"] and shown["caller_answered_at"] and shown["ended_at"]
        assert shown["confirm"] == (None if confirm == "off" else "confirmed")
        assert shown["switch"] == f"127.0.0.1:{h.switch.port}"


def test_a_placed_call_is_listed_first(harness: AppHarness) -> None:
    account = harness.account()
    seed_call(harness.store, account.id, created_at=time.time() - 60)
    result = harness.get({"api_key": account.api_key, **harness.numbers()},
                         headers={"Accept": "application/json"})
    call_id = result.json["call_id"]
    first = page_of(harness, account.api_key, limit=1)["calls"][0]
    assert first["id"] == call_id
    assert first["state"] in ("queued", "dialing_caller")
    with harness.store.engine.connect() as conn:
        row = conn.execute(schema.calls.select().where(schema.calls.c.id == call_id)).one()
    assert first["caller"]["number"] == f"+{row.caller_country_code}{row.caller_number}"

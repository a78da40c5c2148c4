"""The widget's API (issue 15) in-process against the simulator over real TCP, on both stores:
a visitor's call placed and followed to its end; what a widget id can never do (another callee,
another call, another origin); the challenge (forged, for another widget, expired, replayed);
the abuse limits; bad input answered with a clear error, never a 500, nothing left behind."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from c2c.widgets.tokens import call_token
from tests.support.app_harness import AppHarness, fresh_number
from tests.support.widget_client import call_body, solution, solve

ORIGIN = "https://shop.example"
OTHER_ORIGIN = "https://evil.example"
CALLEE = 12125550199
TIME_SCALE = 0.02


@pytest.fixture
def h(store_url: str) -> Any:
    with AppHarness(store_url, background=True, time_scale=TIME_SCALE,
                    widget_challenge_max=2000) as harness:
        yield harness


def new_widget(h: AppHarness, **options: Any) -> Any:
    account = h.account(credits=100)
    h.store.own_numbers.add(account.id, CALLEE)
    widget = h.store.widgets.create(account.id, callee=CALLEE, origins=(ORIGIN,),
                                    countries=("1", "44"), **options)
    assert widget is not None
    return widget


def headers(origin: str | None = ORIGIN, client: str = "203.0.113.7") -> dict[str, str]:
    sent = {"Content-Type": "application/json", "X-Forwarded-For": client}
    if origin is not None:
        sent["Origin"] = origin
    return sent


def challenge(h: AppHarness, widget_id: str, origin: str = ORIGIN) -> dict[str, Any]:
    answer = h.request("GET", f"/api/widget/{widget_id}/challenge", headers={"Origin": origin})
    assert answer.status_code == 200, answer.text
    return dict(answer.json)


def place(h: AppHarness, widget_id: str, number: str | None = None, *, country: str = "1",
          origin: str | None = ORIGIN, client: str = "203.0.113.7", solved: str | None = None,
          **extra: Any) -> Any:
    solved = solved if solved is not None else solve(challenge(h, widget_id))
    assert h.client is not None
    # From nginx on this host (a trusted proxy), which names the visitor in X-Forwarded-For.
    return h.client.simulate_request(
        "POST", f"/api/widget/{widget_id}/calls", headers=headers(origin, client),
        body=call_body(country, number or fresh_number(), solved, **extra),
        remote_addr="127.0.0.1")


def status(h: AppHarness, token: str, origin: str = ORIGIN) -> Any:
    return h.request("GET", f"/api/widget/calls/{token}", headers={"Origin": origin})


def test_a_visitor_is_called_then_connected_to_the_widget_callee(h: AppHarness) -> None:
    widget = new_widget(h, callback_url="http://127.0.0.1:9/callback")
    described = h.request("GET", f"/api/widget/{widget.id}", headers={"Origin": ORIGIN})
    assert described.json == {"countries": ["1", "44"]}
    assert described.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in described.headers["vary"]

    visitor = fresh_number()
    answer = place(h, widget.id, visitor)
    assert answer.status_code == 201, answer.text
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.json["state"] == "ringing_you"
    token = answer.json["token"]

    seen = []

    def ended() -> bool:
        state = status(h, token).json["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        return state == "ended"

    h.wait_until(ended, 20, "the call ended")
    assert seen[0] == "ringing_you" and seen[-1] == "ended"
    assert set(seen) <= {"ringing_you", "connecting", "connected", "ended"}
    # The status says the state and nothing else.
    assert set(status(h, token).json) == {"state"}

    calls = h.store.call_views.page(widget.account_id, limit=10)[0]
    assert len(calls) == 1
    row = h.store.calls.get(calls[0]["id"])
    assert row is not None
    assert (row["caller_country_code"] + row["caller_number"]) == "1" + visitor
    assert int(row["callee_country_code"] + row["callee_number"]) == CALLEE
    assert row["answered"] and row["minutes"] == 1
    assert row["callback_url"] == "http://127.0.0.1:9/callback"
    assert h.store.accounts.find(widget.account_id).credits == 99
    metrics = h.request("GET", "/metrics").text
    assert 'c2c_widget_requests_total{result="placed"} 1.0' in metrics


def test_a_widget_can_only_call_its_own_callee(h: AppHarness) -> None:
    widget = new_widget(h)
    answer = place(h, widget.id, callee_phone_number="2125550100", callee_country_code="1",
                   callee="+12125550100", api_key="whatever")
    assert answer.status_code == 201, answer.text
    (call,), _ = h.store.call_views.page(widget.account_id, limit=10)
    assert int(call["callee_country_code"] + call["callee_number"]) == CALLEE

    # The callee is no longer one of the account's own numbers: nothing is placed.
    h.store.own_numbers.remove(widget.account_id, CALLEE)
    refused = place(h, widget.id)
    assert (refused.status_code, refused.json) == (503, {"error": "unavailable"})
    assert h.call_count() == 1


def test_an_unlisted_origin_is_refused_without_cors(h: AppHarness) -> None:
    widget = new_widget(h)
    for method, path in (("GET", f"/api/widget/{widget.id}"),
                         ("GET", f"/api/widget/{widget.id}/challenge"),
                         ("OPTIONS", f"/api/widget/{widget.id}/calls")):
        answer = h.request(method, path, headers={"Origin": OTHER_ORIGIN})
        assert answer.status_code == 403, (method, path)
        assert answer.json == {"error": "origin_not_allowed"}
        assert "access-control-allow-origin" not in answer.headers
    # Even with a challenge solved for the widget (a bot can fetch one with a forged Origin).
    solved = solve(challenge(h, widget.id))
    answer = place(h, widget.id, origin=OTHER_ORIGIN, solved=solved)
    assert answer.status_code == 403 and "access-control-allow-origin" not in answer.headers
    assert place(h, widget.id, origin=None, solved=solved).status_code == 403
    assert h.call_count() == 0

    preflight = h.request("OPTIONS", f"/api/widget/{widget.id}/calls", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert preflight.headers["access-control-allow-headers"] == "Content-Type"


def test_unknown_and_disabled_widgets(h: AppHarness) -> None:
    widget = new_widget(h)
    for wid in ("wid_nosuchwidget", "x" * 200, "wid_a.b", "%00", "wid_%C3%A9"):
        answer = h.request("GET", f"/api/widget/{wid}", headers={"Origin": ORIGIN})
        assert (answer.status_code, answer.json) == (404, {"error": "unknown_widget"}), wid
    h.store.widgets.set_enabled(widget.id, False)
    solved = solution({"algorithm": "SHA-256", "challenge": "0", "salt": "s", "signature": "0"},
                      1)
    answer = place(h, widget.id, solved=solved)
    assert (answer.status_code, answer.json) == (404, {"error": "unknown_widget"})
    h.store.widgets.set_enabled(widget.id, True)
    assert place(h, widget.id).status_code == 201


def test_forged_foreign_expired_and_replayed_challenges_are_refused(h: AppHarness) -> None:
    widget, other = new_widget(h), new_widget(h)
    issued = challenge(h, widget.id)
    good = solve(issued)
    number = json.loads(base64.b64decode(good))["number"]
    forged = [
        solution(issued, number + 1),  # not the number
        solution(issued, number, signature="0" * 64),  # not our signature
        solution(issued, number, salt=issued["salt"].replace("expires=", "expires=9")),
        solution(issued, number, algorithm="SHA-1"),
        "not base64!", "", "eyJ9",  # garbage
    ]
    for bad in forged:
        answer = place(h, widget.id, solved=bad)
        assert (answer.status_code, answer.json) == (400, {"error": "challenge_failed"}), bad
    # Solved for another widget: good there, not here.
    foreign = solve(challenge(h, other.id))
    assert place(h, widget.id, solved=foreign).json == {"error": "challenge_failed"}
    # Good once, refused the second time, whatever the number called.
    assert place(h, widget.id, solved=good).status_code == 201
    again = place(h, widget.id, solved=good)
    assert (again.status_code, again.json) == (400, {"error": "challenge_failed"})
    assert h.call_count() == 1


def test_a_token_reads_its_own_call_and_nothing_else(h: AppHarness) -> None:
    widget, other = new_widget(h), new_widget(h)
    token = place(h, widget.id).json["token"]
    assert status(h, token).status_code == 200
    # Another widget's origin may not read it (here both widgets list the same origin, so
    # give the other one its own and check the token is bound to its widget).
    key = h.store.widgets.secret("widget-call-token")
    wid, _, encoded = token.rpartition(".")
    swapped = f"{other.id}.{encoded}"
    assert status(h, swapped).json == {"error": "unknown_call"}
    # An API call of the same account: no token can name it without the key.
    api_call = h.store.call_views.page(widget.account_id, limit=10)[0][0]["id"]
    tampered = encoded[:-2] + ("AA" if encoded[-2:] != "AA" else "BB")
    assert status(h, f"{wid}.{tampered}").json == {"error": "unknown_call"}
    assert status(h, call_token(b"not the key", wid, api_call)).json == {
        "error": "unknown_call"}
    for garbage in ("x", "a.b", "." * 50, "wid_x." + "A" * 43):
        assert status(h, garbage).status_code == 404, garbage
    assert status(h, token, origin=OTHER_ORIGIN).status_code == 403
    assert status(h, call_token(key, wid, api_call)).status_code == 200  # the key is the guard


def test_limits_per_number_per_address_and_per_widget(store_url: str) -> None:
    # One call a number per hour (a second ring of a phone already ringing would be refused by
    # the switch anyway); flood protection off, so that only the widget's limits count.
    with AppHarness(store_url, widget_challenge_max=500, widget_per_number_per_hour=1,
                    widget_per_ip_per_hour=3, flood_seconds=0) as h:
        widget = new_widget(h)
        visitor = fresh_number()
        codes = [place(h, widget.id, visitor, client=f"198.51.100.{i}").status_code
                 for i in range(2)]
        assert codes == [201, 429]
        limited = place(h, widget.id, visitor, client="198.51.100.9")
        assert limited.json["error"] == "try_later"
        assert 0 < limited.json["retry_after"] <= 3600
        assert limited.headers["retry-after"] == str(limited.json["retry_after"])

        # One address: 3 an hour, whatever the numbers; an IPv6 host counts by its /64.
        codes = [place(h, widget.id, client=f"2001:db8:1:2::{i:x}").status_code
                 for i in range(1, 5)]
        assert codes == [201, 201, 201, 429]

        capped = new_widget(h, max_per_hour=2)
        codes = [place(h, capped.id, client=f"192.0.2.{i}").status_code for i in range(3)]
        assert codes == [201, 201, 429]
        assert h.call_count() == 1 + 3 + 2


def test_the_accounts_checks_still_apply(h: AppHarness) -> None:
    widget = new_widget(h)
    visitor = fresh_number()
    assert place(h, widget.id, visitor).status_code == 201
    # The seed's flood protection (a number once a minute): the visitor is told to wait.
    flood = place(h, widget.id, visitor, client="203.0.113.8")
    assert (flood.status_code, flood.json["error"]) == (429, "try_later")
    # Do-Not-Call: this number cannot be called.
    blocked = fresh_number()
    h.store.dnc.add([int("1" + blocked)])
    assert place(h, widget.id, blocked).json == {"error": "not_supported"}
    # Out of credit, disabled key: unavailable (nothing the visitor can do).
    h.store.accounts.add_credits(widget.account_id, -1000)
    assert place(h, widget.id).json == {"error": "unavailable"}
    h.store.accounts.add_credits(widget.account_id, 50)
    h.store.accounts.set_enabled(widget.account_id, False)
    assert place(h, widget.id).json == {"error": "unavailable"}


@pytest.mark.parametrize("body, content_type, expected", [
    (b"{not json", "application/json", (400, "invalid_number")),
    (b"[]", "application/json", (400, "invalid_number")),
    (b'{"country_code": 1, "phone_number": 2125550123}', "application/json",
     (400, "invalid_number")),
    (b'{"country_code": "1", "phone_number": "12"}', "application/json",
     (400, "invalid_number")),
    (b'{"country_code": "1", "phone_number": "2125550123\\u0000"}', "application/json",
     (400, "invalid_number")),
    (b'{"country_code": "33", "phone_number": "612345678"}', "application/json",
     (422, "not_supported")),
    (b'{"country_code": "1", "phone_number": "2125550123"}', "application/json",
     (400, "challenge_failed")),
    (b"x" * 5000, "application/json", (400, "invalid_number")),
    (b'{"country_code": "1", "phone_number": "' + b"2" * 40 + b'"}', "application/json",
     (400, "invalid_number")),
    (b"country_code=1", "application/x-www-form-urlencoded", (415, "unsupported_media_type")),
    (b"country_code=1", "text/plain", (415, "unsupported_media_type")),
])
def test_bad_input_gets_a_clear_error(h: AppHarness, body: bytes, content_type: str,
                                      expected: tuple[int, str]) -> None:
    widget = new_widget(h)
    answer = h.request("POST", f"/api/widget/{widget.id}/calls",
                       headers={**headers(), "Content-Type": content_type}, body=body)
    assert (answer.status_code, answer.json.get("error")) == expected
    assert h.call_count() == 0


def test_widget_script_is_served(h: AppHarness) -> None:
    answer = h.request("GET", "/widget.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["cross-origin-resource-policy"] == "cross-origin"
    assert b"data-c2c-widget" in answer.content

"""Schemathesis holds the live service to its OpenAPI document (c2c/api/openapi.json).

A real c2c (gunicorn with a gevent worker, the simulator over TCP, the store on SQLite and on
MariaDB) is fuzzed through every documented operation: no answer may be a 5xx, and every answer's
status, media type, headers and body must be ones the document allows. Accounts and calls are
seeded so the authenticated paths are walked, not only their 401s: requests carry a working key
most of the time (as a Bearer header or, for placing calls, the parameter), call ids are often
seeded ones (the account's own in every state, another account's), list requests get real
cursors, and placing calls is tried in both its text and JSON modes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from c2c.api.openapi import load_document
from c2c.api.openapi_markdown import METHODS
from tests.support.app_harness import fresh_number
from tests.support.call_rows import seed_call, seed_callback
from tests.support.deployment import Deployment
from tests.support.mysql import temporary_database
from tests.support.widget_client import solve

# Examples per operation: enough to walk every branch of the seeded data, small enough that both
# stores together take well under a minute on the 2-core CI machine.
MAX_EXAMPLES = 50
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]


@dataclasses.dataclass(frozen=True)
class Seeded:
    api_key: str
    other_key: str
    disabled_key: str
    own_calls: tuple[str, ...]
    others_call: str
    cursor: str
    widget_id: str


def seed(d: Deployment) -> Seeded:
    store, account = d.store, d.account_id
    own = []
    for state, confirm in [("queued", None), ("caller_ringing", "required"),
                           ("caller_answered", None), ("caller_answered", "required"),
                           ("bridged", "confirmed")]:
        own.append(seed_call(store, account, state=state, confirm=confirm,
                             callback_url="https://example.com/cb"))
    own.append(seed_call(store, account, answered=True, minutes=3, reason=None,
                         estimated=True, caller_hangup_cause="NORMAL_CLEARING",
                         callee_hangup_cause="NORMAL_CLEARING", callee_sip_status="200"))
    for status, attempts in [("pending", ((1.0, None),)), ("failed", ((1.0, 503), (2.0, 500))),
                             ("delivered", ((1.0, 200),))]:
        call_id = seed_call(store, account, reason=5, callee_fate="USER_BUSY",
                            callback_url="https://example.com/cb")
        seed_callback(store, call_id, account, status=status, attempts=attempts,
                      delivered_at=2.0 if status == "delivered" else None)
        own.append(call_id)
    other = store.accounts.create("other", 10)
    disabled = store.accounts.create("disabled", 10)
    store.accounts.set_enabled(disabled.id, False)
    first = requests.get(f"{d.gunicorn.base_url}/api/calls", params={"limit": "2"},
                         headers={"Authorization": f"Bearer {d.api_key}"}, timeout=10).json()
    store.own_numbers.add(account, WIDGET_CALLEE)
    widget = store.widgets.create(account, callee=WIDGET_CALLEE, origins=(WIDGET_ORIGIN,),
                                  countries=("1", "44"))
    assert widget is not None
    return Seeded(d.api_key, other.api_key, disabled.api_key, tuple(own),
                  seed_call(store, other.id), first["next_cursor"], widget.id)


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Any, Seeded]]:
    """One live service per store for every operation (gunicorn starts in a few seconds; the
    operations' runs leave nothing that matters to each other)."""
    workdir = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{workdir / 'c2c.sqlite3'}"
        else:
            url = stack.enter_context(
                temporary_database(request.getfixturevalue("mysql_server"), "c2c_fuzz_"))
        # A cheap challenge, so that the fuzz can solve one now and then.
        deployment = stack.enter_context(Deployment(
            workdir, url, workers=1, env={"C2C_WIDGET_CHALLENGE_MAX": "200"}))
        assert deployment.gunicorn is not None
        schema = schemathesis.openapi.from_url(f"{deployment.gunicorn.base_url}/openapi.json")
        schema.config.checks.update(included_check_names=CHECKS)
        yield schema, seed(deployment), deployment.gunicorn.base_url


# Numbers that pass validation, each leading to another code: accepted (0), a denied NANP area
# (7, 9), a country not covered (8, 10), the UK.
NUMBERS = [("1", "2125550123"), ("1", "9005550123"), ("33", "142685300"), ("44", "2071234567")]
WIDGET_CALLEE = 12125550199
WIDGET_ORIGIN = "https://shop.example"
WIDGET_OPERATIONS = ("describeWidget", "describeWidgetPreflight", "widgetChallenge",
                     "widgetChallengePreflight", "placeWidgetCall", "placeWidgetCallPreflight")


def _credentials(case: Any, draw: Any, seeded: Seeded) -> dict[str, str]:
    """Which key the request sends, and how (the generated api_key parameter is replaced)."""
    query = {k: v for k, v in (case.query or {}).items() if k != "api_key"}
    how = draw(st.sampled_from(["bearer"] * 5 + ["query"] * 2 + ["both", "none"]))
    key = draw(st.sampled_from([seeded.api_key] * 6 + [seeded.other_key, seeded.disabled_key,
                                                       "not-a-key"]))
    case.query = {**query, "api_key": key} if how in ("query", "both") else query
    return {"Authorization": f"Bearer {key}"} if how in ("bearer", "both") else {}


def _steer_widget(case: Any, operation_id: str, draw: Any, seeded: Seeded,
                  base_url: str) -> dict[str, str]:
    """The seeded widget, from its own origin, some of the time; now and then a call with a
    solved challenge and a number that passes."""
    headers: dict[str, str] = {}
    mostly = st.sampled_from([True, True, True, False])
    if draw(mostly):
        case.path_parameters["widget_id"] = seeded.widget_id
    if draw(mostly):
        headers["Origin"] = WIDGET_ORIGIN
    steered = case.path_parameters["widget_id"] == seeded.widget_id and headers
    if operation_id == "placeWidgetCall" and steered and draw(mostly):
        challenge = requests.get(f"{base_url}/api/widget/{seeded.widget_id}/challenge",
                                 headers=headers, timeout=10).json()
        country, number = draw(st.sampled_from(NUMBERS))
        case.body = {"country_code": country, "phone_number": draw(
            st.sampled_from([number, fresh_number()])), "solution": solve(challenge)}
        case.media_type = "application/json"
    return headers


def _steer(case: Any, operation_id: str, draw: Any, seeded: Seeded,
           base_url: str) -> dict[str, str]:
    """Point a generated case at the seeded data some of the time; the headers to send."""
    # Framing headers belong to the HTTP server: gunicorn answers a garbled Content-Length with
    # its own text/html 400 before any application runs, so they are not ours to fuzz.
    if case.headers:
        case.headers = {name: value for name, value in case.headers.items()
                        if name.lower() not in ("content-length", "transfer-encoding", "host")}
    headers: dict[str, str] = {}
    if operation_id in WIDGET_OPERATIONS:
        headers.update(_steer_widget(case, operation_id, draw, seeded, base_url))
    if operation_id in ("getCall", "listCalls", "hangupCall"):
        headers.update(_credentials(case, draw, seeded))
    if operation_id in ("getCall", "hangupCall") and not draw(st.booleans()):
        case.path_parameters["call_id"] = draw(st.sampled_from(
            [*seeded.own_calls, seeded.others_call]))
    if operation_id == "listCalls" and draw(st.booleans()):
        case.query = {**(case.query or {}), "cursor": seeded.cursor}
    if operation_id in ("placeCall", "placeCallForm"):
        if draw(st.booleans()):
            headers["Accept"] = "application/json"
        replaced: dict[str, str] = {}
        if not draw(st.booleans()):
            replaced["api_key"] = seeded.api_key
        if not draw(st.booleans()):
            for leg in ("caller", "callee"):
                country, number = draw(st.sampled_from(NUMBERS))
                replaced[f"{leg}_country_code"], replaced[f"{leg}_phone_number"] = country, number
        if operation_id == "placeCall":
            case.query = {**(case.query or {}), **replaced}
        elif isinstance(case.body, dict):
            case.body = {**case.body, **replaced}
    return headers


def _outcome(operation_id: str, response: Any) -> str:
    """What an answer says, coarsely: its status, and for placing a call its code."""
    if operation_id.startswith("placeCall"):
        json_mode = response.headers.get("content-type", [""])[0] == "application/json"
        code = response.json()["code"] if json_mode else response.text
        return f"{response.status_code}:{code}"
    return str(response.status_code)


def _runs() -> list[Any]:
    """(operationId, method, path, mode) for every documented operation: positive data, and
    negative data (what the document forbids) where there are parameters or a body to spoil."""
    runs = []
    for path, item in load_document()["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            spoilable = item.get("parameters") or operation.get("parameters") or \
                operation.get("requestBody")
            for mode in GenerationMode:
                if mode.is_positive or spoilable:
                    runs.append(pytest.param(operation["operationId"], method.upper(), path, mode,
                                             id=f"{operation['operationId']}-{mode.value}"))
    return runs


@pytest.mark.parametrize(("operation_id", "method", "path", "mode"), _runs())
def test_the_live_service_keeps_to_its_document(live: tuple[Any, Seeded, str], operation_id: str,
                                                method: str, path: str,
                                                mode: GenerationMode) -> None:
    schema, seeded, base_url = live
    operation = schema[path][method]

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def fuzz(case: Any, data: Any) -> None:
        headers = _steer(case, operation_id, data.draw, seeded, base_url)
        response = case.call_and_validate(headers=headers, timeout=10)
        seen[_outcome(operation_id, response)] += 1

    seen: collections.Counter[str] = collections.Counter()
    fuzz()
    # The seeded data was reached, not only the doors: an authenticated answer, an accepted call.
    wanted = {"getCall": "200", "listCalls": "200", "hangupCall": "202", "placeCall": "200:0",
              "placeCallForm": "200:0", "describeWidget": "200", "widgetChallenge": "200",
              "placeWidgetCall": "201", "placeWidgetCallPreflight": "204"}.get(operation_id)
    if mode.is_positive and wanted:
        assert seen[wanted], dict(seen)

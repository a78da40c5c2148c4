"""The OpenAPI document (c2c/api/openapi.json) is valid OpenAPI 3.1, served as checked in, names
every public route the app has (and nothing it lacks), agrees with the code on its enums and
fields, and docs/api.md is its rendering. (tests/test_fuzz_api.py holds the live service to it.)
"""

from __future__ import annotations

import configparser
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from c2c.api.call_json import call_json
from c2c.api.clicktocall import JSON_STATUS
from c2c.api.openapi import load_document, load_document_bytes
from c2c.api.openapi_markdown import METHODS, render
from c2c.api.problems import PROBLEM_TYPES
from c2c.domain.call_status import PublicState
from c2c.store import CallbackStatus
from tests.support.app_harness import AppHarness

REPO = Path(__file__).resolve().parent.parent
# Served, but not to customers: nginx keeps them to loopback or the scrapers it lists.
PRIVATE = ("/internal/", "/metrics")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return load_document()


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    errors = [error.message for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_docs_api_md_is_the_rendered_document(document: dict[str, Any]) -> None:
    written = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    assert written == render(document), (
        "docs/api.md differs from c2c/api/openapi.json: run "
        "`python -m c2c.api.openapi_markdown > docs/api.md`")


def test_the_document_ships_as_package_data() -> None:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    assert "openapi.json" in setup["options.package_data"]["c2c.api"].split()


def _routes(node_lists: list[Any]) -> Iterator[tuple[str, Any]]:
    for node in node_lists:
        if node.resource is not None:
            yield node.uri_template, node.resource
        yield from _routes(node.children)


def _implemented(resource: Any) -> set[str]:
    return {m for m in METHODS if callable(getattr(resource, f"on_{m}", None))}


def test_every_public_route_is_documented_and_nothing_else(tmp_path: Path) -> None:
    document = load_document()
    documented = {
        (path.rstrip("/") or "/", method)
        for path, item in document["paths"].items() for method in item if method in METHODS
    }
    with AppHarness(f"sqlite:///{tmp_path / 'c2c.sqlite3'}", start_switch=False) as h:
        assert h.client is not None
        app = h.client.app
        served = {
            (template, method)
            for template, resource in _routes(app._router._roots)
            if not template.startswith(PRIVATE)
            for method in _implemented(resource)
        }
        assert served == documented
        result = h.request("GET", "/openapi.json")
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/json"
    assert result.content == load_document_bytes()


def test_the_document_agrees_with_the_code(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["CallState"]["enum"] == [s.value for s in PublicState]
    assert set(schemas["CallbackDelivery"]["properties"]["status"]["enum"]) == {
        "waiting", *(s.value for s in CallbackStatus)}
    # Every field the code writes is documented and required (nullable where it may be null).
    row = {name: None for name in (
        "id", "state", "confirm", "caller_country_code", "caller_number", "callee_country_code",
        "callee_number", "created_at", "caller_answered_at", "bridged_at", "ended_at", "answered",
        "minutes", "reason", "estimated", "corrected_at", "max_minutes", "rate", "caller_rate",
        "charged", "switch",
        "caller_hangup_cause", "caller_sip_status", "callee_hangup_cause", "callee_sip_status",
        "callee_fate", "originate_error", "has_callback", "callback_status",
        "callback_attempts", "callback_delivered_at", "callback_last_http_status",
        "callback_last_attempt_at")}
    row.update(id="x", state="queued", caller_country_code="1", caller_number="5552104427",
               callee_country_code="1", callee_number="5552104428", created_at=0.0,
               max_minutes=1, switch="s", has_callback=True)
    shown = call_json(row)
    assert set(shown) == set(schemas["Call"]["properties"]) == set(schemas["Call"]["required"])
    assert set(shown["callback"]) == set(schemas["CallbackDelivery"]["required"])
    assert set(shown["caller"]) == set(schemas["Leg"]["required"])
    # Placing a call: its JSON mode statuses, as clicktocall.py answers them.
    for operation in document["paths"]["/api/clicktocall/"].values():
        json_statuses = {status for status, response in operation["responses"].items()
                         if "application/json" in response.get("content", {})}
        assert json_statuses == {str(int(status.split()[0])) for status in JSON_STATUS.values()}
    # Problems: every type the code raises is named where clients read about them.
    problem_text = schemas["Problem"]["properties"]["type"]["description"]
    for kind in PROBLEM_TYPES:
        assert kind.uri in problem_text and kind.uri in document["info"]["description"]


def test_secured_operations_answer_401_403_and_503_as_problems(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS or not operation.get("security"):
                continue
            responses = operation["responses"]
            for status in ("400", "401", "403", "503"):
                assert status in responses, (path, method, status)

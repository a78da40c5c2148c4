"""HTTP errors as RFC 9457 problem details (``application/problem+json``), for every route.

A problem is ``{"type", "title", "status", "detail"}``, plus the extension members its type
defines (RFC 9457 section 3.2: ``call-ended`` carries the call). The types c2c defines are
listed in PROBLEM_TYPES (and in the OpenAPI document's Problem schema); an error that means no more than
its HTTP status (404 for an unknown path, 405, 413...) has the type ``about:blank`` and the
status's reason phrase as title, as RFC 9457 section 4.2.1 asks.

`GET|POST /api/clicktocall/` never gets here: it answers its own codes (DESIGN.md section 1).
The store being unreachable is a 503 with Retry-After wherever a resource lets it escape.
"""

from __future__ import annotations

import http
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import falcon

from c2c.errors import StoreError

log = logging.getLogger(__name__)

MEDIA_PROBLEM = "application/problem+json"
# How long a client should wait before retrying when the store is unreachable.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class ProblemType:
    uri: str
    status: int
    title: str


# URNs: identifiers, not locations (no host of ours is canonical: every operator runs their own).
UNAUTHORIZED = ProblemType("urn:c2c:problem:unauthorized", 401, "Missing or unknown api_key")
KEY_DISABLED = ProblemType("urn:c2c:problem:key-disabled", 403, "api_key is disabled")
INVALID_PARAMETER = ProblemType("urn:c2c:problem:invalid-parameter", 400, "Invalid parameter")
UNAVAILABLE = ProblemType("urn:c2c:problem:unavailable", 503, "Temporarily unavailable")
CALL_ENDED = ProblemType("urn:c2c:problem:call-ended", 409, "The call has already ended")

PROBLEM_TYPES = (UNAUTHORIZED, KEY_DISABLED, INVALID_PARAMETER, UNAVAILABLE, CALL_ENDED)


class Problem(falcon.HTTPError):
    """An HTTP error of one of our problem types (a falcon HTTPError, so falcon renders it)."""

    def __init__(self, kind: ProblemType, detail: str,
                 headers: Mapping[str, str] | None = None,
                 extensions: Mapping[str, Any] | None = None) -> None:
        super().__init__(kind.status, title=kind.title, description=detail,
                         headers=dict(headers or {}))
        self.kind = kind
        # Members of the type's own besides the four (never one of them).
        self.extensions = {k: v for k, v in (extensions or {}).items() if k not in _MEMBERS}


_MEMBERS = frozenset({"type", "title", "status", "detail"})


def not_found(detail: str) -> falcon.HTTPError:
    return falcon.HTTPNotFound(description=detail)


def unavailable() -> Problem:
    return Problem(UNAVAILABLE, "the store is unreachable; retry later",
                   {"Retry-After": str(RETRY_AFTER_SECONDS)})


def problem_body(exc: falcon.HTTPError) -> dict[str, Any]:
    status = int(exc.status_code)
    extensions: Mapping[str, Any] = {}
    if isinstance(exc, Problem):
        kind_uri, title, extensions = exc.kind.uri, exc.kind.title, exc.extensions
    else:
        kind_uri, title = "about:blank", _phrase(status)
    return {"type": kind_uri, "title": title, "status": status,
            "detail": exc.description or title, **extensions}


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def serialize_problem(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """falcon's error serializer: every HTTPError becomes a problem document, whatever the
    client's Accept says (RFC 9457 has one media type)."""
    resp.content_type = MEDIA_PROBLEM
    resp.text = json.dumps(problem_body(exc))
    resp.cache_control = ["no-store"]


def _store_unreachable(req: falcon.Request, resp: falcon.Response, exc: Exception,
                       params: dict[str, Any]) -> None:
    log.warning("%s %s: store unreachable: %s", req.method, req.path, exc)
    raise unavailable() from exc


def install(app: falcon.App) -> None:
    """Render every HTTP error of ``app`` as a problem; a StoreError that escapes a resource
    becomes 503."""
    app.set_error_serializer(serialize_problem)
    app.add_error_handler(StoreError, _store_unreachable)

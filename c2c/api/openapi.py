"""`GET /openapi.json`: the public API's OpenAPI 3.1 document, served as checked in.

c2c/api/openapi.json is the source of truth (package data): tests validate it, fuzz the live
app against it (tests/test_fuzz_api.py) and hold docs/api.md to it (c2c.api.openapi_markdown).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import falcon

DOCUMENT = "openapi.json"


def load_document_bytes() -> bytes:
    return resources.files(__package__).joinpath(DOCUMENT).read_bytes()


def load_document() -> dict[str, Any]:
    document = json.loads(load_document_bytes())
    if not isinstance(document, dict):
        raise ValueError(f"{DOCUMENT} is not a JSON object")
    return document


class OpenApiResource:
    def __init__(self) -> None:
        # Read once when the app is built (never at import); a broken file stops start-up.
        load_document()
        self._body = load_document_bytes()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.cache_control = ["no-cache"]
        resp.data = self._body

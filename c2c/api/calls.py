"""`GET /api/calls/{call_id}` and `GET /api/calls`: the customer reads its own calls.

Authenticated by the account's api_key (c2c.api.auth); a call of another account, or no call,
is the same 404, so an id never tells whether it exists elsewhere. JSON answers (the Call schema
of c2c/api/openapi.json, built by c2c.api.call_json); errors are problems (c2c.api.problems).
"""

from __future__ import annotations

import re
from typing import Any

import falcon

from c2c.api.auth import Authenticator
from c2c.api.call_json import call_json
from c2c.api.call_query import encode_cursor, parse_call_query
from c2c.api.params import request_params
from c2c.api.problems import not_found
from c2c.store.call_views import CallViews, Position

# Call ids are UUIDs; anything else names no call and is never sent to the store.
_CALL_ID = re.compile(r"[0-9A-Za-z-]{1,36}")


def call_id_of(raw: str) -> str | None:
    """The call id a path names, as the store keeps ids (lower case: MySQL would match any
    case, SQLite only this); None when it cannot name a call (never sent to the store)."""
    return raw.lower() if _CALL_ID.fullmatch(raw) else None


def write_json(resp: falcon.Response, payload: dict[str, Any]) -> None:
    resp.content_type = falcon.MEDIA_JSON
    resp.cache_control = ["no-store"]
    resp.media = payload


class CallResource:
    def __init__(self, views: CallViews, auth: Authenticator) -> None:
        self._views = views
        self._auth = auth

    def on_get(self, req: falcon.Request, resp: falcon.Response, call_id: str) -> None:
        account = self._auth.account(req.get_header("Authorization"), request_params(req))
        wanted = call_id_of(call_id)
        row = self._views.get(account.id, wanted) if wanted is not None else None
        if row is None:
            raise not_found("this account has no call with this id")
        write_json(resp, call_json(row))


class CallsResource:
    def __init__(self, views: CallViews, auth: Authenticator) -> None:
        self._views = views
        self._auth = auth

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = request_params(req)
        account = self._auth.account(req.get_header("Authorization"), params)
        query = parse_call_query(params)
        rows, more = self._views.page(account.id, limit=query.limit, state=query.state,
                                      since=query.since, after=query.after)
        next_cursor = None
        if more:
            last = rows[-1]
            next_cursor = encode_cursor(Position(float(last["created_at"]), last["id"]))
        write_json(resp, {"calls": [call_json(row) for row in rows], "next_cursor": next_cursor})

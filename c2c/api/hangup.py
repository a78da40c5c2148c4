"""`POST /api/calls/{call_id}/hangup`: the customer ends one of its calls, in whatever state.

Authenticated as the read API is (c2c.api.auth); a call of another account, or none, is 404.
A call not ended: 202 with the call as it is now (its state may not show the hangup yet: the
outcome settles as usual, c2c.calls.hangup). Idempotent: asking again while the call is ending
answers the same and sends nothing more to the switch. A call already ended: 409, a
``urn:c2c:problem:call-ended`` problem carrying the call's final representation as ``call``.
The body, if any, is ignored.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import falcon

from c2c.api.auth import Authenticator
from c2c.api.call_json import call_json
from c2c.api.calls import call_id_of, write_json
from c2c.api.problems import CALL_ENDED, Problem, not_found
from c2c.calls.hangup import Answer, Hangups
from c2c.store.call_views import CallViews

_NOT_FOUND = "this account has no call with this id"


def _query(req: falcon.Request) -> list[tuple[str, str]]:
    """The query string's pairs, repeats kept. A body is never read: the api_key comes as a
    Bearer token or a query parameter, as for the other JSON endpoints."""
    return parse_qsl(req.query_string or "", keep_blank_values=True, encoding="utf-8",
                     errors="surrogateescape")


class HangupResource:
    def __init__(self, views: CallViews, hangups: Hangups, auth: Authenticator) -> None:
        self._views = views
        self._hangups = hangups
        self._auth = auth

    def on_post(self, req: falcon.Request, resp: falcon.Response, call_id: str) -> None:
        account = self._auth.account(req.get_header("Authorization"), _query(req))
        wanted = call_id_of(call_id)
        if wanted is None:
            raise not_found(_NOT_FOUND)
        answer = self._hangups.request(account.id, wanted)
        row = self._views.get(account.id, wanted)
        if answer is Answer.NO_CALL or row is None:
            raise not_found(_NOT_FOUND)
        shown = call_json(row)
        if answer is Answer.ENDED:
            raise Problem(CALL_ENDED, "the call has already ended; `call` is its final state",
                          extensions={"call": shown})
        resp.status = falcon.HTTP_202
        write_json(resp, shown)

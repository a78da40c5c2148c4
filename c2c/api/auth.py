"""Who is asking, for the customer's JSON API (`/api/calls...`): the account's api_key, sent as
``Authorization: Bearer KEY`` or as the ``api_key`` query parameter (as the click-to-call
endpoint takes it), never both (RFC 6750 section 2: one method per request).

Missing or unknown: 401 with a Bearer challenge; disabled: 403; sent twice or both ways: 400.
The key is looked up through an AccountCache, as click-to-call requests do.
"""

from __future__ import annotations

from collections.abc import Sequence

from c2c.api.problems import INVALID_PARAMETER, KEY_DISABLED, UNAUTHORIZED, Problem
from c2c.calls.account_cache import AccountCache
from c2c.calls.request import API_KEY, api_key_from
from c2c.store import Account

REALM = "c2c"
HOW = "send the account's api_key as 'Authorization: Bearer KEY' or as the api_key parameter"


def _challenge(error: str | None = None) -> dict[str, str]:
    value = f'Bearer realm="{REALM}"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


def _unauthorized(detail: str, error: str | None = None) -> Problem:
    return Problem(UNAUTHORIZED, detail, _challenge(error))


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (the scheme in any case), or
    None when the header is of another scheme or has no single token."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def api_key_of(authorization: str | None, params: Sequence[tuple[str, str]]) -> str:
    """The api_key the request sends (pure); raises the Problem that answers it otherwise. Its
    value is then only plausible (printable ASCII, not too long), not known to be anyone's."""
    in_query = [value for name, value in params if name == API_KEY]
    if authorization is not None and in_query:
        raise Problem(INVALID_PARAMETER, "the api_key was sent both in the Authorization header "
                                         "and as a parameter: send it once")
    if len(in_query) > 1:
        raise Problem(INVALID_PARAMETER, "the api_key parameter was given more than once")
    if authorization is not None:
        token = bearer_token(authorization)
        if token is None:
            raise _unauthorized("the Authorization header is not 'Bearer KEY'; " + HOW,
                                "invalid_request")
        key = api_key_from([(API_KEY, token)])
    elif in_query:
        key = api_key_from(params)
    else:
        raise _unauthorized("no api_key: " + HOW)
    if key is None:
        raise _unauthorized("unknown api_key", "invalid_token")
    return key


class Authenticator:
    def __init__(self, accounts: AccountCache) -> None:
        self._accounts = accounts

    def account(self, authorization: str | None, params: Sequence[tuple[str, str]]) -> Account:
        """The enabled account the request authenticates as; raises a Problem otherwise (and
        StoreError when the store cannot say)."""
        account = self._accounts.get(api_key_of(authorization, params))
        if account is None:
            raise _unauthorized("unknown api_key", "invalid_token")
        if not account.enabled:
            raise Problem(KEY_DISABLED, "this api_key is disabled")
        return account

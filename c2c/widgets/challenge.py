"""The proof of work a visitor's browser does before each call: an ALTCHA v1 challenge.

The server issues a salt and the SHA-256 of salt + a secret random number below ``max_number``,
signed with the installation's key (HMAC); the browser tries numbers until the hash matches (on
average max_number / 2 hashes: a fraction of a second in a browser) and sends the number back.
Verifying costs the server one hash and one HMAC and no state: the salt carries the widget's id
and the expiry, both covered by the signature. A solution is good once: the caller of
``verify`` spends it in the store (c2c.store.widgets.spend_challenge).

Made with the ``altcha`` library (its protocol and server side, maintained for exactly this);
the browser side is in c2c/api/static/widget.js.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

import altcha

ALGORITHM: Final = "SHA-256"
MAX_SOLUTION_LENGTH = 2000


@dataclass(frozen=True)
class Solved:
    """A valid solution: what to spend (the salt's hash) and until when it could be used."""

    salt_sha256: str
    expires_at: float


class Challenges:
    def __init__(self, key: Callable[[], bytes], max_number: int, seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._max_number = max_number
        self._seconds = seconds
        self._clock = clock

    def issue(self, widget_id: str) -> dict[str, Any]:
        """A fresh challenge for a page of the widget, as the browser gets it (JSON)."""
        expires = datetime.datetime.fromtimestamp(self._clock() + self._seconds, datetime.UTC)
        challenge = altcha.create_challenge_v1(
            altcha.ChallengeOptionsV1(hmac_key=self._key(), max_number=self._max_number,
                                      expires=expires, params={"widget": widget_id},
                                      algorithm=ALGORITHM))
        return {"algorithm": challenge.algorithm, "challenge": challenge.challenge,
                "maxnumber": challenge.max_number, "salt": challenge.salt,
                "signature": challenge.signature}

    def verify(self, widget_id: str, solution: object) -> Solved | None:
        """The solution if it is one of ours, for this widget, not expired; else None."""
        payload = _payload(solution)
        if payload is None or payload.get("algorithm") != ALGORITHM:
            return None
        salt = payload.get("salt")
        if not isinstance(salt, str) or not isinstance(payload.get("number"), int):
            return None
        try:
            ok, _ = altcha.verify_solution_v1(cast(Any, payload), self._key(),
                                              check_expires=True)
        except (TypeError, ValueError, AttributeError, KeyError):
            return None
        params = altcha.extract_params_v1(payload)  # type: ignore[arg-type]
        if not ok or params.get("widget") != [widget_id]:
            return None
        expires = params.get("expires", [""])[0]
        if not expires.isdigit() or int(expires) < self._clock():
            return None
        return Solved(hashlib.sha256(salt.encode()).hexdigest(), float(expires))


def _payload(solution: object) -> dict[str, Any] | None:
    """The decoded solution (base64 of a JSON object), or None when it is not one."""
    if not isinstance(solution, str) or not solution or len(solution) > MAX_SOLUTION_LENGTH:
        return None
    try:
        decoded = json.loads(base64.b64decode(solution, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None

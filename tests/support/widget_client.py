"""A visitor's side of the widget API, as widget.js does it, for tests: fetch a challenge,
solve it (ALTCHA: the number whose SHA-256 with the salt is the challenge), send the call."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any


def solve(challenge: dict[str, Any]) -> str:
    """The solution widget.js would send for ``challenge`` (base64 of a JSON object)."""
    salt, target = challenge["salt"], challenge["challenge"]
    for number in range(int(challenge["maxnumber"]) + 1):
        if hashlib.sha256(f"{salt}{number}".encode()).hexdigest() == target:
            return solution(challenge, number)
    raise AssertionError("the challenge has no solution")


def solution(challenge: dict[str, Any], number: int, **changes: Any) -> str:
    payload = {"algorithm": challenge["algorithm"], "challenge": challenge["challenge"],
               "number": number, "salt": challenge["salt"],
               "signature": challenge["signature"], **changes}
    return base64.b64encode(json.dumps(payload).encode()).decode()


def call_body(country_code: str, phone_number: str, solved: str, **extra: Any) -> bytes:
    return json.dumps({"country_code": country_code, "phone_number": phone_number,
                       "solution": solved, **extra}).encode()

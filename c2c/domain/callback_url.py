"""The callback's URL: the customer's callback_url with the call's result appended (pure).

The URL's own query string is kept as sent; our parameters follow it, percent-encoded (a space is
%20, never '+'). A fragment is dropped: it is never part of an HTTP request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit


def callback_params(call: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The parameters DESIGN.md section 1 lists, in that order, from a settled call row."""
    answered = bool(call["answered"])
    reason = call.get("reason")
    return [
        ("caller_phone_number", str(call["caller_number"])),
        ("callee_phone_number", str(call["callee_number"])),
        ("minutes", str(int(call["minutes"] or 0))),
        ("secret", call.get("secret") or ""),
        ("answered", "1" if answered else "0"),
        ("reason", "" if answered or reason is None else str(int(reason))),
    ]


def build_callback_url(call: Mapping[str, Any]) -> str:
    """The full URL to GET for a settled call row (needs callback_url and the result fields)."""
    parts = urlsplit(call["callback_url"])
    ours = "&".join(
        f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in callback_params(call)
    )
    query = f"{parts.query}&{ours}" if parts.query else ours
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, ""))

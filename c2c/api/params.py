"""Reading a request's parameters as an ordered list of pairs (repeats kept, so they can be refused)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import falcon

# A form body larger than this cannot be a valid click-to-call request (URL 2048 + small fields).
MAX_FORM_BYTES = 16 * 1024


class BodyTooLarge(Exception):
    """The form body exceeds MAX_FORM_BYTES."""


def _pairs(raw: str) -> list[tuple[str, str]]:
    # surrogateescape keeps undecodable bytes visible as non-ASCII, which validation then refuses.
    return parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="surrogateescape")


def request_params(req: falcon.Request) -> list[tuple[str, str]]:
    """Query-string pairs, then (for a form POST) body pairs, in order."""
    pairs = _pairs(req.query_string or "")
    if req.method == "POST" and (req.content_type or "").lower().startswith(
        "application/x-www-form-urlencoded"
    ):
        length = req.content_length or 0
        if length > MAX_FORM_BYTES:
            raise BodyTooLarge()
        body = req.bounded_stream.read(MAX_FORM_BYTES + 1)
        if len(body) > MAX_FORM_BYTES:
            raise BodyTooLarge()
        pairs += _pairs(body.decode("latin-1"))
    return pairs

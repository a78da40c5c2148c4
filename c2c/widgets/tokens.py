"""The call token a visitor gets (pure): it names one call of one widget, and cannot be forged.

``<widget_id>.<base64url(call uuid (16 bytes) + HMAC-SHA256(key, widget_id, call_id)[:16])>``:
the server keeps nothing per token; the HMAC proves it minted it for that widget and call, so a
token cannot be turned into another call's. How long it works is decided from the call's row
(c2c.widgets.service).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid

MAC_BYTES = 16
MAX_TOKEN_LENGTH = 100


def _mac(key: bytes, widget_id: str, call_id: str) -> bytes:
    message = f"widget-call-token\n{widget_id}\n{call_id}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()[:MAC_BYTES]


def call_token(key: bytes, widget_id: str, call_id: str) -> str:
    raw = uuid.UUID(call_id).bytes + _mac(key, widget_id, call_id)
    return f"{widget_id}.{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"


def read_call_token(key: bytes, token: str) -> tuple[str, str] | None:
    """(widget_id, call_id) of a token this key minted; None for anything else."""
    if not token.isascii() or len(token) > MAX_TOKEN_LENGTH:
        return None
    widget_id, dot, encoded = token.rpartition(".")
    if not dot or not widget_id:
        return None
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16 + MAC_BYTES:
        return None
    call_id = str(uuid.UUID(bytes=raw[:16]))
    if not hmac.compare_digest(raw[16:], _mac(key, widget_id, call_id)):
        return None
    return widget_id, call_id

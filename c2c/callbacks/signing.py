"""Callback signatures (DESIGN.md section 1): ``X-C2C-Signature: v1=<hex>`` (pure).

``<hex>`` is HMAC-SHA256, keyed with the account's webhook secret, of ``<timestamp>.<target>``,
where ``<target>`` is the exact request target sent (path and query); for a progress webhook
(a POST), of ``<timestamp>.<body>``, the JSON body exactly as sent. ``verify`` is the reference
for customers: a constant-time compare and a freshness window against replays.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300

_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def signed_payload(timestamp: int, request_target: str) -> bytes:
    return f"{timestamp}.{request_target}".encode()


def sign(secret: str, timestamp: int, request_target: str) -> str:
    """``v1=<hex>`` for the header ``X-C2C-Signature``."""
    if type(timestamp) is not int or timestamp < 0:
        raise ValueError("timestamp must be a non-negative int (Unix seconds)")
    digest = hmac.new(secret.encode(), signed_payload(timestamp, request_target), hashlib.sha256)
    return f"{SCHEME}={digest.hexdigest()}"


def signature_header(secrets: str | Sequence[str], timestamp: int, request_target: str) -> str:
    """The header's value: ``v1=<hex>`` for the secret, or for each secret of a rotation's grace
    period (new first), comma-separated, so a receiver on either secret accepts it."""
    keys = [secrets] if isinstance(secrets, str) else [key for key in secrets if key]
    return ",".join(sign(key, timestamp, request_target) for key in keys)


def verify(
    secret: str,
    timestamp_header: str | None,
    target: str,
    signature_header: str | None,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True if the signature matches and the timestamp is within ``tolerance`` s of ``now``.

    The signature header may list several comma-separated ``v1=`` values (a secret being
    rotated); any match is enough.
    """
    if not timestamp_header or not signature_header:
        return False
    if not _TIMESTAMP.fullmatch(timestamp_header):
        return False
    timestamp = int(timestamp_header)
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, target).encode()
    matched = False
    for candidate in signature_header.split(","):
        # No early exit: every candidate is compared, each in constant time.
        matched |= hmac.compare_digest(expected, candidate.strip().encode("utf-8", "replace"))
    return matched

"""A call as the customer's API shows it (the OpenAPI document's Call schema), from a row of
c2c.store.call_views (pure).

- Numbers in E.164 with the ``+``; times ISO-8601 UTC with milliseconds (``...T09:00:00.250Z``).
- ``state``: c2c.domain.call_status (how ``dialing_callee`` is told from ``caller_answered``).
- A leg's ``hangup_cause``: its channel's own cause; for a leg whose channel never existed, what
  the switch said instead (the callee's: the caller leg's originate_disposition; the caller's:
  the originate's ``-ERR`` cause). ``sip_status``: the SIP final response code, when known.
- ``answered``, ``minutes``, ``reason``: null until the call ended, then as in the callback.
  ``estimated``: the minutes were worked out from what the store saw, the call's end never
  heard from the switch; ``corrected_at``: when its end arrived later and replaced them.
- ``callback``: null without a callback_url; ``waiting`` until the call ended, then ``pending``
  (being delivered and retried), ``delivered`` or ``failed`` (given up).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from c2c.domain.call_status import public_state
from c2c.domain.credits import DEFAULT_RATE, json_credits


def iso_utc(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(float(seconds), UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def e164(country_code: str, national: str) -> str:
    return f"+{country_code}{national}"


def sip_status(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) != 3:
        return None
    return int(value)


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def callback_json(row: Mapping[str, Any]) -> dict[str, Any] | None:
    if not row["has_callback"]:
        return None
    status = row["callback_status"]
    return {
        "status": status or "waiting",
        "attempts": int(row["callback_attempts"] or 0),
        "last_http_status": _optional_int(row["callback_last_http_status"]),
        "last_attempt_at": iso_utc(row["callback_last_attempt_at"]),
        "delivered_at": iso_utc(row["callback_delivered_at"]),
    }


def call_json(row: Mapping[str, Any]) -> dict[str, Any]:
    ended = row["state"] == "ended"
    return {
        "id": row["id"],
        "state": public_state(row["state"], row["confirm"]).value,
        "caller": {
            "number": e164(row["caller_country_code"], row["caller_number"]),
            "hangup_cause": row["caller_hangup_cause"] or row["originate_error"],
            "sip_status": sip_status(row["caller_sip_status"]),
        },
        "callee": {
            "number": e164(row["callee_country_code"], row["callee_number"]),
            "hangup_cause": row["callee_hangup_cause"] or row["callee_fate"],
            "sip_status": sip_status(row["callee_sip_status"]),
        },
        "created_at": iso_utc(row["created_at"]),
        "caller_answered_at": iso_utc(row["caller_answered_at"]),
        "bridged_at": iso_utc(row["bridged_at"]),
        "ended_at": iso_utc(row["ended_at"]),
        "answered": _optional_bool(row["answered"]) if ended else None,
        "minutes": _optional_int(row["minutes"]) if ended else None,
        "reason": _optional_int(row["reason"]) if ended else None,
        "estimated": bool(row["estimated"]) and row["corrected_at"] is None,
        "corrected_at": iso_utc(row["corrected_at"]),
        "max_minutes": int(row["max_minutes"]),
        "rate": json_credits(row["rate"] if row["rate"] is not None else DEFAULT_RATE),
        "caller_rate": None if row["caller_rate"] is None else json_credits(row["caller_rate"]),
        "cost": json_credits(row["charged"]) if ended and row["charged"] is not None else None,
        "confirm": row["confirm"],
        "switch": row["switch"],
        "callback": callback_json(row),
    }

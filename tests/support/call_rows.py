"""Call rows written straight into the store, in any state and at any time, for tests of the
customer's read API (listing, paging, filtering, what a row shows).

These rows are never on a configured switch and have a deadline far away, so a running app's
reconciliation and sweeps leave them alone.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import insert

from c2c.store import Store, schema

FAR_AWAY = 10 * 365 * 86400.0
SEED_SWITCH = "seed.invalid:8021"


def seed_call(store: Store, account_id: int, *, created_at: float | None = None,
              state: str = "ended", call_id: str | None = None, **columns: Any) -> str:
    """Insert one call row; ``columns`` override any column. Returns its id."""
    now = time.time()
    call_id = call_id or str(uuid.uuid4())
    row: dict[str, Any] = {
        "id": call_id,
        "account_id": account_id,
        "state": state,
        "caller_country_code": "1",
        "caller_number": "5552104427",
        "callee_country_code": "44",
        "callee_number": "2071234567",
        "caller_id": "",
        "callback_url": None,
        "secret": "",
        "max_minutes": 5,
        "switch": SEED_SWITCH,
        "job_uuid": str(uuid.uuid4()),
        "caller_uuid": str(uuid.uuid4()),
        "callee_uuid": str(uuid.uuid4()),
        "created_at": now if created_at is None else created_at,
        "deadline_at": now + FAR_AWAY,
    }
    if state == "ended":
        row.update(answered=False, minutes=0, reason=0, ended_at=row["created_at"] + 30)
    row.update(columns)
    # As the accept and settlement write them at the flat rate, unless the test says otherwise.
    row.setdefault("rate", 1)
    row.setdefault("reserved_credits", row["max_minutes"])
    if row["state"] == "ended":
        row.setdefault("charged", row.get("minutes") or 0)
    with store.engine.begin() as conn:
        conn.execute(insert(schema.calls), [row])
    return call_id


def seed_callback(store: Store, call_id: str, account_id: int, *, status: str = "pending",
                  attempts: tuple[tuple[float, int | None], ...] = (),
                  delivered_at: float | None = None) -> int:
    """A callback row for the call, with its attempts (at, http_status). Returns its id."""
    now = time.time()
    with store.engine.begin() as conn:
        callback_id = conn.execute(insert(schema.callbacks).values(
            call_id=call_id, account_id=account_id, url="http://127.0.0.1:9/cb", status=status,
            attempts=len(attempts), next_attempt_at=now + FAR_AWAY, created_at=now,
            delivered_at=delivered_at)).inserted_primary_key[0]
        for at, http_status in attempts:
            conn.execute(insert(schema.callback_attempts).values(
                callback_id=callback_id, at=at, http_status=http_status,
                error=None if http_status and http_status < 300 else "failed"))
    return int(callback_id)

"""End to end: real gunicorn (gevent workers), the simulator over TCP, a real store, a callback
receiver; every outcome scenario driven through the public HTTP API as a customer would."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

import pytest

from tests.support.deployment import Deployment

pytestmark = pytest.mark.slow

# (name, request overrides, answered, reason, caller cause, callee cause) under the simulator's
# default scenario (c2c/fakeswitch/scenarios.py), time scale 0.05.
SCENARIOS = [
    ("answered", {}, 1, "", "NORMAL_CLEARING", "NORMAL_CLEARING"),
    ("callee busy", {"callee_phone_number": "2125550486"}, 0, "5", "USER_BUSY", "USER_BUSY"),
    ("caller busy", {"caller_phone_number": "2125550486"}, 0, "5", "USER_BUSY", None),
    ("callee congested", {"callee_phone_number": "2125550503"}, 0, "8", None,
     "NORMAL_TEMPORARY_FAILURE"),
    ("callee rejects", {"callee_phone_number": "2125550603"}, 0, "1", None, "CALL_REJECTED"),
    ("callee invalid", {"callee_phone_number": "2125550404"}, 0, "0", None, "UNALLOCATED_NUMBER"),
    ("callee never answers", {"callee_phone_number": "2125550408"}, 0, "3", None,
     "ALLOTTED_TIMEOUT"),
    ("caller never answers", {"caller_phone_number": "2125550408"}, 0, "3", "NO_ANSWER", None),
    ("caller gateway down", {"caller_phone_number": "2125550809"}, 0, "0", None, None),
    ("callee gateway down", {"callee_phone_number": "2125550809"}, 0, "0", None, None),
]


def _verify_signature(secret: str, request) -> bool:
    timestamp = request.header("X-C2C-Timestamp")
    expected = hmac.new(secret.encode(), f"{timestamp}.{request.target}".encode(),
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.header("X-C2C-Signature"), f"v1={expected}")


def test_every_scenario_settles_once_with_its_callback(tmp_path, store_url):
    with Deployment(tmp_path, store_url, workers=2, env={"C2C_RING_TIMEOUT": "30"}) as d:
        placed = {}
        for name, overrides, *_ in SCENARIOS:
            code, call_id = d.place(**overrides)
            assert code == 0, name
            assert call_id
            placed[name] = call_id
        for name, _overrides, answered, reason, caller_cause, callee_cause in SCENARIOS:
            call = d.wait_settled(placed[name])
            assert call["answered"] == bool(answered), name
            assert call["reason"] == (int(reason) if reason else None), name
            if caller_cause:
                assert call["caller_hangup_cause"] == caller_cause, name
            if callee_cause:
                assert call["callee_hangup_cause"] == callee_cause, name
            assert call["minutes"] == (1 if answered else 0), name
        requests = d.wait_callbacks(len(SCENARIOS))
        by_call = {}
        for request in requests:
            by_call.setdefault(request.header("X-C2C-Call-Id"), []).append(request)
        for name, overrides, answered, reason, *_ in SCENARIOS:
            (request,) = by_call[placed[name]]
            params = {"caller_phone_number": "2125550123", "callee_phone_number": "2125550199",
                      **overrides}
            assert request.path == "/cb"
            assert request.query == [
                ("order", "42"),
                ("caller_phone_number", params["caller_phone_number"]),
                ("callee_phone_number", params["callee_phone_number"]),
                ("minutes", "1" if answered else "0"),
                ("secret", "s3cret"),
                ("answered", str(answered)),
                ("reason", reason),
            ], name
            assert urlsplit(request.target).path == "/cb"
            assert _verify_signature(d.webhook_secret, request), name
        account = d.store.accounts.find(d.account_id)
        assert account.reserved == 0
        assert account.credits == d.credits - 1  # only the answered call was billed

"""`GET|POST /api/clicktocall/`: the public contract of DESIGN.md section 1.

The body is the bare code with HTTP 200, whatever happened (PHP clients read a 4xx as success);
`Accept: application/json` gets a JSON object with a fitting HTTP status instead.

An idempotent request (``Idempotency-Key`` header or ``request_id``, c2c.calls.idempotent) whose
key was used before gets the first request's answer, written the same way (byte for byte in the
same mode, the same X-C2C-Call-Id), plus ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import json
import logging
import time

import falcon

from c2c.api.metrics import Metrics
from c2c.api.params import BodyTooLarge, request_params
from c2c.calls.placement import CallPlacer, Placement
from c2c.domain.networks import client_address

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

MESSAGES = {
    0: "accepted: the call will be attempted shortly",
    1: "invalid api_key",
    2: "no call credits",
    3: "a phone number is on the Do-Not-Call list",
    4: "badly formed request",
    5: "api_key is disabled",
    6: "flood protection: this phone number was used recently; retry later",
    7: "caller_phone_number area code not supported",
    8: "caller_country_code not supported",
    9: "callee_phone_number area code not supported",
    10: "callee_country_code not supported",
    11: "temporarily unable to place calls; retry later",
}

JSON_STATUS = {
    0: falcon.HTTP_200,
    1: falcon.HTTP_401,
    2: falcon.HTTP_402,
    3: falcon.HTTP_403,
    4: falcon.HTTP_400,
    5: falcon.HTTP_403,
    6: falcon.HTTP_429,
    7: falcon.HTTP_422,
    8: falcon.HTTP_422,
    9: falcon.HTTP_422,
    10: falcon.HTTP_422,
    11: falcon.HTTP_503,
}


def wants_json(req: falcon.Request) -> bool:
    # Only an explicit application/json counts: browsers send */* and must get the plain code.
    return "application/json" in (req.get_header("Accept") or "").lower()


class ClickToCallResource:
    def __init__(self, placer: CallPlacer, metrics: Metrics,
                 trusted_proxies: tuple[str, ...] = ()) -> None:
        self._placer = placer
        self._trusted_proxies = trusted_proxies
        self._metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp)

    def _handle(self, req: falcon.Request, resp: falcon.Response) -> None:
        started = time.perf_counter()
        try:
            params = request_params(req)
        except BodyTooLarge:
            placement = Placement(4, "form body too large")
        else:
            # The TCP peer as REMOTE_ADDR has it (req.remote_addr defaults to 127.0.0.1).
            client = client_address(req.env.get("REMOTE_ADDR"), req.get_header("X-Forwarded-For"),
                                    self._trusted_proxies)
            placement = self._placer.place(params, req.get_header(IDEMPOTENCY_KEY_HEADER),
                                           client)
        write_placement(req, resp, placement)
        self._metrics.request_code(placement.code)
        self._metrics.observe_request(time.perf_counter() - started)


def write_placement(req: falcon.Request, resp: falcon.Response, placement: Placement) -> None:
    if placement.call_id:
        resp.set_header("X-C2C-Call-Id", placement.call_id)
    if placement.replayed:
        resp.set_header(REPLAYED_HEADER, "true")
    resp.cache_control = ["no-store"]
    if wants_json(req):
        resp.status = JSON_STATUS[placement.code]
        resp.content_type = falcon.MEDIA_JSON
        payload = {"code": placement.code, "message": MESSAGES[placement.code]}
        if placement.call_id:
            payload["call_id"] = placement.call_id
        resp.text = json.dumps(payload)
    else:
        resp.status = falcon.HTTP_200
        resp.content_type = "text/plain"
        resp.text = str(placement.code)

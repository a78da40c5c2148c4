"""`/healthz` (the process answers) and `/readyz` (the store and at least one switch reachable)."""

from __future__ import annotations

import json
import logging

import falcon

from c2c.errors import StoreError

log = logging.getLogger(__name__)


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/plain"
        resp.text = "ok"


class ReadyResource:
    def __init__(self, store, switches) -> None:
        self._store = store
        self._switches = switches

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            self._store.ping()
            store_ok = True
        except StoreError as exc:
            log.warning("readyz: store unreachable: %s", exc)
            store_ok = False
        states = self._switches.states()
        switch_ok = any(state == "connected" for state in states.values())
        ready = store_ok and switch_ok
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json.dumps(
            {"ready": ready, "store": "ok" if store_ok else "unreachable", "switches": states}
        )

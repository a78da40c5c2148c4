"""`/healthz` (the process answers) and `/readyz` (the store answers and a switch can take calls).

/readyz shows this worker's view of each switch: ``connected`` (TCP and auth), ``live`` (it
answered within the liveness window), and ``usable`` with the reason when not (paused, draining,
full...). Ready means the store answers and at least one switch is live and usable.
``database``: the MySQL/MariaDB host this worker's new connections go to, and whether it is the
first of C2C_DATABASE_URL's hosts (a worker whose node left a Galera cluster is on another).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon

from c2c.errors import StoreError
from c2c.esl.choice import SwitchView, refusal
from c2c.esl.switches import Switches
from c2c.store import Store
from c2c.store.engine import database_host

log = logging.getLogger(__name__)


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/plain"
        resp.text = "ok"


def describe_switch(view: SwitchView, state: str) -> dict[str, Any]:
    load = view.load
    why = refusal(view)
    return {
        "state": state,
        "connected": view.connected,
        "live": view.live,
        "usable": why is None,
        "why": why,
        "draining": view.draining,
        "sessions": load.sessions if load else None,
        "max_sessions": load.max_sessions if load else None,
    }


class ReadyResource:
    def __init__(self, store: Store, switches: Switches) -> None:
        self._store = store
        self._switches = switches

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            self._store.ping()
            store_ok = True
        except StoreError as exc:
            log.warning("readyz: store unreachable: %s", exc)
            store_ok = False
        # Where this worker's connections go (MySQL/MariaDB; a failover list may move them).
        host, preferred = database_host(self._store.engine)
        states = self._switches.states()
        views = self._switches.views()
        switch_ok = any(view.live and refusal(view) is None for view in views)
        ready = store_ok and switch_ok
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        resp.content_type = falcon.MEDIA_JSON
        resp.text = json.dumps(
            {
                "ready": ready,
                "store": "ok" if store_ok else "unreachable",
                "database": {"host": host, "preferred": preferred},
                "switches": {
                    view.name: describe_switch(view, states.get(view.name, "")) for view in views
                },
            }
        )

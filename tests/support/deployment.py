"""A whole c2c on this machine for end-to-end tests: store, simulator, gunicorn, callback receiver.

    with Deployment(tmp_path, database_url) as d:
        code, call_id = d.place(callee_phone_number="2125550486")
        call = d.wait_settled(call_id)
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from c2c.store import Store
from tests.callback_receiver import CallbackReceiver
from tests.support.lifecycle import StartStop
from tests.support.processes import GunicornProcess, SimulatorProcess, http_get, wait_until

DEFAULT_CALL = {
    "caller_phone_number": "2125550123",
    "caller_country_code": "1",
    "callee_phone_number": "2125550199",
    "callee_country_code": "1",
}


class Deployment(StartStop):
    def __init__(self, workdir: Path, database_url: str, *, workers: int = 2,
                 time_scale: float = 0.05, credits: int = 100_000, scenario: Path | None = None,
                 env: dict[str, str] | None = None, simulator_args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.workers = workers
        self.time_scale = time_scale
        self.credits = credits
        self.scenario = scenario
        self.extra_env = env or {}
        self.simulator_args = simulator_args
        self.store = Store.from_url(database_url)
        self.receiver = CallbackReceiver()
        self.simulator: SimulatorProcess | None = None
        self.gunicorn: GunicornProcess | None = None

    def start(self) -> None:
        self.store.upgrade()
        created = self.store.accounts.create("e2e", self.credits)
        self.account_id, self.api_key, self.webhook_secret = created
        self.receiver.start()
        self.simulator = SimulatorProcess(self.workdir, password="e2e-secret",
                                          time_scale=self.time_scale, scenario=self.scenario,
                                          extra=self.simulator_args).start()
        self.gunicorn = GunicornProcess(self.workdir, self.env(), workers=self.workers).start()
        self.gunicorn.wait_ready()

    def env(self) -> dict[str, str]:
        assert self.simulator is not None
        return {
            "C2C_DATABASE_URL": self.database_url,
            "C2C_SWITCHES": self.simulator.switch_url,
            "C2C_CALLBACK_ALLOW_PRIVATE": "on",
            "C2C_FLOOD_SECONDS": "0",
            "C2C_LEASE_SECONDS": "3",
            "C2C_ESL_TIMEOUT": "3",
            "C2C_LOG_LEVEL": "INFO",
            **self.extra_env,
        }

    def stop(self) -> None:
        for process in (self.gunicorn, self.simulator):
            if process is not None:
                process.stop()
        self.receiver.stop()
        self.store.dispose()

    # -- the customer's side ---------------------------------------------------------------

    def place(self, callback: bool = True, accept_json: bool = False, **params: str
              ) -> tuple[int, str | None]:
        assert self.gunicorn is not None
        query = {"api_key": self.api_key, **DEFAULT_CALL, "secret": "s3cret", **params}
        if callback and "callback_url" not in params:
            query["callback_url"] = self.receiver.url("/cb?order=42")
        headers = {"Accept": "application/json"} if accept_json else {}
        status, response_headers, body = http_get(
            f"{self.gunicorn.base_url}/api/clicktocall/?{urlencode(query)}", headers=headers)
        if accept_json:
            return json.loads(body)["code"], response_headers.get("x-c2c-call-id")
        assert status == 200, (status, body)
        return int(body.decode()), response_headers.get("x-c2c-call-id")

    def wait_settled(self, call_id: str, timeout: float = 30.0) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            call = self.store.calls.get(call_id)
            return call if call and call["state"] == "ended" else None

        return wait_until(settled, timeout, 0.05, f"call {call_id} settled")  # type: ignore[return-value]

    def wait_callbacks(self, count: int, timeout: float = 30.0) -> list[Any]:
        wait_until(lambda: len(self.receiver.requests) >= count, timeout, 0.05,
                   f"{count} callbacks received")
        return list(self.receiver.requests)

    def callbacks_for(self, call_id: str) -> list[Any]:
        return [r for r in self.receiver.requests if r.header("X-C2C-Call-Id") == call_id]

    def listener_pid(self, timeout: float = 15.0) -> int:
        """The gunicorn worker holding the simulator's event lease."""
        assert self.simulator is not None and self.gunicorn is not None
        name = f"switch:127.0.0.1:{self.simulator.port}"

        def holder() -> int | None:
            lease = self.store.leases.get(name)
            if lease is None or lease.expires_at < time.time():
                return None
            pid = int(lease.holder.split(":")[1])
            return pid if pid in self.gunicorn.worker_pids() else None

        return wait_until(holder, timeout, 0.05, "a worker holding the event lease")  # type: ignore[return-value]

"""C2C_BACKGROUND=separate (issue 17): gunicorn's gevent workers only answer requests and place
calls; two `c2c worker` processes hold the switch's events, settle the calls and deliver the
callbacks. One of them is killed with calls in flight: the other takes over, and every call
settles and is called back once."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import pytest

from c2c.store import Store
from tests.callback_receiver import CallbackReceiver
from tests.support.deployment import DEFAULT_CALL
from tests.support.faults import c2c_check, c2c_command, write_scenario
from tests.support.processes import (
    GunicornProcess,
    ManagedProcess,
    SimulatorProcess,
    http_get,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

CALLS = 12


def _place(base_url: str, api_key: str, receiver: CallbackReceiver, index: int) -> str:
    query = {"api_key": api_key, **DEFAULT_CALL, "caller_phone_number": f"646555{index:04d}",
             "callee_phone_number": f"917555{index:04d}", "callback_url": receiver.url("/cb"),
             "max_duration": "2"}
    status, headers, body = http_get(f"{base_url}/api/clicktocall/?{urlencode(query)}")
    assert (status, body) == (200, b"0"), body
    return headers["x-c2c-call-id"]


def test_the_api_and_the_background_in_separate_processes(tmp_path: Path, mysql_url: str) -> None:
    store = Store.from_url(mysql_url)
    store.upgrade()
    account = store.accounts.create("separate", 1000)
    receiver = CallbackReceiver()
    receiver.start()
    scenario = write_scenario(tmp_path / "scenario.json", talk_seconds=3)
    switch = SimulatorProcess(tmp_path, password="sep-pw", scenario=scenario).start()
    env = {**os.environ, "C2C_DATABASE_URL": mysql_url, "C2C_SWITCHES": switch.switch_url,
           "C2C_BACKGROUND": "separate", "C2C_CALLBACK_ALLOW_PRIVATE": "on",
           "C2C_FLOOD_SECONDS": "0", "C2C_LEASE_SECONDS": "2", "C2C_ESL_TIMEOUT": "3",
           "C2C_LOG_LEVEL": "INFO"}
    workers = [ManagedProcess([*c2c_command(), "worker"], env, tmp_path / f"worker-{i}.log")
               for i in range(2)]
    gunicorn = GunicornProcess(tmp_path, env, workers=2)
    processes = [switch, *workers, gunicorn]
    lease = f"switch:127.0.0.1:{switch.port}"
    try:
        for worker in workers:
            worker.start()
        gunicorn.start()
        gunicorn.wait_ready()

        def holder() -> int | None:
            held = store.leases.holder_of(lease, time.time())
            return int(held.split(":")[1]) if held else None

        first = wait_until(holder, 20, 0.1, "a c2c worker holding the events")
        assert first in [w.pid for w in workers], (first, gunicorn.worker_pids())

        calls = [_place(gunicorn.base_url, account.api_key, receiver, i) for i in range(CALLS)]
        # Both legs answered: kill the holder while every call talks.
        wait_until(lambda: all((store.calls.get(c) or {}).get("state") == "bridged"
                               for c in calls), 20, 0.1, "every call bridged")
        killed = next(w for w in workers if w.pid == first)
        os.kill(killed.pid, signal.SIGKILL)
        survivor = next(w for w in workers if w.pid != first)
        wait_until(lambda: holder() == survivor.pid, 20, 0.1, "the other worker holding")

        wait_until(lambda: all((store.calls.get(c) or {}).get("state") == "ended"
                               for c in calls), 60, 0.2, "every call settled")
        wait_until(lambda: len(receiver.requests) >= CALLS, 30, 0.1, "every callback")
        time.sleep(1)  # a second delivery, if there were one, would come now
        delivered = Counter(r.header("X-C2C-Call-Id") for r in receiver.requests)
        assert delivered == Counter({c: 1 for c in calls})
        rows = [store.calls.get(c) for c in calls]
        assert all(r and r["answered"] and r["minutes"] == 1 for r in rows), rows
        # The API workers never held the events.
        log = gunicorn.log_text()
        assert "took over the events" not in log
        assert "events and callbacks left to `c2c worker`" in log
        found = store.accounts.find(account.id)
        assert found is not None and found.reserved == 0 and found.credits == 1000 - CALLS
        checked = c2c_check(mysql_url)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        for process in reversed(processes):
            process.stop()
        receiver.stop()
        store.dispose()

"""The API in-process: a FakeSwitch on a free port, a Runtime on a real store, a falcon TestClient.

    with AppHarness(store_url) as h:
        key = h.account(credits=10).api_key
        result = h.get(api_key=key, **h.numbers())
        assert h.code(result) == 0

Everything runs in this one process on gevent *without* monkey patching, as the simulator and
ESL tests do: the simulator and the ESL connections use gevent sockets explicitly, the store's
drivers block (which only pauses the hub for a query), and the TestClient runs the app in the
calling greenlet, so a request that waits on the switch yields to the hub and the simulator
answers. Waits in tests must therefore yield too: use ``h.wait_until`` (gevent.sleep), never
time.sleep, or the simulator and the listeners stand still.

``background=True`` runs ``runtime.start()`` (switch connections, event lease and listener,
callback dispatcher), so calls are followed to their settlement; otherwise only the command
connections are started and accepted calls stay as their accept left them.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import falcon
import falcon.testing
import gevent
from sqlalchemy import func, select

from c2c.api.app import create_app
from c2c.api.runtime import Runtime
from c2c.config import Config, SwitchAddress
from c2c.esl.connection import SwitchState
from c2c.esl.switches import Switches
from c2c.fakeswitch.faults import Faults
from c2c.fakeswitch.scenarios import Scenario
from c2c.fakeswitch.server import FakeSwitch
from c2c.store import CreatedAccount, Store, make_engine, schema
from tests.support.lifecycle import StartStop
from tests.support.processes import free_port

PASSWORD = "harness-pw"
PATH = "/api/clicktocall/"
CODES = frozenset(range(12))

# Unique numbers for requests that must not trip flood protection.
_serial = itertools.count(1)


def fresh_number() -> str:
    """A 10-digit NANP national number not used before in this process. Its last four digits
    never start with 0, so no default-scenario suffix (0486, 0999...) matches: it answers."""
    n = next(_serial)
    return f"646{n // 9000 % 1000:03d}{1000 + n % 9000}"


def gevent_wait(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition",
) -> Any:
    """Poll ``predicate`` until truthy, yielding to gevent in between; TimeoutError after
    ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met within {timeout} s")
        gevent.sleep(interval)


@dataclasses.dataclass(frozen=True)
class StoreSnapshot:
    """What a request could leave behind, for "a rejected request leaves nothing behind"."""

    calls: tuple[tuple[Any, ...], ...]
    flood: tuple[tuple[Any, ...], ...]
    accounts: tuple[tuple[Any, ...], ...]
    ledger: int
    callbacks: int


class AppHarness(StartStop):
    def __init__(
        self,
        database_url: str,
        *,
        time_scale: float = 1.0,
        scenario: Scenario | None = None,
        faults: Faults | None = None,
        background: bool = False,
        coverage_cache_seconds: float = 0.0,
        upgrade: bool = True,
        start_switch: bool = True,
        switch_port: int | None = None,
        **config: Any,
    ) -> None:
        self.database_url = database_url
        self.background = background
        self.upgrade = upgrade
        self.start_switch = start_switch
        self.switch = FakeSwitch(
            "127.0.0.1",
            0,
            PASSWORD,
            scenario=scenario,
            time_scale=time_scale,
            faults=faults,
            heartbeat=None,
        )
        self._switch_port = switch_port
        self._config_overrides = {
            "callback_allow_private": True,  # tests may use 127.0.0.1 callbacks; no DNS
            "esl_timeout": 2.0,
            "ring_timeout": 10,
            "lease_seconds": 2,
            # Tests flip keys on and off between requests; the cache has its own tests.
            "account_cache_seconds": 0,
            **config,
        }
        self.store = Store(make_engine(database_url), coverage_cache_seconds=coverage_cache_seconds)
        self.config: Config | None = None
        self.runtime: Runtime | None = None
        self.client: falcon.testing.TestClient | None = None
        self.sent: list[str] = []  # every bgapi command c2c sent, in order

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> AppHarness:
        if self.upgrade:
            self.store.upgrade()
        if self.start_switch:
            self.switch.start()
            port = self.switch.port
        else:
            port = self._switch_port or free_port()  # bound, released: nothing listens
        self.config = Config.defaults(
            database_url=self.database_url,
            switches=(SwitchAddress("127.0.0.1", port, PASSWORD),),
            **self._config_overrides,
        )
        switches = Switches(self.config)
        self.runtime = Runtime(self.config, self.store, switches)
        self.client = falcon.testing.TestClient(create_app(self.runtime))
        self._spy_on_bgapi()
        if self.background:
            self.runtime.start()
        else:
            switches.start()
        if self.start_switch:
            self.wait_connected()
            if self.background:
                self.wait_listening()
        return self

    def stop(self) -> None:
        runtime = self.runtime
        if runtime is not None:
            if self.background:
                runtime.stop()
            else:
                runtime.switches.stop()
        self.switch.stop()
        self.store.dispose()

    def wait_connected(self, timeout: float = 10.0) -> None:
        assert self.runtime is not None
        gevent_wait(self.runtime.switches.any_connected, timeout, message="switch connected")

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Until the event listener's subscription (and its BACKGROUND_JOB filter) is in place."""
        gevent_wait(
            lambda: (
                self.switch.bus.wanted("CHANNEL_HANGUP_COMPLETE")
                and self.switch.bus.wanted("BACKGROUND_JOB")
                and all(owner.holding for owner in self.owners)
            ),
            timeout,
            message="event listener subscribed",
        )
        # The listener's first loop reconciles after the subscription; let it run once.
        gevent.sleep(0.05)

    @property
    def owners(self) -> list[Any]:
        assert self.runtime is not None
        return list(self.runtime.owners)

    @property
    def connection(self) -> Any:
        assert self.runtime is not None
        return next(iter(self.runtime.switches))

    def switch_state(self) -> SwitchState:
        return self.connection.state

    def _spy_on_bgapi(self) -> None:
        connection = self.connection
        original = connection.bgapi

        def bgapi(cmd: str, *args: Any, **kwargs: Any) -> str:
            self.sent.append(cmd)
            return original(cmd, *args, **kwargs)

        connection.bgapi = bgapi

    # -- accounts and numbers -----------------------------------------------------------------

    def account(
        self, credits: int = 1000, enabled: bool = True, name: str = "test"
    ) -> CreatedAccount:
        created = self.store.accounts.create(name, credits)
        if not enabled:
            self.store.accounts.set_enabled(created.id, False)
        return created

    @staticmethod
    def numbers(
        caller: str | None = None,
        callee: str | None = None,
        caller_cc: str = "1",
        callee_cc: str = "1",
    ) -> dict[str, str]:
        """The four number parameters, fresh NANP numbers unless given."""
        return {
            "caller_phone_number": caller or fresh_number(),
            "caller_country_code": caller_cc,
            "callee_phone_number": callee or fresh_number(),
            "callee_country_code": callee_cc,
        }

    # -- requests -----------------------------------------------------------------------------

    def request(
        self,
        method: str = "GET",
        path: str = PATH,
        query_string: str = "",
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b"",
    ) -> falcon.testing.Result:
        assert self.client is not None
        return self.client.simulate_request(
            method, path, query_string=query_string, headers=dict(headers or {}), body=body
        )

    def get(
        self,
        params: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
        path: str = PATH,
        headers: Mapping[str, str] | None = None,
        **kwargs: str,
    ) -> falcon.testing.Result:
        pairs = list(params.items() if isinstance(params, Mapping) else params or [])
        pairs += list(kwargs.items())
        return self.request("GET", path, urlencode(pairs), headers)

    def post(self, params: Mapping[str, str], path: str = PATH) -> falcon.testing.Result:
        return self.request(
            "POST",
            path,
            body=urlencode(list(params.items())),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def place(self, api_key: str, **params: str) -> int:
        """GET a request (fresh numbers unless given) and return its code."""
        return self.code(self.get({"api_key": api_key, **self.numbers(), **params}))

    @staticmethod
    def code(result: falcon.testing.Result) -> int:
        """The code of a plain answer, asserting the contract: HTTP 200, text/plain, the bare
        ASCII digits with no newline, and a call id header exactly when the code is 0."""
        assert result.status_code == 200, (result.status, result.text)
        assert result.headers.get("content-type") == "text/plain", result.headers
        body = result.content
        assert body.isdigit() and body.isascii(), body
        assert body == str(int(body)).encode(), body  # no leading zero, no whitespace
        code = int(body)
        assert code in CODES, code
        call_id = result.headers.get("x-c2c-call-id")
        assert (call_id is not None) == (code == 0), (code, call_id)
        return code

    # -- the store ----------------------------------------------------------------------------

    def snapshot(self) -> StoreSnapshot:
        c, f, a = schema.calls, schema.flood, schema.accounts
        with self.store.engine.connect() as conn:
            return StoreSnapshot(
                calls=tuple(
                    sorted(
                        tuple(r) for r in conn.execute(select(c.c.id, c.c.state, c.c.max_minutes))
                    )
                ),
                flood=tuple(
                    sorted(tuple(r) for r in conn.execute(select(f.c.number, f.c.stamped_at)))
                ),
                accounts=tuple(
                    sorted(
                        tuple(r)
                        for r in conn.execute(
                            select(a.c.id, a.c.enabled, a.c.credits, a.c.reserved)
                        )
                    )
                ),
                ledger=conn.execute(select(func.count()).select_from(schema.ledger)).scalar_one(),
                callbacks=conn.execute(
                    select(func.count()).select_from(schema.callbacks)
                ).scalar_one(),
            )

    def call_count(self) -> int:
        with self.store.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(schema.calls)).scalar_one()

    def wait_until(
        self, predicate: Callable[[], Any], timeout: float = 10.0, message: str = "condition"
    ) -> Any:
        return gevent_wait(predicate, timeout, message=message)

    def wait_settled(self, call_id: str, timeout: float = 15.0) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            call = self.store.calls.get(call_id)
            return call if call is not None and call["state"] == "ended" else None

        return gevent_wait(settled, timeout, 0.02, f"call {call_id} settled")

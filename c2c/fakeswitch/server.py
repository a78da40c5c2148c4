"""The simulated FreeSWITCH: a TCP Event Socket server on gevent, and the switch behind it.

Usable in-process (tests) and as ``python -m c2c.fakeswitch`` / ``c2c fakeswitch``::

    switch = FakeSwitch("127.0.0.1", 0, "ClueCon", scenario=Scenario.default(), time_scale=0)
    switch.start()
    ...  # connect to switch.port
    switch.stop()

HEARTBEAT fires every ``heartbeat_interval`` seconds of the switch's uptime (recording 21: at
uptime 20 s, 40 s, ... whenever a client subscribed), counted like every other delay: in the
switch's seconds, so ``interval x time_scale`` real seconds, and in real seconds at time scale
0. ``heartbeat_interval`` may be changed while running (None or 0: no heartbeat). The switch's
limits (``limits``: pause, sessions-per-second, max-sessions) start from the constructor's
values and from there on follow ``fsctl``; ``stop()`` (and so ``restart()``) forgets what
``fsctl`` changed, as a restarted FreeSWITCH would.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import gevent.event
import gevent.socket
from gevent.server import StreamServer

from c2c.esl.protocol import DISCONNECT_SHUTDOWN, disconnect_notice_frame, rude_rejection_frame
from c2c.fakeswitch.calls import Leg, Switchboard
from c2c.fakeswitch.channels import Channel
from c2c.fakeswitch.clock import Clock
from c2c.fakeswitch.commands import ApiCommands
from c2c.fakeswitch.core_status import heartbeat_headers
from c2c.fakeswitch.events import EventBus, Identity
from c2c.fakeswitch.faults import Faults
from c2c.fakeswitch.limits import SessionLimits
from c2c.fakeswitch.scenarios import Scenario
from c2c.fakeswitch.session import Session

log = logging.getLogger(__name__)

AT_HEARTBEAT = ("switch_core.c", "send_heartbeat", 95)
AT_SHUTDOWN = ("switch_core.c", "switch_core_destroy", 3023)
HEARTBEAT_INTERVAL = 20.0  # FreeSWITCH's event-heartbeat-interval default
MAX_SESSIONS = 10_000
SESSIONS_PER_SECOND = 10_000
IDLE_CPU = 98.0
# How often the heartbeat greenlet looks again at a changed (or newly set) interval.
_HEARTBEAT_RECHECK = 0.25

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_acl(text: str | Iterable[str] | None) -> list[Network] | None:
    """ "127.0.0.0/8,10.0.0.0/8" (or a list) to networks; None or empty: everyone is allowed."""
    if not text:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    return [ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip()]


class FakeSwitch:
    """A FreeSWITCH stand-in speaking the Event Socket protocol on ``host:port``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        password: str = "ClueCon",
        scenario: Scenario | str | os.PathLike[str] | None = None,
        time_scale: float = 1.0,
        acl: str | Iterable[str] | None = None,
        faults: Faults | None = None,
        hostname: str | None = None,
        heartbeat: float | None = HEARTBEAT_INTERVAL,
        max_sessions: int = MAX_SESSIONS,
        sps: int = SESSIONS_PER_SECOND,
        idle_cpu: float = IDLE_CPU,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.password = password
        if isinstance(scenario, str | os.PathLike):
            scenario = Scenario.load(scenario)
        self.scenario = scenario or Scenario.default()
        self.acl = parse_acl(acl)
        self.faults = faults or Faults()
        self.heartbeat_interval = heartbeat
        self.clock = Clock(time_scale)
        self.identity = Identity(hostname=hostname or socket.gethostname() or "fakeswitch")
        self.bus = EventBus(self.clock, self.identity)
        self._limit_settings = (max_sessions, sps, idle_cpu)
        self.switchboard = Switchboard(self.clock, self.bus, self.scenario, limits=self._limits())
        self.api = ApiCommands(self.switchboard, self.bus, self.identity, self.clock)
        self.api.uptime_us = self.uptime_us
        self.sessions: set[Session] = set()
        self._server: StreamServer | None = None
        self._background: list[gevent.Greenlet] = []
        self._bound_port: int | None = None
        self.started_at = time.monotonic()

    # ---------------------------------------------------------------------------------------
    # lifecycle

    def start(self) -> FakeSwitch:
        port = self._bound_port if self._bound_port is not None else self.requested_port
        listener = _listen(self.host, port)
        self._server = StreamServer(listener, self._handle)
        self._server.start()
        self._bound_port = listener.getsockname()[1]
        self.started_at = time.monotonic()
        self.clock.start()
        self._background = [
            gevent.spawn(self._drop_connections_loop),
            gevent.spawn(self._heartbeat_loop),
        ]
        log.info("fakeswitch listening on %s:%d", self.host, self._bound_port)
        return self

    def stop(self, hangup: bool = True) -> None:
        """Shut down like FreeSWITCH: SHUTDOWN event, calls end SYSTEM_SHUTDOWN, then every
        connection gets "The system is being shut down." and is closed."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()  # no new connections from here on
        if hangup:
            self.bus.fire("SHUTDOWN", AT_SHUTDOWN, [("Event-Info", "System Shutting Down")])
            self.switchboard.hupall("SYSTEM_SHUTDOWN")
        for session in list(self.sessions):
            session.shutdown(DISCONNECT_SHUTDOWN)
        server.stop(timeout=1)
        for greenlet in self._background:
            greenlet.kill(block=False)
        self._background = []
        self.clock.stop()
        self.clock.clear()
        self.switchboard.reset()
        self.switchboard.limits = self._limits()  # what fsctl changed is forgotten

    def restart(self, downtime: float = 0.0) -> None:
        """Stop (dropping every call and connection), stay down ``downtime`` real seconds
        (connections are refused meanwhile), come back on the same port with a new Core-UUID."""
        self.stop(hangup=True)
        if downtime > 0:
            gevent.sleep(downtime)
        self.identity = Identity(hostname=self.identity.hostname, version=self.identity.version)
        self.bus.identity = self.identity
        self.api.identity = self.identity
        self.start()

    def forget_calls(self) -> None:
        """Drop every call silently, as if FreeSWITCH had lost them."""
        self.switchboard.reset()

    def drop_connections(self) -> None:
        """Close every client connection without a disconnect notice."""
        for session in list(self.sessions):
            session.drop()

    def __enter__(self) -> FakeSwitch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------------
    # what tests look at

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("the fake switch is not started")
        return self._bound_port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def limits(self) -> SessionLimits:
        """Pause flags, sessions-per-second and max-sessions, as ``fsctl`` sets them."""
        return self.switchboard.limits

    def uptime_us(self) -> int:
        """The switch's uptime in microseconds: virtual (scaled) time since start(), real time
        at time scale 0."""
        real = time.monotonic() - self.started_at
        scale = self.clock.time_scale
        return int((real / scale if scale > 0 else real) * 1_000_000)

    @property
    def channels(self) -> dict[str, Channel]:
        """Live channels (not yet hanging up), by uuid."""
        return {uuid_: leg.channel for uuid_, leg in self.switchboard.legs.items() if leg.up}

    @property
    def legs(self) -> dict[str, Leg]:
        return dict(self.switchboard.legs)

    def heard(self, caller_uuid: str) -> dict[str, Any] | None:
        """What the caller's phone (the originate's A leg) has heard since it answered: the
        segments of heard.py, or None for a call this switch does not know (any more)."""
        timeline = self.switchboard.heard.get(caller_uuid)
        return None if timeline is None else timeline.to_json()

    def api_command(self, line: str) -> str:
        """Run an API command in-process, as ``api <line>`` would (originate blocks)."""
        result = gevent.event.AsyncResult()
        self.api.run(line, result.set)
        return str(result.get())

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            gevent.sleep(0.01)
        return bool(predicate())

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no channel is left (every call has ended)."""
        return self.wait_for(lambda: not self.switchboard.legs, timeout)

    def forget_session(self, session: Session) -> None:
        self.sessions.discard(session)

    # ---------------------------------------------------------------------------------------
    # connections

    def _allowed(self, peer: str) -> bool:
        if self.acl is None:
            return True
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.acl)

    def _handle(self, sock: socket.socket, address: tuple[str, int]) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self._allowed(address[0]):
            log.warning("IP %s Rejected by acl", address[0])
            try:
                sock.sendall(rude_rejection_frame() + disconnect_notice_frame())
            except OSError:
                pass
            finally:
                sock.close()
            return
        session = Session(self, sock, address)
        self.sessions.add(session)
        session.run()

    def _drop_connections_loop(self) -> None:
        while True:
            interval = self.faults.drop_every
            if not interval:
                gevent.sleep(0.1)
                continue
            gevent.sleep(interval)
            if self.faults.drop_every:
                log.info("fault: dropping %d connections", len(self.sessions))
                self.drop_connections()

    def _limits(self) -> SessionLimits:
        max_sessions, sps, idle_cpu = self._limit_settings
        return SessionLimits(self.clock.now, max_sessions=max_sessions, sps=sps, idle_cpu=idle_cpu)

    def _heartbeat_loop(self) -> None:
        """HEARTBEAT at every multiple of the interval of the switch's uptime (21); a changed
        interval counts from the next multiple of the new one."""
        interval_seen: float | None = None
        next_due = 0.0
        while True:
            interval = self.heartbeat_interval
            if not interval or interval <= 0:
                interval_seen = None
                gevent.sleep(_HEARTBEAT_RECHECK)
                continue
            uptime = self.uptime_us() / 1_000_000
            if interval != interval_seen:
                interval_seen = interval
                next_due = (math.floor(uptime / interval) + 1) * interval
            if uptime >= next_due:
                self._fire_heartbeat()
                next_due = (math.floor(uptime / interval) + 1) * interval
                continue
            real_wait = (next_due - uptime) * (self.clock.time_scale or 1.0)
            gevent.sleep(min(real_wait, _HEARTBEAT_RECHECK))

    def _fire_heartbeat(self) -> None:
        board = self.switchboard
        headers = heartbeat_headers(
            board.limits, board.count, self.uptime_us(), self.identity.version
        )
        self.bus.fire("HEARTBEAT", AT_HEARTBEAT, headers)


def _listen(host: str, port: int) -> gevent.socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = gevent.socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    listener.setblocking(False)
    return listener

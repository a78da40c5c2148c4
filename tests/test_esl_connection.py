"""EslConnection and Switches against a scripted Event Socket server on a free port.

The server below speaks the wire protocol through c2c.esl.protocol and can be told to misbehave:
refuse the password, stall, answer -ERR, close in the middle of a frame, drop every connection.
The choice among switches (paused, full, busier, sessions-per-second, drained) runs against two
in-process simulators instead, told what to be by `fsctl` and the calls parked on them.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import gevent
import gevent.event
import pytest
from gevent import socket
from gevent.server import StreamServer

from c2c.config import Config, SwitchAddress
from c2c.domain.switch_state import SwitchLoad, SwitchRecord
from c2c.errors import CommandFailed, CommandTimeout, ReplyLost, StoreError, SwitchUnavailable
from c2c.esl import connection as connection_module
from c2c.esl.choice import refusal
from c2c.esl.connection import EslConnection, SwitchState, keepalive_timings, reconnect_delay
from c2c.esl.protocol import (
    DISCONNECT_SHUTDOWN,
    Command,
    CommandParser,
    Event,
    api_response_frame,
    auth_request_frame,
    command_reply_frame,
    disconnect_notice_frame,
    encode_event,
    rude_rejection_frame,
)
from c2c.esl.switches import Switches
from c2c.fakeswitch.server import FakeSwitch

PASSWORD = "S3cret-pw"
MULTILINE_OUTPUT = (
    "UP 0 years, 0 days, 0 hours, 3 minutes\n"
    "Content-Length: 99\n"  # body text that greenswitch 0.0.19 would mistake for headers
    "\n"
    "FreeSWITCH (Version 1.10.12-release  64bit) is ready\n"
    "Current Stack Size/Max 240K/8192K\n"
)


class FakeEslServer:
    """A scripted FreeSWITCH Event Socket. ``api`` maps an api command's arguments to its output
    (None: never answer, like a hung api call, which blocks the whole connection)."""

    def __init__(self, password: str = PASSWORD) -> None:
        self.password = password
        self.api: Callable[[str], str | None] = lambda args: f"+OK {args}\n"
        self.bgapi_output: Callable[[str], str] = lambda args: "+OK 00000000-job-output\n"
        self.bgapi_refuse = False
        self.greet = True
        self.rude = False
        self.commands: list[tuple[int, Command]] = []  # (connection number, command)
        self.accepted = 0
        self._sockets: dict[int, socket.socket] = {}
        self._formats: dict[int, str] = {}  # subscribed connections and their event format
        self._server = StreamServer(("127.0.0.1", 0), self._handle)

    def start(self) -> FakeEslServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self.drop_all()
        self._server.stop(timeout=2)

    @property
    def port(self) -> int:
        return self._server.server_port

    def address(self, password: str | None = None) -> SwitchAddress:
        return SwitchAddress("127.0.0.1", self.port, password or self.password)

    # -- what tests look at ----------------------------------------------------------------

    def lines(self, connection: int | None = None) -> list[str]:
        return [c.line for n, c in self.commands if connection in (None, n)]

    @property
    def open_connections(self) -> int:
        return len(self._sockets)

    # -- misbehaving on demand --------------------------------------------------------------

    def drop_all(self) -> None:
        for sock in list(self._sockets.values()):
            _shut(sock)

    def send_raw_and_close(self, data: bytes) -> None:
        for sock in list(self._sockets.values()):
            sock.sendall(data)
            _shut(sock)

    def broadcast(self, frame_for: Callable[[str], bytes]) -> None:
        for number, event_format in list(self._formats.items()):
            sock = self._sockets.get(number)
            if sock is not None:
                sock.sendall(frame_for(event_format))

    def emit(
        self, name: str, headers: Sequence[tuple[str, str]] = (), body: str | None = None
    ) -> None:
        all_headers = [("Event-Name", name), ("Core-UUID", "fake-core"), *headers]
        self.broadcast(lambda fmt: encode_event(all_headers, body, fmt))

    # -- the protocol -----------------------------------------------------------------------

    def _handle(self, sock: socket.socket, _peer: object) -> None:
        self.accepted += 1
        number = self.accepted
        self._sockets[number] = sock
        try:
            if self.rude:
                sock.sendall(rude_rejection_frame() + disconnect_notice_frame())
                return
            if self.greet:
                sock.sendall(auth_request_frame())
            parser = CommandParser()
            stalled = False
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for command in parser.feed(data):
                    self.commands.append((number, command))
                    if not stalled and not self._answer(number, sock, command):
                        stalled = True
        except OSError:
            pass
        finally:
            self._sockets.pop(number, None)
            self._formats.pop(number, None)
            sock.close()

    def _answer(self, number: int, sock: socket.socket, command: Command) -> bool:
        """Reply to one command; False once the connection hangs (a stalled api)."""
        name, args = command.name, command.args
        if name == "auth":
            if args != self.password:
                sock.sendall(command_reply_frame("-ERR invalid") + disconnect_notice_frame())
                _shut(sock)
                return False
            sock.sendall(command_reply_frame("+OK accepted"))
        elif name == "api":
            output = self.api(args)
            if output is None:
                return False
            sock.sendall(api_response_frame(output))
        elif name == "bgapi":
            if self.bgapi_refuse:
                sock.sendall(command_reply_frame("-ERR no such command"))
                return True
            job = command.get("Job-UUID") or str(uuid.uuid4())
            sock.sendall(command_reply_frame(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
            verb, _, rest = args.partition(" ")
            headers = [("Job-UUID", job), ("Job-Command", verb)]
            headers += [("Job-Command-Arg", rest)] if rest else []
            self.emit("BACKGROUND_JOB", headers, self.bgapi_output(args))
        elif name == "event":
            event_format = args.split(" ", 1)[0]
            self._formats[number] = event_format
            sock.sendall(command_reply_frame(f"+OK event listener enabled {event_format}"))
        elif name == "filter":
            header, _, value = args.partition(" ")
            sock.sendall(command_reply_frame(f"+OK filter added. [{header}]=[{value}]"))
        elif name == "exit":
            sock.sendall(command_reply_frame("+OK bye") + disconnect_notice_frame())
            _shut(sock)
            return False
        else:
            sock.sendall(command_reply_frame("-ERR command not found"))
        return True


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def wait_until(predicate: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        gevent.sleep(0.005)


def free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def live_esl_greenlets() -> list[gevent.Greenlet]:
    gc.collect()
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, gevent.Greenlet) and not obj.dead:
            owner = getattr(getattr(obj, "_run", None), "__self__", None)
            if type(owner).__module__ == connection_module.__name__:
                found.append(obj)
    return found


def live_greenlet_count() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, gevent.Greenlet) and not o.dead)


@pytest.fixture
def server() -> Iterator[FakeEslServer]:
    fake = FakeEslServer().start()
    yield fake
    fake.stop()


@pytest.fixture
def connections() -> Iterator[list[EslConnection]]:
    """Connections made by a test; stopped afterwards whatever happens."""
    made: list[EslConnection] = []
    yield made
    for conn in made:
        conn.stop()


@pytest.fixture
def connect(
    server: FakeEslServer, connections: list[EslConnection]
) -> Callable[..., EslConnection]:
    def make(wait: bool = True, **kwargs: object) -> EslConnection:
        kwargs.setdefault("timeout", 1.0)
        conn = EslConnection(kwargs.pop("address", None) or server.address(), **kwargs)  # type: ignore[arg-type]
        connections.append(conn)
        conn.start()
        if wait:
            assert conn.wait_connected(3), conn.state
        return conn

    return make


# ---------------------------------------------------------------------------------------------


def test_reconnect_delay_starts_small_doubles_and_is_capped() -> None:
    highest = [reconnect_delay(n, rng=lambda: 1.0) for n in range(12)]
    lowest = [reconnect_delay(n, rng=lambda: 0.0) for n in range(12)]
    assert highest[0] == pytest.approx(0.1) and lowest[0] == pytest.approx(0.05)
    assert highest[1] == pytest.approx(0.2) and highest[2] == pytest.approx(0.4)
    assert max(highest) == pytest.approx(5.0) and highest[-1] == pytest.approx(5.0)
    assert all(lo <= hi for lo, hi in zip(lowest, highest, strict=True))
    assert reconnect_delay(10_000) <= 5.0


def test_connects_authenticates_subscribes_and_filters(server, connect) -> None:
    conn = connect(
        events=("CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB"),
        filters=[("variable_c2c_call_id", "/.+/"), ("Event-Name", "BACKGROUND_JOB")],
    )
    assert conn.state is SwitchState.CONNECTED
    assert server.lines() == [
        f"auth {PASSWORD}",
        "event plain CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB",
        "filter variable_c2c_call_id /.+/",
        "filter Event-Name BACKGROUND_JOB",
    ]
    assert conn.api("status") == "+OK status\n"
    assert conn.command("nonsense").reply_text == "-ERR command not found"


def test_commands_before_connecting_fail_fast(server) -> None:
    conn = EslConnection(server.address(), timeout=1.0)
    with pytest.raises(SwitchUnavailable):
        conn.api("status")
    assert conn.state is SwitchState.STOPPED


def test_wrong_password_is_failed_with_clear_log_and_slow_retries(server, connect, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="c2c.esl")
    conn = connect(wait=False, address=server.address("not-the-password"), auth_retry_delay=0.4)
    wait_until(lambda: conn.state is SwitchState.FAILED)
    first_try = time.monotonic()
    wait_until(lambda: server.lines().count("auth not-the-password") >= 2)
    assert time.monotonic() - first_try >= 0.3  # slow retries, not the 0.1 s reconnect pace
    assert conn.state is SwitchState.FAILED
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("authentication failed" in r.getMessage() for r in errors)
    assert all("not-the-password" not in r.getMessage() for r in caplog.records)
    with pytest.raises(SwitchUnavailable):
        conn.api("status")


def test_acl_rejection_is_failed(server, connect) -> None:
    server.rude = True
    conn = connect(wait=False, auth_retry_delay=5)
    wait_until(lambda: conn.state is SwitchState.FAILED)


def test_connect_times_out_when_the_switch_never_greets(server, connect) -> None:
    server.greet = False
    conn = connect(wait=False, timeout=0.2)
    wait_until(lambda: server.accepted >= 2, timeout=2)  # gave up on the first and retried
    assert conn.state is SwitchState.RECONNECTING


def test_nothing_listening_means_reconnecting_quickly(connect) -> None:
    address = SwitchAddress("127.0.0.1", free_port(), PASSWORD)
    conn = connect(wait=False, address=address)
    wait_until(lambda: conn.state is SwitchState.RECONNECTING)
    assert not conn.wait_connected(0.2)


def test_command_times_out_within_its_timeout(server, connect) -> None:
    server.api = lambda args: None if args == "hang" else f"+OK {args}\n"
    conn = connect(timeout=2.0)
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        conn.api("hang", timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 0.6


def test_pipelined_commands_get_their_own_replies(server, connect) -> None:
    conn = connect()
    jobs = [gevent.spawn(conn.api, f"echo {n}") for n in range(50)]
    gevent.joinall(jobs, timeout=3, raise_error=True)
    assert [job.value for job in jobs] == [f"+OK echo {n}\n" for n in range(50)]


def test_late_reply_of_a_timed_out_command_is_not_given_to_the_next(server, connect) -> None:
    gate = gevent.event.Event()

    def api(args: str) -> str:
        if args == "slow":
            gate.wait(2)
        return f"+OK {args}\n"

    server.api = api
    conn = connect()
    with pytest.raises(CommandTimeout):
        conn.api("slow", timeout=0.1)
    gate.set()
    assert conn.api("after") == "+OK after\n"


def test_pending_commands_fail_promptly_when_the_switch_drops(server, connect) -> None:
    server.api = lambda args: None  # every api hangs
    conn = connect(timeout=5.0)
    waiting = [gevent.spawn(conn.api, "hang") for _ in range(3)]
    wait_until(lambda: server.lines().count("api hang") == 3)
    started = time.monotonic()
    server.drop_all()
    gevent.joinall(waiting, timeout=2)
    assert time.monotonic() - started < 1.0
    assert all(isinstance(job.exception, ReplyLost) for job in waiting)


def test_reconnects_and_resubscribes_after_a_drop(server, connect, caplog) -> None:
    caplog.set_level(logging.INFO, logger="c2c.esl")
    conn = connect(events=("BACKGROUND_JOB",), filters=[("Event-Name", "BACKGROUND_JOB")])
    assert conn.connects == 1
    started = time.monotonic()
    server.drop_all()
    wait_until(lambda: conn.connects == 2 and conn.state is SwitchState.CONNECTED)
    assert time.monotonic() - started < 1.0  # the first retry comes well under a second
    assert server.lines(connection=2) == [
        f"auth {PASSWORD}",
        "event plain BACKGROUND_JOB",
        "filter Event-Name BACKGROUND_JOB",
    ]
    assert conn.api("status") == "+OK status\n"
    assert any("reconnecting" in r.getMessage() for r in caplog.records)
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


def test_close_in_the_middle_of_a_frame(server, connect) -> None:
    server.api = lambda args: None
    conn = connect()
    job = gevent.spawn(conn.api, "x")
    wait_until(lambda: "api x" in server.lines())
    server.send_raw_and_close(b"Content-Type: api/response\nContent-Length: 40\n\n+OK only part")
    job.join(timeout=2)
    assert isinstance(job.exception, ReplyLost)
    wait_until(lambda: conn.connects == 2 and conn.state is SwitchState.CONNECTED)


def test_shutdown_notice_then_reconnect(server, connect, caplog) -> None:
    caplog.set_level(logging.INFO, logger="c2c.esl")
    conn = connect()
    server.send_raw_and_close(disconnect_notice_frame(DISCONNECT_SHUTDOWN))
    wait_until(lambda: conn.connects == 2)
    assert any("The system is being shut down." in r.getMessage() for r in caplog.records)


def test_a_switch_that_stops_answering_is_reconnected(server, connect) -> None:
    server.api = lambda args: None if args == "hang" else f"+OK {args}\n"
    conn = connect(stalled_after=0.3)
    with pytest.raises(CommandTimeout):
        conn.api("hang", timeout=0.4)  # outlives stalled_after: the session is given up
    wait_until(lambda: conn.connects == 2 and conn.state is SwitchState.CONNECTED)
    assert conn.api("status") == "+OK status\n"


def test_survives_a_switch_that_keeps_dropping_connections(server, connect) -> None:
    conn = connect(timeout=0.5)
    outcomes: list[str] = []

    def dropper() -> None:
        for _ in range(10):
            gevent.sleep(0.03)
            server.drop_all()

    dropping = gevent.spawn(dropper)
    while not dropping.dead:
        try:
            outcomes.append(conn.api("status"))
        except (SwitchUnavailable, ReplyLost):
            outcomes.append("unavailable")
            gevent.sleep(0.01)
    assert set(outcomes) <= {"+OK status\n", "unavailable"}
    assert "unavailable" in outcomes

    def answers() -> bool:
        try:
            return conn.api("status") == "+OK status\n"
        except (SwitchUnavailable, ReplyLost):
            return False

    wait_until(answers)  # once the drops stop, it recovers by itself
    assert conn.connects >= 3


def test_bgapi_returns_the_job_uuid_and_its_background_job(server, connect) -> None:
    server.bgapi_output = lambda args: MULTILINE_OUTPUT
    seen: list[Event] = []
    conn = connect(events=("BACKGROUND_JOB",), on_event=seen.append)

    job = conn.bgapi("status", job_uuid="11111111-2222-3333-4444-555555555555")
    assert job == "11111111-2222-3333-4444-555555555555"
    sent = server.commands[-1][1]
    assert sent.line == "bgapi status" and sent.get("Job-UUID") == job

    result = conn.bgapi_result(job, timeout=2)
    assert result.name == "BACKGROUND_JOB"
    assert result.body == MULTILINE_OUTPUT  # greenswitch 0.0.19 folds this into Content-Length
    assert result.get("Content-Length") is None
    wait_until(lambda: seen)
    assert seen[0].body == MULTILINE_OUTPUT

    generated = conn.bgapi("originate {a=b}loopback/1 &park")
    assert uuid.UUID(generated)
    assert server.commands[-1][1].get("Job-UUID") == generated
    assert conn.bgapi_result(generated, 2).get("Job-Command-Arg") == "{a=b}loopback/1 &park"


def test_bgapi_result_over_json_events(server, connect) -> None:
    server.bgapi_output = lambda args: "-ERR USER_BUSY\n"
    conn = connect(events=("BACKGROUND_JOB",), event_format="json")
    job = conn.bgapi("originate x &park")
    assert conn.bgapi_result(job, 2).body == "-ERR USER_BUSY\n"
    assert "event json BACKGROUND_JOB" in server.lines()


def test_bgapi_result_times_out(server, connect) -> None:
    conn = connect()  # not subscribed to BACKGROUND_JOB: the result never comes
    job = conn.bgapi("status")
    with pytest.raises(CommandTimeout):
        conn.bgapi_result(job, 0.1)


def test_err_answers_raise_command_failed(server, connect) -> None:
    server.api = lambda args: "-ERR no such channel\n"
    server.bgapi_refuse = True
    conn = connect()
    with pytest.raises(CommandFailed):
        conn.api("uuid_kill abc")
    assert conn.api("uuid_kill abc", check=False) == "-ERR no such channel\n"
    with pytest.raises(CommandFailed):
        conn.bgapi("originate x")


def test_bad_job_uuid_is_refused_before_sending(server, connect) -> None:
    conn = connect()
    with pytest.raises(ValueError):
        conn.bgapi("status", job_uuid="x" * 37)
    with pytest.raises(ValueError):
        conn.bgapi("status", job_uuid="a b")


def test_a_slow_handler_does_not_stall_reading(server, connect) -> None:
    gate = gevent.event.Event()
    handled: list[str] = []

    def slow_handler(event: Event) -> None:
        gate.wait(5)  # blocks on the first event until the test opens the gate
        handled.append(event.get("Seq") or "")

    conn = connect(events=("CUSTOM",), on_event=slow_handler)
    for seq in range(200):
        server.emit("CUSTOM", [("Seq", str(seq))])
    started = time.monotonic()
    assert conn.api("status") == "+OK status\n"  # replies still arrive
    assert time.monotonic() - started < 0.5
    assert handled == []
    gate.set()
    wait_until(lambda: len(handled) == 200)
    assert handled == [str(seq) for seq in range(200)]  # in arrival order


def test_a_failing_handler_is_logged_and_the_next_event_still_delivered(
    server, connect, caplog
) -> None:
    handled: list[str] = []

    def handler(event: Event) -> None:
        if event.get("Seq") == "0":
            raise RuntimeError("boom")
        handled.append(event.get("Seq") or "")

    conn = connect(events=("CUSTOM",), on_event=handler)
    server.emit("CUSTOM", [("Seq", "0")])
    server.emit("CUSTOM", [("Seq", "1")])
    wait_until(lambda: handled == ["1"])
    assert any("handler failed" in r.getMessage() for r in caplog.records)
    assert conn.state is SwitchState.CONNECTED


def test_stop_leaves_no_greenlet_behind(server) -> None:
    baseline = live_greenlet_count()
    conn = EslConnection(server.address(), 1.0, events=("CUSTOM",), on_event=lambda e: None)
    conn.start()
    assert conn.wait_connected(3)
    server.drop_all()  # one reconnect on the way, to leave old sessions behind if we could
    wait_until(lambda: conn.connects == 2 and conn.state is SwitchState.CONNECTED)
    server.emit("CUSTOM")
    assert live_esl_greenlets()
    conn.stop()
    assert conn.state is SwitchState.STOPPED
    assert live_esl_greenlets() == []
    wait_until(lambda: server.open_connections == 0)  # the server's side has finished too
    wait_until(lambda: live_greenlet_count() <= baseline)
    with pytest.raises(SwitchUnavailable):
        conn.api("status")


def test_stop_while_still_connecting_leaves_no_greenlet_behind(server) -> None:
    server.greet = False
    conn = EslConnection(server.address(), 5.0)
    conn.start()
    wait_until(lambda: server.accepted == 1)
    conn.stop()
    assert live_esl_greenlets() == []
    wait_until(lambda: server.open_connections == 0)


def test_pending_bgapi_result_is_released_on_stop(server, connect) -> None:
    conn = connect()
    job = conn.bgapi("status")
    waiter = gevent.spawn(conn.bgapi_result, job, 5)
    gevent.sleep(0)
    conn.stop()
    waiter.join(timeout=1)
    assert isinstance(waiter.exception, SwitchUnavailable)


# ---------------------------------------------------------------------------------------------
# Switches


@pytest.fixture
def two_servers() -> Iterator[tuple[FakeEslServer, FakeEslServer]]:
    first, second = FakeEslServer().start(), FakeEslServer().start()
    yield first, second
    first.stop()
    second.stop()


def test_switches_pick_the_connected_one_with_fewest_calls(two_servers) -> None:
    first, second = two_servers
    down = SwitchAddress("127.0.0.1", free_port(), PASSWORD)
    config = Config.defaults(switches=(first.address(), down, second.address()), esl_timeout=1.0)
    switches = Switches(config)
    try:
        assert set(switches.states().values()) == {"stopped"}
        with pytest.raises(SwitchUnavailable):
            switches.pick({})
        switches.start()
        wait_until(lambda: list(switches.states().values()).count("connected") == 2)
        assert switches.states()[down.name] == "reconnecting"
        a, b = first.address().name, second.address().name
        assert switches.pick({}).name == a  # ties: config order
        assert switches.pick({a: 3, b: 1}).name == b
        assert switches.pick({a: 0, b: 1, down.name: 0}).name == a  # never a disconnected one
        first.drop_all()
        first.stop()
        wait_until(lambda: switches.states()[a] == "reconnecting")
        assert switches.pick({a: 0, b: 9}).name == b
        assert switches[b].api("status") == "+OK status\n"
    finally:
        switches.stop()
    assert set(switches.states().values()) == {"stopped"}
    with pytest.raises(SwitchUnavailable):
        switches.pick({})
    assert live_esl_greenlets() == []


# ---------------------------------------------------------------------------------------------
# Against the simulator (c2c.fakeswitch), when it is there


def test_against_the_simulator() -> None:
    server_module = pytest.importorskip("c2c.fakeswitch.server")
    switch = server_module.FakeSwitch("127.0.0.1", 0, PASSWORD, time_scale=0, heartbeat=None)
    switch.start()
    conn = EslConnection(
        SwitchAddress("127.0.0.1", switch.port, PASSWORD), 2.0, events=("BACKGROUND_JOB",)
    )
    try:
        conn.start()
        assert conn.wait_connected(3)
        assert conn.api("uuid_exists 00000000-0000-0000-0000-000000000000") == "false"
        job = conn.bgapi("status")
        assert conn.bgapi_result(job, 3).body.startswith("UP ")
        switch.drop_connections()
        wait_until(lambda: conn.connects == 2 and conn.state is SwitchState.CONNECTED)
        assert "+OK" in conn.command("filter Event-Name BACKGROUND_JOB").reply_text
    finally:
        conn.stop()
        switch.stop()
    assert live_esl_greenlets() == []


# ---------------------------------------------------------------------------------------------
# Liveness: TCP keepalive, silence, probes


def test_keepalive_timings_follow_the_liveness_window() -> None:
    assert keepalive_timings(45) == (15, 5, 3)  # the kernel gives up after 15 + 3 x 5 = 30 s
    assert keepalive_timings(None) == (15, 5, 3)
    assert keepalive_timings(0.5) == (1, 1, 3)


def test_the_socket_has_tcp_keepalive(server, connect) -> None:
    conn = connect(liveness=9.0)
    sock = conn._session.sock  # the live session's socket
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_KEEPIDLE"):  # Linux: all three
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 3
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3


def test_a_silent_connection_is_dropped_and_reconnected(server, connect, caplog) -> None:
    caplog.set_level(logging.INFO, logger="c2c.esl")
    conn = connect(liveness=0.4)  # the scripted server sends nothing unasked
    assert conn.live
    wait_until(lambda: conn.connects == 2 and conn.state is SwitchState.CONNECTED, timeout=3)
    assert any("silent for 0.4 s" in r.getMessage() for r in caplog.records)


def test_a_connection_that_hears_something_stays(server, connect) -> None:
    conn = connect(events=("CUSTOM",), liveness=1.0)

    def chatter() -> None:
        while True:
            server.emit("CUSTOM")
            gevent.sleep(0.1)

    talking = gevent.spawn(chatter)
    try:
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # several liveness windows
            assert conn.live and conn.state is SwitchState.CONNECTED
            gevent.sleep(0.05)
        assert conn.connects == 1
    finally:
        talking.kill()


def test_status_probes_at_connect_and_then_regularly(server, connect) -> None:
    answers: list[str] = []
    server.api = lambda args: "probe answer\n" if args == "status" else f"+OK {args}\n"
    conn = connect(probe_every=0.1, on_probe=answers.append, liveness=5.0)
    # The first probe is answered before the connection counts as connected.
    assert server.lines()[:2] == [f"auth {PASSWORD}", "api status"]
    assert answers and answers[0] == "probe answer\n"
    wait_until(lambda: len(answers) >= 4)
    assert conn.connects == 1


def test_an_unanswered_probe_drops_the_session(server, connect) -> None:
    hang = {"status": False}
    server.api = lambda args: None if hang["status"] and args == "status" else f"+OK {args}\n"
    conn = connect(probe_every=0.1, timeout=0.3, liveness=5.0)
    hang["status"] = True  # the switch freezes: the next probe goes unanswered
    wait_until(lambda: conn.state is not SwitchState.CONNECTED, timeout=3)
    assert not conn.live
    hang["status"] = False
    wait_until(lambda: conn.connects == 2 and conn.state is SwitchState.CONNECTED, timeout=3)


def test_a_switch_that_never_answers_the_first_probe_is_not_connected(server, connect) -> None:
    server.api = lambda args: None  # greets, authenticates, then answers nothing
    conn = connect(wait=False, probe_every=1.0, timeout=0.2)
    wait_until(lambda: server.accepted >= 2)  # gave up on the first and retried
    assert conn.connects == 0 and conn.state is SwitchState.RECONNECTING


def test_not_live_while_a_command_waits_beyond_the_timeout(server, connect) -> None:
    server.api = lambda args: None if args == "hang" else f"+OK {args}\n"
    conn = connect(timeout=0.2)
    waiting = gevent.spawn(conn.api, "hang", timeout=3.0)
    wait_until(lambda: not conn.live)
    assert conn.state is SwitchState.CONNECTED  # connected, yet not to be trusted with a call
    server.drop_all()
    waiting.join(timeout=2)
    assert isinstance(waiting.exception, ReplyLost)


def test_shutting_down_from_the_notice_until_connected_again(server, connect) -> None:
    conn = connect()
    server.greet = False  # the reconnect's handshake will hang
    server.send_raw_and_close(disconnect_notice_frame(DISCONNECT_SHUTDOWN))
    wait_until(lambda: conn.state is not SwitchState.CONNECTED)
    assert conn.shutting_down
    server.greet = True
    wait_until(lambda: conn.connects == 2 and conn.state is SwitchState.CONNECTED, timeout=5)
    assert not conn.shutting_down
    server.send_raw_and_close(disconnect_notice_frame())  # the goodbye after `exit` is no shutdown
    wait_until(lambda: conn.state is not SwitchState.CONNECTED or conn.connects == 3)
    assert not conn.shutting_down


# ---------------------------------------------------------------------------------------------
# Switches: capacity and drain, on two in-process simulators whose `status` says what `fsctl` and
# the sessions up make it say (paused: recording 22's "is not ready").

# What the default scenario's caller leg to this number does: answers, never hangs up.
PARKED_NUMBER = "+16465550999"


class SimulatedSwitch:
    """A simulator, and calls c2c does not know of that the test holds on it (another
    application's, parked), which its `status` counts among its sessions."""

    def __init__(self) -> None:
        self.fake = FakeSwitch("127.0.0.1", 0, PASSWORD, heartbeat=None, time_scale=0).start()
        self.parked: list[str] = []

    def address(self) -> SwitchAddress:
        return SwitchAddress("127.0.0.1", self.fake.port, PASSWORD)

    def fsctl(self, args: str) -> str:
        return self.fake.api_command(f"fsctl {args}")

    def hold_sessions(self, count: int) -> None:
        """Parks calls, or hangs parked ones up, until ``count`` sessions are up."""
        while len(self.parked) > count:
            assert self.fake.api_command(f"uuid_kill {self.parked.pop()}").startswith("+OK")
        while len(self.parked) < count:
            leg = str(uuid.uuid4())
            gevent.spawn(
                self.fake.api_command,
                f"originate {{origination_uuid={leg}}}sofia/gateway/default/{PARKED_NUMBER} &park",
            )
            self.parked.append(leg)
        wait_until(lambda: self.fake.switchboard.count == count)

    def stop(self) -> None:
        self.fake.stop()


@pytest.fixture
def fleet() -> Iterator[tuple[Switches, SimulatedSwitch, SimulatedSwitch, list]]:
    """Switches over two simulators (probes every 0.1 s), the simulators, and the records the
    store would share (a list the test edits)."""
    first, second = SimulatedSwitch(), SimulatedSwitch()
    records: list[SwitchRecord] = []
    config = Config.defaults(
        switches=(first.address(), second.address()), esl_timeout=1.0, esl_liveness_seconds=0.3
    )
    switches = Switches(config, records=lambda: list(records), refresh_every=0.05)
    switches.start()
    try:
        wait_until(lambda: all(view.live for view in switches.views()))
        yield switches, first, second, records
    finally:
        switches.stop()
        first.stop()
        second.stop()


def names(switches: Switches) -> tuple[str, str]:
    a, b = (view.name for view in switches.views())
    return a, b


def picked(switches: Switches, in_flight: dict[str, int] | None = None) -> str | None:
    try:
        return switches.pick(in_flight or {}).name
    except SwitchUnavailable:
        return None


def test_a_paused_switch_gets_no_calls_until_resumed(fleet) -> None:
    switches, first, second, _ = fleet
    a, b = names(switches)
    assert first.fsctl("pause") == "+OK\n"
    wait_until(lambda: switches.pick({}).name == b)
    assert [refusal(view) for view in switches.views()] == ["paused", None]
    assert all(switches.pick({a: 0, b: 50}).name == b for _ in range(20))
    assert second.fsctl("pause") == "+OK\n"
    wait_until(lambda: refusal(switches.views()[1]) == "paused")
    with pytest.raises(SwitchUnavailable, match=f"{a} paused, {b} paused"):
        switches.pick({})
    assert first.fsctl("resume") == "+OK\n"
    wait_until(lambda: picked(switches) == a)


def test_pick_can_leave_out_the_switch_that_just_refused(fleet) -> None:
    switches = fleet[0]
    a, b = names(switches)
    assert switches.pick({}, exclude={a}).name == b
    assert switches.pick({}, exclude=()).name == a
    besides = ", ".join(sorted((a, b)))
    with pytest.raises(SwitchUnavailable, match=rf"\(besides {besides}\): none"):
        switches.pick({}, exclude={a, b})


def test_a_full_switch_gets_no_calls(fleet) -> None:
    switches, first, second = fleet[:3]
    a, b = names(switches)
    first.fsctl("max_sessions 10")
    first.hold_sessions(8)  # 80%, but one more call would pass 90%
    second.fsctl("max_sessions 100")
    second.hold_sessions(85)  # 85%: more used, yet room for a call
    wait_until(lambda: picked(switches) == b)
    assert refusal(switches.views()[0]) == "full (8 of 10 sessions)"
    first.hold_sessions(6)
    wait_until(lambda: picked(switches) == a)


def test_the_busier_switch_by_share_of_its_sessions_is_left_alone(fleet) -> None:
    switches, first, second, _ = fleet
    a, b = names(switches)
    first.fsctl("max_sessions 100")
    first.hold_sessions(10)  # 10%
    second.fsctl("max_sessions 400")
    second.hold_sessions(30)  # 7.5%
    wait_until(lambda: switches.pick({}).name == b)


def test_the_spent_sessions_per_second_budget_sends_calls_elsewhere(fleet) -> None:
    switches, first, _, _ = fleet
    a, b = names(switches)
    assert first.fsctl("sps 9") == "+OK sessions per second: 9\n"  # 8 sessions a second: 4 calls
    wait_until(lambda: (switches.views()[0].load or SwitchLoad()).sps_limit == 9)
    # the same worker picks the same switch until its own originates spend the budget
    assert [switches.pick({}).name for _ in range(6)] == [a, a, a, a, b, b]
    wait_until(lambda: switches.pick({}).name == a)  # the next second's budget


def test_a_drained_switch_gets_no_calls_and_an_undrained_one_does_again(fleet) -> None:
    switches, _, _, records = fleet
    a, b = names(switches)
    records.append(SwitchRecord(a, draining=True))
    wait_until(lambda: switches.pick({a: 0, b: 10}).name == b)
    assert switches.views()[0].draining and refusal(switches.views()[0]) == "draining"
    records[0] = SwitchRecord(a, draining=False)
    wait_until(lambda: switches.pick({a: 0, b: 10}).name == a)


def test_a_store_that_cannot_be_read_keeps_the_last_drain_flags(two_servers, caplog) -> None:
    first, second = two_servers
    config = Config.defaults(switches=(first.address(), second.address()), esl_timeout=1.0)
    answers: list[object] = [[SwitchRecord(first.address().name, draining=True)]]

    def records() -> list[SwitchRecord]:
        answer = answers[-1]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    switches = Switches(config, records=records, refresh_every=0.02)
    switches.start()
    try:
        wait_until(lambda: switches.views()[0].draining)
        answers.append(StoreError("database is gone"))
        wait_until(lambda: any("keeping the last" in r.getMessage() for r in caplog.records))
        gevent.sleep(0.1)
        assert switches.views()[0].draining
        answers.append([SwitchRecord(first.address().name, draining=False)])
        wait_until(lambda: not switches.views()[0].draining)
    finally:
        switches.stop()

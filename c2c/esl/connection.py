"""One Event Socket connection to one FreeSWITCH, kept alive.

greenswitch 0.0.19's InboundESL has the right shape (a socket, a reader greenlet, replies matched
to commands in order) but no timeouts and no reconnect, leaves pending commands hanging forever
when the socket drops, and folds BACKGROUND_JOB bodies into the Content-Length header.
``_EslSession`` subclasses it and replaces its reading and sending with c2c.esl.protocol (one
TCP session, from connect to close); ``EslConnection`` supervises sessions: connect,
authenticate, subscribe, filter, and reconnect with backoff, for as long as it runs.

Liveness: a session can be watched for silence (no frame at all for ``liveness`` seconds: dropped
and reconnected, so an event connection to a frozen host or through a NAT that forgot it does not
stay "connected" forever) and probed with ``api status`` every ``probe_every`` seconds (a probe
that gets no answer in time drops the session; its answer is handed to ``on_probe``). The socket
also has TCP keepalive, so the kernel notices a peer that is gone while nothing is sent.

Originate verdicts (``watch_originates``): the connection also subscribes to CHANNEL_CREATE and
BACKGROUND_JOB, filtered to UUIDs that start with its own random tag (``tagged_uuid``), so that
the worker that sent an originate learns within milliseconds whether the caller's leg exists or
the switch refused the job, and hears nothing of other workers' calls (c2c.calls.retry).
"""

from __future__ import annotations

import logging
import random
import secrets
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum

import gevent
import gevent.event
import gevent.lock
import gevent.queue
from gevent import socket
from greenswitch.esl import InboundESL

from c2c.config import SwitchAddress
from c2c.errors import (
    CommandFailed,
    CommandTimeout,
    ReplyLost,
    SwitchError,
    SwitchUnavailable,
)
from c2c.esl.protocol import (
    Event,
    Frame,
    FrameParser,
    ProtocolError,
    encode_command,
    parse_event,
)

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 5.0
# A wrong password will not fix itself; retry, but slowly, so the switch's log stays readable.
AUTH_RETRY_SECONDS = 30.0
# BACKGROUND_JOB results nobody asked for are forgotten after this long.
JOB_RESULT_TTL_SECONDS = 900.0
# A watched leg whose verdict nobody came for is forgotten after this long (waits are shorter).
LEG_WATCH_TTL_SECONDS = 60.0
# How often a watched session is looked at (at most; smaller for small liveness windows).
WATCH_TICK_SECONDS = 0.5
KEEPALIVE_PROBES = 3
PROBE_COMMAND = "api status"
EVENT_FORMATS = ("plain", "json", "xml")
# What a connection that watches its originates hears: the first event of a leg, and the job's
# result. Two events per call placed through it, none for anyone else's calls (see tagged_uuid).
VERDICT_EVENTS = ("CHANNEL_CREATE", "BACKGROUND_JOB")
TAG_LENGTH = 8  # hex digits: a UUID's first group
_RECV_SIZE = 65536


class SwitchState(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # also: not connected yet
    FAILED = "failed"  # the switch refused us (password, ACL); retried slowly
    STOPPED = "stopped"


class AuthenticationFailed(SwitchUnavailable):
    """The switch refused our password, or its ACL refused us."""


def keepalive_timings(liveness: float | None) -> tuple[int, int, int]:
    """TCP keepalive (idle seconds, seconds between probes, probes) so that the kernel gives a
    silent peer up within about two thirds of the liveness window (45 s: 15 + 3 x 5 = 30 s)."""
    window = liveness or 45.0
    return max(1, int(window / 3)), max(1, int(window / 9)), KEEPALIVE_PROBES


def enable_keepalive(sock: socket.socket, idle: int, interval: int, count: int) -> None:
    """SO_KEEPALIVE, and its timings where the platform has the options (Linux has all three)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval),
                          ("TCP_KEEPCNT", count)):
        number = getattr(socket, option, None)
        if number is None:
            continue
        try:
            sock.setsockopt(socket.IPPROTO_TCP, number, value)
        except OSError as exc:  # refused by this kernel: the system defaults stay
            logger.debug("%s=%d not set: %s", option, value, exc)


def reconnect_delay(
    attempt: int,
    rng: Callable[[], float] = random.random,
    first: float = FIRST_RETRY_SECONDS,
    cap: float = MAX_RETRY_SECONDS,
) -> float:
    """Seconds before reconnect attempt ``attempt`` (0 for the first after a loss).

    Doubles from ``first`` up to ``cap``, with "equal jitter" (between half and all of it) so
    that every worker of every host does not knock on a restarted switch in the same instant.
    """
    ceiling = min(cap, first * 2.0 ** min(max(attempt, 0), 30))
    return ceiling / 2 + ceiling / 2 * rng()


class _PendingCommand:
    __slots__ = ("result", "sent_at")

    def __init__(self) -> None:
        self.result: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self.sent_at = time.monotonic()


class _EslSession(InboundESL):
    """One authenticated TCP session. Replies are matched to commands in the order sent."""

    def __init__(
        self,
        address: SwitchAddress,
        timeout: float,
        on_event_frame: Callable[[Frame], None],
        stalled_after: float,
        on_close: Callable[[_EslSession], None] = lambda session: None,
        keepalive: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__(address.host, address.port, address.password, timeout)
        self.name = address.name
        self.stalled_after = stalled_after
        self.keepalive = keepalive
        self.closed = gevent.event.Event()
        self.close_reason = ""
        self.shutdown_notice = False  # the switch said "The system is being shut down."
        self.last_frame_at = time.monotonic()  # when anything last arrived (monotonic)
        self._on_event_frame = on_event_frame
        self._on_close = on_close
        self._parser = FrameParser()
        self._early: deque[Frame] = deque()  # frames that came with the handshake's
        self._pending: deque[_PendingCommand] = deque()
        self._send_lock = gevent.lock.Semaphore()
        self._reader: gevent.Greenlet | None = None
        self.sock: socket.socket | None = None

    # -- handshake ------------------------------------------------------------------------

    def connect(self) -> None:
        """TCP connect, greeting and auth, all within ``timeout``; then start reading."""
        deadline = time.monotonic() + self.timeout
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise SwitchUnavailable(f"{self.name}: cannot connect: {exc}") from exc
        try:
            if self.keepalive is not None:
                enable_keepalive(self.sock, *self.keepalive)
            greeting = self._read_frame(deadline)
            if greeting.content_type == "text/rude-rejection":
                raise AuthenticationFailed(f"{self.name}: refused by the switch's ACL")
            if greeting.content_type != "auth/request":
                raise SwitchUnavailable(f"{self.name}: unexpected greeting {greeting!r}")
            self.sock.sendall(encode_command(f"auth {self.password}"))
            reply = self._read_frame(deadline)
            if not reply.reply_text.startswith("+OK"):
                raise AuthenticationFailed(
                    f"{self.name}: authentication failed ({reply.reply_text.strip()})"
                )
        except BaseException as exc:
            self._close(f"handshake failed: {exc}")
            raise
        self.connected = True
        self.sock.settimeout(self.timeout)  # bounds sendall; the reader treats it as idle time
        self._reader = gevent.spawn(self.receive_events)

    def _read_frame(self, deadline: float) -> Frame:
        assert self.sock is not None
        while not self._early:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SwitchUnavailable(f"{self.name}: no greeting or auth reply in time")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(_RECV_SIZE)
            except TimeoutError as exc:
                raise SwitchUnavailable(f"{self.name}: no greeting or auth reply in time") from exc
            except OSError as exc:
                raise SwitchUnavailable(f"{self.name}: {exc}") from exc
            if not data:
                raise SwitchUnavailable(f"{self.name}: closed during the handshake")
            self.last_frame_at = time.monotonic()
            self._early.extend(self._parser.feed(data))
        return self._early.popleft()

    # -- reading (greenswitch's receive_events/handle_event, on FrameParser) -----------------

    def receive_events(self) -> None:
        reason = "closed by the switch"
        try:
            while self._early:
                self.handle_event(self._early.popleft())
            assert self.sock is not None
            while True:
                try:
                    data = self.sock.recv(_RECV_SIZE)
                except TimeoutError:
                    continue  # idle; the socket timeout exists to bound sendall
                if not data:
                    break
                self.last_frame_at = time.monotonic()
                for frame in self._parser.feed(data):
                    self.handle_event(frame)
        except gevent.GreenletExit:
            reason = self.close_reason or "stopped"
        except (OSError, ProtocolError) as exc:
            reason = self.close_reason or f"read failed: {exc}"
        finally:
            self._close(reason)

    def handle_event(self, frame: Frame) -> None:
        content_type = frame.content_type
        if content_type in ("command/reply", "api/response"):
            if self._pending:
                self._pending.popleft().result.set(frame)
            else:
                logger.warning("%s: reply with no command waiting: %r", self.name, frame)
        elif content_type.startswith("text/event-"):
            self._on_event_frame(frame)
        elif content_type == "text/disconnect-notice":
            if frame.get("Content-Disposition") != "linger":
                message = frame.body.decode("utf-8", "replace").strip()
                self.close_reason = f"disconnect notice: {message}"
                # Recording 15: "The system is being shut down." (the goodbye after `exit` differs)
                self.shutdown_notice = "shut down" in message
                logger.info("%s: %s", self.name, self.close_reason)
        elif content_type != "log/data":
            logger.debug("%s: ignoring %r", self.name, frame)

    # -- commands ---------------------------------------------------------------------------

    def send_command(self, data: bytes, timeout: float) -> Frame:
        """Send one encoded command and wait up to ``timeout`` for its reply."""
        self._close_if_stalled()
        if self.closed.is_set():
            raise SwitchUnavailable(f"{self.name}: not connected ({self.close_reason})")
        pending = _PendingCommand()
        if not self._send_lock.acquire(timeout=timeout):
            raise CommandTimeout(f"{self.name}: could not send within {timeout} s")
        try:
            # Enqueue and write as one step, so the queue's order is the wire's order.
            if self.closed.is_set():
                raise SwitchUnavailable(f"{self.name}: not connected ({self.close_reason})")
            self._pending.append(pending)
            try:
                assert self.sock is not None
                self.sock.sendall(data)
            except BaseException as exc:
                # A half-written command leaves the stream unusable.
                self._close(f"send failed: {exc!r}")
                if isinstance(exc, OSError):
                    raise SwitchUnavailable(f"{self.name}: send failed: {exc}") from exc
                raise
        finally:
            self._send_lock.release()
        pending.result.wait(timeout)  # returns the value, not whether it is ready
        if not pending.result.ready():
            # The slot stays queued: when the late reply comes, it is matched and dropped.
            self._close_if_stalled()
            raise CommandTimeout(f"{self.name}: no reply within {timeout} s")
        return pending.result.get()

    def send(self, data: str) -> Frame:
        """greenswitch's entry point, with a timeout."""
        return self.send_command(encode_command(data), self.timeout)

    def silent_for(self, now: float) -> float:
        """Seconds since anything arrived on this session."""
        return now - self.last_frame_at

    def overdue(self, now: float, timeout: float) -> bool:
        """Whether a command has waited for its reply longer than ``timeout``."""
        return bool(self._pending) and now - self._pending[0].sent_at > timeout

    def _close_if_stalled(self) -> None:
        if self._pending and time.monotonic() - self._pending[0].sent_at > self.stalled_after:
            self._close(f"no reply for {self.stalled_after:g} s")

    # -- closing ----------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        self._close(reason)
        reader = self._reader
        if reader is not None and reader is not gevent.getcurrent():
            reader.kill(block=True, timeout=self.timeout)

    def stop(self) -> None:  # greenswitch's name
        self.close("stopped")

    def _close(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = self.close_reason or reason
        self.connected = False
        if self.sock is not None:
            self.sock.close()
        # Sent but unanswered: the switch may have run it, which callers must not mistake for
        # "never sent".
        lost = ReplyLost(f"{self.name}: connection lost before the reply ({self.close_reason})")
        while self._pending:
            result = self._pending.popleft().result
            if not result.ready():
                result.set_exception(lost)
        self.closed.set()
        self._on_close(self)


class EslConnection:
    """A connection to one switch that keeps itself connected, subscribed and filtered."""

    def __init__(
        self,
        address: SwitchAddress,
        timeout: float,
        events: Sequence[str] = (),
        filters: Iterable[tuple[str, str]] = (),
        on_event: Callable[[Event], None] | None = None,
        event_format: str = "plain",
        *,
        on_connected: Callable[[], None] | None = None,
        auth_retry_delay: float = AUTH_RETRY_SECONDS,
        stalled_after: float | None = None,
        liveness: float | None = None,
        probe_every: float | None = None,
        on_probe: Callable[[str], None] | None = None,
        keepalive: bool = True,
        rng: Callable[[], float] = random.random,
        watch_originates: bool = False,
    ) -> None:
        if event_format not in EVENT_FORMATS:
            raise ValueError(f"event_format must be one of {EVENT_FORMATS}")
        if filters and not events:
            raise ValueError("filters without events filter nothing")
        self.address = address
        self.name = address.name
        self.timeout = timeout
        self.events = tuple(events)
        self.filters = list(filters)
        # The first group of every UUID tagged_uuid() makes. Random per connection, and built in
        # the worker (the app is loaded after the fork): a tag shared by two workers would only
        # bring each the other's events, which nobody awaits.
        self.tag: str | None = None
        if watch_originates:
            self.tag = secrets.token_hex(TAG_LENGTH // 2)
            self.events = tuple(dict.fromkeys((*self.events, *VERDICT_EVENTS)))
            # OR-ed with any other filter: a BACKGROUND_JOB passes by its Job-UUID, a
            # CHANNEL_CREATE by its Unique-ID; neither has the other header.
            self.filters += [("Job-UUID", f"/^{self.tag}/"), ("Unique-ID", f"/^{self.tag}/")]
        self.event_format = event_format
        self.auth_retry_delay = auth_retry_delay
        # A reply this late means the switch (or the path to it) is gone: reconnect.
        self.stalled_after = stalled_after if stalled_after is not None else max(30.0, 6 * timeout)
        # No frame for this long: the session is dropped (None: never).
        self.liveness = liveness or None
        # `api status` this often, the first before the session counts as connected (None: never).
        self.probe_every = probe_every or None
        self._on_probe = on_probe
        self._keepalive = keepalive_timings(self.liveness) if keepalive else None
        self._shutting_down = False
        self.connects = 0  # sessions established so far
        self._on_event = on_event
        self._on_connected = on_connected
        self._rng = rng
        self._state = SwitchState.STOPPED
        self._connected = gevent.event.Event()
        self._session: _EslSession | None = None
        self._supervisor: gevent.Greenlet | None = None
        self._worker: gevent.Greenlet | None = None
        # Unbounded on purpose: reading must never wait for handlers (FreeSWITCH disconnects a
        # listener whose queue overflows).
        self._events: gevent.queue.Queue = gevent.queue.Queue()
        # In the order registered, i.e. oldest first (see _job_result).
        self._jobs: OrderedDict[str, tuple[float, gevent.event.AsyncResult]] = OrderedDict()
        # Legs whose CHANNEL_CREATE an originate_verdict() waits for, by Unique-ID.
        self._legs: dict[str, tuple[float, gevent.event.AsyncResult]] = {}
        self._stopping = False

    def __repr__(self) -> str:
        return f"EslConnection({self.name}, {self._state.value})"

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def state(self) -> SwitchState:
        return self._state

    @property
    def live(self) -> bool:
        """Connected, something arrived within the liveness window, and no command has waited
        for its reply beyond the timeout (a switch that stops answering is not live at once,
        before the probe or the silence gives the session up)."""
        session = self._session
        if session is None or self._state is not SwitchState.CONNECTED:
            return False
        now = time.monotonic()
        if self.liveness is not None and session.silent_for(now) > self.liveness:
            return False
        return not session.overdue(now, self.timeout)

    @property
    def shutting_down(self) -> bool:
        """The last session ended with the switch's shutdown notice, and none is up since."""
        return self._shutting_down and self._state is not SwitchState.CONNECTED

    def start(self) -> None:
        """Connect in the background, and stay connected until stop()."""
        if self._supervisor is not None:
            return
        self._stopping = False
        self._set_state(SwitchState.RECONNECTING, "starting")
        if self._on_event is not None:
            self._worker = gevent.spawn(self._deliver_events)
        self._supervisor = gevent.spawn(self._run)

    def stop(self) -> None:
        """Close the connection and end every greenlet this connection started."""
        self._stopping = True
        session = self._session
        if session is not None:
            session.close("stopped")
        current = gevent.getcurrent()
        greenlets = [g for g in (self._supervisor, self._worker) if g is not None]
        gevent.killall([g for g in greenlets if g is not current], timeout=self.timeout)
        self._supervisor = self._worker = None
        dropped = self._events.qsize()
        if dropped:
            logger.warning("%s: stopped with %d events not yet handled", self.name, dropped)
            self._events = gevent.queue.Queue()
        stopped = SwitchUnavailable(f"{self.name}: stopped")
        for _, result in self._jobs.values():
            if not result.ready():
                result.set_exception(stopped)
        self._jobs.clear()
        for _, result in self._legs.values():
            if not result.ready():
                result.set_exception(stopped)
        self._legs.clear()
        self._set_state(SwitchState.STOPPED, "stopped")

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def _set_state(self, state: SwitchState, reason: str = "") -> None:
        previous, self._state = self._state, state
        if state is SwitchState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        if state is previous:
            return
        if state is SwitchState.FAILED:
            logger.error(
                "switch %s: %s; retrying every %.0f s", self.name, reason, self.auth_retry_delay
            )
        elif state is SwitchState.STOPPED:
            logger.info("switch %s: stopped", self.name)
        elif previous is SwitchState.CONNECTED:
            logger.warning("switch %s: %s; reconnecting", self.name, reason)
        else:
            logger.info("switch %s: %s (%s)", self.name, state.value, reason)

    def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            session = _EslSession(
                self.address,
                self.timeout,
                self._on_event_frame,
                self.stalled_after,
                self._session_closed,
                self._keepalive,
            )
            try:
                session.connect()
                self._subscribe(session)
                if self.probe_every is not None:
                    self._probe(session)  # a switch that cannot answer `status` is not up
            except AuthenticationFailed as exc:
                session.close(str(exc))
                self._set_state(SwitchState.FAILED, str(exc))
                gevent.sleep(self.auth_retry_delay)
                continue
            except (SwitchError, OSError) as exc:
                session.close(str(exc))
                delay = reconnect_delay(attempt, self._rng)
                attempt += 1
                self._set_state(SwitchState.RECONNECTING, str(exc))
                # every failure at debug, about once a minute at warning
                level = logging.WARNING if attempt % 12 == 1 else logging.DEBUG
                logger.log(level, "switch %s: %s; retry in %.2f s", self.name, exc, delay)
                gevent.sleep(delay)
                continue
            except gevent.GreenletExit:
                session.close("stopped")
                raise
            except Exception:  # a bug must not end reconnecting for good
                logger.exception("switch %s: unexpected error while connecting", self.name)
                session.close("unexpected error")
                self._set_state(SwitchState.RECONNECTING, "unexpected error")
                gevent.sleep(MAX_RETRY_SECONDS)
                continue
            attempt = 0
            self._session = session
            self._shutting_down = False
            self.connects += 1
            self._set_state(SwitchState.CONNECTED, "connected")
            if self._on_connected is not None:
                try:
                    self._on_connected()
                except Exception:
                    logger.exception("switch %s: on_connected hook failed", self.name)
            self._watch(session)
            self._session = None
            if self._stopping:
                return
            self._set_state(SwitchState.RECONNECTING, f"connection lost ({session.close_reason})")
            gevent.sleep(reconnect_delay(attempt, self._rng))
            attempt += 1

    def _watch(self, session: _EslSession) -> None:
        """Until ``session`` closes: give it up when silent for the liveness window, or when a
        probe goes unanswered."""
        periods = [p for p in (self.liveness, self.probe_every) if p is not None]
        if not periods:
            session.closed.wait()
            return
        tick = min(WATCH_TICK_SECONDS, *(period / 4 for period in periods))
        last_probe = time.monotonic()  # the one sent while connecting
        while not session.closed.wait(tick):
            now = time.monotonic()
            if self.liveness is not None and session.silent_for(now) > self.liveness:
                session.close(f"silent for {self.liveness:g} s")
                return
            if self.probe_every is not None and now - last_probe >= self.probe_every:
                last_probe = now
                try:
                    self._probe(session)
                except CommandTimeout as exc:  # ReplyLost included: closed already
                    session.close(f"probe unanswered: {exc}")
                except SwitchError as exc:
                    logger.debug("switch %s: probe failed: %s", self.name, exc)

    def _probe(self, session: _EslSession) -> None:
        timeout = min(self.timeout, self.liveness) if self.liveness is not None else self.timeout
        frame = session.send_command(encode_command(PROBE_COMMAND), timeout)
        if self._on_probe is not None:
            try:
                self._on_probe(frame.body.decode("utf-8", "replace"))
            except Exception:
                logger.exception("switch %s: probe handler failed", self.name)

    def _session_closed(self, session: _EslSession) -> None:
        if session.shutdown_notice:
            self._shutting_down = True
        # Right away, not when the supervisor next runs: /readyz and pick() must not see a dead
        # session as connected.
        if session is self._session and not self._stopping:
            self._set_state(SwitchState.RECONNECTING, f"connection lost ({session.close_reason})")

    def _subscribe(self, session: _EslSession) -> None:
        lines = []
        if self.events:
            lines.append(f"event {self.event_format} {' '.join(self.events)}")
        lines += [f"filter {header} {value}" for header, value in self.filters]
        for line in lines:
            reply = session.send_command(encode_command(line), self.timeout).reply_text
            if not reply.startswith("+OK"):
                raise CommandFailed(f"{self.name}: {line!r} refused: {reply}")

    # -- events -------------------------------------------------------------------------------

    def _on_event_frame(self, frame: Frame) -> None:
        """In the reader greenlet: parse, settle a bgapi waiter, queue for the handler."""
        try:
            event = parse_event(frame)
        except ProtocolError as exc:
            logger.warning("%s: unreadable event dropped: %s", self.name, exc)
            return
        if event.name == "BACKGROUND_JOB":
            job = self._jobs.get(event.job_uuid or "")
            if job is not None and not job[1].ready():
                job[1].set(event)
        elif event.name == "CHANNEL_CREATE" and self._legs:
            leg = self._legs.get(event.unique_id or "")
            if leg is not None and not leg[1].ready():
                leg[1].set(event)
        if self._on_event is not None:
            self._events.put(event)

    def _deliver_events(self) -> None:
        assert self._on_event is not None
        while True:
            event = self._events.get()
            try:
                self._on_event(event)
            except Exception:
                logger.exception("%s: event handler failed on %s", self.name, event.name)

    # -- commands -----------------------------------------------------------------------------

    def _current_session(self) -> _EslSession:
        session = self._session
        if session is None or self._state is not SwitchState.CONNECTED:
            raise SwitchUnavailable(f"switch {self.name} is {self._state.value}")
        return session

    def command(
        self, line: str, headers: Sequence[tuple[str, str]] = (), timeout: float | None = None
    ) -> Frame:
        """Send any command; the reply frame (command/reply or api/response)."""
        session = self._current_session()
        return session.send_command(encode_command(line, headers), timeout or self.timeout)

    def api(self, cmd: str, timeout: float | None = None, check: bool = True) -> str:
        """``api <cmd>``: its output. With ``check``, output starting -ERR raises CommandFailed."""
        output = self.command(f"api {cmd}", timeout=timeout).body.decode("utf-8", "replace")
        if check and output.startswith("-ERR"):
            raise CommandFailed(f"{self.name}: api {cmd.split(' ', 1)[0]}: {output.strip()}")
        return output

    def bgapi(self, cmd: str, job_uuid: str | None = None, timeout: float | None = None,
              *, leg_uuid: str | None = None) -> str:
        """``bgapi <cmd>``: the Job-UUID. We always send one, so that its BACKGROUND_JOB can be
        awaited with bgapi_result() even when it follows the reply at once. ``leg_uuid``: the
        caller leg's Unique-ID of an originate, whose CHANNEL_CREATE originate_verdict() then
        awaits too (watched from before the command is sent, as the job is)."""
        job_uuid = job_uuid or str(uuid.uuid4())
        if len(job_uuid) > 36 or any(ch.isspace() for ch in job_uuid):
            raise ValueError("a Job-UUID is at most 36 characters, without spaces")
        self._job_result(job_uuid)
        if leg_uuid is not None:
            self._watch_leg(leg_uuid)
        try:
            frame = self.command(f"bgapi {cmd}", [("Job-UUID", job_uuid)], timeout)
        except SwitchUnavailable:
            self._forget(job_uuid, leg_uuid)
            raise
        except BaseException:
            # No reply (it may have run): nobody will await this originate's verdict.
            self._forget(None, leg_uuid)
            raise
        reply = frame.reply_text
        if not reply.startswith("+OK"):
            self._forget(job_uuid, leg_uuid)
            raise CommandFailed(f"{self.name}: bgapi {cmd.split(' ', 1)[0]}: {reply}")
        return frame.get("Job-UUID") or reply.partition("Job-UUID:")[2].strip() or job_uuid

    def bgapi_result(self, job_uuid: str, timeout: float) -> Event:
        """The BACKGROUND_JOB event of a job (its body is the command's output, e.g.
        ``+OK <uuid>`` or ``-ERR USER_BUSY``). Needs ``BACKGROUND_JOB`` in ``events`` (and in
        the filters, if any). Survives reconnects: the job's event goes to every listener."""
        result = self._job_result(job_uuid)
        result.wait(timeout)
        if not result.ready():
            raise CommandTimeout(f"{self.name}: no BACKGROUND_JOB {job_uuid} within {timeout} s")
        self._jobs.pop(job_uuid, None)
        return result.get()

    def originate_verdict(self, job_uuid: str, leg_uuid: str, timeout: float) -> Event | None:
        """The first word on an originate sent with ``bgapi(..., leg_uuid=...)``: the caller
        leg's CHANNEL_CREATE (the leg exists), else the job's BACKGROUND_JOB (its result came
        first: a leg that never existed), else None after ``timeout``. The CHANNEL_CREATE wins
        whenever it is in, the job's result too or not (the leg existed). Needs
        ``watch_originates`` and UUIDs from tagged_uuid(). Forgets both either way."""
        job = self._job_result(job_uuid)
        leg = self._legs.get(leg_uuid, (0.0, None))[1]
        try:
            waiting = [result for result in (leg, job) if result is not None]
            gevent.wait(waiting, timeout=timeout, count=1)
            for result in waiting:
                if result.ready() and result.successful():
                    event: Event = result.get()
                    return event
            return None  # nothing yet, or stopped (SwitchUnavailable set on both)
        finally:
            self._forget(job_uuid, leg_uuid)

    def tagged_uuid(self) -> str:
        """A new random UUID that starts with this connection's tag, so that the events naming
        it (a BACKGROUND_JOB by its Job-UUID, a leg's CHANNEL_CREATE by its Unique-ID) pass this
        connection's filter; a plain UUID when it does not watch its originates."""
        fresh = str(uuid.uuid4())
        return fresh if self.tag is None else self.tag + fresh[TAG_LENGTH:]

    def _watch_leg(self, leg_uuid: str) -> None:
        # Entries leave in originate_verdict(); should a caller never get there, one older than
        # any verdict wait is dropped here (oldest first: dicts keep their insertion order).
        now = time.monotonic()
        legs = self._legs
        while legs:
            oldest = next(iter(legs))
            if now - legs[oldest][0] <= LEG_WATCH_TTL_SECONDS:
                break
            del legs[oldest]
        legs[leg_uuid] = (now, gevent.event.AsyncResult())

    def _forget(self, job_uuid: str | None, leg_uuid: str | None) -> None:
        if job_uuid is not None:
            self._jobs.pop(job_uuid, None)
        if leg_uuid is not None:
            self._legs.pop(leg_uuid, None)

    def _job_result(self, job_uuid: str) -> gevent.event.AsyncResult:
        now = time.monotonic()
        job = self._jobs.get(job_uuid)
        if job is None:
            # Forget from the oldest end up to the first fresh entry: scanning every entry on
            # each bgapi cost time in proportion to the call rate times the TTL (bench/).
            jobs = self._jobs
            while jobs:
                oldest = next(iter(jobs))
                if now - jobs[oldest][0] <= JOB_RESULT_TTL_SECONDS:
                    break
                del jobs[oldest]
            job = jobs[job_uuid] = (now, gevent.event.AsyncResult())
        return job[1]

"""One client connection, as mod_event_socket's listener thread runs it.

Commands are handled one at a time, in order; queued events are written only between commands
(so a bgapi reply always precedes its BACKGROUND_JOB, and a running ``api originate`` holds back
every event on this connection, as in FreeSWITCH). Authentication, the 25 s first-command limit,
``exit`` waiting for this connection's running bgapi jobs, and the misbehaviours of faults.py live
here too (a frozen switch: the listener neither runs commands nor writes, its events queue up).
"""

from __future__ import annotations

import collections
import logging
import socket
import uuid as uuid_module
from typing import TYPE_CHECKING

import gevent
import gevent.event

from c2c.esl.protocol import (
    DISCONNECT_GOODBYE,
    Command,
    CommandParser,
    ProtocolError,
    api_response_frame,
    auth_request_frame,
    command_reply_frame,
    disconnect_notice_frame,
)
from c2c.fakeswitch.events import FsEvent
from c2c.fakeswitch.subscriptions import Subscription

if TYPE_CHECKING:
    from c2c.fakeswitch.server import FakeSwitch

log = logging.getLogger(__name__)

AUTH_TIMEOUT = 25.0  # seconds for the first command (MES read_packet(..., 25))
MAX_QUEUE = 100_000  # events queued per listener (MAX_QUEUE_LEN)
MAX_MISSED = 500  # consecutive drops before the listener is killed (MAX_MISSED)
LOST_EVENTS = "killed listener because of lost events\n"
AT_BACKGROUND_JOB = ("mod_event_socket.c", "api_exec", 1572)
SIMULATED_ERROR = "-ERR simulated failure"


class Session:
    def __init__(self, switch: FakeSwitch, sock: socket.socket, address: tuple[str, int]) -> None:
        self.switch = switch
        self.sock = sock
        self.address = address
        self.subscription = Subscription()
        self.authenticated = False
        self.closing = False  # exit or wrong password: no more events, close soon
        self.closed = False
        self._commands: collections.deque[Command] = collections.deque()
        self._events: collections.deque[bytes] = collections.deque()
        self._missed = 0
        self._killed_for_lost_events = False
        self._wake = gevent.event.Event()
        self._closed_event = gevent.event.Event()
        self._eof = False
        self._jobs: set[gevent.event.AsyncResult] = set()
        self.logging_level: int | None = None

    def __repr__(self) -> str:
        return f"Session({self.address[0]}:{self.address[1]})"

    # ---------------------------------------------------------------------------------------
    # events in

    def interested(self, name: str) -> bool:
        if not self.authenticated or self.closing:
            return False
        subscription = self.subscription
        if subscription.all_events or name in subscription.names:
            return True
        return name == "CUSTOM" and bool(subscription.custom)

    def offer(self, event: FsEvent) -> None:
        if not self.authenticated or self.closing or self.closed:
            return
        if not self.subscription.wants(event):
            return
        if len(self._events) >= MAX_QUEUE:
            self._missed += 1
            if self._missed > MAX_MISSED and not self._killed_for_lost_events:
                log.warning("%r: killing listener because of too many lost events", self)
                self._killed_for_lost_events = True
                self._wake.set()
            return
        if self._missed:
            log.warning("%r: lost [%d] events", self, self._missed)
            self._missed = 0
        self._events.append(event.frame(self.subscription.event_format))
        self._wake.set()

    # ---------------------------------------------------------------------------------------
    # the listener loop

    def run(self) -> None:
        reader = gevent.spawn(self._read_loop)
        try:
            self._write(auth_request_frame())
            self._main_loop()
        except OSError as exc:
            log.debug("%r: socket error: %s", self, exc)
        except _Closed:
            pass
        except Exception:
            log.exception("%r: listener failed", self)
        finally:
            reader.kill(block=False)
            self.close()

    def _main_loop(self) -> None:
        first_command_by = gevent.get_hub().loop.now() + AUTH_TIMEOUT
        first = True
        while not self.closed:
            if self.switch.faults.frozen:
                self._sit_frozen()
                continue
            if self._killed_for_lost_events:
                self._disconnect(LOST_EVENTS)
                return
            if self._commands:
                first = False
                self._handle(self._commands.popleft())
                continue
            if self._events and not self.closing:
                self._flush_events()
                continue
            if self._eof:
                return
            self._wake.clear()
            if first:
                remaining = first_command_by - gevent.get_hub().loop.now()
                if remaining <= 0 or not self._wake.wait(timeout=remaining):
                    if not self._commands and not self.switch.faults.frozen:
                        log.info("%r: no command within %.0f s", self, AUTH_TIMEOUT)
                        self._disconnect()
                        return
            else:
                self._wake.wait()

    def _sit_frozen(self) -> None:
        """A frozen host: run nothing and write nothing until thawed. Commands and events keep
        queuing; a client that hangs up meanwhile is closed without a word."""
        faults = self.switch.faults
        while faults.frozen and not self.closed:
            if self._eof:
                raise _Closed()
            self._wake.clear()
            gevent.wait([faults.thawed, self._wake], count=1, timeout=1.0)

    def _read_loop(self) -> None:
        parser = CommandParser()
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self._commands.extend(parser.feed(data))
                self._wake.set()
        except (OSError, ProtocolError) as exc:
            log.debug("%r: read ended: %s", self, exc)
        self._eof = True
        self._wake.set()

    def _flush_events(self) -> None:
        frames: list[bytes] = []
        while self._events and len(frames) < 256:
            frames.append(self._events.popleft())
        self._write(b"".join(frames))

    # ---------------------------------------------------------------------------------------
    # writing

    def _write(self, data: bytes) -> None:
        faults = self.switch.faults
        while faults.frozen and not self.closed:  # e.g. auth/request to a new connection
            gevent.wait([faults.thawed, self._closed_event], count=1, timeout=1.0)
        if self.closed:
            raise _Closed()
        if self.authenticated and faults.stall:
            return  # swallowed: the client waits forever
        if self.authenticated and faults.close_mid_frame:
            self.sock.sendall(data[: max(1, len(data) // 2)])
            log.info("%r: fault: closing mid-frame", self)
            self.close()
            raise _Closed()
        self.sock.sendall(data)

    def _reply(self, text: str, extra: list[tuple[str, str]] | None = None) -> None:
        self._write(command_reply_frame(text, extra or []))

    def _disconnect(self, message: str = DISCONNECT_GOODBYE) -> None:
        """The goodbye notice, then close (send_disconnect); nothing is said while frozen."""
        try:
            if not self.closed and not self.switch.faults.frozen:
                self.sock.sendall(disconnect_notice_frame(message))
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.closing = True
        self.switch.bus.remove(self)
        self._events.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._wake.set()
        self._closed_event.set()
        self.switch.forget_session(self)

    def drop(self) -> None:
        """Close without a word (the drop-every-N-seconds fault, a crash)."""
        self.close()

    def shutdown(self, message: str) -> None:
        """FreeSWITCH is stopping: flush what is queued, say so, close (a frozen host just
        goes: its connections are closed without a word)."""
        if self.closed:
            return
        if self.switch.faults.frozen:
            self.close()
            return
        try:
            if self._events and not self.closing:
                self.sock.sendall(b"".join(self._events))
            self._events.clear()
        except OSError:
            pass
        self._disconnect(message)

    # ---------------------------------------------------------------------------------------
    # commands

    def _handle(self, command: Command) -> None:
        name = command.name
        args = command.args.strip()
        log.debug("%r: command %r", self, command.line)
        if name in ("exit", "..."):
            self._exit()
            return
        if not self.authenticated:
            if name == "auth":
                self._auth(args)
            elif name == "userauth":
                self._auth(args.rpartition(":")[2])
            else:
                self._reply("-ERR command not found")
            return
        if self.switch.faults.error_all:
            if name == "api":
                self._write(api_response_frame(SIMULATED_ERROR + "\n"))
            else:
                self._reply(SIMULATED_ERROR)
            return
        handler = {
            "api": self._api,
            "bgapi": self._bgapi,
            "event": self._event,
            "nixevent": self._nixevent,
            "noevents": self._noevents,
            "filter": self._filter,
            "log": self._log,
            "nolog": self._nolog,
            "linger": self._not_controlling,
            "nolinger": self._not_controlling,
            "sendevent": self._sendevent,
            "divert_events": self._divert_events,
        }.get(name)
        if handler is None:
            self._reply("-ERR command not found")
        else:
            handler(command, args)

    def _auth(self, password: str) -> None:
        if password == self.switch.password:
            self._reply("+OK accepted")
            # Faults apply from the first frame after this reply.
            self.authenticated = True
            self.switch.bus.add(self)
            return
        log.info("%r: wrong password", self)
        self.closing = True
        self._reply("-ERR invalid")
        self._disconnect()

    def _exit(self) -> None:
        self.closing = True
        self._events.clear()
        self._reply("+OK bye")
        # The connection's bgapi jobs finish first; their BACKGROUND_JOB never comes here (14).
        for job in list(self._jobs):
            job.wait()
        self._disconnect()

    def _api(self, command: Command, args: str) -> None:
        result = gevent.event.AsyncResult()
        self.switch.api.run(args, result.set)
        output = result.get()
        if output == "":
            output = "-ERR no reply\n"
        self._write(api_response_frame(output))

    def _bgapi(self, command: Command, args: str) -> None:
        job_uuid = (command.get("Job-UUID") or str(uuid_module.uuid4()))[:36]
        self._reply(f"+OK Job-UUID: {job_uuid}", [("Job-UUID", job_uuid)])
        finished = gevent.event.AsyncResult()
        self._jobs.add(finished)
        verb, _, rest = args.partition(" ")

        def done(output: str) -> None:
            headers = [("Job-UUID", job_uuid), ("Job-Command", verb)]
            if rest.strip():
                headers.append(("Job-Command-Arg", rest))
            self.switch.bus.fire("BACKGROUND_JOB", AT_BACKGROUND_JOB, headers, body=output)
            finished.set(output)
            self._jobs.discard(finished)

        # Like FreeSWITCH's job thread: it starts after the reply is on its way.
        self.switch.clock.call_soon(self.switch.api.run, args, done)

    def _event(self, command: Command, args: str) -> None:
        self._reply(self.subscription.subscribe(args))

    def _nixevent(self, command: Command, args: str) -> None:
        self._reply(self.subscription.unsubscribe(args))

    def _noevents(self, command: Command, args: str) -> None:
        reply = self.subscription.clear()
        if reply.startswith("+OK"):
            self._events.clear()
        self._reply(reply)

    def _filter(self, command: Command, args: str) -> None:
        self._reply(self.subscription.filter_command(args))

    def _log(self, command: Command, args: str) -> None:
        levels = {
            "console": 0,
            "alert": 1,
            "crit": 2,
            "err": 3,
            "warning": 4,
            "notice": 5,
            "info": 6,
            "debug": 7,
        }
        word = args.split()[0].lower() if args else "debug"
        level = int(word) if word.isdigit() else levels.get(word)
        if level is None or not 0 <= level <= 7:
            self._reply("-ERR invalid log level")
            return
        self.logging_level = level
        name = next(key for key, value in levels.items() if value == level).upper()
        self._reply(f"+OK log level {name} [{level}]")

    def _nolog(self, command: Command, args: str) -> None:
        if self.logging_level is None:
            self._reply("-ERR not loging")
            return
        self.logging_level = None
        self._reply("+OK no longer logging")

    def _not_controlling(self, command: Command, args: str) -> None:
        self._reply("-ERR not controlling a session")

    def _divert_events(self, command: Command, args: str) -> None:
        self._reply("-ERR not controlling a session.")

    def _sendevent(self, command: Command, args: str) -> None:
        name = (args.split() or ["CUSTOM"])[0].upper()
        event_uuid = str(uuid_module.uuid4())
        headers = [
            (key, value)
            for key, value in command.headers
            if key.lower() not in ("content-length", "event-name")
        ]
        headers.append(("Event-UUID", event_uuid))
        body = command.body.decode("utf-8", "replace") or None
        self.switch.bus.fire(name, ("mod_event_socket.c", "parse_command", 2149), headers, body)
        self._reply(f"+OK {event_uuid}")


class _Closed(Exception):
    """The socket is gone; unwind the listener loop."""

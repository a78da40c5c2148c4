"""Helpers for the fault tests (tests/test_faults.py) and scripts/rehearse-faults.sh.

- ``FaultDeployment``: a Deployment whose simulator can post CDRs to gunicorn's /internal/cdr,
  can be killed and restarted on the same port, and whose gunicorn may reach the store through
  a proxy while the test reads it directly;
- ``RequestStream``: a bounded stream of click-to-call requests from a few threads, every answer
  (or error) recorded, pausable so that a fault can land between requests;
- ``TcpProxy``: a loopback TCP proxy that can be cut (connections reset, new ones refused) and
  restored on the same port: "the database is down" without touching the shared MariaDB;
- ``Tally``: what the store and the callback receiver say once the dust settles, the exact
  counts the tests assert and print;
- ``FleetDeployment``: the same with several simulator processes behind one gunicorn (each its
  own switch), to freeze, pause, fill or drain one of them (tests/test_fleet_faults.py), with
  ``esl_api`` to talk to a switch as an operator's fs_cli would.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from c2c.esl.protocol import Frame, FrameParser, encode_command
from c2c.store import Store, schema
from tests.callback_receiver import CallbackReceiver
from tests.support.deployment import DEFAULT_CALL, Deployment
from tests.support.processes import (
    REPO,
    GunicornProcess,
    SimulatorProcess,
    free_port,
    http_get,
    wait_until,
)

CDR_USER = "c2c"
CDR_PASSWORD = "fault-cdr-pw"


def write_scenario(
    path: Path,
    talk_seconds: float,
    answer_after: float = 0.3,
    short_suffix: str | None = None,
    short_talk: float = 1.0,
) -> Path:
    """Both far ends answer after ``answer_after`` s; the callee hangs up ``talk_seconds``
    later, or ``short_talk`` later when its number ends with ``short_suffix``."""
    rules: list[dict[str, Any]] = [
        {"role": "caller", "action": "answer", "answer_after": answer_after, "hangup_after": None},
    ]
    if short_suffix:
        rules.append(
            {
                "role": "callee",
                "suffix": short_suffix,
                "action": "answer",
                "answer_after": answer_after,
                "hangup_after": short_talk,
            }
        )
    rules.append(
        {
            "role": "callee",
            "action": "answer",
            "answer_after": answer_after,
            "hangup_after": talk_seconds,
        }
    )
    path.write_text(json.dumps({"rules": rules}), encoding="utf-8")
    return path


def c2c_command() -> list[str]:
    """The `c2c` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "c2c"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from c2c.cli.main import main; sys.exit(main())"]


def run_c2c(
    database_url: str,
    *args: str,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``c2c ARGS`` on ``database_url``; ``env``: more settings (e.g. C2C_SWITCHES)."""
    env = {
        **os.environ,
        "C2C_DATABASE_URL": database_url,
        "C2C_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    return subprocess.run(
        [*c2c_command(), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def c2c_check(database_url: str) -> subprocess.CompletedProcess[str]:
    """`c2c check` as an operator runs it."""
    return run_c2c(database_url, "check")


# --------------------------------------------------------------------------------------------
# The deployment


class FaultDeployment(Deployment):
    """A Deployment for fault tests.

    ``cdr``: the simulator POSTs every leg's CDR to this gunicorn's /internal/cdr (basic auth),
    spooling to ``workdir/cdr-spool`` what it could not deliver. ``app_database_url``: what
    gunicorn uses (e.g. through a TcpProxy); the test's own ``store`` uses ``database_url``.
    """

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        *,
        cdr: bool = False,
        app_database_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(workdir, database_url, **kwargs)
        self.cdr = cdr
        self.app_database_url = app_database_url or database_url
        self.spool = workdir / "cdr-spool"
        self.port = free_port()
        self._simulator_extra: list[str] = []

    def start(self) -> None:
        self.store.upgrade()
        created = self.store.accounts.create("faults", self.credits)
        self.account_id, self.api_key, self.webhook_secret = created
        self.receiver.start()
        extra = [*self.simulator_args, *self._cdr_args()]
        self._simulator_extra = extra
        self.simulator = SimulatorProcess(
            self.workdir,
            password="e2e-secret",
            time_scale=self.time_scale,
            scenario=self.scenario,
            extra=extra,
        ).start()
        self.gunicorn = GunicornProcess(
            self.workdir, self.env(), workers=self.workers, port=self.port
        ).start()
        self.gunicorn.wait_ready()

    def _cdr_args(self) -> list[str]:
        """The simulator's options to POST its CDRs to this gunicorn (none without ``cdr``)."""
        if not self.cdr:
            return []
        self.spool.mkdir(exist_ok=True)
        return [
            "--cdr-url",
            f"http://127.0.0.1:{self.port}/internal/cdr",
            "--cdr-cred",
            f"{CDR_USER}:{CDR_PASSWORD}",
            "--cdr-spool",
            str(self.spool),
            "--cdr-retries",
            "2",
            "--cdr-delay",
            "0.5",
        ]

    def env(self) -> dict[str, str]:
        env = super().env()
        env["C2C_DATABASE_URL"] = self.app_database_url
        if self.cdr:
            env["C2C_CDR_USER"] = CDR_USER
            env["C2C_CDR_PASSWORD"] = CDR_PASSWORD
        return env

    def kill_simulator(self) -> None:
        """SIGKILL: a crashed switch, its calls gone without an event or a CDR."""
        assert self.simulator is not None and self.simulator.process is not None
        os.killpg(self.simulator.pid, signal.SIGKILL)
        self.simulator.process.wait(10)

    def start_simulator_again(self) -> None:
        """A new simulator process on the same port (a restarted FreeSWITCH: no calls)."""
        assert self.simulator is not None
        port = self.simulator.port
        self.simulator.stop()
        self.simulator = SimulatorProcess(
            self.workdir,
            password="e2e-secret",
            time_scale=self.time_scale,
            scenario=self.scenario,
            port=port,
            extra=self._simulator_extra,
        ).start()

    def listener_holder(self) -> int | None:
        """The pid of the live worker holding the switch's event lease, if any."""
        assert self.simulator is not None and self.gunicorn is not None
        lease = self.store.leases.get(f"switch:127.0.0.1:{self.simulator.port}")
        if lease is None or lease.expires_at < time.time():
            return None
        pid = int(lease.holder.split(":")[1])
        return pid if pid in self.gunicorn.worker_pids() else None

    def request_params(self, max_duration: str = "1", **overrides: str) -> dict[str, str]:
        return {
            "api_key": self.api_key,
            **DEFAULT_CALL,
            "secret": "s3cret",
            "max_duration": max_duration,
            "callback_url": self.receiver.url("/cb?order=42"),
            **overrides,
        }


# --------------------------------------------------------------------------------------------
# Several switches

SWITCH_PASSWORD = "e2e-secret"


def esl_api(port: int, password: str, command: str, timeout: float = 5.0) -> str:
    """``api COMMAND`` on the switch at 127.0.0.1:``port``, over an Event Socket connection of
    its own, as an operator's fs_cli sends it: the command's output (``+OK ...``, ``-ERR ...``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        parser = FrameParser()
        frames: deque[Frame] = deque()

        def next_frame() -> Frame:
            while not frames:
                data = sock.recv(65536)  # bounded by the socket's timeout
                if not data:
                    raise ConnectionError(f"the switch on port {port} closed the connection")
                frames.extend(parser.feed(data))
            return frames.popleft()

        def reply_to(line: str, content_type: str) -> Frame:
            sock.sendall(encode_command(line))
            while True:
                frame = next_frame()
                if frame.content_type == content_type:
                    return frame

        greeting = next_frame()
        if greeting.content_type != "auth/request":
            raise ConnectionError(f"unexpected greeting {greeting!r}")
        auth = reply_to(f"auth {password}", "command/reply")
        if not auth.reply_text.startswith("+OK"):
            raise ConnectionError(f"auth refused: {auth.reply_text}")
        return reply_to(f"api {command}", "api/response").body.decode("utf-8", "replace")


class StdoutLines:
    """What a child prints on stdout after start-up, read line by line in a thread (the
    simulator prints FROZEN or THAWED as SIGUSR1 freezes or thaws it)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self._lines.put(raw.decode("utf-8", "replace").strip())
        except (OSError, ValueError):  # closed as the process is stopped
            pass

    def wait_for(self, wanted: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{wanted!r} not printed within {timeout} s") from None
            if line == wanted:
                return


class FleetDeployment(FaultDeployment):
    """A FaultDeployment with one simulator process per entry of ``switch_args`` (that switch's
    own options, after the shared ``simulator_args`` and the CDR ones), listed in C2C_SWITCHES in
    that order; ``simulator`` is the first. Index ``i`` below is a switch's place in that list."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        *,
        switch_args: Sequence[Sequence[str]] = ((), ()),
        **kwargs: Any,
    ) -> None:
        super().__init__(workdir, database_url, **kwargs)
        self.switch_args = [list(args) for args in switch_args]
        self.simulators: list[SimulatorProcess] = []
        self._stdout: list[StdoutLines] = []

    def start(self) -> None:
        self.store.upgrade()
        created = self.store.accounts.create("fleet faults", self.credits)
        self.account_id, self.api_key, self.webhook_secret = created
        self.receiver.start()
        shared = [*self.simulator_args, *self._cdr_args()]
        for args in self.switch_args:
            simulator = SimulatorProcess(
                self.workdir,
                password=SWITCH_PASSWORD,
                time_scale=self.time_scale,
                scenario=self.scenario,
                extra=[*shared, *args],
            ).start()
            self.simulators.append(simulator)
            assert simulator.process is not None and simulator.process.stdout is not None
            self._stdout.append(StdoutLines(simulator.process.stdout))
        self.simulator = self.simulators[0]
        self.gunicorn = GunicornProcess(
            self.workdir, self.env(), workers=self.workers, port=self.port
        ).start()
        self.gunicorn.wait_ready()

    def env(self) -> dict[str, str]:
        env = super().env()
        env["C2C_SWITCHES"] = ",".join(simulator.switch_url for simulator in self.simulators)
        return env

    def stop(self) -> None:
        for process in (self.gunicorn, *self.simulators):
            if process is not None:
                process.stop()
        self.receiver.stop()
        self.store.dispose()

    @property
    def names(self) -> list[str]:
        """Each switch's name (HOST:PORT, as calls.switch and `c2c switches` say it)."""
        return [f"127.0.0.1:{simulator.port}" for simulator in self.simulators]

    def api(self, index: int, command: str) -> str:
        """``api COMMAND`` on switch ``index`` (e.g. ``fsctl pause``)."""
        return esl_api(self.simulators[index].port, SWITCH_PASSWORD, command)

    def freeze(self, index: int) -> None:
        """Switch ``index`` freezes: its connections stay open, nothing is written to any."""
        self._toggle_freeze(index, "FROZEN")

    def thaw(self, index: int) -> None:
        self._toggle_freeze(index, "THAWED")

    def _toggle_freeze(self, index: int, said: str) -> None:
        os.kill(self.simulators[index].pid, signal.SIGUSR1)
        self._stdout[index].wait_for(said)

    def c2c(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``c2c ARGS`` as the operator runs it, with this deployment's switches configured."""
        return run_c2c(self.database_url, *args, env={"C2C_SWITCHES": self.env()["C2C_SWITCHES"]})

    def switch_rows(self) -> dict[str, dict[str, Any]]:
        """`c2c switches list --json`, by switch name."""
        listed = self.c2c("switches", "list", "--json")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        return {row["name"]: row for row in json.loads(listed.stdout)}

    def ready_view(self) -> dict[str, dict[str, Any]]:
        """/readyz's view of each switch, from whichever worker answers."""
        assert self.gunicorn is not None
        _, _, body = http_get(self.gunicorn.base_url + "/readyz", timeout=5)
        switches: dict[str, dict[str, Any]] = json.loads(body)["switches"]
        return switches

    def usable_everywhere(self, index: int, usable: bool, in_a_row: int = 12) -> None:
        """Until /readyz says switch ``index`` is (or is not) usable ``in_a_row`` times running
        (each answer may come from another worker, and each worker judges on its own)."""
        name, streak = self.names[index], [0]

        def agreed() -> bool:
            streak[0] = streak[0] + 1 if self.ready_view()[name]["usable"] is usable else 0
            return streak[0] >= in_a_row

        wait_until(agreed, 30, 0.02, f"{name} {'usable' if usable else 'unusable'} everywhere")

    def holder_of(self, index: int) -> str | None:
        """Who holds switch ``index``'s event lease now, if anyone."""
        return self.store.leases.holder_of(f"switch:{self.names[index]}", time.time())


# --------------------------------------------------------------------------------------------
# The customers


@dataclass(frozen=True)
class Answer:
    index: int
    started: float  # time.time() when sent
    elapsed: float  # seconds until the answer (or the error)
    status: int | None  # HTTP status; None on a connection error
    code: int | None  # the body's code, when HTTP 200 with digits
    call_id: str | None
    error: str | None  # connection error, timeout, or an unexpected body/status


class RequestStream:
    """``count`` GET /api/clicktocall requests from ``concurrency`` threads, each pausing
    ``interval`` s between its requests. Bounded: every request has a timeout, and the stream
    ends after ``count`` requests whatever happens."""

    def __init__(
        self,
        base_url: str,
        params: dict[str, str],
        count: int,
        *,
        concurrency: int = 3,
        interval: float = 0.2,
        timeout: float = 15.0,
    ) -> None:
        self.url = f"{base_url}/api/clicktocall/?{urlencode(params)}"
        self.count = count
        self.concurrency = concurrency
        self.interval = interval
        self.timeout = timeout
        self.answers: list[Answer] = []
        self._next = 0
        self._in_flight = 0
        self._lock = threading.Condition()
        self._go = threading.Event()
        self._go.set()
        self._threads: list[threading.Thread] = []

    def start(self) -> RequestStream:
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.count:
                return None
            index, self._next = self._next, self._next + 1
            self._in_flight += 1
            return index

    def _run(self) -> None:
        while True:
            self._go.wait(60)
            index = self._take()
            if index is None:
                return
            try:
                self.answers.append(self._send(index))
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._lock.notify_all()
            time.sleep(self.interval)

    def _send(self, index: int) -> Answer:
        started, clock = time.time(), time.monotonic()
        status: int | None = None
        code: int | None = None
        call_id: str | None = None
        error: str | None = None
        try:
            with urllib.request.urlopen(self.url_for(index), timeout=self.timeout) as response:
                status, body = response.status, response.read()
                call_id = response.headers.get("X-C2C-Call-Id")
        except urllib.error.HTTPError as exc:
            status, body, error = exc.code, exc.read(), f"HTTP {exc.code}"
        except (OSError, urllib.error.URLError) as exc:
            body, error = b"", f"{type(exc).__name__}: {exc}"
        if status == 200 and body.isdigit():
            code = int(body)
        elif error is None:
            error = f"unexpected answer {status} {body[:60]!r}"
        return Answer(index, started, time.monotonic() - clock, status, code, call_id, error)

    def url_for(self, index: int) -> str:
        """The request of number ``index`` (the same for all; a subclass may vary it)."""
        return self.url

    def pause(self, timeout: float = 20.0) -> None:
        """No new request starts, and none is in flight, once this returns."""
        self._go.clear()
        with self._lock:
            if not self._lock.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError("requests still in flight")

    def resume(self) -> None:
        self._go.set()

    def wait_answered(self, count: int, timeout: float = 60.0) -> None:
        wait_until(lambda: len(self.answers) >= count, timeout, 0.02, f"{count} answers")

    def join(self, timeout: float = 120.0) -> None:
        self.resume()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            raise TimeoutError("the request stream did not finish")

    # -- what came back --

    @property
    def codes(self) -> Counter[int | str]:
        return Counter(a.code if a.code is not None else "error" for a in self.answers)

    @property
    def accepted(self) -> list[str]:
        return [a.call_id for a in self.answers if a.code == 0 and a.call_id]

    @property
    def errors(self) -> list[Answer]:
        return [a for a in self.answers if a.error is not None]

    def max_elapsed(self, code: int | None = None) -> float:
        times = [a.elapsed for a in self.answers if code is None or a.code == code]
        return max(times, default=0.0)


# --------------------------------------------------------------------------------------------
# The database going away


class TcpProxy:
    """127.0.0.1:<port> -> target. ``cut()`` resets every connection and refuses new ones;
    ``restore()`` listens on the same port again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.connections = 0

    @classmethod
    def for_url(cls, database_url: str) -> tuple[TcpProxy, str]:
        """A proxy in front of the database of ``database_url``, and the URL through it."""
        url = make_url(database_url)
        proxy = cls(url.host or "127.0.0.1", url.port or 3306)
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        return proxy, proxied.render_as_string(hide_password=False)

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        with self._lock:
            self._listener = listener
        self._accepter = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepter.start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()/stop()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                cut = self._listener is not listener
                if not cut:
                    self._sockets.update((client, upstream))
                    self.connections += 1
            if cut:  # accepted as cut() ran: it must not outlive the cut
                for sock in (client, upstream):
                    self._close(sock, reset=True)
                return
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket, reset: bool = False) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            if reset:  # RST rather than FIN: what a dead server's host answers
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            try:
                # close() alone does not wake a thread blocked in accept() (it would let one
                # more connection through); shutdown() does.
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        if self._accepter is not None:
            self._accepter.join(5)
            self._accepter = None
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock, reset=True)

    def restore(self) -> None:
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        self.cut()


# --------------------------------------------------------------------------------------------
# What happened


@dataclass
class Tally:
    """The exact counts of one run, from the stream, the store and the callback receiver."""

    name: str
    sent: int = 0
    answers: Counter[int | str] = field(default_factory=Counter)
    accepted: int = 0
    code_11: int = 0
    errors: int = 0
    call_rows: int = 0
    rows_without_a_0: int = 0  # rows whose request got no 0 (connection lost, commit ambiguity)
    settled: int = 0
    answered_calls: int = 0
    failed_calls: int = 0  # settled not answered, reason 0
    minutes: int = 0
    debit_rows: int = 0
    callbacks_queued: int = 0
    delivered: int = 0  # distinct call ids the receiver got a callback for
    duplicate_callbacks: int = 0  # extra deliveries for one X-C2C-Call-Id
    duplicate_debits: int = 0  # calls with more than one debit row
    max_settle_lag: float = 0.0  # call's end on the switch -> settled (callback queued)
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        base = (
            f"[{self.name}] requests {self.sent}, accepted(0) {self.accepted}, "
            f"11s {self.code_11}, errors {self.errors}, other {self._other()}; "
            f"call rows {self.call_rows} (without a 0: {self.rows_without_a_0}), "
            f"settled {self.settled} (answered {self.answered_calls}, failed "
            f"{self.failed_calls}), minutes {self.minutes}, debit rows {self.debit_rows}; "
            f"callbacks queued {self.callbacks_queued}, delivered {self.delivered}; "
            f"duplicates: callbacks {self.duplicate_callbacks}, debits "
            f"{self.duplicate_debits}; max settle lag {self.max_settle_lag:.1f} s"
        )
        if self.extra:
            base += "; " + ", ".join(f"{k} {v}" for k, v in self.extra.items())
        return base

    def _other(self) -> dict[Any, int]:
        return {k: v for k, v in self.answers.items() if k not in (0, 11, "error")}


def count_streams(result: Tally, *streams: RequestStream) -> Tally:
    """What several request streams were answered, into ``result``."""
    result.sent = sum(len(s.answers) for s in streams)
    result.answers = sum((s.codes for s in streams), Counter())
    result.accepted = sum(len(s.accepted) for s in streams)
    result.code_11 = sum(s.codes.get(11, 0) for s in streams)
    result.errors = sum(len(s.errors) for s in streams)
    return result


class Target(Protocol):
    """What the tallies read: a Deployment, or scripts/rehearse-faults.py's view of a real one."""

    database_url: str
    store: Store
    account_id: int
    receiver: CallbackReceiver


def account_calls(target: Target, since: float = 0.0) -> list[dict[str, Any]]:
    """The account's calls (created at or after ``since``)."""
    calls = target.store.calls.list(limit=10_000, account_id=target.account_id)
    return [c for c in calls if c["created_at"] >= since]


def wait_all_settled(target: Target, timeout: float, since: float = 0.0) -> float:
    """Until every call row of the account is ended; returns the seconds it took."""
    started = time.monotonic()

    def done() -> bool:
        return all(call["state"] == "ended" for call in account_calls(target, since))

    wait_until(done, timeout, 0.2, "every call settled")
    return time.monotonic() - started


def wait_all_delivered(target: Target, timeout: float, since: float = 0.0) -> float:
    """Until every settled call with a callback_url has had a callback delivered."""
    started = time.monotonic()

    def done() -> bool:
        wanted = {c["id"] for c in account_calls(target, since) if c["callback_url"]}
        got = {r.header("X-C2C-Call-Id") for r in list(target.receiver.requests)}
        return wanted <= got

    wait_until(done, timeout, 0.2, "every callback delivered")
    return time.monotonic() - started


def tally(name: str, target: Target, stream: RequestStream | None, since: float = 0.0) -> Tally:
    result = Tally(name)
    accepted = set(stream.accepted) if stream else set()
    if stream is not None:
        result.sent = len(stream.answers)
        result.answers = stream.codes
        result.accepted = len(stream.accepted)
        result.code_11 = stream.codes.get(11, 0)
        result.errors = len(stream.errors)
    calls = account_calls(target, since)
    ids = {c["id"] for c in calls}
    result.call_rows = len(calls)
    result.rows_without_a_0 = len({c["id"] for c in calls} - accepted) if stream else 0
    ended = [c for c in calls if c["state"] == "ended"]
    result.settled = len(ended)
    result.answered_calls = sum(1 for c in ended if c["answered"])
    result.failed_calls = sum(1 for c in ended if not c["answered"] and c["reason"] == 0)
    result.minutes = sum(int(c["minutes"] or 0) for c in ended)
    lg, cb = schema.ledger, schema.callbacks
    with target.store.engine.connect() as conn:
        debits = {
            call_id: n
            for call_id, n in conn.execute(
                select(lg.c.call_id, func.count())
                .where(lg.c.kind == "debit", lg.c.account_id == target.account_id)
                .group_by(lg.c.call_id)
            ).all()
            if call_id in ids
        }
        queued = {
            call_id: at
            for call_id, at in conn.execute(
                select(cb.c.call_id, cb.c.created_at).where(cb.c.account_id == target.account_id)
            ).all()
            if call_id in ids
        }
    result.debit_rows = sum(debits.values())
    result.duplicate_debits = sum(1 for n in debits.values() if n > 1)
    result.callbacks_queued = len(queued)
    deliveries = Counter(
        r.header("X-C2C-Call-Id")
        for r in list(target.receiver.requests)
        if r.header("X-C2C-Call-Id") in ids
    )
    result.delivered = len(deliveries)
    result.duplicate_callbacks = sum(n - 1 for n in deliveries.values() if n > 1)
    lags = [
        float(queued[c["id"]]) - float(c["ended_at"])
        for c in ended
        if c["id"] in queued and c["ended_at"]
    ]
    result.max_settle_lag = max(lags, default=0.0)
    return result


def assert_consistent(
    result: Tally,
    target: Target,
    stream: RequestStream | None,
    initial_credits: int,
    since: float = 0.0,
) -> None:
    """What must hold after every fault, whatever the fault (the account must have had no
    other traffic since ``since``)."""
    calls = {c["id"]: c for c in account_calls(target, since)}
    if stream is not None:
        missing = [call_id for call_id in stream.accepted if call_id not in calls]
        assert not missing, f"accepted (0) without a call row: {missing}"
        assert result.sent == stream.count, "every request got an answer or an error"
    assert result.settled == result.call_rows, "every call row settled"
    assert result.duplicate_debits == 0, "a call debited twice"
    assert result.duplicate_callbacks == 0, "a callback delivered twice"
    assert result.debit_rows == sum(1 for c in calls.values() if (c["minutes"] or 0) > 0)
    with_url = sum(1 for c in calls.values() if c["callback_url"])
    assert result.callbacks_queued == with_url
    assert result.delivered == with_url, "one delivered callback per settled call"
    account = target.store.accounts.find(target.account_id)
    assert account is not None
    assert account.reserved == 0
    assert account.credits == initial_credits - result.minutes
    checked = c2c_check(target.database_url)
    assert checked.returncode == 0, checked.stdout + checked.stderr

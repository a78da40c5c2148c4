"""The processes a benchmark phase runs against, all on this machine.

- a scratch MariaDB database (``c2c_bench_<random>``, dropped afterwards) or an SQLite file;
- the simulator (``python -m c2c.fakeswitch``) with a scenario file and a time scale;
- the observer (bench/observer.py): the callback receiver and the hangup tap;
- gunicorn with ``gunicorn.conf.py`` (gevent workers), serving c2c or the bare falcon app;
- with ``background="separate"``: C2C_BACKGROUND=separate and ``c2c worker`` process(es) holding
  the switch's events, settling and calling back (gunicorn's workers only answer requests).

Process handling (free ports, readiness polling, process groups) is the tests' own
(tests/support/processes.py), so the benchmark starts things exactly as the end-to-end tests do.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymysql

from c2c.esl.protocol import FrameParser, encode_command
from c2c.store import Store
from tests.support.faults import c2c_command
from tests.support.lifecycle import StartStop
from tests.support.mysql import server_connection, temporary_database
from tests.support.processes import (
    REPO,
    GunicornProcess,
    ManagedProcess,
    SimulatorProcess,
    wait_until,
)

MYSQL_SERVER_URL = os.environ.get("C2C_BENCH_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
SWITCH_PASSWORD = "bench-secret"
# Credits are INT minutes; every accepted call reserves up to the operator cap (120 min) until
# it settles, so 10,000 calls in flight hold 1.2 M minutes.
CREDITS = 2_000_000_000

# Request numbers (national, 10 digits): caller NPA 200-219, callee NPA 220-239, warm-up callers
# NPA 290-299 (the long-call scenario refuses those at once); the DNC list holds NPAs 300-999.
CALLER_BASE = 2_000_000_000
CALLEE_BASE = 2_200_000_000
WARMUP_CALLER_BASE = 2_900_000_000


def mysql_reachable(server_url: str = MYSQL_SERVER_URL) -> bool:
    try:
        _admin(server_url).close()
    except pymysql.MySQLError:
        return False
    return True


def _admin(server_url: str) -> pymysql.connections.Connection:
    return server_connection(server_url, connect_timeout=5, io_timeout=600)


@contextmanager
def scratch_database(kind: str, workdir: Path, server_url: str = MYSQL_SERVER_URL
                     ) -> Iterator[str]:
    """A fresh, empty database URL: ``mysql`` (a c2c_bench_* database, dropped at exit) or
    ``sqlite`` (a file in workdir)."""
    if kind == "sqlite":
        path = workdir / f"bench-{secrets.token_hex(4)}.sqlite3"
        yield f"sqlite:///{path}"
        return
    with temporary_database(server_url, "c2c_bench_", io_timeout=600,
                            lock_wait_timeout=30) as url:
        yield url


def mariadb_version(server_url: str = MYSQL_SERVER_URL) -> str:
    try:
        admin = _admin(server_url)
    except pymysql.MySQLError as exc:
        return f"unreachable ({exc})"
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT VERSION(), @@innodb_buffer_pool_size, "
                           "@@innodb_flush_log_at_trx_commit, @@sync_binlog, @@log_bin")
            version, pool, flush, sync_binlog, log_bin = cursor.fetchone()
        return (f"{version} (innodb_buffer_pool_size {int(pool) // 2**20} MiB, "
                f"innodb_flush_log_at_trx_commit={flush}, log_bin={log_bin}, "
                f"sync_binlog={sync_binlog})")
    finally:
        admin.close()


def innodb_row_lock_waits(server_url: str = MYSQL_SERVER_URL) -> tuple[int, int] | None:
    """(Innodb_row_lock_waits, Innodb_row_lock_time in ms): server-wide counters, so other
    databases' work counts too; None when the server cannot be asked."""
    try:
        admin = _admin(server_url)
    except pymysql.MySQLError:
        return None
    try:
        with admin.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS WHERE Variable_name IN "
                           "('Innodb_row_lock_waits', 'Innodb_row_lock_time')")
            values = dict(cursor.fetchall())
        return int(values["Innodb_row_lock_waits"]), int(values["Innodb_row_lock_time"])
    finally:
        admin.close()


# -- the simulator's scenarios ---------------------------------------------------------------

# Time scale 0: every call answers, talks (virtual) 30 s and the callee hangs up: 1 minute, answered.
QUICK_CALLS = [
    {"role": "caller", "action": "answer", "answer_after": 1, "hangup_after": None},
    {"action": "answer", "answer_after": 1, "hangup_after": 30},
]

# Time scale 1 (real time): numbers 1 29x... are refused at once (warm-up calls that settle
# straight away); every other call answers at once and talks until hupall (or its time limit,
# 2 h by the operator cap).
LONG_CALLS = [
    {"regex": "^129", "action": "busy", "after": 0},
    {"role": "caller", "action": "answer", "answer_after": 0, "hangup_after": None},
    {"action": "answer", "answer_after": 0, "hangup_after": None},
]


def write_scenario(workdir: Path, rules: list[dict[str, Any]]) -> Path:
    path = workdir / f"scenario-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps({"rules": rules}))
    return path


# -- processes --------------------------------------------------------------------------------


class AppServer(GunicornProcess):
    """gunicorn -c gunicorn.conf.py <app> (c2c.wsgi:app or bench.bare_app:app)."""

    def __init__(self, log_dir: Path, env: Mapping[str, str], app: str = "c2c.wsgi:app",
                 workers: int | None = None, conf: Path | None = None) -> None:
        workers = workers or int(os.environ.get("C2C_WORKERS") or os.cpu_count() or 1)
        super().__init__(log_dir, env, workers=workers)
        self.argv[-1] = app
        if conf is not None:  # what-if runs only (bench/probe_gunicorn.conf.py)
            self.argv[self.argv.index("-c") + 1] = str(conf)
        self.app = app

    def rss_kib(self) -> dict[int, int]:
        """Resident set size of each worker, in KiB."""
        return {pid: _rss_kib(pid) for pid in self.worker_pids()}


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Observer(ManagedProcess):
    """bench/observer.py: callback receiver (+ hangup tap when given a switch)."""

    def __init__(self, log_dir: Path, esl: str | None = None,
                 password: str = SWITCH_PASSWORD) -> None:
        self.out = log_dir / f"observer-{secrets.token_hex(4)}.txt"
        argv = [sys.executable, "-m", "bench.observer", "--out", str(self.out)]
        if esl:
            argv += ["--esl", esl, "--esl-password", password]
        super().__init__(argv, os.environ, log_dir / f"observer-{secrets.token_hex(4)}.log")
        self.port = 0

    def start(self, timeout: float = 20.0) -> Observer:  # type: ignore[override]
        super().start()
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith(b"LISTENING "):
                self.port = int(line.split(b":")[-1])
                return self
            if not line and not self.alive():
                break
        raise RuntimeError(f"observer did not start:\n{self.log_text()}")

    def callback_url(self, target: str = "/cb") -> str:
        return f"http://127.0.0.1:{self.port}{target}"

    def records(self) -> tuple[dict[str, float], dict[str, float]]:
        """(hangup time per call: the later leg's, first callback arrival per call)."""
        hangups: dict[str, float] = {}
        callbacks: dict[str, float] = {}
        try:
            text = self.out.read_text(encoding="ascii")
        except FileNotFoundError:
            return hangups, callbacks
        for line in text.splitlines():
            parts = line.split()
            if len(parts) != 3:
                continue
            kind, call_id, at = parts[0], parts[1], float(parts[2])
            if kind == "H":
                hangups[call_id] = max(at, hangups.get(call_id, 0.0))
            elif kind == "C" and call_id not in callbacks:
                callbacks[call_id] = at
        return hangups, callbacks

    def callback_count(self) -> int:
        try:
            with open(self.out, "rb") as handle:
                return sum(1 for line in handle if line.startswith(b"C "))
        except FileNotFoundError:
            return 0


def esl_api(port: int, command: str, password: str = SWITCH_PASSWORD, timeout: float = 60.0
            ) -> str:
    """One ``api`` command on a fresh Event Socket connection to the simulator."""
    parser = FrameParser()
    pending: list = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:

        def frame():  # noqa: ANN202
            while not pending:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("switch closed the connection")
                pending.extend(parser.feed(data))
            return pending.pop(0)

        frame()  # auth/request
        sock.sendall(encode_command(f"auth {password}"))
        if not (frame().reply_text or "").startswith("+OK"):
            raise RuntimeError("simulator refused the password")
        sock.sendall(encode_command(f"api {command}"))
        while True:
            reply = frame()
            if reply.content_type == "api/response":
                return reply.reply_text


class C2cWorker(ManagedProcess):
    """`c2c worker` (C2C_BACKGROUND=separate): the events, settlement and callbacks, no API.
    Its log sits beside gunicorn's; stop() sends TERM to its group, then KILL after 10 s."""

    def __init__(self, log_dir: Path, env: Mapping[str, str]) -> None:
        full_env = {**os.environ, **env}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # C2C_METRICS_DIR says where
        super().__init__([*c2c_command(), "worker"], full_env,
                         log_dir / f"c2c-worker-{secrets.token_hex(4)}.log")

    def start(self) -> C2cWorker:  # type: ignore[override]
        super().start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        # 0: it stopped on TERM; -9: it had to be killed
        self.returncode = self.process.returncode if self.process is not None else None


class Stack(StartStop):
    """Store + simulator + observer + c2c under gunicorn (+ `c2c worker`s), for one phase."""

    def __init__(self, workdir: Path, database_url: str, *, rules: list[dict[str, Any]],
                 time_scale: float = 0.0, max_sessions: int = 10_000, tap: bool = False,
                 env: Mapping[str, str] | None = None, conf: Path | None = None,
                 background: str = "workers", c2c_workers: int = 1) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.rules = rules
        self.time_scale = time_scale
        self.max_sessions = max_sessions
        self.tap = tap
        self.extra_env = dict(env or {})
        self.conf = conf
        self.background = background
        self.c2c_worker_count = c2c_workers if background == "separate" else 0
        self.store = Store.from_url(database_url)
        self.simulator: SimulatorProcess | None = None
        self.observer: Observer | None = None
        self.server: AppServer | None = None
        self.c2c_workers: list[C2cWorker] = []
        self.api_key = ""

    def start(self) -> None:
        self.store.upgrade()
        created = self.store.accounts.create("bench", CREDITS)
        self.account_id, self.api_key = created.id, created.api_key
        scenario = write_scenario(self.workdir, self.rules)
        self.simulator = SimulatorProcess(
            self.workdir, password=SWITCH_PASSWORD, time_scale=self.time_scale,
            scenario=scenario, extra=("--max-sessions", str(self.max_sessions))).start()
        esl = f"127.0.0.1:{self.simulator.port}" if self.tap else None
        self.observer = Observer(self.workdir, esl=esl).start()
        env = {
            "C2C_DATABASE_URL": self.database_url,
            "C2C_SWITCHES": self.simulator.switch_url,
            "C2C_CALLBACK_ALLOW_PRIVATE": "on",
            **self.extra_env,
        }
        if self.background == "separate":
            # Both write their metrics into one directory, as in production.
            metrics = self.workdir / f"metrics-{secrets.token_hex(4)}"
            metrics.mkdir()
            env.update({"C2C_BACKGROUND": "separate", "C2C_METRICS_DIR": str(metrics)})
            for _ in range(self.c2c_worker_count):
                self.c2c_workers.append(C2cWorker(self.workdir, env).start())
        self.server = AppServer(self.workdir, env, conf=self.conf).start()
        self.server.wait_ready(timeout=60)
        if self.c2c_workers:
            self._wait_events_held()

    def _wait_events_held(self, timeout: float = 60.0) -> None:
        """Until one of our `c2c worker`s holds the switch's events (its lease)."""
        assert self.simulator is not None
        lease = f"switch:127.0.0.1:{self.simulator.port}"
        pids = {w.pid for w in self.c2c_workers}

        def held() -> bool:
            for worker in self.c2c_workers:
                if not worker.alive():
                    raise RuntimeError(f"c2c worker exited:\n{worker.log_text()[-4000:]}")
            holder = self.store.leases.holder_of(lease, time.time()) or ""
            parts = holder.split(":")
            return len(parts) > 1 and parts[1].isdigit() and int(parts[1]) in pids

        wait_until(held, timeout, 0.1, "a c2c worker holding the switch's events")

    def stop(self) -> None:
        for process in (self.server, *self.c2c_workers, self.observer, self.simulator):
            if process is not None:
                process.stop()
        self.store.dispose()

    def c2c_pids(self) -> dict[str, list[int]]:
        """c2c's processes by kind: gunicorn's master, its workers, the `c2c worker`s."""
        groups: dict[str, list[int]] = {}
        if self.server is not None:
            groups["gunicorn master"] = [self.server.pid]
            groups["gunicorn workers"] = self.server.worker_pids()
        if self.c2c_workers:
            groups["c2c worker"] = [w.pid for w in self.c2c_workers]
        return groups

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    def count_calls(self, where: str = "") -> int:
        from sqlalchemy import text

        with self.store.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT COUNT(*) FROM calls {where}")).scalar() or 0)

    def scalar(self, sql: str) -> Any:
        from sqlalchemy import text

        with self.store.engine.connect() as conn:
            return conn.execute(text(sql)).scalar()

    def rows(self, sql: str) -> list[Any]:
        from sqlalchemy import text

        with self.store.engine.connect() as conn:
            return list(conn.execute(text(sql)))


@contextmanager
def bare_server(workdir: Path) -> Iterator[AppServer]:
    server = AppServer(workdir, {}, app="bench.bare_app:app").start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate, timeout: float, interval: float = 0.25, message: str = "condition"):
    return wait_until(predicate, timeout, interval, message)


def run_quiet(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)

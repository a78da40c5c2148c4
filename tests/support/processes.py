"""Real processes for end-to-end and fault tests: the simulator, gunicorn with gevent workers.

Every process gets free ports, is polled until it answers (never sleep-and-hope), and is killed
with its whole process group when the test ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{message} not met within {timeout} s")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None
             ) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


class ManagedProcess:
    """A child in its own process group, with its output in a log file."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            self.argv, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=self._log,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(5)
        else:
            # Reap stragglers left in the group (e.g. gunicorn workers of a dead master).
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class SimulatorProcess(ManagedProcess):
    """`python -m c2c.fakeswitch` on a free port; reads the port it prints."""

    def __init__(self, log_dir: Path, password: str = "ClueCon", time_scale: float = 1.0,
                 scenario: Path | None = None, port: int = 0, extra: Sequence[str] = ()) -> None:
        argv = [sys.executable, "-m", "c2c.fakeswitch", "--listen", f"127.0.0.1:{port}",
                "--password", password, "--time-scale", str(time_scale), "--log-level", "WARNING"]
        if scenario is not None:
            argv += ["--scenario", str(scenario)]
        argv += list(extra)
        super().__init__(argv, os.environ, log_dir / f"fakeswitch-{time.monotonic_ns()}.log")
        self.password = password
        self.port = port

    def start(self, timeout: float = 15.0) -> SimulatorProcess:
        super().start()
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith(b"LISTENING "):
                self.port = int(line.split(b":")[-1])
                return self
            if not line and not self.alive():
                break
        raise RuntimeError(f"simulator did not start: {line!r}\n{self.log_text()}")

    @property
    def switch_url(self) -> str:
        return f"esl://:{self.password}@127.0.0.1:{self.port}"


class GunicornProcess(ManagedProcess):
    """The real thing: `gunicorn -c gunicorn.conf.py c2c.wsgi:app` with gevent workers."""

    def __init__(self, log_dir: Path, env: Mapping[str, str], workers: int = 2,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        full_env = {**os.environ, **env, "C2C_BIND": f"127.0.0.1:{self.port}",
                    "C2C_WORKERS": str(workers)}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        argv = [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"),
                "c2c.wsgi:app"]
        super().__init__(argv, full_env, log_dir / f"gunicorn-{self.port}.log")
        self.workers = workers

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> GunicornProcess:
        super().start()

        def healthy() -> bool:
            if not self.alive():
                raise RuntimeError(f"gunicorn exited:\n{self.log_text()[-4000:]}")
            try:
                return http_get(self.base_url + "/healthz", timeout=1)[0] == 200
            except OSError:
                return False

        wait_until(healthy, timeout, 0.05, "gunicorn answering /healthz")
        wait_until(lambda: len(self.worker_pids()) >= self.workers, timeout, 0.05,
                   "all gunicorn workers up")
        return self

    def worker_pids(self) -> list[int]:
        """The master's live children (its workers), from /proc."""
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == self.pid and stat[0] != b"Z":
                children.append(int(entry))
        return sorted(children)

    def wait_ready(self, timeout: float = 30.0, in_a_row: int = 20) -> None:
        """Until /readyz says the store and a switch are reachable, ``in_a_row`` times running
        (each request may land on another worker, and every worker connects on its own)."""
        streak = [0]

        def ready() -> bool:
            try:
                ok = http_get(self.base_url + "/readyz", timeout=2)[0] == 200
            except OSError:
                ok = False
            streak[0] = streak[0] + 1 if ok else 0
            return streak[0] >= in_a_row

        wait_until(ready, timeout, 0.02, "gunicorn /readyz")

"""gunicorn.conf.py gives each c2c instance its own control socket: gunicorn's default is one path
per user, which a second master on the host takes over and the first one's exit deletes."""

from __future__ import annotations

import os
import runpy
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.processes import REPO, free_port, http_get, wait_until

CONF = REPO / "gunicorn.conf.py"


@pytest.fixture(scope="module")
def control_socket_path() -> Callable[..., str]:
    return runpy.run_path(str(CONF))["control_socket_path"]


def test_one_path_per_bind_address(control_socket_path, tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    first = control_socket_path("127.0.0.1:8080", env)
    assert first == str(tmp_path / "c2c-127.0.0.1-8080.ctl")
    assert control_socket_path("127.0.0.1:8081", env) != first
    assert control_socket_path("unix:/run/c2c/c2c.sock", env) == str(
        tmp_path / "c2c-unix-run-c2c-c2c.sock.ctl"
    )
    assert control_socket_path("[::1]:8080", env).startswith(str(tmp_path / "c2c-"))


def test_an_explicit_path_wins_and_home_is_the_fallback(control_socket_path, tmp_path) -> None:
    assert control_socket_path("127.0.0.1:8080", {"C2C_CONTROL_SOCKET": "/x/y.ctl"}) == "/x/y.ctl"
    missing = {"XDG_RUNTIME_DIR": str(tmp_path / "not-there")}
    assert control_socket_path("127.0.0.1:8080", missing) == os.path.join(
        os.path.expanduser("~"), ".gunicorn", "c2c-127.0.0.1-8080.ctl"
    )


def is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except FileNotFoundError:
        return False


def test_two_masters_on_one_host_keep_their_own_sockets(tmp_path: Path) -> None:
    runtime_dir = tmp_path / "run"
    runtime_dir.mkdir()
    database = tmp_path / "c2c.sqlite3"
    subprocess.run([sys.executable, "-m", "c2c.cli.main", "db", "upgrade"], check=True,
                   env={**os.environ, "C2C_DATABASE_URL": f"sqlite:///{database}"},
                   cwd=REPO, capture_output=True, timeout=60)
    masters = []
    try:
        for number in range(2):
            port = free_port()
            env = {
                **os.environ,
                "XDG_RUNTIME_DIR": str(runtime_dir),
                "C2C_BIND": f"127.0.0.1:{port}",
                "C2C_WORKERS": "1",
                "C2C_DATABASE_URL": f"sqlite:///{database}",
                "C2C_SWITCHES": f"esl://:pw@127.0.0.1:{free_port()}",  # nothing listens
                "C2C_ESL_TIMEOUT": "0.5",
                "C2C_METRICS_DIR": str(tmp_path / f"metrics{number}"),
            }
            env.pop("C2C_CONTROL_SOCKET", None)
            log = (tmp_path / f"gunicorn{number}.log").open("wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(CONF), "c2c.wsgi:app"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
            masters.append((process, port, runtime_dir / f"c2c-127.0.0.1-{port}.ctl"))
        for _, port, path in masters:
            wait_until(lambda port=port: _answers(port), 30, message=f"gunicorn on {port}")
            wait_until(lambda path=path: is_socket(path), 10, message=f"{path.name}")
        assert not (runtime_dir / "gunicorn.ctl").exists()  # nobody on the shared default
        first, _, first_path = masters[0]
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
        assert not first_path.exists()  # removed its own on the way out...
        assert is_socket(masters[1][2])  # ...and left the other instance's alone
    finally:
        for process, _, _ in masters:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _answers(port: int) -> bool:
    try:
        return http_get(f"http://127.0.0.1:{port}/healthz", timeout=2)[0] == 200
    except OSError:
        return False

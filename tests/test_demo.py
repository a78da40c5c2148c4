"""`c2c demo`, the README's first command: it starts, prints a curl that works, and prints the
call's outcome and its callback."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading

import pytest

from tests.support.processes import http_get

pytestmark = pytest.mark.slow


def _lines(stream, sink: queue.Queue) -> None:
    for raw in iter(stream.readline, b""):
        sink.put(raw.decode(errors="replace").rstrip("\n"))


def _wait_for(sink: queue.Queue, pattern: str, seen: list[str], timeout: float = 20.0) -> str:
    regex = re.compile(pattern)
    while True:
        line = sink.get(timeout=timeout)  # queue.Empty fails the test with the lines seen
        seen.append(line)
        if regex.search(line):
            return line


def test_demo_places_a_call_and_prints_its_outcome_and_callback(tmp_path):
    env = {**os.environ, "C2C_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    stderr = open(tmp_path / "stderr.txt", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "c2c.cli.main", "demo", "--port", "0", "--time-scale", "0.1"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=stderr,
        start_new_session=True,
    )
    sink: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(process.stdout, sink), daemon=True).start()
    seen: list[str] = []
    try:
        info = json.loads(_wait_for(sink, r'^\{"api"', seen))
        curl = _wait_for(sink, r"^\s+curl '", seen)
        url = re.search(r"curl '([^']+)'", curl).group(1)
        assert url.startswith(info["api"] + "/api/clicktocall/?api_key=")
        status, headers, body = http_get(url)
        assert (status, body) == (200, b"0")
        call_id = headers["x-c2c-call-id"]
        settled = _wait_for(sink, rf"call {call_id} settled", seen)
        assert "answered=1 minutes=1 reason= " in settled
        callback = _wait_for(sink, rf"callback received for call {call_id}", seen)
        assert "answered=1" in callback and "secret=demo" in callback
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        stderr.close()
    # Ctrl-C ends it cleanly: exit status 0, and no bare "KeyboardInterrupt" line from gevent.
    assert process.returncode == 0, seen
    errors = (tmp_path / "stderr.txt").read_text(errors="replace")
    assert "KeyboardInterrupt" not in errors and "Traceback" not in errors, errors[-2000:]

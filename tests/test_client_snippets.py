"""The customers' client snippets of docs/clients/ (issue 13), each run by its own runtime (Python,
PHP, Node) against a live c2c: real gunicorn, the simulator process and a callback receiver.

Per language: placing a call prints its id (exit 0) and a refused one its code (exit 1); polling
follows a call until it ended and shows its outcome; the snippet's webhook receiver verifies the
real callback c2c sends it, accepts a captured callback replayed as it was, and refuses it
tampered with, stale or from the future; the same for a progress webhook's POST, signed over its
raw body. No snippet ever prints the api_key. A language whose runtime is missing is skipped,
except under CI=true, where it fails (`.ci/run` installs php-cli and nodejs from Debian).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from c2c.callbacks.signing import sign
from tests.support.deployment import Deployment
from tests.support.processes import REPO, free_port, http_get, wait_until

pytestmark = pytest.mark.slow

CLIENTS = REPO / "docs" / "clients"
PAGE = REPO / "docs" / "clients.md"
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CALLER = ("1", "2125550123")
ANSWERS = ("1", "2125550199")  # the simulator's default: answers, talks, hangs up
BUSY = ("1", "2125550486")
RUN_TIMEOUT = 30.0  # one snippet run; a call at time scale 0.05 ends within a few seconds


@dataclass(frozen=True)
class Language:
    name: str
    command: str  # the runtime, as found on PATH
    extension: str
    package: str  # Debian's, which .ci/run installs

    def runtime(self) -> list[str]:
        path = shutil.which(self.command)
        if path is None:
            message = f"{self.command} not installed (Debian: apt-get install {self.package})"
            if IN_CI:
                pytest.fail(message + "; CI is set: every client snippet must run")
            pytest.skip(message)
        if self.name == "python":
            # -I -S: no site-packages, so the snippets are held to the standard library.
            return [path, "-I", "-S"]
        return [path]

    def script(self, name: str) -> Path:
        return CLIENTS / self.name / f"{name}.{self.extension}"

    def receiver_argv(self, port: int) -> list[str]:
        script = str(self.script("webhook_receiver"))
        if self.name == "php":
            return [*self.runtime(), "-S", f"127.0.0.1:{port}", script]  # PHP's own web server
        return [*self.runtime(), script]


LANGUAGES = [
    Language("python", sys.executable, "py", "python3"),  # the interpreter running the tests
    Language("php", "php", "php", "php-cli"),
    Language("node", "node", "mjs", "nodejs"),
]


@pytest.fixture(params=LANGUAGES, ids=[language.name for language in LANGUAGES])
def language(request: pytest.FixtureRequest) -> Language:
    return request.param


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    # The snippets speak HTTP only, so one store is enough: SQLite.
    workdir = tmp_path_factory.mktemp("client-snippets")
    with Deployment(workdir, f"sqlite:///{workdir / 'c2c.sqlite3'}", workers=2) as d:
        yield d


def snippet_env(d: Deployment, **extra: str) -> dict[str, str]:
    # Only what a customer's shell would have: no proxy settings or PYTHON* variables of ours.
    assert d.gunicorn is not None
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "C2C_URL": d.gunicorn.base_url,
            "C2C_API_KEY": d.api_key, "C2C_POLL_INTERVAL": "0.1", "C2C_POLL_TIMEOUT": "20",
            **extra}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def run(d: Deployment, language: Language, script: str, *args: str, **env: str) -> Run:
    result = subprocess.run(
        [*language.runtime(), str(language.script(script)), *args], env=snippet_env(d, **env),
        capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=CLIENTS, check=False)
    # STYLE.md 9: the api_key is never printed, whatever happened.
    assert d.api_key not in result.stdout + result.stderr
    return Run(result.returncode, result.stdout, result.stderr)


def place(d: Deployment, language: Language, caller: tuple[str, str], callee: tuple[str, str],
          callback_url: str, **env: str) -> str:
    placed = run(d, language, "place_call", *caller, *callee, callback_url, **env)
    assert placed.returncode == 0, placed
    assert UUID.fullmatch(placed.stdout.strip()), placed
    return placed.stdout.strip()


def poll(d: Deployment, language: Language, call_id: str) -> tuple[dict, str]:
    polled = run(d, language, "poll_call", call_id)
    assert polled.returncode == 0, polled
    return json.loads(polled.stdout.strip().splitlines()[-1]), polled.stderr


class SnippetReceiver:
    """The language's webhook_receiver, serving on a free port; its stdout lines collected."""

    def __init__(self, language: Language, secret: str, workdir: Path) -> None:
        self.port = free_port()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "C2C_WEBHOOK_SECRET": secret,
               "PORT": str(self.port), "HOST": "127.0.0.1"}
        self._stderr = open(workdir / f"receiver-{language.name}.log", "w+b")  # noqa: SIM115
        self.process = subprocess.Popen(
            language.receiver_argv(self.port), env=env, cwd=CLIENTS, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, start_new_session=True)
        self.records: list[dict] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until(self._listening, 10, 0.02, f"{language.name} webhook receiver listening")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._arrived:
                self.records.append(json.loads(line))
                self._arrived.notify_all()

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            self._stderr.seek(0)
            raise RuntimeError(f"receiver exited: {self._stderr.read().decode(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def url(self, target: str) -> str:
        return f"http://127.0.0.1:{self.port}{target}"

    def wait_record(self, predicate: Callable[[dict], bool], timeout: float = 15.0) -> dict:
        with self._arrived:
            found = self._arrived.wait_for(
                lambda: next((r for r in self.records if predicate(r)), None), timeout)
        assert found, f"no matching record within {timeout} s: {self.records}"
        return found

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> int:
        """One request exactly as given (the target is not re-encoded); the status answered."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request(method, target, body=body or None, headers=headers)
            return connection.getresponse().status
        finally:
            connection.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(5)
        self._stderr.close()


@pytest.fixture
def receiver(language: Language, deployment: Deployment, tmp_path: Path
             ) -> Iterator[SnippetReceiver]:
    language.runtime()  # skip (or fail under CI) before starting anything
    snippet_receiver = SnippetReceiver(language, deployment.webhook_secret, tmp_path)
    yield snippet_receiver
    snippet_receiver.stop()


def api_call(d: Deployment, call_id: str) -> dict:
    assert d.gunicorn is not None
    status, _, body = http_get(f"{d.gunicorn.base_url}/api/calls/{call_id}",
                               headers={"Authorization": f"Bearer {d.api_key}"})
    assert status == 200, body
    return json.loads(body)


# -- placing and polling ---------------------------------------------------------------------


def test_an_answered_call_placed_polled_and_its_callback_verified_live(
        deployment: Deployment, language: Language, receiver: SnippetReceiver) -> None:
    d = deployment
    call_id = place(d, language, CALLER, ANSWERS, receiver.url("/c2c/callback?order=7"))

    call, progress = poll(d, language, call_id)
    assert (call["id"], call["state"]) == (call_id, "ended")
    assert (call["answered"], call["minutes"], call["reason"]) == (True, 1, None)
    assert "state: ended" in progress
    assert "ended: answered, 1 minute(s)" in progress

    # c2c's own callback, signed with the account's secret, reached the snippet's receiver,
    # which verified it (else 403, and c2c would retry rather than mark it delivered).
    record = receiver.wait_record(lambda r: r["call_id"] == call_id)
    assert record == {"kind": "callback", "call_id": call_id, "answered": "1", "minutes": "1",
                      "reason": ""}
    callback = wait_until(
        lambda: (c := api_call(d, call_id)["callback"])["status"] == "delivered" and c,
        15, 0.05, "the callback delivered")
    assert callback["last_http_status"] == 200  # type: ignore[index]
    assert callback["attempts"] == 1  # type: ignore[index]


def test_a_busy_callee_is_polled_to_its_reason(deployment: Deployment, language: Language
                                               ) -> None:
    call_id = place(deployment, language, CALLER, BUSY, "")
    call, progress = poll(deployment, language, call_id)
    assert (call["state"], call["answered"], call["minutes"], call["reason"]) == (
        "ended", False, 0, 5)
    assert call["callee"]["hangup_cause"] == "USER_BUSY"
    assert "ended: not answered (busy)" in progress


def test_a_refused_request_exits_1_with_its_code(deployment: Deployment, language: Language
                                                ) -> None:
    wrong_key = "not-a-key-0123456789"
    refused = run(deployment, language, "place_call", *CALLER, *ANSWERS, "",
                  C2C_API_KEY=wrong_key)
    assert refused.returncode == 1
    assert "not placed: code 1 (invalid api_key)" in refused.stderr
    assert refused.stdout == ""
    assert wrong_key not in refused.stderr

    malformed = run(deployment, language, "place_call", "1", "12345", *ANSWERS, "")
    assert malformed.returncode == 1
    assert "not placed: code 4 (badly formed request)" in malformed.stderr


def test_a_retry_with_the_same_idempotency_key_places_nothing_more(
        deployment: Deployment, language: Language) -> None:
    key = f"snippet-{language.name}-{time.monotonic_ns()}"
    first = place(deployment, language, CALLER, ANSWERS, "", C2C_IDEMPOTENCY_KEY=key)
    again = place(deployment, language, CALLER, ANSWERS, "", C2C_IDEMPOTENCY_KEY=key)
    assert again == first  # the first answer, and no second call

    other = run(deployment, language, "place_call", *CALLER, *BUSY, "", C2C_IDEMPOTENCY_KEY=key)
    assert other.returncode == 1
    assert "not placed: code 4 (badly formed request)" in other.stderr


def test_no_answer_from_c2c_is_an_error_not_a_code(deployment: Deployment, language: Language
                                                  ) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    placed = run(deployment, language, "place_call", *CALLER, *ANSWERS, "", C2C_URL=nobody)
    assert placed.returncode == 1
    assert "no answer from c2c" in placed.stderr
    assert placed.stdout == ""

    # A wrong base URL: c2c's 404 is no code, even if a body happened to be digits.
    assert deployment.gunicorn is not None
    misplaced = run(deployment, language, "place_call", *CALLER, *ANSWERS, "",
                    C2C_URL=deployment.gunicorn.base_url + "/c2c")
    assert misplaced.returncode == 1
    assert "404" in misplaced.stderr
    assert misplaced.stdout == ""


def test_polling_a_call_that_is_not_the_accounts_fails_at_once(
        deployment: Deployment, language: Language) -> None:
    unknown = run(deployment, language, "poll_call", "00000000-0000-4000-8000-000000000000")
    assert unknown.returncode == 1
    assert "404" in unknown.stderr

    wrong_key = "not-a-key-0123456789"
    unauthorized = run(deployment, language, "poll_call", "00000000-0000-4000-8000-000000000000",
                       C2C_API_KEY=wrong_key)
    assert unauthorized.returncode == 1
    assert "401" in unauthorized.stderr
    assert wrong_key not in unauthorized.stderr


# -- verifying -------------------------------------------------------------------------------


def test_a_captured_callback_is_accepted_as_it_came_and_refused_once_altered(
        deployment: Deployment, language: Language, receiver: SnippetReceiver) -> None:
    d = deployment
    call_id = place(d, language, CALLER, BUSY, d.receiver.url("/hook?order=42&note=a%20b"))
    poll(d, language, call_id)
    wait_until(lambda: d.callbacks_for(call_id), 15, 0.05, "the callback captured")
    (captured,) = d.callbacks_for(call_id)
    target = captured.target
    headers = {name: captured.header(name)
               for name in ("X-C2C-Call-Id", "X-C2C-Timestamp", "X-C2C-Signature")}
    timestamp = int(headers["X-C2C-Timestamp"])
    secret = d.webhook_secret

    # As it came: accepted, and read.
    assert receiver.send("GET", target, headers) == 200
    record = receiver.wait_record(lambda r: r["call_id"] == call_id)
    assert (record["answered"], record["minutes"], record["reason"]) == ("0", "0", "5")

    def status(target: str = target, **changed: str) -> int:
        return receiver.send("GET", target, {**headers, **changed})

    # Tampered with: the result, the customer's own query, the signature, the timestamp.
    assert status(target.replace("reason=5", "reason=0")) == 403
    assert status(target.replace("order=42", "order=43")) == 403
    assert status(target.replace("a%20b", "a+b")) == 403  # the same value decoded: not the bytes
    assert status(target + "&answered=1") == 403
    flipped = headers["X-C2C-Signature"][:-1] + ("0" if headers["X-C2C-Signature"][-1] != "0"
                                                 else "1")
    assert status(**{"X-C2C-Signature": flipped}) == 403
    assert status(**{"X-C2C-Timestamp": str(timestamp + 1)}) == 403
    assert status(**{"X-C2C-Signature": sign("another-secret", timestamp, target)}) == 403
    assert receiver.send("GET", target, {"X-C2C-Call-Id": call_id}) == 403  # unsigned

    # Signed right but stale, or from the future: refused; signed now: accepted.
    now = int(time.time())
    for when, expected in ((now - 600, 403), (now + 600, 403), (now, 200)):
        assert status(**{"X-C2C-Timestamp": str(when),
                         "X-C2C-Signature": sign(secret, when, target)}) == expected, when

    # A secret being replaced: several values, any one matching is enough.
    both = f"{sign('old-secret', timestamp, target)}, {headers['X-C2C-Signature']}"
    assert status(**{"X-C2C-Signature": both}) == 200


def test_a_progress_webhook_is_verified_over_its_raw_body(
        deployment: Deployment, language: Language, receiver: SnippetReceiver) -> None:
    secret = deployment.webhook_secret
    call_id = "6f1c9a52-8d7e-4c2b-9d0e-5b1f2a6c7e90"
    # Spacing and key order a re-serialization would not keep: only the raw bytes verify.
    body = (f'{{"sequence": 2,  "call_id": "{call_id}", "event": "answered",'
            ' "at": "2026-01-31T09:00:00.250Z"}')
    now = int(time.time())

    def post(payload: str, when: int = now, signed: str | None = None) -> int:
        return receiver.send("POST", "/c2c/progress", {
            "Content-Type": "application/json", "X-C2C-Call-Id": call_id,
            "X-C2C-Delivery-Id": "41", "X-C2C-Timestamp": str(when),
            "X-C2C-Signature": sign(secret, when, signed if signed is not None else payload),
        }, payload.encode())

    assert post(body) == 200
    record = receiver.wait_record(lambda r: r["kind"] == "progress")
    assert record == {"kind": "progress", "call_id": call_id, "event": "answered", "sequence": 2,
                      "at": "2026-01-31T09:00:00.250Z", "delivery_id": "41"}

    assert post(body.replace('"answered"', '"bridged"'), signed=body) == 403
    assert post(body.replace("  ", " "), signed=body) == 403
    assert post(body, when=now - 600) == 403
    assert post(body, signed="/c2c/progress") == 403  # signed over the target, not the body
    assert len([r for r in receiver.records if r["kind"] == "progress"]) == 1


def test_live_progress_webhooks_and_the_callback_are_verified_in_order(
        deployment: Deployment, language: Language, receiver: SnippetReceiver) -> None:
    code, call_id = deployment.place(callback_url=receiver.url("/c2c/callback"),
                                     status_callback_url=receiver.url("/c2c/progress"),
                                     status_events="ringing,answered,bridged,completed")
    assert code == 0 and call_id
    receiver.wait_record(lambda r: r["kind"] == "progress" and r["event"] == "completed")
    receiver.wait_record(lambda r: r["kind"] == "callback")
    progress = [r for r in receiver.records if r["kind"] == "progress"]
    assert [(r["sequence"], r["event"]) for r in progress] == [
        (1, "ringing"), (2, "answered"), (3, "bridged"), (4, "completed")]
    for record in progress:
        assert record["call_id"] == call_id
        assert record["delivery_id"] == f"{call_id}:{record['sequence']}"


# -- the page --------------------------------------------------------------------------------


def test_the_page_shows_every_snippet_as_it_is() -> None:
    page = PAGE.read_text()
    for language in LANGUAGES:
        for name in ("place_call", "poll_call", "webhook_receiver"):
            path = language.script(name)
            assert f"({path.relative_to(REPO / 'docs').as_posix()})" in page, path
            assert path.read_text() in page, f"{path} differs from its copy in docs/clients.md"

"""send_callback against a real local HTTP(S) receiver: signing, status handling, SSRF guard."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c2c.callbacks.sender import SendResult, redact_url, request_target, send_callback
from tests.callback_receiver import CallbackReceiver, free_port

REPO = Path(__file__).resolve().parent.parent
SECRET = "whsec-test-0123456789abcdef"
CALL_ID = "3f1c9a52-1111-4c2b-9d0e-000000000001"
NOW = 1_700_000_000.7


def clock() -> float:
    return NOW


def send(url: str, *, allow_private: bool = True, timeout: float = 2.0, **kwargs) -> SendResult:
    return send_callback(url, SECRET, CALL_ID, timeout, allow_private, clock, **kwargs)


def expected_signature(secret: str, timestamp: str, target: str) -> str:
    """Independent of c2c.callbacks.signing: what a customer would write."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{target}".encode(), hashlib.sha256)
    return "v1=" + mac.hexdigest()


@pytest.fixture
def receiver():
    with CallbackReceiver() as running:
        yield running


def only_request(receiver: CallbackReceiver):
    assert len(receiver.requests) == 1, receiver.requests
    return receiver.requests[0]


# -- success and what is sent --


def test_success_is_signed_with_the_exact_target_and_timestamp(receiver):
    url = receiver.url("/hooks/c2c?account=7&minutes=2&secret=s3&answered=1&reason=")
    result = send(url)
    assert result == SendResult(True, 200, None)

    request = only_request(receiver)
    assert request.method == "GET"
    assert request.target == "/hooks/c2c?account=7&minutes=2&secret=s3&answered=1&reason="
    assert request.header("X-C2C-Call-Id") == CALL_ID
    assert request.header("X-C2C-Timestamp") == str(int(NOW))
    assert request.header("X-C2C-Signature") == expected_signature(
        SECRET, request.header("X-C2C-Timestamp"), request.target
    )
    assert request.header("Host") == f"127.0.0.1:{receiver.port}"


def test_query_parameters_arrive_exactly(receiver):
    url = receiver.url(
        "/cb?own=1&own=2&caller_phone_number=5552104427&callee_phone_number=2025550123"
        "&minutes=0&secret=&answered=0&reason=5"
    )
    assert send(url).ok
    assert only_request(receiver).query == [
        ("own", "1"),
        ("own", "2"),
        ("caller_phone_number", "5552104427"),
        ("callee_phone_number", "2025550123"),
        ("minutes", "0"),
        ("secret", ""),
        ("answered", "0"),
        ("reason", "5"),
    ]


def test_target_is_sent_as_signed_even_when_it_needs_encoding(receiver):
    # Lower-case escapes stay as they are (no normalising), a space and non-ASCII get escaped.
    url = receiver.url("/c b/ü?x=%2f%2F&note=a b&secret=%7e")
    assert send(url).ok
    request = only_request(receiver)
    assert request.target == "/c%20b/%C3%BC?x=%2f%2F&note=a%20b&secret=%7e"
    assert request.target == request_target(url)
    assert request.header("X-C2C-Signature") == expected_signature(
        SECRET, str(int(NOW)), request.target
    )


def test_no_path_sends_slash(receiver):
    assert send(f"http://127.0.0.1:{receiver.port}").ok
    assert only_request(receiver).target == "/"


def test_credentials_in_url_become_basic_auth_not_host(receiver):
    assert send(receiver.url("/cb", host="user:p%40ss@127.0.0.1")).ok
    request = only_request(receiver)
    assert request.header("Authorization") == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert request.header("Host") == f"127.0.0.1:{receiver.port}"


# -- failures --


def test_server_error_is_a_retryable_failure(receiver):
    receiver.fail_next(1, status=500)
    assert send(receiver.url()) == SendResult(False, 500, "HTTP 500")
    assert send(receiver.url()).ok


def test_client_error_is_a_failure_too(receiver):
    receiver.fail_next(1, status=404)
    result = send(receiver.url())
    assert (result.ok, result.http_status, result.retryable) == (False, 404, True)


def test_redirect_is_refused_not_followed(receiver):
    receiver.redirect_next(1, location=receiver.url("/elsewhere"), status=302)
    result = send(receiver.url("/cb"))
    assert result == SendResult(False, 302, "redirect refused (HTTP 302)")
    assert [r.path for r in receiver.requests] == ["/cb"]


@pytest.mark.parametrize("status", [301, 307, 308])
def test_every_redirect_status_is_refused(receiver, status):
    receiver.redirect_next(1, status=status)
    assert send(receiver.url()).error == f"redirect refused (HTTP {status})"
    assert len(receiver.requests) == 1


def test_a_stalled_answer_times_out(receiver):
    receiver.stall_next(1, seconds=10)
    started = time.monotonic()
    result = send(receiver.url(), timeout=0.5)
    assert time.monotonic() - started < 3
    assert not result.ok and result.retryable
    assert result.http_status is None
    assert "timed out" in result.error


def test_connection_refused():
    result = send(f"http://127.0.0.1:{free_port()}/cb")
    assert not result.ok and result.retryable
    assert "connection refused" in result.error


def test_receiver_down_then_up_on_the_same_port(receiver):
    receiver.go_down()
    assert "connection refused" in send(receiver.url()).error
    receiver.come_up()
    assert send(receiver.url()).ok
    assert len(receiver.requests) == 1


def test_unresolvable_host_is_retryable():
    def resolve(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = send("http://nowhere.invalid/cb", resolve=resolve)
    assert not result.ok and result.retryable
    assert result.error.startswith("cannot resolve nowhere.invalid")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http:///nohost", "http://h:99999/"])
def test_malformed_url_is_not_retried(url):
    result = send(url)
    assert (result.ok, result.retryable) == (False, False)


# -- the SSRF guard --


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "127.1",
        "2130706433",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
    ],
)
def test_loopback_is_refused_unless_allowed(receiver, host):
    result = send(receiver.url("/cb", host=host), allow_private=False)
    assert (result.ok, result.http_status, result.retryable) == (False, None, False)
    assert "non-public" in result.error
    assert receiver.requests == []


def test_any_private_address_among_several_refuses_the_host():
    def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.1.2.3"]

    result = send("http://mixed.example/cb", allow_private=False, resolve=resolve)
    assert (result.ok, result.retryable) == (False, False)
    assert "10.1.2.3" in result.error


def test_localhost_is_sent_when_private_is_allowed(receiver):
    assert send(receiver.url("/cb", host="localhost"), allow_private=True).ok
    assert only_request(receiver).header("Host") == f"localhost:{receiver.port}"


def test_connects_to_the_vetted_address_without_resolving_again(receiver, monkeypatch):
    vetted = []

    def resolve(host: str, port: int) -> list[str]:
        vetted.append(host)
        return ["127.0.0.1"]

    real_getaddrinfo = socket.getaddrinfo

    def numeric_only(host, *args, **kwargs):
        # A second lookup of the name could answer differently (DNS rebinding): none allowed.
        assert host.replace(".", "").isdigit() or ":" in host, f"resolved {host!r} again"
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    assert send(receiver.url("/cb", host="hooks.customer.test"), resolve=resolve).ok
    assert vetted == ["hooks.customer.test"]
    assert only_request(receiver).header("Host") == f"hooks.customer.test:{receiver.port}"


def test_the_vetted_address_is_connected_to_without_any_lookup(receiver, monkeypatch):
    """Not even of the literal: gevent would run it in its thread pool (bench/)."""

    def no_lookup(host, *args, **kwargs):
        raise AssertionError(f"getaddrinfo({host!r}) called")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    assert send(receiver.url("/cb")).ok
    refused = send(f"http://127.0.0.1:{free_port()}/cb")
    assert not refused.ok and refused.retryable and "connection refused" in refused.error
    receiver.stall_next(1, seconds=10)
    stalled = send(receiver.url(), timeout=0.5)
    assert not stalled.ok and stalled.retryable and "timed out" in stalled.error


def test_next_vetted_address_is_tried_when_one_refuses(receiver):
    # The receiver listens on 127.0.0.1 only, so 127.0.0.2 (loopback too) refuses.
    def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.2", "127.0.0.1"]

    assert send(receiver.url("/cb", host="two.test"), resolve=resolve).ok
    assert len(receiver.requests) == 1


# -- TLS: SNI and the certificate are checked against the hostname, not the pinned IP --


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    work = tmp_path_factory.mktemp("tls")

    def openssl(command: str) -> None:
        subprocess.run(["openssl", *command.split()], cwd=work, check=True, capture_output=True)

    (work / "server.ext").write_text(
        "subjectAltName=DNS:callback.test\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    openssl(
        f"req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=c2c-test-CA"
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
    )
    openssl(f"req {ec} -keyout server.key -out server.csr -subj /CN=callback.test")
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem"
        " -days 2 -extfile server.ext"
    )
    return work


@pytest.fixture
def tls_receiver(tls_files):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files / "server.pem", tls_files / "server.key")
    with CallbackReceiver(ssl_context=context) as running:
        yield running


def loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def test_https_verifies_the_hostname_on_the_pinned_address(tls_receiver, tls_files):
    url = tls_receiver.url("/cb?minutes=1", host="callback.test")
    result = send(url, resolve=loopback, ca_certs=str(tls_files / "ca.pem"))
    assert result == SendResult(True, 200, None)
    request = only_request(tls_receiver)
    assert request.header("Host") == f"callback.test:{tls_receiver.port}"
    assert request.header("X-C2C-Signature") == expected_signature(
        SECRET, str(int(NOW)), "/cb?minutes=1"
    )


def test_https_refuses_a_certificate_for_another_name(tls_receiver, tls_files):
    url = tls_receiver.url("/cb", host="other.test")
    result = send(url, resolve=loopback, ca_certs=str(tls_files / "ca.pem"))
    assert not result.ok and result.http_status is None
    assert "TLS" in result.error
    assert tls_receiver.requests == []


def test_https_refuses_an_untrusted_certificate(tls_receiver):
    result = send(tls_receiver.url("/cb", host="callback.test"), resolve=loopback)
    assert not result.ok
    assert "TLS certificate rejected" in result.error
    assert tls_receiver.requests == []


# -- under gevent's monkey patching (as in gunicorn's gevent workers) --

_PATCHED_SCRIPT = """
from gevent import monkey
monkey.patch_all()
import json, gevent
from c2c.callbacks.sender import send_callback
from tests.callback_receiver import CallbackReceiver

with CallbackReceiver() as receiver:
    receiver.stall_next(1, seconds=5)
    slow = gevent.spawn(send_callback, receiver.url("/slow", host="localhost"), "k", "c", 1.0, True)
    assert receiver.wait_for(1)  # the stall is taken by /slow, then the others go
    jobs = [slow] + [
        gevent.spawn(send_callback, receiver.url(f"/cb{i}"), "k", "c", 1.0, True) for i in range(5)
    ]
    gevent.joinall(jobs, timeout=10)
    results = [job.value for job in jobs]
    print(json.dumps({
        "ok": [r.ok for r in results],
        "errors": [r.error for r in results],
        "paths": sorted(r.path for r in receiver.requests),
        # Seconds from the stalled request's arrival to the last other one's: well under the
        # 1 s timeout only if the sends ran concurrently.
        "spread": receiver.requests[-1].received_at - receiver.requests[0].received_at,
    }))
"""


def test_works_under_gevent_monkey_patching():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    completed = subprocess.run(
        [sys.executable, "-c", _PATCHED_SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    # The stalled send times out while the five others, concurrently, succeed.
    assert report["ok"] == [False, True, True, True, True, True]
    assert "timed out" in report["errors"][0]
    assert report["paths"] == ["/cb0", "/cb1", "/cb2", "/cb3", "/cb4", "/slow"]
    assert report["spread"] < 0.8


# -- logging helpers --


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h.example/cb?a=1&secret=hunter2&x=2", "https://h.example/cb?a=1&secret=***&x=2"),
        ("https://h.example/cb?secret=hunter2", "https://h.example/cb?secret=***"),
        ("https://h.example/cb?SECRET=a&mysecret=b", "https://h.example/cb?SECRET=***&mysecret=b"),
        ("https://u:pw@h.example:8443/cb", "https://h.example:8443/cb"),
        ("http://h.example", "http://h.example"),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown


# -- docs/callbacks.md: the customers' snippets accept what c2c sends --

DOC = REPO / "docs" / "callbacks.md"
DOC_EXAMPLE_TARGET = (
    "/cb?caller_phone_number=5552104427&callee_phone_number=2025550123"
    "&minutes=2&secret=abc&answered=1&reason="
)


def doc_block(language: str) -> str:
    text = DOC.read_text()
    start = text.index(f"```{language}\n") + len(language) + 4
    return text[start : text.index("```", start)]


def doc_example_signature() -> str:
    text = DOC.read_text()
    start = text.index("X-C2C-Signature: v1=", text.index("### Checking your code"))
    return text[start:].split("\n", 1)[0].split(": ", 1)[1]


@pytest.fixture
def python_snippet() -> dict:
    namespace: dict = {"WEBHOOK_SECRET": SECRET}
    exec(compile(doc_block("python"), str(DOC), "exec"), namespace)
    return namespace


def test_doc_python_snippet_accepts_a_real_delivery(receiver, python_snippet):
    send_callback(receiver.url("/c2c/cb?x=a%2Fb&note=a b&secret=s"), SECRET, CALL_ID, 2.0, True)
    request = only_request(receiver)
    ok = python_snippet["c2c_signature_ok"]
    args = (request.header("X-C2C-Timestamp"), request.target, request.header("X-C2C-Signature"))
    assert ok(SECRET, *args)
    assert not ok("wrong-secret", *args)
    assert not ok(SECRET, args[0], request.target + "&minutes=99", args[2])
    assert not ok(SECRET, *args, now=time.time() + 301)  # stale

    statuses = []
    environ = {
        "RAW_URI": request.target,
        "HTTP_X_C2C_TIMESTAMP": args[0],
        "HTTP_X_C2C_SIGNATURE": args[2],
        "HTTP_X_C2C_CALL_ID": request.header("X-C2C-Call-Id"),
    }
    python_snippet["application"](environ, lambda status, headers: statuses.append(status))
    python_snippet["application"](
        {**environ, "RAW_URI": "/c2c/cb"}, lambda s, h: statuses.append(s)
    )
    assert statuses == ["200 OK", "403 Forbidden"]


def test_doc_example_signature_is_right(python_snippet):
    signature = doc_example_signature()
    assert signature == expected_signature("test-secret", "1700000000", DOC_EXAMPLE_TARGET)
    ok = python_snippet["c2c_signature_ok"]
    assert ok("test-secret", "1700000000", DOC_EXAMPLE_TARGET, signature, now=1_700_000_100)
    assert ok("test-secret", "1700000000", DOC_EXAMPLE_TARGET, f"v1=00, {signature}", 1_700_000_000)
    assert not ok("test-secret", "1700000000", DOC_EXAMPLE_TARGET, signature, now=1_700_000_301)
    assert not ok("test-secret", "१७००", DOC_EXAMPLE_TARGET, signature, now=1_700_000_000)


@pytest.mark.skipif(shutil.which("php") is None, reason="php not installed")
def test_doc_php_snippet_agrees(tmp_path):
    function = doc_block("php").split("$ok = c2c_signature_ok(")[0]
    script = tmp_path / "check.php"
    script.write_text(
        function
        + "echo json_encode([\n"
        + f"  c2c_signature_ok('test-secret', '1700000000', '{DOC_EXAMPLE_TARGET}',"
        + f" '{doc_example_signature()}', 1700000100),\n"
        + f"  c2c_signature_ok('test-secret', '1700000000', '{DOC_EXAMPLE_TARGET}',"
        + f" '{doc_example_signature()}', 1700000301),\n"
        + f"  c2c_signature_ok('other', '1700000000', '{DOC_EXAMPLE_TARGET}',"
        + f" '{doc_example_signature()}', 1700000000),\n"
        + "]);\n"
    )
    completed = subprocess.run(["php", str(script)], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0, completed.stderr + completed.stdout
    assert json.loads(completed.stdout) == [True, False, False]

"""A local HTTP server standing in for a customer's callback endpoint (tests only).

It records every request (raw target, path, query, headers) and answers 200 "ok" unless told
otherwise for the next requests: answer a status (500, 503...), redirect, or stall (hold the
answer so the client times out). It can go down (stop listening: connection refused) and come
back up on the same port. Optionally it speaks TLS with a given server SSLContext.

    with CallbackReceiver() as receiver:
        receiver.fail_next(2)                 # 500, 500, then 200
        url = receiver.url("/cb?x=1")
        ...
        assert receiver.requests[-1].query == [("x", "1"), ...]

It runs in threads, or in greenlets when gevent has monkey-patched threading.
"""

from __future__ import annotations

import collections
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    target: str  # the request target exactly as on the request line
    path: str
    query: list[tuple[str, str]]  # decoded, in order, blanks kept
    headers: dict[str, str] = field(repr=False)  # lowercased names
    received_at: float
    body: bytes = field(default=b"", repr=False)  # as sent (a POST's), by its Content-Length

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class _Plan:
    status: int = 200
    location: str | None = None
    stall: float = 0.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for 'connection refused')."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # come back up on the same port right away
    daemon_threads = True
    block_on_close = False  # a stalled handler must not hold up stop()

    def __init__(self, address, receiver: CallbackReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)

    def get_request(self):
        sock, address = self.socket.accept()
        context = self.receiver.ssl_context
        if context is not None:
            # Handshake in the handler's thread, on first read, not in the accept loop.
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request, client_address) -> None:
        # Clients that time out, refuse our certificate or hang up are part of the tests.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        receiver = self.server.receiver
        parts = urlsplit(self.path)
        length = self.headers.get("Content-Length", "")
        body = self.rfile.read(int(length)) if length.isdigit() else b""
        receiver._record(
            ReceivedRequest(
                method=self.command,
                target=self.path,
                path=parts.path,
                query=parse_qsl(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                received_at=time.time(),
                body=body,
            )
        )
        plan = receiver._next_plan()
        if plan.stall and receiver._released.wait(plan.stall):
            return  # stopping: leave without an answer
        body = b"ok" if plan.status < 300 else f"status {plan.status}".encode()
        self.send_response(plan.status)
        if plan.location:
            self.send_header("Location", plan.location)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib's signature)
        pass


class CallbackReceiver:
    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.requests: list[ReceivedRequest] = []
        self._plans: collections.deque[_Plan] = collections.deque()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> CallbackReceiver:
        self._released.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]  # keep the port for come_up()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # stalled handlers return at once
        self.go_down()

    def go_down(self) -> None:
        """Stop listening: connecting is refused until come_up()."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def come_up(self) -> None:
        """Listen again, on the same port."""
        if self._server is None:
            self.start()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def __enter__(self) -> CallbackReceiver:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- addresses --

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def url(self, target: str = "/cb", host: str | None = None) -> str:
        """An absolute URL to this receiver; ``host`` replaces the address (e.g. 'localhost')."""
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host or self.host}:{self.port}{target}"

    # -- behaviour of the next requests --

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        self._plan(count, _Plan(status=status))

    def redirect_next(
        self, count: int = 1, location: str = "/elsewhere", status: int = 302
    ) -> None:
        self._plan(count, _Plan(status=status, location=location))

    def stall_next(self, count: int = 1, seconds: float = 30.0) -> None:
        """Hold the answer to the next requests for ``seconds`` (then answer 200)."""
        self._plan(count, _Plan(stall=seconds))

    def _plan(self, count: int, plan: _Plan) -> None:
        with self._lock:
            self._plans.extend([plan] * count)

    def _next_plan(self) -> _Plan:
        with self._lock:
            return self._plans.popleft() if self._plans else _Plan()

    # -- what arrived --

    def _record(self, request: ReceivedRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` requests have arrived."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

"""A tiny HTTP server for `c2c demo` that prints each callback it receives."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from gevent.pywsgi import WSGIServer


class CallbackPrinter:
    def __init__(self, host: str, port: int, out: Callable[[str], None]) -> None:
        self._out = out
        self._server = WSGIServer((host, port), self._app, log=None)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop(timeout=1)

    def _app(self, environ, start_response):
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        call_id = environ.get("HTTP_X_C2C_CALL_ID", "?")
        fields = " ".join(f"{k}={v}" for k, v in params.items())
        self._out(f"callback received for call {call_id}: {fields}")
        start_response("204 No Content", [])
        return [b""]

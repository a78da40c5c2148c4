"""The widget's endpoints: ``/widget.js`` and ``/api/widget/...`` (c2c.widgets.service decides).

They are called cross-origin by the pages a widget lists, so every answer says ``Vary: Origin``
and only an answer to a listed origin carries ``Access-Control-Allow-Origin`` (a browser on any
other page sees a network error). The call request needs ``Content-Type: application/json``,
which makes browsers ask first (a CORS preflight, answered here by OPTIONS): a page of another
origin cannot even send it. JSON bodies of at most 4 KiB; errors as ``{"error": ...}``; a
store failure answers 503 ``unavailable``, never a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from importlib import resources

import falcon

from c2c.api.metrics import Metrics
from c2c.domain.networks import client_address
from c2c.errors import StoreError
from c2c.widgets.origins import normalise_origin
from c2c.widgets.service import Answer, WidgetService, refused

log = logging.getLogger(__name__)

MAX_BODY = 4096
PREFLIGHT_MAX_AGE = 600


def page_origin(req: falcon.Request) -> str | None:
    """The origin of the page that asks: its Origin header; or, for a GET without one (browsers
    send none on a same-origin GET), this API's own origin as the client reached it (through
    nginx: X-Forwarded-Proto and -Host). Either can be forged by anything but a browser: the
    origin check protects visitors' browsers, the challenge and the limits protect the rest."""
    origin = req.get_header("Origin")
    if origin is not None or req.method != "GET":
        return origin
    try:
        return normalise_origin(req.forwarded_prefix)
    except ValueError:
        return None


def static_file(name: str) -> bytes:
    return resources.files("c2c.api").joinpath("static", name).read_bytes()


def _write(req: falcon.Request, resp: falcon.Response, answer: Answer) -> None:
    resp.status = falcon.code_to_http_status(answer.status)
    resp.content_type = falcon.MEDIA_JSON
    resp.cache_control = ["no-store"]
    resp.vary = ["Origin"]
    if answer.widget is not None:
        resp.set_header("Access-Control-Allow-Origin", page_origin(req) or "")
    if "retry_after" in answer.body:
        resp.set_header("Retry-After", str(answer.body["retry_after"]))
    resp.text = json.dumps(answer.body)


def _guarded(work: Callable[[], Answer]) -> Answer:
    try:
        return work()
    except StoreError as exc:
        log.warning("store unavailable, widget answered 503: %s", exc)
        return refused(503, "unavailable")
    except Exception:  # the contract: never a 500, never a traceback to a visitor
        log.exception("unexpected error in a widget request; answering 503")
        return refused(503, "unavailable")


def _preflight(req: falcon.Request, resp: falcon.Response, answer: Answer,
               methods: str) -> None:
    if answer.widget is None:
        _write(req, resp, answer)
        return
    resp.status = falcon.HTTP_204
    resp.vary = ["Origin"]
    resp.set_header("Access-Control-Allow-Origin", req.get_header("Origin") or "")
    resp.set_header("Access-Control-Allow-Methods", methods)
    resp.set_header("Access-Control-Allow-Headers", "Content-Type")
    resp.set_header("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE))


class WidgetScriptResource:
    """``GET /widget.js``: the script pages load (cacheable, the same for every widget)."""

    def __init__(self) -> None:
        self._body = static_file("widget.js")

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/javascript; charset=utf-8"
        resp.cache_control = ["public", "max-age=300"]
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Cross-Origin-Resource-Policy", "cross-origin")
        resp.data = self._body


class WidgetReadResource:
    """A GET of the widget's, and its preflight: ``GET /api/widget/{id}`` (what the page needs
    to draw the widget: ``read=service.describe``) or ``/challenge`` (a fresh proof-of-work
    challenge, good once: ``read=service.challenge``)."""

    def __init__(self, service: WidgetService,
                 read: Callable[[str, str | None], Answer]) -> None:
        self._service = service
        self._read = read

    def on_get(self, req: falcon.Request, resp: falcon.Response, widget_id: str) -> None:
        _write(req, resp, _guarded(lambda: self._read(widget_id, page_origin(req))))

    def on_options(self, req: falcon.Request, resp: falcon.Response, widget_id: str) -> None:
        _preflight(req, resp, _guarded(lambda: self._service.allowed(
            widget_id, req.get_header("Origin"))), "GET")


class WidgetCallsResource:
    """``POST /api/widget/{id}/calls``: ring the visitor, then the widget's callee."""

    def __init__(self, service: WidgetService, metrics: Metrics,
                 trusted_proxies: tuple[str, ...]) -> None:
        self._service = service
        self._metrics = metrics
        self._trusted_proxies = trusted_proxies

    def on_post(self, req: falcon.Request, resp: falcon.Response, widget_id: str) -> None:
        origin = req.get_header("Origin")
        client = client_address(req.env.get("REMOTE_ADDR"), req.get_header("X-Forwarded-For"),
                                self._trusted_proxies)

        def work() -> Answer:
            allowed = self._service.allowed(widget_id, origin)
            if allowed.widget is None:
                return allowed
            if (req.content_type or "").split(";")[0].strip().lower() != falcon.MEDIA_JSON:
                return refused(415, "unsupported_media_type", allowed.widget)
            raw = req.bounded_stream.read(MAX_BODY + 1)
            try:
                body = json.loads(raw) if len(raw) <= MAX_BODY else None
            except ValueError:
                body = None
            if body is None:
                return refused(400, "invalid_number", allowed.widget)
            return self._service.place(widget_id, origin, body, client)

        answer = _guarded(work)
        self._metrics.widget_request(answer.result)
        _write(req, resp, answer)

    def on_options(self, req: falcon.Request, resp: falcon.Response, widget_id: str) -> None:
        _preflight(req, resp, _guarded(lambda: self._service.allowed(
            widget_id, req.get_header("Origin"))), "POST")


class WidgetCallResource:
    """``GET /api/widget/calls/{token}``: the visitor's call's state, nothing else."""

    def __init__(self, service: WidgetService) -> None:
        self._service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        _write(req, resp, _guarded(lambda: self._service.status(
            token, page_origin(req))))

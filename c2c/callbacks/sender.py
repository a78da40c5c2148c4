"""Sending one callback: a signed GET to the customer's URL, on a vetted address, no redirects;
and one progress webhook, a signed POST of its JSON body, the same way (send_progress).

The host is resolved here and every address it has is checked (address_guard); the connection
then goes to one of those IPs, never to the name again, so a DNS answer that changes in between
cannot lead inside the operator's network. The Host header, TLS SNI and the certificate check
still use the URL's hostname.

urllib3's connection classes are used directly: no pool, no retries, no redirects, no proxy from
the environment (any of which would connect somewhere we did not vet), and no rewriting of the
request target (what is signed is byte for byte what is sent). Under gevent's monkey patching
their sockets and the resolver cooperate like any other.
"""

from __future__ import annotations

import base64
import http.client
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError
from urllib3.util.ssl_match_hostname import CertificateError

from c2c.callbacks.address_guard import (
    Resolver,
    UnsafeCallbackAddress,
    check_url_host,
    resolve_with_getaddrinfo,
)
from c2c.callbacks.signing import signature_header

log = logging.getLogger(__name__)

USER_AGENT = "c2c-callback/1"
MAX_ADDRESSES_TRIED = 3  # a host with many dead addresses must not hold a sender for long
MAX_BODY_BYTES = 1024  # the body means nothing to us; read at most this much of it

# Printable ASCII except space passes as is (already-escaped '%XX' included); anything else is
# percent-encoded as UTF-8, since http.client refuses spaces and controls in a request line.
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
_SECRET_PARAM = re.compile(r"(?i)((?:^|[?&;])secret=)[^&;#]*")


@dataclass(frozen=True)
class SendResult:
    ok: bool
    http_status: int | None
    error: str | None
    # False when trying again cannot help: the URL is malformed or its address is refused.
    retryable: bool = True


@dataclass(frozen=True)
class _Target:
    scheme: str
    hostname: str  # lowercased, IPv6 without brackets
    port: int
    host_header: str  # the URL's host[:port] as written
    request_target: str  # path and query as sent on the request line (and signed)
    authorization: str | None  # from user:password@ in the URL, if any

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an absolute http(s) URL")
        port = parts.port or (443 if scheme == "https" else 80)  # ValueError on a bad port
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        authorization = None
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(credentials.encode()).decode("ascii")
        return cls(
            scheme=scheme,
            hostname=parts.hostname,
            port=port,
            host_header=parts.netloc.rpartition("@")[2],
            request_target=quote(target, safe=_TARGET_SAFE),
            authorization=authorization,
        )


def request_target(url: str) -> str:
    """The path and query ``send_callback`` puts on the request line (and signs) for ``url``."""
    return _Target.parse(url).request_target


def redact_url(url: str) -> str:
    """``url`` fit for a log line: no user:password, and the ``secret`` parameter's value hidden."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        query = _SECRET_PARAM.sub(r"\1***", parts.query)
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme}://{netloc}{parts.path}{'?' if query else ''}{query}"


def send_callback(
    url: str,
    secret: str | Sequence[str],
    call_id: str,
    timeout: float,
    allow_private: bool,
    now: Callable[[], float] = time.time,
    *,
    resolve: Resolver = resolve_with_getaddrinfo,
    ca_certs: str | None = None,
) -> SendResult:
    """GET ``url`` once, signed with ``secret``; 2xx is success, anything else a failure.

    ``timeout`` bounds connecting and each read. ``ca_certs`` replaces the system's trusted
    CAs (tests). Never raises for network or HTTP trouble: the result says what happened.
    """
    return _send(url, secret, call_id, timeout, allow_private, now, resolve=resolve,
                 ca_certs=ca_certs, method="GET", body=None, extra_headers={})


def send_progress(
    url: str,
    secret: str | Sequence[str],
    call_id: str,
    delivery_id: str,
    body: str,
    timeout: float,
    allow_private: bool,
    now: Callable[[], float] = time.time,
    *,
    resolve: Resolver = resolve_with_getaddrinfo,
    ca_certs: str | None = None,
) -> SendResult:
    """POST ``body`` (a progress webhook's JSON, ASCII) to ``url`` once, as send_callback sends
    a callback, except what is signed: the timestamp, a '.', and the body exactly as sent.
    ``delivery_id`` is the same on every try of one webhook, so the receiver can de-duplicate.
    """
    return _send(url, secret, call_id, timeout, allow_private, now, resolve=resolve,
                 ca_certs=ca_certs, method="POST", body=body.encode("ascii"),
                 extra_headers={"Content-Type": "application/json",
                                "X-C2C-Delivery-Id": delivery_id})


def _send(
    url: str,
    secret: str | Sequence[str],
    call_id: str,
    timeout: float,
    allow_private: bool,
    now: Callable[[], float],
    *,
    resolve: Resolver,
    ca_certs: str | None,
    method: str,
    body: bytes | None,
    extra_headers: dict[str, str],
) -> SendResult:
    """One signed request: a GET signed over its request target, or a POST over its body."""
    try:
        target = _Target.parse(url)
    except ValueError as exc:
        return SendResult(False, None, f"bad callback URL: {exc}", retryable=False)
    try:
        addresses = check_url_host(url, resolve, allow_private=allow_private)
    except UnsafeCallbackAddress as exc:
        return SendResult(False, None, exc.message, retryable=False)
    except OSError as exc:
        return SendResult(False, None, f"cannot resolve {target.hostname}: {_describe(exc)}")

    timestamp = int(now())
    signed = target.request_target if body is None else body.decode("ascii")
    headers = {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
        "Accept-Encoding": "identity",
        "Connection": "close",
        "X-C2C-Call-Id": call_id,
        "X-C2C-Timestamp": str(timestamp),
        "X-C2C-Signature": signature_header(secret, timestamp, signed),
        **extra_headers,
    }
    if target.authorization:
        headers["Authorization"] = target.authorization

    error = "no address to connect to"
    for address in addresses[:MAX_ADDRESSES_TRIED]:
        connection = _connection(target, address, timeout, ca_certs)
        try:
            try:
                connection.connect()
            except (OSError, HTTPError, CertificateError) as exc:
                # Nothing was sent: the next address may work.
                error = f"connect to {_show(address)}:{target.port} failed: {_describe(exc)}"
                log.debug("call %s: %s", call_id, error)
                continue
            return _exchange(connection, target, headers, method, body)
        finally:
            connection.close()
    return SendResult(False, None, error)


def _connect_to_literal(connection: HTTPConnection) -> socket.socket:
    """Connect to the address literal the guard checked without asking the resolver again:
    gevent runs every getaddrinfo, a literal's too, in its thread pool (bench/: about a tenth
    of the callback worker's CPU went to that hand-off). Raises as urllib3's own _new_conn."""
    host, timeout = connection._dns_host, connection.timeout
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        for option in connection.socket_options or ():
            sock.setsockopt(*option)
        sock.settimeout(timeout if isinstance(timeout, (int, float)) else None)
        sock.connect((host, connection.port))
    except TimeoutError as exc:
        sock.close()
        raise ConnectTimeoutError(
            connection, f"Connection to {host} timed out. (connect timeout={timeout})") from exc
    except OSError as exc:
        sock.close()
        raise NewConnectionError(connection,
                                 f"Failed to establish a new connection: {exc}") from exc
    return sock


class _HTTPToAddress(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        # A zoned IPv6 address ('fe80::1%eth0') goes through getaddrinfo, which knows its scope.
        return super()._new_conn() if "%" in self._dns_host else _connect_to_literal(self)


class _HTTPSToAddress(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return super()._new_conn() if "%" in self._dns_host else _connect_to_literal(self)


def _connection(
    target: _Target, address: str, timeout: float, ca_certs: str | None
) -> HTTPConnection:
    if target.scheme == "http":
        return _HTTPToAddress(address, target.port, timeout=timeout)
    # SNI and the certificate check use the hostname; the TCP connection goes to the address.
    return _HTTPSToAddress(
        address,
        target.port,
        timeout=timeout,
        server_hostname=target.hostname,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_certs,
    )


def _exchange(connection: HTTPConnection, target: _Target, headers: dict[str, str],
              method: str = "GET", body: bytes | None = None) -> SendResult:
    """Send the request on a connected ``connection`` and judge the answer by its status."""
    try:
        # With a body, urllib3 adds its Content-Length (never chunked: it knows the length).
        connection.request(method, target.request_target, body=body, headers=headers,
                           preload_content=False)
        response = connection.getresponse()
    except (OSError, HTTPError, http.client.HTTPException) as exc:
        return SendResult(False, None, f"request failed: {_describe(exc)}")
    status = response.status
    if 200 <= status < 300:
        return SendResult(True, status, None)
    if 300 <= status < 400:
        return SendResult(False, status, f"redirect refused (HTTP {status})")
    return SendResult(False, status, f"HTTP {status}")


def _describe(exc: BaseException) -> str:
    """A short text about a network error, without URLs or object reprs."""
    cause = exc.__cause__ if isinstance(exc, HTTPError) and exc.__cause__ else exc
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, ConnectionResetError):
        return "connection reset"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError | CertificateError):
        return f"TLS error: {cause}"
    if isinstance(cause, http.client.RemoteDisconnected):
        return "closed without an answer"
    if isinstance(cause, http.client.HTTPException):
        return f"bad HTTP answer ({type(cause).__name__})"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return type(cause).__name__


def _show(address: str) -> str:
    return f"[{address}]" if ":" in address else address

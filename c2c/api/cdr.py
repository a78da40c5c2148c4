"""``POST /internal/cdr`` (mod_xml_cdr) and ``POST /internal/cdr/json`` (mod_json_cdr).

FreeSWITCH posts every leg's CDR here (freeswitch-conf/autoload_configs/xml_cdr.conf.xml). The
answer decides what the module does next: any 2xx and it forgets the CDR, anything else and it
retries, then spools the CDR to disk for `c2c cdr replay`. So:

- 200 when the leg was applied, and when the CDR is not about one of our legs (nothing to keep);
- 400 for a CDR that cannot be read (logged; it will land in the spool, then in its bad/);
- 503 when the store is down, so that the CDR is retried and spooled rather than lost;
- 404 when no password is configured (the endpoint is off), 403 for a peer outside the internal
  networks, 401 without the right basic credentials; 413 and 415 for oversized or unknown bodies.

The peer is the TCP peer (REMOTE_ADDR, ``req.remote_addr``), never X-Forwarded-For: a proxy in front of c2c makes
every request come from the proxy, so the proxy must not forward /internal/ at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable

import falcon

from c2c.calls.cdr import (
    MAX_CDR_BYTES,
    CdrError,
    CdrFormat,
    UnsupportedCdrEncoding,
    leg_end_from_cdr,
    unwrap_post_body,
)
from c2c.calls.events import LegEnd
from c2c.errors import StoreError

log = logging.getLogger(__name__)

REALM = "c2c-cdr"
# A few seconds: FreeSWITCH's own retry delay (xml_cdr.conf.xml) decides when it comes back.
RETRY_AFTER_SECONDS = 5

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_LOGGABLE = re.compile(r"[^A-Za-z0-9_.-]")


class CdrResource:
    """Route ``/internal/cdr`` to this resource, and ``/internal/cdr/json`` with suffix="json"."""

    def __init__(
        self,
        apply: Callable[[LegEnd], None],
        user: str,
        password: str,
        networks: Iterable[str],
    ) -> None:
        self._apply = apply
        self._enabled = bool(password)
        # Only digests are kept and compared: equal lengths, constant time, no secret in memory
        # dumps of this object.
        self._user_digest = _digest(user)
        self._password_digest = _digest(password)
        self._networks: tuple[IpNetwork, ...] = tuple(
            ipaddress.ip_network(net, strict=False) for net in networks
        )

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._receive(req, resp, CdrFormat.XML)

    def on_post_json(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._receive(req, resp, CdrFormat.JSON)

    def _receive(self, req: falcon.Request, resp: falcon.Response, cdr_format: CdrFormat) -> None:
        if not self._enabled:
            raise falcon.HTTPNotFound()
        # REMOTE_ADDR itself, as req.remote_addr reads it, but without its 127.0.0.1 default:
        # a server that gives no peer address (a unix socket) vouches for nobody.
        peer = req.env.get("REMOTE_ADDR") or ""
        if not self._peer_allowed(peer):
            log.warning("cdr: refused a POST from %s (not an internal network)", peer)
            raise falcon.HTTPForbidden()
        if not self._authorized(req.get_header("Authorization")):
            log.warning("cdr: refused a POST from %s (bad or missing credentials)", peer)
            raise falcon.HTTPUnauthorized(challenges=[f'Basic realm="{REALM}"'])
        # mod_xml_cdr appends ?uuid=<uuid> (a_<uuid> with prefix-a-leg): only for the logs.
        channel = _LOGGABLE.sub("?", (req.get_param("uuid") or "?")[:64])
        body = _read_body(req)
        try:
            end = leg_end_from_cdr(unwrap_post_body(body, req.content_type), cdr_format)
        except UnsupportedCdrEncoding as exc:
            log.warning("cdr %s from %s: %s", channel, peer, exc)
            raise falcon.HTTPUnsupportedMediaType(description=str(exc)) from exc
        except CdrError as exc:
            log.warning("cdr %s from %s: unreadable %s CDR: %s", channel, peer, cdr_format, exc)
            raise falcon.HTTPBadRequest(description=str(exc)) from exc
        resp.content_type = falcon.MEDIA_TEXT
        if end is None:
            log.debug("cdr %s: not one of our legs", channel)
            resp.text = "not ours"
            return
        try:
            self._apply(end)
        except StoreError as exc:
            log.error(
                "call %s: %s leg CDR (channel %s) not applied, store unavailable: %s",
                end.call_id,
                end.leg,
                channel,
                exc,
            )
            raise falcon.HTTPServiceUnavailable(retry_after=RETRY_AFTER_SECONDS) from exc
        log.info(
            "call %s: %s leg end applied from its CDR (channel %s, %s)",
            end.call_id,
            end.leg,
            channel,
            end.cause,
        )
        resp.text = "ok"

    def _peer_allowed(self, remote_addr: str | None) -> bool:
        try:
            address = ipaddress.ip_address(remote_addr or "")
        except ValueError:
            return False  # e.g. a unix socket: no address to vouch for the peer
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack listener reports IPv4 peers this way
        return any(address in network for network in self._networks)

    def _authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        # Both compared, always: the time taken says nothing about which one was wrong.
        user_ok = hmac.compare_digest(_digest(user), self._user_digest)
        password_ok = hmac.compare_digest(_digest(password), self._password_digest)
        return user_ok & password_ok


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _read_body(req: falcon.Request) -> bytes:
    length = req.content_length
    if length is not None and length > MAX_CDR_BYTES:
        raise falcon.HTTPContentTooLarge()
    body = req.bounded_stream.read(MAX_CDR_BYTES + 1)
    if len(body) > MAX_CDR_BYTES:
        raise falcon.HTTPContentTooLarge()
    return body

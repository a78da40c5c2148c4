"""POSTing each leg's CDR like mod_xml_cdr (esl-reference.md section 7.1).

Once per leg, at CS_REPORTING (before CHANNEL_HANGUP_COMPLETE is fired), the leg's XML CDR is
POSTed to ``url?uuid=<a_><uuid>`` as ``cdr=<url-encoded XML>``
(``application/x-www-form-urlencoded``, mod_xml_cdr's ``encode=true``), or as raw ``text/xml``
with ``encode="textxml"``. Any 2xx is success; otherwise it tries ``retries`` more times,
``delay`` seconds apart, and then writes ``<spool_dir>/<a_><uuid>.cdr.xml``, which nothing
re-sends. Unlike mod_xml_cdr the POST does not hold up the channel: it runs in its own greenlet.
"""

from __future__ import annotations

import base64
import http.client
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape, quoteattr

import gevent
import gevent.socket
import gevent.ssl

from c2c.esl.protocol import url_encode
from c2c.fakeswitch.calls import CALLER, Leg

if TYPE_CHECKING:
    from c2c.fakeswitch.server import FakeSwitch

log = logging.getLogger(__name__)


def cdr_xml(leg: Leg, core_uuid: str, switchname: str) -> str:
    """switch_ivr_generate_xml_cdr, in its main parts: channel data, variables, app log,
    callflow with the caller profile (and the other leg's) and the times."""
    channel = leg.channel
    caller = channel.caller
    lines = [
        '<?xml version="1.0"?>',
        f"<cdr core-uuid={quoteattr(core_uuid)} switchname={quoteattr(switchname)}>",
        "  <channel_data>",
        f"    <state>{channel.state}</state>",
        f"    <direction>{caller.direction}</direction>",
        f"    <state_number>{channel.state_number}</state_number>",
        "  </channel_data>",
        "  <variables>",
    ]
    lines += [
        f"    <{name}>{url_encode(value)}</{name}>" for name, value in channel.variables.items()
    ]
    lines.append("  </variables>")
    if leg.application:
        lines += [
            "  <app_log>",
            f"    <application app_name={quoteattr(leg.application)} "
            f"app_data={quoteattr(leg.application_args)}></application>",
            "  </app_log>",
        ]
    lines += [
        f'  <callflow dialplan="" unique-id={quoteattr(channel.uuid)} profile_index="1">',
        "    <caller_profile>",
    ]
    profile = [
        ("username", caller.username),
        ("dialplan", caller.dialplan),
        ("caller_id_name", caller.caller_id_name),
        ("ani", caller.ani),
        ("aniii", caller.aniii),
        ("caller_id_number", caller.caller_id_number),
        ("network_addr", caller.network_addr),
        ("rdnis", caller.rdnis),
        ("destination_number", caller.destination_number),
        ("uuid", caller.uuid),
        ("source", caller.source),
        ("context", caller.context),
        ("chan_name", caller.channel_name),
    ]
    lines += [f"      <{name}>{escape(value)}</{name}>" for name, value in profile]
    if channel.other is not None and channel.other_type:
        other = channel.other
        lines += [
            f"      <{channel.other_type}>",
            f"        <{channel.other_type}_caller_profile>",
            f"          <caller_id_name>{escape(other.caller_id_name)}</caller_id_name>",
            f"          <caller_id_number>{escape(other.caller_id_number)}</caller_id_number>",
            f"          <destination_number>{escape(other.destination_number)}"
            "</destination_number>",
            f"          <uuid>{escape(other.uuid)}</uuid>",
            f"          <chan_name>{escape(other.channel_name)}</chan_name>",
            f"        </{channel.other_type}_caller_profile>",
            f"      </{channel.other_type}>",
        ]
    times = caller.times
    lines += [
        "    </caller_profile>",
        "    <times>",
        f"      <created_time>{times.created}</created_time>",
        f"      <profile_created_time>{times.profile_created}</profile_created_time>",
        f"      <progress_time>{times.progress}</progress_time>",
        f"      <progress_media_time>{times.progress_media}</progress_media_time>",
        f"      <answered_time>{times.answered}</answered_time>",
        f"      <bridged_time>{times.bridged}</bridged_time>",
        f"      <last_hold_time>{times.last_hold}</last_hold_time>",
        f"      <hold_accum_time>{times.hold_accum}</hold_accum_time>",
        f"      <hangup_time>{times.hangup}</hangup_time>",
        f"      <resurrect_time>{times.resurrect}</resurrect_time>",
        f"      <transfer_time>{times.transfer}</transfer_time>",
        "    </times>",
        "  </callflow>",
        "</cdr>",
    ]
    return "\n".join(lines) + "\n"


class CdrPoster:
    def __init__(
        self,
        url: str,
        spool_dir: str | os.PathLike[str] | None = None,
        retries: int = 2,
        delay: float = 1.0,
        timeout: float = 5.0,
        credentials: str | None = None,  # "user:password", sent as HTTP basic auth
        encode: str = "true",  # "true": cdr=<urlencoded>; "textxml": raw XML
        log_b_leg: bool = True,
        prefix_a_leg: bool = True,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"CDR url must be http(s)://host[:port]/path, not {url!r}")
        self.url = url
        self.spool_dir = Path(spool_dir) if spool_dir else None
        self.retries = max(0, retries)
        self.delay = delay
        self.timeout = timeout
        self.credentials = credentials
        self.encode = encode
        self.log_b_leg = log_b_leg
        self.prefix_a_leg = prefix_a_leg
        self.switch: FakeSwitch | None = None
        self.pending: set[gevent.Greenlet] = set()

    def attach(self, switch: FakeSwitch) -> CdrPoster:
        self.switch = switch
        switch.switchboard.on_leg_complete = self.leg_complete
        return self

    def leg_complete(self, leg: Leg) -> None:
        if leg.role != CALLER and not self.log_b_leg:
            return
        assert self.switch is not None
        xml = cdr_xml(leg, self.switch.identity.core_uuid, self.switch.identity.hostname)
        name = ("a_" if self.prefix_a_leg and leg.role == CALLER else "") + leg.uuid
        greenlet = gevent.spawn(self.deliver, name, xml)
        self.pending.add(greenlet)
        greenlet.link(self.pending.discard)

    def join(self, timeout: float | None = None) -> None:
        gevent.joinall(list(self.pending), timeout=timeout)

    def deliver(self, name: str, xml: str) -> bool:
        """Post with retries; spool on failure. Returns whether a POST succeeded."""
        for attempt in range(self.retries + 1):
            if attempt:
                gevent.sleep(self.delay)
            try:
                status = self._post(name, xml)
            except (OSError, http.client.HTTPException) as exc:
                log.info("CDR %s: attempt %d failed: %s", name, attempt + 1, exc)
                continue
            if 200 <= status < 300:
                return True
            log.info("CDR %s: attempt %d got HTTP %d", name, attempt + 1, status)
        self._spool(name, xml)
        return False

    def _post(self, name: str, xml: str) -> int:
        parts = urlsplit(self.url)
        target = parts.path or "/"
        query = f"uuid={quote(name)}"
        target += f"?{parts.query}&{query}" if parts.query else f"?{query}"
        if self.encode == "textxml":
            body, content_type = xml.encode("utf-8"), "text/xml"
        else:
            body = ("cdr=" + quote(xml, safe="")).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
        headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        if self.credentials:
            token = base64.b64encode(self.credentials.encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        connection_class = _GeventHTTPS if parts.scheme == "https" else _GeventHTTP
        connection = connection_class(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def _spool(self, name: str, xml: str) -> None:
        if self.spool_dir is None:
            log.warning("CDR %s could not be posted and no spool directory is set", name)
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"{name}.cdr.xml"
        path.write_text(xml, encoding="utf-8")
        log.warning("CDR %s could not be posted; written to %s", name, path)


class _GeventHTTP(http.client.HTTPConnection):
    """http.client on gevent sockets, so posting never blocks the simulator's hub."""

    def connect(self) -> None:
        self.sock = gevent.socket.create_connection((self.host, self.port), self.timeout)


class _GeventHTTPS(http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = gevent.socket.create_connection((self.host, self.port), self.timeout)
        context = gevent.ssl.create_default_context()
        self.sock = context.wrap_socket(sock, server_hostname=self.host)

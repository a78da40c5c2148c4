"""A leg's CDR from mod_xml_cdr / mod_json_cdr, read into a LegEnd (pure: bytes in, value out).

The CDR is the safety net behind the Event Socket (DESIGN.md section 3): FreeSWITCH POSTs every
leg's CDR to /internal/cdr and spools to disk what it could not deliver, and `c2c cdr replay` feeds
the spool back. Both paths end here and give exactly the LegEnd that the leg's
CHANNEL_HANGUP_COMPLETE gives (c2c.calls.events.leg_end), so a leg seen through both changes nothing
the second time.

The documents (switch_ivr_generate_xml_cdr / _json_cdr, esl-reference.md section 7):

- XML: ``<cdr core-uuid=".." switchname=".."><channel_data/><call-stats/><variables><NAME>value
  </NAME>...</variables><app_log/><callflow/>...</cdr>``, every variable value url-encoded
  (switch_url_encode), an array variable as one element per item;
- JSON: ``{"core-uuid": .., "variables": {"NAME": "value", ..}, "callflow": [..]}``, values
  url-encoded unless ``encode-values`` is false.

How they are wrapped: a POST body per the module's ``encode`` setting (see unwrap_post_body), a
spooled file as the module wrote it (see unwrap_spooled).

One combination cannot be read back: mod_json_cdr with ``encode=true`` *and* ``encode-values=true``
url-encodes the body without double encoding, so the values' own %22 come out of the form as raw
quotes inside JSON strings. Use mod_json_cdr with ``encode=false`` and ``encode-values=false``
(esl-reference.md 7.3). Current mod_xml_cdr double-encodes its form; what older versions send is
mended here (_escape_variable_values).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import xml.etree.ElementTree as ElementTree
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_to_bytes

from c2c.calls.events import LegEnd, leg_end_from_variables
from c2c.calls.events import uepoch_seconds as _uepoch_seconds
from c2c.errors import C2CError
from c2c.esl.protocol import url_decode

# A leg's CDR is a few tens of kB; anything this big is not one (and is not parsed).
MAX_CDR_BYTES = 1024 * 1024

_FORM_FIELD = b"cdr"
# A document type declaration is how entity tricks start; FreeSWITCH never writes one.
_DECLARATION = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_VARIABLE_TAG = re.compile(r"\s*<([A-Za-z_][\w.:-]*)(/?)>")


class CdrError(C2CError):
    """The CDR cannot be read: malformed, too big, or holding markup we refuse."""


class UnsupportedCdrEncoding(CdrError):
    """The POST's Content-Type is none that mod_xml_cdr / mod_json_cdr sends."""


class CdrFormat(StrEnum):
    XML = "xml"
    JSON = "json"


def format_of_file(name: str) -> CdrFormat | None:
    """The format of a spooled file by its name (``<uuid>.cdr.xml`` / ``a_<uuid>.cdr.json``)."""
    if name.endswith(".cdr.xml"):
        return CdrFormat.XML
    if name.endswith(".cdr.json"):
        return CdrFormat.JSON
    return None


# --------------------------------------------------------------------------------------------
# The documents


def leg_end_from_cdr(document: bytes | str, cdr_format: CdrFormat) -> LegEnd | None:
    if cdr_format is CdrFormat.JSON:
        return leg_end_from_json_cdr(document)
    return leg_end_from_xml_cdr(document)


def leg_end_from_xml_cdr(xml: bytes | str) -> LegEnd | None:
    """The LegEnd of mod_xml_cdr's document; None when not our leg; CdrError when unreadable."""
    root = _parse_xml(xml)
    variables = root.find("variables")
    if variables is None:
        raise CdrError("the CDR has no <variables>")
    values: dict[str, str] = {}
    for element in variables:
        values.setdefault(element.tag, url_decode(element.text or ""))  # first wins, as in events
    hangup_time = root.findtext("callflow/times/hangup_time")
    return leg_end_from_variables(values, fallback_end=_uepoch_seconds(hangup_time) or 0.0)


def leg_end_from_json_cdr(document: bytes | str) -> LegEnd | None:
    """The LegEnd of mod_json_cdr's document (values url-encoded or not: ``encode-values``)."""
    if len(document) > MAX_CDR_BYTES:
        raise CdrError(f"the CDR is larger than {MAX_CDR_BYTES} bytes")
    try:
        cdr = json.loads(document, object_pairs_hook=_first_wins)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise CdrError(f"not JSON: {str(exc)[:200]}") from exc
    if not isinstance(cdr, dict) or not isinstance(cdr.get("variables"), dict):
        raise CdrError('the CDR has no "variables" object')
    values: dict[str, str] = {}
    for name, value in cdr["variables"].items():
        if isinstance(value, (str, int, float)):
            # Decoding a value that was not encoded changes nothing we read (no '%' in them).
            values[name] = url_decode(str(value))
    return leg_end_from_variables(values, fallback_end=_json_hangup_time(cdr))


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        result.setdefault(name, value)
    return result


def _json_hangup_time(cdr: dict[str, Any]) -> float:
    callflow = cdr.get("callflow")
    if isinstance(callflow, list):  # newer modules: a list of profiles, the current one first
        callflow = callflow[0] if callflow else None
    times = callflow.get("times") if isinstance(callflow, dict) else None
    raw = times.get("hangup_time") if isinstance(times, dict) else None
    return _uepoch_seconds(str(raw) if raw is not None else None) or 0.0


def _parse_xml(xml: bytes | str) -> ElementTree.Element:
    if len(xml) > MAX_CDR_BYTES:
        raise CdrError(f"the CDR is larger than {MAX_CDR_BYTES} bytes")
    try:
        text = xml if isinstance(xml, str) else xml.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CdrError("the CDR is not UTF-8") from exc
    text = text.lstrip("\ufeff \t\r\n")  # nothing may precede the XML declaration
    if _DECLARATION.search(text):
        raise CdrError("the CDR holds a DOCTYPE or ENTITY declaration")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        repaired = _escape_variable_values(text)
        if repaired == text:
            raise CdrError(f"not well-formed XML: {exc}") from exc
        try:
            root = ElementTree.fromstring(repaired)
        except ElementTree.ParseError:
            raise CdrError(f"not well-formed XML: {exc}") from exc
    if root.tag != "cdr":
        raise CdrError(f"the root element is <{root.tag[:40]}>, not <cdr>")
    return root


def _escape_variable_values(text: str) -> str:
    """The document with the markup characters inside each variable's value escaped.

    Older FreeSWITCH url-encodes the form body without double encoding, so the variables' own %XX
    are decoded along with it and a value such as sip_full_from ('"A" <sip:a@b>;tag=..') arrives
    as raw markup. <variables> holds only <name>value</name> elements, so each value runs to its
    own closing tag. One pass (no backtracking); unchanged when the block is not of that shape.
    """
    opening = text.find("<variables>")
    if opening < 0:
        return text
    pos = opening + len("<variables>")
    parts = [text[:pos]]
    while (tag := _VARIABLE_TAG.match(text, pos)) is not None:
        if tag[2]:  # <name/>
            parts.append(tag[0])
            pos = tag.end()
            continue
        closing = text.find(f"</{tag[1]}>", tag.end())
        if closing < 0:
            return text
        parts.append(f"{tag[0]}{_xml_escape(text[tag.end() : closing])}</{tag[1]}>")
        pos = closing + len(tag[1]) + 3
    parts.append(text[pos:])
    return "".join(parts)


def _xml_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------------------------
# The wrappings


def unwrap_post_body(body: bytes, content_type: str | None) -> bytes:
    """The CDR document inside a POST body, by the Content-Type the module sends for ``encode``.

    xml_cdr: ``true`` form ``cdr=<url-encoded>`` (application/x-www-form-urlencoded); ``base64``
    ``cdr=<base64>`` (application/x-www-form-base64-encoded); ``false`` ``cdr=<raw>``
    (application/x-www-form-plaintext); ``textxml`` the raw document (text/xml). json_cdr: the
    first two, or the raw document (application/json).
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        return _form_field(body)
    if media == "application/x-www-form-base64-encoded":
        return _base64_document(_after_field_name(body))
    if media == "application/x-www-form-plaintext":
        return _after_field_name(body)  # not encoded at all: '&' may occur in the document
    if media in ("text/xml", "application/xml", "application/json"):
        return body
    if not media:
        return unwrap_spooled(body)
    raise UnsupportedCdrEncoding(f"unsupported Content-Type {media[:80]!r}")


def unwrap_spooled(data: bytes) -> bytes:
    """The CDR document in a file of the error spool.

    The modules write what they failed to POST, *after* encoding: with ``encode=true`` the file
    holds the url-encoded document (without ``cdr=``), with ``base64`` the base64 text, else the
    document itself (mod_xml_cdr my_on_reporting, mod_json_cdr backup_cdr). So: sniff.
    """
    text = data.strip()
    if text.startswith(_FORM_FIELD + b"="):  # a saved POST body
        text = text[len(_FORM_FIELD) + 1 :]
    if text[:1] in (b"<", b"{"):
        return text
    if text[:1] == b"%":
        return unquote_to_bytes(text)
    return _base64_document(text)


def _form_field(body: bytes) -> bytes:
    for part in body.split(b"&"):
        name, sep, value = part.partition(b"=")
        if sep and unquote_to_bytes(name.replace(b"+", b" ")) == _FORM_FIELD:
            return unquote_to_bytes(value.replace(b"+", b" "))
    raise CdrError("the form has no cdr field")


def _after_field_name(body: bytes) -> bytes:
    prefix = _FORM_FIELD + b"="
    if not body.startswith(prefix):
        raise CdrError("the body does not start with cdr=")
    return body[len(prefix) :]


def _base64_document(text: bytes) -> bytes:
    try:
        document = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CdrError("neither XML, JSON, url-encoded nor base64") from exc
    if document.lstrip()[:1] not in (b"<", b"{"):
        raise CdrError("the base64 text holds neither XML nor JSON")
    return document

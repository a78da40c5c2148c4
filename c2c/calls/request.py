"""Validating a click-to-call request's parameters (DESIGN.md section 1), as a pure function.

Input is the ordered list of (name, value) pairs, repeats kept, exactly as decoded from the query
string or form body. Decisions where DESIGN.md is silent:

- Nothing is trimmed or normalised: ' 5', '+1', '555-210-4427' are malformed (4).
- Only ASCII digits count as digits ('٣' or '５' do not).
- ``max_duration`` is canonical: '1'..'1440' with no sign, no decimal point, no leading zero.
- ``caller_id`` may start with 0 (it is shown, not dialed).
- ``callback_url`` must be an RFC 3986 *absolute-URI*: http or https, a host, no fragment, and
  only characters that go over the wire unchanged (the callback's signature covers the exact
  request target, so a URL an HTTP library would re-encode could never verify). Credentials in
  the URL (``user:pw@host``) are refused: they would end up in logs and the database.
- Known parameters whose value holds anything outside printable ASCII are malformed; unknown
  parameters are ignored whatever they hold.
- Whether a callback address is public is checked at delivery (callbacks.address_guard), not here:
  that needs DNS, and the answer can change between the request and the callback.
- ``status_callback_url`` follows the ``callback_url`` rules. ``status_events`` is a comma list of
  ``ringing``, ``answered``, ``bridged``, ``completed`` (exact names, no spaces, none twice);
  blank means ``completed``. Events without a ``status_callback_url`` are malformed (4): a list
  with nowhere to send it is a mistake better reported than ignored.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from c2c.domain.progress import ProgressEvent, parse_events
from c2c.errors import RequestRejected
from c2c.numbers import PhoneNumber, parse_phone

MALFORMED = 4
INVALID_API_KEY = 1

API_KEY = "api_key"
# An idempotent request's key, for clients that cannot set the Idempotency-Key header
# (c2c.calls.idempotent); blank, like every optional parameter, means none.
REQUEST_ID = "request_id"
PHONE_FIELDS = (
    ("caller", "caller_country_code", "caller_phone_number"),
    ("callee", "callee_country_code", "callee_phone_number"),
)
KNOWN_PARAMETERS = frozenset(
    {
        API_KEY,
        "caller_phone_number",
        "caller_country_code",
        "callee_phone_number",
        "callee_country_code",
        "max_duration",
        "caller_id",
        "callback_url",
        "secret",
        "status_callback_url",
        "status_events",
        REQUEST_ID,
    }
)

MAX_DURATION_MINUTES = 1440
MAX_CALLBACK_URL_LENGTH = 2048
MAX_SECRET_LENGTH = 30
MAX_API_KEY_LENGTH = 256
MAX_REQUEST_ID_LENGTH = 64

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_MAX_DURATION = re.compile(r"[1-9][0-9]{0,3}")
_CALLER_ID = re.compile(r"[0-9]{4,15}")
# RFC 3986: unreserved, reserved and percent-encoded octets; nothing else survives unchanged.
_URL_CHARACTERS = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_AUTHORITY = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::(?P<port>[0-9]{0,5}))?")
# DNS labels; '_' tolerated (found in real names); a numeric spelling is judged at delivery.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")


@dataclass(frozen=True)
class ClickToCallRequest:
    """A well-formed request. Coverage, Do-Not-Call, credits and flood are checked later."""

    api_key: str
    caller: PhoneNumber
    callee: PhoneNumber
    max_duration: int | None  # minutes; None: no limit of the customer's
    caller_id: str  # digits the callee sees; '' = the caller's own number
    callback_url: str | None
    secret: str  # echoed in the callback; '' when not given
    # Progress webhooks: where to POST them, and which events (in event order; () with no URL).
    status_callback_url: str | None = None
    status_events: tuple[ProgressEvent, ...] = ()
    request_id: str | None = None  # an idempotency key (printable ASCII); None when not given

    def __repr__(self) -> str:  # the api_key and secret never reach a log line
        return (
            f"ClickToCallRequest(caller={self.caller.e164}, callee={self.callee.e164}, "
            f"max_duration={self.max_duration}, caller_id={self.caller_id!r}, "
            f"callback_url={'set' if self.callback_url else None}, "
            f"status_events={','.join(self.status_events) or None})"
        )


def _rejected(message: str) -> RequestRejected:
    return RequestRejected(MALFORMED, message)


def api_key_from(params: Iterable[tuple[str, str]]) -> str | None:
    """The api_key, or None when missing, empty, repeated or not a plausible key (code 1)."""
    values = [pair[1] for pair in params if _is_pair(pair) and pair[0] == API_KEY]
    if len(values) != 1:
        return None
    key = values[0]
    if not isinstance(key, str) or not key or len(key) > MAX_API_KEY_LENGTH:
        return None
    return key if _PRINTABLE_ASCII.fullmatch(key) else None


def _is_pair(pair: object) -> bool:
    return isinstance(pair, tuple) and len(pair) == 2


def _known_values(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in params:
        if not _is_pair(pair):
            raise _rejected("a parameter is not a name/value pair")
        name, value = pair
        if not isinstance(name, str) or name not in KNOWN_PARAMETERS:
            continue  # unknown parameters are ignored, whatever they hold
        if not isinstance(value, str):
            raise _rejected(f"{name} is not text")
        if name in values:
            raise _rejected(f"{name} is given more than once")
        if not _PRINTABLE_ASCII.fullmatch(value):
            raise _rejected(f"{name} holds a character outside printable ASCII")
        values[name] = value
    return values


def validate_clicktocall(params: Iterable[tuple[str, str]]) -> ClickToCallRequest:
    """The request, or RequestRejected: code 1 for a missing/empty api_key, else 4.

    The api_key is judged first because code 1 precedes code 4 in the check order.
    """
    params = list(params)
    api_key = api_key_from(params)
    if api_key is None:
        raise RequestRejected(INVALID_API_KEY, "api_key missing, empty or repeated")
    values = _known_values(params)
    caller, callee = (_phone(values, role, cc, nat) for role, cc, nat in PHONE_FIELDS)
    progress_url, progress_events = _progress(values.get("status_callback_url", ""),
                                              values.get("status_events", ""))
    return ClickToCallRequest(
        api_key=api_key,
        caller=caller,
        callee=callee,
        max_duration=_max_duration(values.get("max_duration", "")),
        caller_id=_caller_id(values.get("caller_id", "")),
        callback_url=_callback_url(values.get("callback_url", "")),
        secret=_secret(values.get("secret", "")),
        status_callback_url=progress_url,
        status_events=progress_events,
        request_id=_request_id(values.get(REQUEST_ID, "")),
    )


def _phone(values: dict[str, str], role: str, cc_name: str, national_name: str) -> PhoneNumber:
    country_code = values.get(cc_name, "")
    national = values.get(national_name, "")
    if not country_code or not national:
        raise _rejected(f"{role}'s number and country code are required")
    try:
        return parse_phone(country_code, national)
    except ValueError as exc:
        raise _rejected(f"{role}: {exc}") from exc


def _max_duration(raw: str) -> int | None:
    if raw == "":
        return None
    if not _MAX_DURATION.fullmatch(raw) or int(raw) > MAX_DURATION_MINUTES:
        raise _rejected(f"max_duration must be blank or a whole number 1..{MAX_DURATION_MINUTES}")
    return int(raw)


def _caller_id(raw: str) -> str:
    if raw and not _CALLER_ID.fullmatch(raw):
        raise _rejected("caller_id must be blank or 4-15 digits")
    return raw


def _secret(raw: str) -> str:
    if len(raw) > MAX_SECRET_LENGTH:
        raise _rejected(f"secret is longer than {MAX_SECRET_LENGTH} characters")
    return raw


def _request_id(raw: str) -> str | None:
    if len(raw) > MAX_REQUEST_ID_LENGTH:
        raise _rejected(f"request_id is longer than {MAX_REQUEST_ID_LENGTH} characters")
    return raw or None


def _progress(url: str, events: str) -> tuple[str | None, tuple[ProgressEvent, ...]]:
    """The progress webhooks' URL and events; (None, ()) when none are asked for."""
    status_callback_url = _callback_url(url, "status_callback_url")
    if status_callback_url is None:
        if events:
            raise _rejected("status_events needs a status_callback_url")
        return None, ()
    try:
        return status_callback_url, parse_events(events)
    except ValueError as exc:
        raise _rejected(f"status_events: {exc}") from exc


def _callback_url(raw: str, name: str = "callback_url") -> str | None:
    if raw == "":
        return None
    if len(raw) > MAX_CALLBACK_URL_LENGTH:
        raise _rejected(f"{name} is longer than {MAX_CALLBACK_URL_LENGTH} characters")
    if not _URL_CHARACTERS.fullmatch(raw):
        raise _rejected(f"{name} holds characters a URL cannot carry unencoded")
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise _rejected(f"{name} must be an absolute http:// or https:// URL")
    if "#" in rest:  # RFC 3986 absolute-URI has no fragment, and it is never sent anyway
        raise _rejected(f"{name} must not have a fragment")
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    if "@" in authority:
        raise _rejected(f"{name} must not carry credentials")
    if not _valid_authority(authority):
        raise _rejected(f"{name} has no valid host and port")
    return raw


def _valid_authority(authority: str) -> bool:
    match = _AUTHORITY.fullmatch(authority)
    if match is None:
        return False
    host, port = match.group("host"), match.group("port")
    if port and int(port) > 65535:
        return False
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return bool(_HOST_NAME.fullmatch(host))


def first_coverage_failure(
    req: ClickToCallRequest,
    country_supported: Callable[[str], bool],
    area_supported: Callable[[str, str], bool],
) -> int | None:
    """The first coverage code that fails, in the public order 8, 7, 10, 9; None if all pass.

    ``area_supported(country_code, national_number)`` receives the whole national number: the
    NANP area code is its first three digits, and other countries' coverage is a prefix of it.
    """
    checks = (
        (8, lambda: country_supported(req.caller.country_code)),
        (7, lambda: area_supported(req.caller.country_code, req.caller.national)),
        (10, lambda: country_supported(req.callee.country_code)),
        (9, lambda: area_supported(req.callee.country_code, req.callee.national)),
    )
    for code, passes in checks:
        if not passes():
            return code
    return None

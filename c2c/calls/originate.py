"""Building the ``originate`` command for a two-leg call (pure).

``build_originate`` returns the API command *without* the ``bgapi `` prefix, ready for
``EslConnection.bgapi(...)``::

    originate {A-vars}<caller dial target> &bridge({B-vars}<callee dial target>)

The shape follows the recordings in esl-captures/ (02, 03, 06a, 06c, 09, 09b):

- A leg (the caller): ``ignore_early_media=true`` so a 183 is not taken for an answer, and
  ``originate_timeout`` as its ring timeout (06a: NO_ANSWER; ``call_timeout`` did not bound it, 06).
- B leg (the callee): ``{}`` variables of A are not inherited by the ``&bridge`` leg, so the call id
  and everything else is repeated in B's own ``{}``. ``leg_timeout`` bounds B's ringing and ends
  *both* legs with ALLOTTED_TIMEOUT (06c), so A's own cause tells what happened to B.
- The time limit is ``execute_on_answer='sched_hangup +S ALLOTTED_TIMEOUT'`` (09, 09b), on the
  callee's leg: it starts when the callee answers, which is just before the bridge (09b: answer,
  then CHANNEL_BRIDGE 20 ms later), so the talk time is bounded from its very start. On A it would
  start at the caller's answer and eat the callee's ring time out of the customer's minutes.
- The single quotes group the value's spaces for the API's argument splitter, which removes them
  before the ``{}`` parser sees the value; the value holds no comma, so nothing else needs escaping.

Every value that enters the string is checked here again (digits, uuid shape, int range) even
though the request was validated: nothing a customer sends may ever reach the switch unchecked.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from c2c.numbers import PhoneNumber

CALL_ID_VARIABLE = "c2c_call_id"
LEG_VARIABLE = "c2c_leg"
CALLER_LEG = "caller"
CALLEE_LEG = "callee"

# billsec is whole-second arithmetic on epoch seconds and the scheduler fires on whole seconds
# (09b: scheduled +5, billsec 5), so a hangup at N*60 s could be billed N*60 s or, with a
# fraction of jitter, N*60+1 = N+1 minutes. Ending one second early keeps billsec <= N*60.
BILLSEC_SAFETY_SECONDS = 1

MAX_RING_TIMEOUT = 600
MAX_TIME_LIMIT_SECONDS = 1440 * 60

_CALLER_ID = re.compile(r"[0-9]{1,17}")
# What a dial target may hold after the template is filled: a sofia/loopback/user URL. No space,
# comma, quote, brace, bracket, parenthesis, '|', '$', '\\' or '&' (each means something to the
# API splitter, the {} parser, the &bridge argument or the variable expander).
_DIAL_TARGET = re.compile(r"[A-Za-z0-9_+@:./;=-]+")
_ENTERPRISE_SEPARATOR = ":_:"


@dataclass(frozen=True)
class OriginateSpec:
    """Everything that goes into one call's originate; ids are canonical lowercase UUIDs."""

    call_id: str
    caller: PhoneNumber
    callee: PhoneNumber
    caller_uuid: str  # the A leg's pre-assigned Unique-ID
    callee_uuid: str  # the B leg's pre-assigned Unique-ID
    caller_id_for_callee: str  # digits shown on the callee's phone
    caller_id_for_caller: str  # digits shown on the caller's phone
    ring_timeout: int  # seconds each leg may ring
    time_limit_seconds: int  # most the two people may talk, normally N * 60


def build_originate(call: OriginateSpec, dial_string_template: str) -> str:
    """``originate {...}<caller> &bridge({...}<callee>)`` for ``bgapi``; ValueError if unsafe.

    The template's placeholders: ``{country_code}`` and ``{number}`` (the national number), digits
    only; ``{e164}``, the number with its leading '+' (e.g. ``+15551230001``).
    """
    call_id = _uuid(call.call_id, "call_id")
    caller_uuid = _uuid(call.caller_uuid, "caller_uuid")
    callee_uuid = _uuid(call.callee_uuid, "callee_uuid")
    if len({call_id, caller_uuid, callee_uuid}) != 3:
        # A duplicate origination_uuid fails the leg with DESTINATION_OUT_OF_ORDER.
        raise ValueError("call_id, caller_uuid and callee_uuid must all differ")
    ring_timeout = _int_in(call.ring_timeout, 1, MAX_RING_TIMEOUT, "ring_timeout")
    time_limit = _int_in(call.time_limit_seconds, 1, MAX_TIME_LIMIT_SECONDS, "time_limit_seconds")
    hangup_after = max(1, time_limit - BILLSEC_SAFETY_SECONDS)

    caller_vars = _variables(
        [
            ("origination_uuid", caller_uuid),
            (CALL_ID_VARIABLE, call_id),
            (LEG_VARIABLE, CALLER_LEG),
            ("ignore_early_media", "true"),
            ("originate_timeout", str(ring_timeout)),
            ("origination_caller_id_number", _digits(call.caller_id_for_caller, "caller id")),
        ]
    )
    callee_vars = _variables(
        [
            ("origination_uuid", callee_uuid),
            (CALL_ID_VARIABLE, call_id),
            (LEG_VARIABLE, CALLEE_LEG),
            ("ignore_early_media", "true"),
            ("leg_timeout", str(ring_timeout)),
            ("origination_caller_id_number", _digits(call.caller_id_for_callee, "caller id")),
            ("execute_on_answer", f"'sched_hangup +{hangup_after} ALLOTTED_TIMEOUT'"),
        ]
    )
    caller_target = dial_target(dial_string_template, call.caller)
    callee_target = dial_target(dial_string_template, call.callee)
    return f"originate {caller_vars}{caller_target} &bridge({callee_vars}{callee_target})"


def dial_target(template: str, number: PhoneNumber) -> str:
    """The template filled in for one number; ValueError if the result is not a safe dial URL."""
    country_code = _digits(number.country_code, "country code")
    national = _digits(number.national, "national number")
    try:
        target = template.format(
            country_code=country_code, number=national, e164="+" + country_code + national
        )
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ValueError(f"bad dial-string template: {exc}") from exc
    if not _DIAL_TARGET.fullmatch(target) or _ENTERPRISE_SEPARATOR in target:
        raise ValueError("the dial-string template yields characters unsafe in an originate")
    return target


def _variables(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{name}={value}" for name, value in pairs) + "}"


def _uuid(value: object, what: str) -> str:
    try:
        canonical = str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise ValueError(f"{what} is not a UUID") from exc
    if canonical != value:  # only the canonical spelling: no braces, urn:, uppercase or spaces
        raise ValueError(f"{what} is not a canonical lowercase UUID")
    return canonical


def _digits(value: object, what: str) -> str:
    if not isinstance(value, str) or not _CALLER_ID.fullmatch(value):
        raise ValueError(f"{what} must be 1-17 ASCII digits")
    return value


def _int_in(value: object, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{what} must be an int in {low}..{high}")
    return value

"""Building the ``originate`` command for a two-leg call (pure).

``build_originate`` returns the API command *without* the ``bgapi `` prefix, ready for
``EslConnection.bgapi(...)``::

    originate {A-vars}<caller dial target> &bridge({B-vars}<callee dial target>)

The shape follows the recordings in esl-captures/ (02, 03, 06a, 06c, 09, 09b, 16-20):

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

What the caller hears while the callee's leg is set up (16-18):

- A ``transfer_ringback=<tone>``: once the caller's leg is answered, this is what FreeSWITCH plays
  them while the bridge dials B (16: heard from 0.1 s after B's 183 or 180 until B answered; 16d:
  a 180 without media starts it too). Not ``ringback``: that is the tone for an *unanswered*
  leg, used for an answered one only when ``transfer_ringback`` is unset (16b). A tone's commas are
  written ``\\,`` (16; 16e: unescaped, the value is cut at its first comma and the bridge fails),
  and it can only go into A's ``{}``: ``&bridge(...)``'s argument ends at its first ``)``.
- B ``ignore_early_media=false,bridge_early_media=true``: the callee's own early media (real
  ringback, a carrier's "not in service" announcement) reaches the caller (17b, 18b) and wins
  over A's ``transfer_ringback`` while it lasts (17c, 18c); without early media the caller hears
  the ringback (17d). B needs both in its own ``{}``: variables B does not set, these included,
  are copied from A, whose ``ignore_early_media=true`` overrides ``bridge_early_media`` (17, 18:
  silence). A 183 on B is still not an answer: the originate of B waits for the 200 OK (17b:
  CHANNEL_ANSWER and CHANNEL_BRIDGE only with it), and B's ``leg_timeout`` still bounds its
  ringing, early media or not (17d: ALLOTTED_TIMEOUT; FreeSWITCH checks per-leg time limits in
  its originate loop whatever the leg's media state).

Press 1 to connect (19, 20, 20b), when the call asks for it:

- A ``group_confirm_key=1,group_confirm_file=<prompt>,group_confirm_timeout=<T>``: once the caller
  answers, FreeSWITCH plays the prompt and waits for the key; only then does the originate succeed
  (BACKGROUND_JOB ``+OK``) and the bridge dial B (19). A caller who never presses ends the call
  with no B leg at all (20). FreeSWITCH clears ``group_confirm_*`` on the confirmed leg, so B,
  which would copy them from A, is not asked to confirm (19: B carries none).
- The caller's ring time is then ``leg_timeout=<ring>``, and ``group_confirm_timeout`` (counted
  from the answer) replaces it at the answer (20b: ALLOTTED_TIMEOUT 16 s after the answer with
  ``leg_timeout=10,group_confirm_timeout=15``). ``originate_timeout`` counts from the originate,
  ring time included, and would end the call first if it were shorter than ring + T (20b), so it
  is set to ring + T + a margin: a backstop only.

Caller IDs: ``origination_caller_id_number`` and ``origination_caller_id_name`` on each leg are
what that leg's phone shows (c2c.calls.caller_id decides them). A name always goes with the
number: left unset, FreeSWITCH fills one in that differs from the number (16).

Routes and gateway failover (c2c.calls.routes picks each leg's templates by its own number):

- A leg with several templates gets them filled one by one, each checked on its own as a single
  target, and joined with ``|``, FreeSWITCH's failover list (esl-reference.md 2.2). The split on
  ``|`` happens after the leading ``{}`` is read, so every target of the list gets the leg's
  ``{}`` variables, ``origination_uuid`` and ``c2c_leg`` included (switch_ivr_originate.c: the
  ``{}`` event is copied afresh for each target). Inside ``&bridge(...)`` the list means the same:
  the bridge hands its argument to the same originate code, with A as the caller session.
- Left alone, FreeSWITCH tries the next target after *any* failure but the originate's own
  timeout: a callee who is busy or declines via the first gateway would be rung again via the
  second, the leg's cause would become the last target's, and a target that failed after its
  channel ran would leave a HANGUP_COMPLETE that c2c takes for the leg's end while the next target
  rings on (which, given the same ``origination_uuid``, may also be refused as a duplicate while
  the first channel is being torn down). So a leg with more than one target also gets
  ``fail_on_single_reject=!GATEWAY_DOWN:INVALID_GATEWAY``: the list moves on only when the switch
  refused a target before creating anything, because its gateway is down (its OPTIONS ping
  failed) or unknown (mod_sofia ``sofia_outgoing_channel``: the session is destroyed before it
  returns, so no event names the call and the uuid is free again). Any other end of a target ends
  the leg, with that target's cause (switch_ivr_originate.c: ``fail_on_single_reject`` is checked
  against each target's cause, ``!`` negates the list). This is read from the source; no
  recording covers failover yet. B would copy the variable from A when it sets none; that is
  harmless, as with one target it changes nothing.
- A single target is sent exactly as before, with no ``fail_on_single_reject``.

Every value that enters the string is checked here again (digits, uuid shape, int range, the
character sets of c2c.channel_values) even though the request and the config were validated:
nothing a customer or an operator sends may ever reach the switch unchecked.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from c2c.channel_values import check_display_name, check_for_bridge, check_media, in_braces
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
MAX_CONFIRM_TIMEOUT = 300
CONFIRM_KEY = "1"
# originate_timeout with press 1: ring + T + this. group_confirm_timeout ends an unconfirmed
# caller 15-16 s after the answer for T=15 (20b), and originate_timeout is whole seconds that
# can fall short by one (20: 9.3 s for 10); a few seconds more keep it a backstop only.
CONFIRM_MARGIN_SECONDS = 5


def confirm_setup_seconds(timeout: int) -> int:
    """The most a call with press 1 spends between the caller's answer and the callee being
    dialed: the confirm timeout, and the margin originate_timeout allows on top of it."""
    return timeout + CONFIRM_MARGIN_SECONDS


_DIGITS = re.compile(r"[0-9]{1,17}")
# A caller ID number as shown: E.164 with '+', or digits (E.164 without '+', national with a
# trunk prefix, or a caller_id read as the caller's country code + up to 15 digits).
_CALLER_ID_NUMBER = re.compile(r"\+?[0-9]{1,24}")
# What a dial target may hold after the template is filled: a sofia/loopback/user URL. No space,
# comma, quote, brace, bracket, parenthesis, '|', '$', '\\' or '&' (each means something to the
# API splitter, the {} parser, the &bridge argument or the variable expander).
_DIAL_TARGET = re.compile(r"[A-Za-z0-9_+@:./;=-]+")
_ENTERPRISE_SEPARATOR = ":_:"
# Why a character is refused in a target, for the operator who wrote the template.
_TARGET_CHAR_WHY = {
    " ": "a space ends an argument of the API command",
    "|": "a bar separates failover targets: list them as TEMPLATE|TEMPLATE in the route",
    ",": "a comma would ring a second leg at the same time",
    "{": "braces hold channel variables",
    "}": "braces hold channel variables",
    "[": "brackets hold per-leg variables",
    "]": "brackets hold per-leg variables",
    "(": "the &bridge(...) argument ends at the first ')'",
    ")": "the &bridge(...) argument ends at the first ')'",
    "$": "FreeSWITCH expands ${...}",
    "'": "a quote groups words for the API command",
    "\\": "a backslash escapes the next character",
    "&": "'&' starts an application",
}

# A leg with a failover list moves to its next target only when the switch refused the target
# before creating anything (module docstring); ``!`` makes the list "every cause but these".
FAILOVER_CAUSES = ("GATEWAY_DOWN", "INVALID_GATEWAY")
FAILOVER_VARIABLE = "fail_on_single_reject"
FAILOVER_VALUE = "!" + ":".join(FAILOVER_CAUSES)
# FreeSWITCH takes up to 128 (MAX_PEERS); a list longer than this is a mistake in the routes.
MAX_FAILOVER_TARGETS = 10

# A leg's dial-string templates: one template, or a failover list of them in order.
Templates = str | Sequence[str]


@dataclass(frozen=True)
class PressToConnect:
    """Press 1 to connect: what the caller hears while FreeSWITCH waits for the key, and for how
    many seconds from their answer."""

    prompt: str  # a sound file or tone_stream:// (c2c.channel_values.check_media)
    timeout: int


@dataclass(frozen=True)
class OriginateSpec:
    """Everything that goes into one call's originate; ids are canonical lowercase UUIDs."""

    call_id: str
    caller: PhoneNumber
    callee: PhoneNumber
    caller_uuid: str  # the A leg's pre-assigned Unique-ID
    callee_uuid: str  # the B leg's pre-assigned Unique-ID
    caller_id_for_callee: str  # number shown on the callee's phone: '+' and digits, or digits
    caller_id_for_caller: str  # number shown on the caller's phone
    ring_timeout: int  # seconds each leg may ring
    time_limit_seconds: int  # most the two people may talk, normally N * 60
    caller_id_name_for_callee: str = ""  # display name on the callee's phone; '' leaves it unset
    caller_id_name_for_caller: str = ""  # display name on the caller's phone
    ringback: str = ""  # tone or file the answered caller hears while B rings; '' for none
    confirm: PressToConnect | None = None  # the caller must press 1 before B is dialed


def build_originate(
    call: OriginateSpec, caller_templates: Templates, callee_templates: Templates | None = None
) -> str:
    """``originate {...}<caller> &bridge({...}<callee>)`` for ``bgapi``; ValueError if unsafe.

    Each leg is dialed with its own templates (the callee's default to the caller's): one
    template, or a failover list tried in order (module docstring). A template's placeholders:
    ``{country_code}`` and ``{number}`` (the national number), digits only; ``{e164}``, the number
    with its leading '+' (e.g. ``+15551230001``).
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

    caller_pairs = [
        ("origination_uuid", caller_uuid),
        (CALL_ID_VARIABLE, call_id),
        (LEG_VARIABLE, CALLER_LEG),
        ("ignore_early_media", "true"),
        *_caller_timeouts(ring_timeout, call.confirm),
        *_caller_id("for the caller", call.caller_id_for_caller, call.caller_id_name_for_caller),
    ]
    caller_target, caller_failover = failover_list(caller_templates, call.caller, "caller")
    caller_pairs += caller_failover
    if call.ringback:
        caller_pairs.append(("transfer_ringback", _media(call.ringback, "ringback")))
    if call.confirm is not None:
        caller_pairs += [
            ("group_confirm_key", CONFIRM_KEY),
            ("group_confirm_file", _media(call.confirm.prompt, "confirm prompt")),
            ("group_confirm_timeout", str(call.confirm.timeout)),
        ]
    callee_pairs = [
        ("origination_uuid", callee_uuid),
        (CALL_ID_VARIABLE, call_id),
        (LEG_VARIABLE, CALLEE_LEG),
        ("ignore_early_media", "false"),
        ("bridge_early_media", "true"),
        ("leg_timeout", str(ring_timeout)),
        *_caller_id("for the callee", call.caller_id_for_callee, call.caller_id_name_for_callee),
        ("execute_on_answer", f"'sched_hangup +{hangup_after} ALLOTTED_TIMEOUT'"),
    ]
    callee_target, callee_failover = failover_list(
        caller_templates if callee_templates is None else callee_templates, call.callee, "callee"
    )
    callee_pairs += callee_failover
    for _, value in callee_pairs:  # inside &bridge(...): its argument ends at the first ')'
        check_for_bridge(value)
    caller_vars = _variables(caller_pairs)
    callee_vars = _variables(callee_pairs)
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
        raise ValueError(f"the dial-string template yields {_why_unsafe(target)}")
    return target


def failover_list(
    templates: Templates, number: PhoneNumber, whom: str = "leg"
) -> tuple[str, list[tuple[str, str]]]:
    """The leg's targets joined with ``|`` (each filled and checked on its own by dial_target),
    and the variables the leg needs for them: none for one target, else the failover rule."""
    listed = (templates,) if isinstance(templates, str) else tuple(templates)
    if not listed:
        raise ValueError(f"no dial-string template for the {whom}")
    if len(listed) > MAX_FAILOVER_TARGETS:
        raise ValueError(f"more than {MAX_FAILOVER_TARGETS} failover targets for the {whom}")
    targets = []
    for position, template in enumerate(listed, 1):
        if not isinstance(template, str):
            raise ValueError(f"the {whom}'s template {position} is not text")
        try:
            targets.append(dial_target(template, number))
        except ValueError as exc:
            if len(listed) == 1:
                raise
            raise ValueError(f"the {whom}'s template {position}: {exc}") from exc
    pairs = [] if len(targets) == 1 else [(FAILOVER_VARIABLE, FAILOVER_VALUE)]
    return "|".join(targets), pairs


def _why_unsafe(target: str) -> str:
    if _ENTERPRISE_SEPARATOR in target:
        return "':_:', which would make an enterprise originate"
    for char in target:
        if not _DIAL_TARGET.fullmatch(char):
            why = _TARGET_CHAR_WHY.get(char, "it is unsafe in an originate")
            return f"{char!r}: {why}"
    return "nothing at all" if not target else "characters unsafe in an originate"


def _caller_timeouts(ring_timeout: int, confirm: PressToConnect | None) -> list[tuple[str, str]]:
    """The caller leg's ring timeout, and with press 1 the confirmation window (20b)."""
    if confirm is None:
        return [("originate_timeout", str(ring_timeout))]
    timeout = _int_in(confirm.timeout, 1, MAX_CONFIRM_TIMEOUT, "confirm timeout")
    return [
        ("originate_timeout", str(ring_timeout + timeout + CONFIRM_MARGIN_SECONDS)),
        ("leg_timeout", str(ring_timeout)),
    ]


def _caller_id(whom: str, number: object, name: object) -> list[tuple[str, str]]:
    if not isinstance(number, str) or not _CALLER_ID_NUMBER.fullmatch(number):
        raise ValueError(f"caller id {whom} must be '+' and digits, or digits")
    pairs = [("origination_caller_id_number", number)]
    if name != "":
        try:
            pairs.append(("origination_caller_id_name", in_braces(check_display_name(name))))
        except ValueError as exc:
            raise ValueError(f"caller id name {whom} {exc}") from exc
    return pairs


def _media(value: object, what: str) -> str:
    try:
        return in_braces(check_media(value))
    except ValueError as exc:
        raise ValueError(f"{what} {exc}") from exc


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
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise ValueError(f"{what} must be 1-17 ASCII digits")
    return value


def _int_in(value: object, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{what} must be an int in {low}..{high}")
    return value

"""What each dialled number does: the scenario file.

A scenario is a JSON object with a list of ``rules``; the first rule that matches a leg decides
what the far end of that leg does. A rule matches on the digits of the dialled number (``exact``,
``prefix``, ``suffix``, ``regex``), on the whole target (``dial_string``, a regex over e.g.
``sofia/gateway/gw1/+15551230001``) and on the leg's ``role`` (``caller``: the leg the originate
dials first; ``callee``: the leg ``&bridge`` dials). A rule without match keys matches every leg.
When no rule matches, the far end answers after 1 s and never hangs up.

Actions and their parameters (delays in seconds, before --time-scale):

==============  ==================================================================================
``answer``      ``answer_after`` (1), ``hangup_after`` (null: never; else seconds after the answer,
                when this far end hangs up with ``hangup_cause``, default NORMAL_CLEARING),
                ``progress_after`` (0: the 180 Ringing; null: no 180), ``early_media_after``
                (null; else a 183 with SDP: an answer unless the leg ignores early media, see
                media.py), ``dtmf`` (digits the phone presses once answered, e.g. "1"; null:
                none) and ``dtmf_after`` (1: seconds after the answer; each digit lasts 0.26 s
                and its DTMF event comes as it ends), ``identity`` (null: the replies carry no
                identity, as sipp's; "number": they carry the dialled number as name and number,
                as the FreeSWITCH phones of recordings 16-24 do, which becomes the leg's callee
                id; any other text: that display name with the dialled number)
``no_answer``   rings until a timeout ends it (originate_timeout -> NO_ANSWER, leg_timeout ->
                ALLOTTED_TIMEOUT, else 60 s -> NO_ANSWER); ``progress_after``,
                ``early_media_after``, ``identity``
``busy``        486 -> USER_BUSY              ``congestion``  503 -> NORMAL_TEMPORARY_FAILURE
``reject``      603 -> CALL_REJECTED          ``invalid``     404 -> UNALLOCATED_NUMBER
``refuse``      any ``sip_status`` (mapped as sofia does); all five take ``after`` (0.3: when the
                refusal comes), ``progress_after`` (null: refused without ringing first),
                ``early_media_after`` (null; else a 183 with SDP first, e.g. a carrier's "number
                not in service" announcement before a 404, recording 18) and ``identity``
``fail``        no channel at all, the originate fails with ``cause`` (e.g. GATEWAY_DOWN)
==============  ==================================================================================

Who hangs up a connected call follows from the two far ends: the one whose ``hangup_after``
elapses first sends the BYE.

The default scenario (no file; ``--show-default-scenario`` prints it), by the number's end:
0486 busy, 0503 congestion, 0603 reject, 0404 invalid, 0480 refused with 480
(NO_USER_RESPONSE), 0408 rings and never answers, 0809 fails with GATEWAY_DOWN before any
channel exists, 0183 rings, sends early media at 0.5 s and answers at 2 s (callee hangs up 5 s
later), 0999 answers after 1 s and never hangs up; like the phones of recordings 16-20: 0305
sends a 183 with its own ringback at once (no 180), answers at 3 s and hangs up 5 s later, 0405
sends a 183 with an announcement at once and refuses with 404 at 3 s, 0700 is a voicemail
(answers after 0.5 s, never presses a key, never hangs up), 0701 a person who confirms (answers
after 0.5 s, presses 1 1.5 s later, never hangs up). Any other number answers after 1 s; as the
callee it hangs up 5 s after answering; as the caller it waits for the other side and presses 1
one second after answering, which matters only when the originate asks for a confirmation
(group_confirm_key), so a default call without one is bridged for 5 s and ends NORMAL_CLEARING
on both legs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from c2c.errors import ConfigError
from c2c.fakeswitch.causes import is_cause, sip_status_to_cause
from c2c.fakeswitch.originate import DialTarget

CALLER = "caller"
CALLEE = "callee"

EXAMPLE_SCENARIO = {
    "rules": [
        {"suffix": "0486", "action": "busy"},
        {"prefix": "44", "role": "callee", "action": "no_answer"},
        {"regex": "^1555123000[0-9]$", "action": "answer", "answer_after": 2, "hangup_after": 30},
        {"dial_string": "@127\\.0\\.0\\.1:5093$", "action": "congestion"},
        {"exact": "15550000000", "action": "fail", "cause": "GATEWAY_DOWN"},
        {"role": "caller", "action": "answer", "answer_after": 1, "hangup_after": None},
        {"action": "answer", "answer_after": 1, "hangup_after": 5},
    ]
}

# The scenario used when no file is given.
DEFAULT_RULES: list[dict[str, Any]] = [
    {"suffix": "0486", "action": "busy"},
    {"suffix": "0503", "action": "congestion"},
    {"suffix": "0603", "action": "reject"},
    {"suffix": "0404", "action": "invalid"},
    {"suffix": "0480", "action": "refuse", "sip_status": 480},
    {"suffix": "0408", "action": "no_answer"},
    {"suffix": "0809", "action": "fail", "cause": "GATEWAY_DOWN"},
    {
        "suffix": "0183",
        "action": "answer",
        "early_media_after": 0.5,
        "answer_after": 2,
        "hangup_after": 5,
    },
    {"suffix": "0999", "action": "answer", "answer_after": 1, "hangup_after": None},
    {
        "suffix": "0305",
        "action": "answer",
        "progress_after": None,
        "early_media_after": 0,
        "answer_after": 3,
        "hangup_after": 5,
    },
    {
        "suffix": "0405",
        "action": "invalid",
        "progress_after": None,
        "early_media_after": 0,
        "after": 3,
    },
    {"suffix": "0700", "action": "answer", "answer_after": 0.5, "hangup_after": None},
    {
        "suffix": "0701",
        "action": "answer",
        "answer_after": 0.5,
        "hangup_after": None,
        "dtmf": "1",
        "dtmf_after": 1.5,
    },
    {
        "role": "caller",
        "action": "answer",
        "answer_after": 1,
        "hangup_after": None,
        "dtmf": "1",
        "dtmf_after": 1,
    },
    {"action": "answer", "answer_after": 1, "hangup_after": 5},
]

_REFUSALS = {"busy": 486, "congestion": 503, "reject": 603, "invalid": 404}
_ACTIONS = {"answer", "no_answer", "refuse", "fail", *_REFUSALS}
_MATCH_KEYS = {"exact", "prefix", "suffix", "regex", "dial_string", "role"}
_PARAMS = {
    "dtmf",
    "dtmf_after",
    "identity",
    "answer_after",
    "hangup_after",
    "hangup_cause",
    "progress_after",
    "early_media_after",
    "sip_status",
    "after",
    "cause",
}


class ScenarioError(ConfigError):
    """The scenario file is unreadable or a rule is malformed; the message says where."""


@dataclass(frozen=True)
class Behaviour:
    """What the far end of one leg does."""

    action: str  # answer | no_answer | refuse | fail
    answer_after: float = 1.0
    hangup_after: float | None = None
    hangup_cause: str = "NORMAL_CLEARING"
    progress_after: float | None = 0.0
    early_media_after: float | None = None
    sip_status: int = 486
    refuse_after: float = 0.3
    cause: str = "GATEWAY_DOWN"
    dtmf: str | None = None  # digits the phone presses once answered
    dtmf_after: float = 1.0
    identity: str | None = None  # None | "number" | a display name (see the module docstring)

    def identity_for(self, dialled: str) -> tuple[str, str] | None:
        """(name, number) the far end's replies carry, if any."""
        if self.identity is None:
            return None
        return (dialled if self.identity == "number" else self.identity), dialled

    @property
    def refuse_cause(self) -> str:
        return sip_status_to_cause(self.sip_status)


@dataclass(frozen=True)
class Rule:
    behaviour: Behaviour
    exact: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    regex: re.Pattern[str] | None = None
    dial_string: re.Pattern[str] | None = None
    role: str | None = None

    def matches(self, target: DialTarget, role: str) -> bool:
        number = target.number
        if self.role is not None and self.role != role:
            return False
        if self.exact is not None and number != self.exact:
            return False
        if self.prefix is not None and not number.startswith(self.prefix):
            return False
        if self.suffix is not None and not number.endswith(self.suffix):
            return False
        if self.regex is not None and not self.regex.search(number):
            return False
        return self.dial_string is None or bool(self.dial_string.search(target.text))


@dataclass
class Scenario:
    rules: list[Rule] = field(default_factory=list)
    fallback: Behaviour = field(
        default_factory=lambda: Behaviour("answer", answer_after=1.0, hangup_after=None)
    )

    def behaviour_for(self, target: DialTarget, role: str) -> Behaviour:
        for rule in self.rules:
            if rule.matches(target, role):
                return rule.behaviour
        return self.fallback

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "scenario") -> Scenario:
        if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
            raise ScenarioError(f"{source}: expected an object with a 'rules' list")
        unknown = set(data) - {"rules", "description"}
        if unknown:
            raise ScenarioError(f"{source}: unknown keys {sorted(unknown)}")
        return cls(
            [_rule(raw, f"{source}: rule {index + 1}") for index, raw in enumerate(data["rules"])]
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Scenario:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"cannot read scenario file {path}: {exc}") from exc
        return cls.from_dict(data, str(path))

    @classmethod
    def default(cls) -> Scenario:
        return cls.from_dict({"rules": DEFAULT_RULES}, "default scenario")


def _number(raw: Mapping[str, Any], key: str, where: str, default: float | None) -> float | None:
    if key not in raw:
        return default
    value = raw[key]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ScenarioError(f"{where}: {key} must be a number of seconds >= 0 or null")
    return float(value)


def _regex(raw: Mapping[str, Any], key: str, where: str) -> re.Pattern[str] | None:
    if key not in raw:
        return None
    try:
        return re.compile(str(raw[key]))
    except re.error as exc:
        raise ScenarioError(f"{where}: bad {key} regex: {exc}") from exc


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: a rule is an object")
    unknown = set(raw) - _MATCH_KEYS - _PARAMS - {"action", "description"}
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    action = raw.get("action")
    if action not in _ACTIONS:
        raise ScenarioError(f"{where}: action must be one of {sorted(_ACTIONS)}")
    role = raw.get("role")
    if role not in (None, CALLER, CALLEE):
        raise ScenarioError(f"{where}: role must be 'caller' or 'callee'")
    for key in ("exact", "prefix", "suffix"):
        if key in raw and not str(raw[key]).isdigit():
            raise ScenarioError(f"{where}: {key} must be digits")
    return Rule(
        behaviour=_behaviour(raw, action, where),
        exact=str(raw["exact"]) if "exact" in raw else None,
        prefix=str(raw["prefix"]) if "prefix" in raw else None,
        suffix=str(raw["suffix"]) if "suffix" in raw else None,
        regex=_regex(raw, "regex", where),
        dial_string=_regex(raw, "dial_string", where),
        role=role,
    )


_DTMF_DIGITS = frozenset("0123456789*#ABCDabcd")


def _dtmf(raw: Mapping[str, Any], where: str) -> str | None:
    value = raw.get("dtmf")
    if value is None:
        return None
    if not isinstance(value, str) or not value or not set(value) <= _DTMF_DIGITS:
        raise ScenarioError(f"{where}: dtmf must be a string of DTMF digits (0-9, *, #, A-D)")
    return value.upper()


def _identity(raw: Mapping[str, Any], where: str) -> str | None:
    value = raw.get("identity")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ScenarioError(f'{where}: identity must be null, "number" or a display name')
    return value


def _behaviour(raw: Mapping[str, Any], action: str, where: str) -> Behaviour:
    hangup_cause = str(raw.get("hangup_cause", "NORMAL_CLEARING")).upper()
    cause = str(raw.get("cause", "GATEWAY_DOWN")).upper()
    for name, value in (("hangup_cause", hangup_cause), ("cause", cause)):
        if not is_cause(value):
            raise ScenarioError(f"{where}: {name} {value!r} is not a hangup cause")
    if action in _REFUSALS or action == "refuse":
        status = _REFUSALS.get(action) or raw.get("sip_status")
        if not isinstance(status, int) or not 300 <= status <= 699:
            raise ScenarioError(f"{where}: sip_status must be a SIP error status (300-699)")
        return Behaviour(
            "refuse",
            sip_status=status,
            refuse_after=_number(raw, "after", where, 0.3) or 0.0,
            progress_after=_number(raw, "progress_after", where, None),
            early_media_after=_number(raw, "early_media_after", where, None),
            identity=_identity(raw, where),
        )
    if action == "fail":
        return Behaviour("fail", cause=cause)
    return Behaviour(
        action,
        answer_after=_number(raw, "answer_after", where, 1.0) or 0.0,
        hangup_after=_number(raw, "hangup_after", where, None),
        hangup_cause=hangup_cause,
        progress_after=_number(raw, "progress_after", where, 0.0),
        early_media_after=_number(raw, "early_media_after", where, None),
        dtmf=_dtmf(raw, where),
        dtmf_after=_number(raw, "dtmf_after", where, 1.0) or 0.0,
        identity=_identity(raw, where),
    )


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """The scenario in a JSON file (see the module docstring for its format)."""
    return Scenario.load(path)

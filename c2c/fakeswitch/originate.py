"""Parsing `originate` arguments and dial strings, as FreeSWITCH does (esl-reference.md 2.1, 2.2).

Pure functions. The API splitter runs first (single quotes group words and are removed, a
backslash escapes the next character), then each dial string is read: leading ``{...}`` (and
``<...>``) groups of variables for every leg, then legs (``[...]`` per-leg variables and a target)
separated by ``,`` or ``|``. Only the first leg is dialled; the simulator does not ring several.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ORIGINATE_SYNTAX = (
    "<call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
    "[<cid_name>] [<cid_num>] [<timeout_sec>]"
)
DEFAULT_TIMEOUT = 60  # SWITCH_DEFAULT_TIMEOUT
GATEWAY_PROFILE = "external"  # the sofia profile gateway legs are named after
GATEWAY_PORT = 5060


class OriginateUsageError(ValueError):
    """Too few or too many arguments: FreeSWITCH answers with the usage line."""


class DialStringError(ValueError):
    """A dial string the simulator cannot place; carries the cause FreeSWITCH would give."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class DialTarget:
    """Where one leg goes: endpoint and the parts of the destination that events show."""

    endpoint: str  # sofia | loopback | error
    text: str  # the target as written, e.g. sofia/gateway/gw1/+15551230001
    profile: str = "internal"
    gateway: str | None = None
    destination: str = ""  # e.g. 1000@127.0.0.1:5090 or +15551230001
    user: str = ""  # the part before '@'
    host: str = "127.0.0.1"
    port: int = GATEWAY_PORT
    cause: str | None = None  # error/<cause>

    @property
    def number(self) -> str:
        """The digits of the dialled number, what scenario rules match."""
        return "".join(ch for ch in self.user if ch.isdigit())

    @property
    def channel_name(self) -> str:
        if self.endpoint == "loopback":
            return f"loopback/{self.user}-a"
        return f"sofia/{self.profile}/{self.destination}"

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class DialLeg:
    target: DialTarget
    variables: dict[str, str] = field(default_factory=dict)  # {} then [] values, in order
    after: str = ""  # the separator before this leg: "" (first), "," (with) or "|" (failover)


@dataclass
class OriginateRequest:
    raw: str  # the argument string as sent (Job-Command-Arg)
    leg: DialLeg
    application: str  # bridge, park, ... ("" when the second argument is an extension)
    application_args: str
    extension: str | None = None
    timeout: int | None = None  # the positional timeout, when given
    cid_name: str | None = None
    cid_num: str | None = None
    # Further targets of a '|' failover list, tried in order when one fails before its channel
    # ran (a gateway down, say), as fail_on_single_reject allows (moves_on).
    alternatives: tuple[DialLeg, ...] = ()


# What a backslash turns into in the API splitter (cleanup_separated_string); any other escaped
# character keeps its backslash, so ``\,`` reaches the ``{}`` parser intact (recording 16).
_API_ESCAPES = {"'": "'", '"': '"', " ": " ", "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "s": " "}


def split_arguments(text: str) -> list[str]:
    """switch_separate_string on spaces: quotes group words and vanish (a quote with no partner
    after it is kept as it is); a backslash escapes a quote, a space, a backslash and ``n r t s``
    and is kept before anything else (``\\,`` stays ``\\,`` for the ``{}`` parser)."""
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quoted = False
    index = 0
    while index < len(text):
        ch = text[index]
        index += 1
        if ch == "\\" and index < len(text):
            escaped = _API_ESCAPES.get(text[index])
            if escaped is None:
                current.append(ch)
            else:
                current.append(escaped)
                index += 1
            in_word = True
        elif ch == "'" and (quoted or "'" in text[index:]):
            quoted = not quoted
            in_word = True
        elif ch == " " and not quoted:
            if in_word:
                words.append("".join(current))
                current = []
                in_word = False
        else:
            current.append(ch)
            in_word = True
    if in_word:
        words.append("".join(current))
    return words


def parse_variables(text: str) -> dict[str, str]:
    """The inside of ``{...}`` or ``[...]``: name=value pairs, ``,`` separated (``^^X`` changes
    the separator), ``\\,`` escapes it, single-quoted values may hold it."""
    separator = ","
    if text.startswith("^^") and len(text) >= 3:
        separator = text[2]
        text = text[3:]
    items: list[str] = []
    current: list[str] = []
    quoted = False
    index = 0
    while index < len(text):
        ch = text[index]
        if ch == "\\" and index + 1 < len(text) and text[index + 1] == separator:
            current.append(separator)
            index += 2
            continue
        if ch == "'":
            quoted = not quoted
        elif ch == separator and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
        index += 1
    items.append("".join(current))
    variables: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            continue
        variables.pop(name, None)  # a repeat moves to the end, as a channel variable would
        variables[name] = value
    return variables


def _closing(text: str, start: int, opener: str, closer: str) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == opener:
            depth += 1
        elif text[index] == closer:
            depth -= 1
            if depth == 0:
                return index
    raise DialStringError("INVALID_URL", f"unbalanced {opener}{closer} in {text!r}")


def _split_legs(text: str) -> list[tuple[str, str]]:
    """Legs separated by ',' (simultaneous) or '|' (failover), outside any brackets, each with
    the separator before it."""
    legs: list[tuple[str, str]] = []
    depth = 0
    current: list[str] = []
    before = ""
    for ch in text:
        if ch in "[{<(":
            depth += 1
        elif ch in "]}>)":
            depth -= 1
        if ch in ",|" and depth == 0:
            legs.append(("".join(current), before))
            current = []
            before = ch
            continue
        current.append(ch)
    legs.append(("".join(current), before))
    return [(leg, sep) for leg, sep in legs if leg.strip()]


def failover_chain(legs: list[DialLeg]) -> list[DialLeg]:
    """The targets tried one after the other: the first leg of each '|' group (the simulator
    rings one leg at a time, so of ',' legs only the first)."""
    return legs[:1] + [leg for leg in legs[1:] if leg.after == "|"]


def moves_on(cause: str, fail_on_single_reject: str | None) -> bool:
    """Whether a failed target of a '|' list gives way to the next (switch_ivr_originate.c):
    unless ``fail_on_single_reject`` says this cause fails the whole originate: ``true`` (any
    cause), ``A:B`` (those causes) or ``!A:B`` (any but those)."""
    rule = (fail_on_single_reject or "").strip()
    if not rule or rule.lower() == "false":
        return True
    if rule.lower() == "true":
        return False
    negated = rule.startswith("!")
    causes = {name.strip().upper() for name in rule.lstrip("!").split(":") if name.strip()}
    rejects = (cause.upper() not in causes) if negated else (cause.upper() in causes)
    return not rejects


def parse_dial_string(text: str) -> list[DialLeg]:
    """A dial string to its legs, each with the variables that apply to it."""
    text = text.strip()
    global_vars: dict[str, str] = {}
    while text and text[0] in "{<":
        closer = "}" if text[0] == "{" else ">"
        end = _closing(text, 0, text[0], closer)
        for name, value in parse_variables(text[1:end]).items():
            global_vars.pop(name, None)
            global_vars[name] = value
        text = text[end + 1 :].lstrip()
    legs: list[DialLeg] = []
    for leg_text, after in _split_legs(text):
        leg_text = leg_text.strip()
        variables = dict(global_vars)
        while leg_text.startswith("["):
            end = _closing(leg_text, 0, "[", "]")
            for name, value in parse_variables(leg_text[1:end]).items():
                variables.pop(name, None)  # [] overrides {} for this leg
                variables[name] = value
            leg_text = leg_text[end + 1 :].lstrip()
        legs.append(DialLeg(parse_target(leg_text), variables, after))
    if not legs:
        raise DialStringError("INVALID_URL", f"no leg in dial string {text!r}")
    return legs


_HOST_PORT = re.compile(r"^(?P<host>\[[^\]]+\]|[^:;]+)(?::(?P<port>\d+))?")


def parse_target(text: str) -> DialTarget:
    """One leg's target: sofia/gateway/GW/DEST, sofia/PROFILE/DEST, loopback/DEST, error/CAUSE."""
    endpoint, _, rest = text.partition("/")
    endpoint = endpoint.lower()
    if endpoint == "error":
        return DialTarget("error", text, cause=rest.upper() or "NORMAL_CLEARING")
    if endpoint == "loopback":
        destination = rest.split("/", 1)[0]
        return DialTarget(
            "loopback", text, profile="loopback", destination=destination, user=destination
        )
    if endpoint != "sofia":
        raise DialStringError("CHAN_NOT_IMPLEMENTED", f"unsupported endpoint in {text!r}")
    profile, _, destination = rest.partition("/")
    if not profile or not destination:
        raise DialStringError("INVALID_URL", f"incomplete sofia dial string {text!r}")
    if profile == "gateway":
        gateway, _, destination = destination.partition("/")
        if not gateway or not destination:
            raise DialStringError("INVALID_GATEWAY", f"incomplete gateway dial string {text!r}")
        user = destination.split("@", 1)[0]
        return DialTarget(
            "sofia",
            text,
            profile=GATEWAY_PROFILE,
            gateway=gateway,
            destination=destination,
            user=user,
            host=gateway,
            port=GATEWAY_PORT,
        )
    destination = destination.removeprefix("sip:")
    user, at, host_part = destination.partition("@")
    host, port = "127.0.0.1", GATEWAY_PORT
    if at:
        match = _HOST_PORT.match(host_part)
        if match:
            host = match.group("host")
            port = int(match.group("port") or GATEWAY_PORT)
    return DialTarget(
        "sofia", text, profile=profile, destination=destination, user=user, host=host, port=port
    )


def parse_application(text: str) -> tuple[str, str]:
    """``&bridge(args)`` to ("bridge", "args"): the args end at the *first* ')'."""
    body = text[1:] if text.startswith("&") else text
    name, paren, rest = body.partition("(")
    if not paren:
        return name, ""
    args, _, _ = rest.partition(")")
    return name, args


def parse_originate(arguments: str) -> OriginateRequest:
    """The argument string of ``originate`` (after the word itself)."""
    words = [None if word == "undef" else word for word in split_arguments(arguments)]
    if not 2 <= len(words) <= 7 or words[0] is None or words[1] is None:
        raise OriginateUsageError(ORIGINATE_SYNTAX)
    chain = failover_chain(parse_dial_string(words[0]))
    exten = words[1]
    application, application_args, extension = "", "", None
    if exten.startswith("&"):
        application, application_args = parse_application(exten)
    else:
        extension = exten
    timeout = None
    if len(words) > 6 and words[6]:
        try:
            timeout = int(words[6])
        except ValueError:
            timeout = None
        if timeout is not None and timeout <= 0:
            timeout = DEFAULT_TIMEOUT
    return OriginateRequest(
        raw=arguments,
        leg=chain[0],
        alternatives=tuple(chain[1:]),
        application=application,
        application_args=application_args,
        extension=extension,
        timeout=timeout,
        cid_name=words[4] if len(words) > 4 else None,
        cid_num=words[5] if len(words) > 5 else None,
    )


def positive_int(value: str | None) -> int | None:
    """A timeout variable: its integer value when > 0, else None (unset)."""
    if value is None:
        return None
    try:
        number = int(float(value))
    except ValueError:
        return None
    return number if number > 0 else None

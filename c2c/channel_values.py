"""What a value may hold to go into an originate's channel variables, and how it is written (pure).

c2c sends ``originate {A-vars}<caller> &bridge({B-vars}<callee>)``. FreeSWITCH reads it in three
passes (esl-reference.md 2.1 and 2.2, switch_utils.c ``cleanup_separated_string``, mod_commands
``originate``), and each pass gives some characters a meaning:

1. The API splitter cuts the command at spaces. Single quotes group words and are removed; a
   backslash escapes a quote, a space or a backslash and turns n, r, t, s into control characters
   or a space; any other ``\\x`` (so ``\\,``) is left as it is for the next pass.
2. ``&bridge(...)``: its argument ends at its **first** ``)``, so the callee's ``{}`` can hold no
   parenthesis (recordings README, finding 16e). The argument is variable-expanded on the caller's
   channel when the bridge runs, so a ``$`` there is never literal.
3. Each ``{...}`` ends at its matching ``}`` and is split at ``,``; ``\\,`` is a comma inside a
   value. Recording 16: ``transfer_ringback=%(2000\\,4000\\,440\\,480)`` played the tone; 16e: the
   same tone unescaped was cut at its first comma (``%(2000``) and the bridge failed at once. A
   ``[...]`` or ``<...>`` group, a ``|`` (failover legs) or ``:_:`` (an enterprise originate)
   anywhere in the dial string changes how the whole string is read, and ``${...}`` is refused
   (or expanded).

So every value is held to an allow-list of characters for the place it goes, and the one escape
written is the one the recordings prove (``\\,``); nothing is escaped "into safety". The config
checks operator values with these functions at start-up (a bad value names its setting), and the
originate builder checks them again before they reach a dial string.
"""

from __future__ import annotations

import re

# FreeSWITCH copies group_confirm_file into a 512-byte buffer (switch_ivr_originate.c); the
# ringback variables have no such limit, but nobody needs a longer one.
MAX_MEDIA_LENGTH = 500
MAX_NAME_LENGTH = 50

TONE_STREAM = "tone_stream://"
LOCAL_STREAM = "local_stream://"

# A teletone script (``%(on,off,freq[,freq...])``, ``v=-7;``, ``L=3;``, ``loops=10``, DTMF digits)
# uses only these. No ':' (never a '://' or ':_:' inside), no space, quote, brace, bracket, '$',
# '|', '\\', '<', '>' or '^'.
_TONE_CHAR = re.compile(r"[A-Za-z0-9%(),;=.+*#-]")
# A sound file, absolute or relative to the switch's sound prefix: path segments of safe characters.
_FILE_CHAR = re.compile(r"[A-Za-z0-9_+./-]")
_FILE = re.compile(r"/?[A-Za-z0-9_+.-]+(?:/[A-Za-z0-9_+.-]+)*")
# FreeSWITCH picks the file format by its extension; without one, a mistyped keyword ("of" for
# "off") would pass for a file that plays nothing.
_EXTENSION = re.compile(r".*[^/.]\.[A-Za-z0-9]{1,5}")
_STREAM_NAME_CHAR = re.compile(r"[A-Za-z0-9_.-]")
# A display name: ASCII letters, digits, single spaces between words and a few marks that mean
# nothing to any of the three passes. Not ' , ( ) { } [ ] < > $ | \\ ^ : = % " and no non-ASCII
# (a display name travels in SIP From headers and CDRs, where non-ASCII is often mangled).
_NAME_CHAR = re.compile(r"[A-Za-z0-9 .&@#*!?/+_-]")

_WHY_NOT: dict[str, str] = {
    " ": "a space ends an argument of the API command",
    "'": "a quote groups or ends an argument of the API command",
    '"': "a double quote is taken for quoting",
    "\\": "a backslash escapes the character after it",
    "{": "a brace opens or closes a block of channel variables",
    "}": "a brace opens or closes a block of channel variables",
    "[": "a bracket opens per-leg variables",
    "]": "a bracket closes per-leg variables",
    "<": "angle brackets hold enterprise variables",
    ">": "angle brackets hold enterprise variables",
    "$": "FreeSWITCH expands ${...} (and $${...})",
    "|": "a bar separates failover legs",
    ",": "a comma separates channel variables",
    "(": "the &bridge(...) argument ends at the first ')'",
    ")": "the &bridge(...) argument ends at the first ')'",
    "^": "^^ changes the variable separator",
    ":": "':_:' makes an enterprise originate",
    "=": "'=' separates a variable's name from its value",
    "%": "'%' is kept for tones",
}


def _refuse_characters(value: str, allowed: re.Pattern[str], what: str) -> None:
    """ValueError naming the first character of ``value`` that ``allowed`` does not match."""
    for char in value:
        if not allowed.fullmatch(char):
            if not char.isascii() or not char.isprintable():
                raise ValueError(f"{what} holds {char!r}: only printable ASCII is allowed")
            why = _WHY_NOT.get(char, "it is not one of the characters allowed there")
            raise ValueError(f"{what} holds {char!r}: {why}")


def _check_tone(body: str, what: str) -> None:
    _refuse_characters(body, _TONE_CHAR, what)
    depth = 0
    for char in body:
        if char == "(":
            depth += 1
            if depth > 1:
                raise ValueError(f"{what} nests parentheses")
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"{what} closes a parenthesis it never opened")
    if depth:
        raise ValueError(f"{what} leaves a parenthesis open")


def check_media(value: object) -> str:
    """``value`` if it is a tone or sound file that may go into the caller's ``{}`` (as
    ``transfer_ringback`` or ``group_confirm_file``); ValueError says why not.

    Accepted: a teletone script, bare (``%(2000,4000,440,480)``) or as ``tone_stream://...``;
    ``local_stream://NAME`` (music on hold); a sound file path with an extension, absolute or
    relative to the switch's sound prefix. Commas are fine here: ``in_braces`` writes them as ``\\,``.
    Parentheses are fine in the caller's ``{}``, which is not inside ``&bridge(...)``.
    """
    if not isinstance(value, str):
        raise ValueError("is not text")
    if not value:
        raise ValueError("is empty")
    if len(value) > MAX_MEDIA_LENGTH:
        raise ValueError(f"is longer than {MAX_MEDIA_LENGTH} characters")
    if value.startswith(TONE_STREAM):
        body = value[len(TONE_STREAM) :]
        if not body:
            raise ValueError("tone_stream:// names no tone")
        _check_tone(body, "the tone")
    elif value.startswith("%("):
        _check_tone(value, "the tone")
    elif value.startswith(LOCAL_STREAM):
        name = value[len(LOCAL_STREAM) :]
        if not name:
            raise ValueError("local_stream:// names no stream")
        _refuse_characters(name, _STREAM_NAME_CHAR, "the stream name")
    elif "://" in value:
        raise ValueError(
            "only tone_stream://..., local_stream://NAME, a %(...) tone or a file path are allowed"
        )
    else:
        _refuse_characters(value, _FILE_CHAR, "the file path")
        if not _FILE.fullmatch(value):
            raise ValueError("the file path has an empty segment ('//' or a trailing '/')")
        if not _EXTENSION.fullmatch(value):
            raise ValueError("the file path has no extension (.wav, .mp3, ...)")
    return value


def check_for_bridge(value: str) -> str:
    """``value`` if it may also go into the callee's ``{}`` inside ``&bridge(...)``."""
    for char in "()":
        if char in value:
            raise ValueError(f"holds {char!r}: {_WHY_NOT[char]}")
    return value


def check_display_name(value: object) -> str:
    """``value`` if it may be a caller-ID name on both legs; ValueError says why not.

    Words of ASCII letters, digits and ``. & @ # * ! ? / + _ -``, one space between words, at
    most 50 characters. Spaces are written in single quotes by ``in_braces``.
    """
    if not isinstance(value, str):
        raise ValueError("is not text")
    if not value:
        raise ValueError("is empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"is longer than {MAX_NAME_LENGTH} characters")
    if value != value.strip(" ") or "  " in value:
        # The {} parser trims spaces at an item's ends; say so rather than send a changed name.
        raise ValueError("has spaces at its ends or two in a row")
    _refuse_characters(value, _NAME_CHAR, "the name")
    return value


def in_braces(value: str) -> str:
    """``value`` as written inside a ``{}``: each comma as ``\\,`` (recording 16), and the whole in
    single quotes when it holds a space (the API splitter removes them again, as with
    ``execute_on_answer='sched_hangup +N ALLOTTED_TIMEOUT'``, recording 09). The value must have
    passed one of the checks above: it holds no quote or backslash of its own."""
    if "'" in value or "\\" in value:
        raise ValueError("a value holding a quote or a backslash cannot be written in {}")
    written = value.replace(",", "\\,")
    return f"'{written}'" if " " in written else written

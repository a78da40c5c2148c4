"""A model of how FreeSWITCH reads ``originate {A}<target> &bridge({B}<target>)`` sent over ESL
(esl-reference.md 2.1 and 2.2; switch_utils.c ``cleanup_separated_string``, mod_commands
``originate``, ``switch_event_create_brackets``), for tests of what c2c sends.

tests/test_originate.py checks the model against the recordings (what FreeSWITCH actually put on
each leg for the commands sent in 09 and 16-20), so tests may trust it to say what a leg gets.
"""

from __future__ import annotations


def api_split(command: str) -> list[str]:
    """switch_separate_string on ' ' (switch_utils.c, separate_string_blank_delim and
    cleanup_separated_string): single quotes group words and are removed (a quote with no
    partner after it stays); a backslash escapes a quote, a space or a backslash, turns n r t s
    into a newline, return, tab or space, and before any other character is kept (so ``\\,``
    reaches the ``{}`` parser as it is, recording 16)."""
    tokens: list[str] = []
    current: list[str] = []
    in_token = quoted = False
    index = 0
    while index < len(command):
        char = command[index]
        if char == "\\" and index + 1 < len(command):
            after = command[index + 1]
            if after in "'\" \\":
                current.append(after)
                index += 2
                in_token = True
                continue
            if after in "nrts":
                current.append({"n": "\n", "r": "\r", "t": "\t", "s": " "}[after])
                index += 2
                in_token = True
                continue
        if char == "'" and (quoted or "'" in command[index + 1 :]):
            quoted = not quoted
            in_token = True
        elif char == " " and not quoted:
            if in_token:
                tokens.append("".join(current))
            current, in_token = [], False
        else:
            current.append(char)
            in_token = True
        index += 1
    if in_token:
        tokens.append("".join(current))
    return tokens


def read_braces(dial: str) -> tuple[list[tuple[str, str]], str, list[str]]:
    """A leading ``{}`` as switch_event_create_brackets reads it: it ends at its matching '}';
    items are split at ',' unless written ``\\,``; an item without '=' is dropped."""
    assert dial.startswith("{"), dial
    depth, end = 0, -1
    for index, char in enumerate(dial):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            end = index
            break
    assert end > 0, f"unbalanced braces in {dial!r}"
    inner, target = dial[1:end], dial[end + 1 :]
    items, current, index = [], "", 0
    while index < len(inner):
        if inner.startswith("\\,", index):
            current += ","
            index += 2
            continue
        if inner[index] == ",":
            items.append(current)
            current = ""
        else:
            current += inner[index]
        index += 1
    items.append(current)
    pairs, dropped = [], []
    for item in items:
        name, sep, value = item.partition("=")
        if sep:
            pairs.append((name.strip(), value))
        else:
            dropped.append(item)
    return pairs, target, dropped


def parse_leg(dial: str) -> tuple[dict[str, str], str]:
    """As read_braces, and every item is name=value with no name twice (our own strings)."""
    pairs, target, dropped = read_braces(dial)
    assert dropped == [], f"not name=value: {dropped}"
    variables = dict(pairs)
    assert len(variables) == len(pairs), f"a variable is set twice: {pairs}"
    return variables, target


def split_originate(command: str) -> tuple[str, str]:
    argv = api_split(command)
    assert argv[0] == "originate"
    assert len(argv) == 3, argv  # originate, A leg, &bridge(...)
    app, _, rest = argv[2].partition("(")
    assert app == "&bridge"
    arg, close, tail = rest.partition(")")  # the argument ends at the FIRST ')'
    assert close == ")" and tail == "", argv[2]
    return argv[1], arg


def parse_originate(command: str):
    a_dial, b_dial = split_originate(command)
    a_vars, a_target = parse_leg(a_dial)
    b_vars, b_target = parse_leg(b_dial)
    return a_vars, a_target, b_vars, b_target

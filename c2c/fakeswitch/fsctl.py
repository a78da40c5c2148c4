"""``api fsctl ...``: the switch controls c2c cares about, with mod_commands.c's exact replies.

Simulated: ``pause|resume [inbound|outbound]`` (``+OK``; recordings 22, 22b), ``sps [N]``
(``+OK sessions per second: N``, 23), ``max_sessions [N]`` (``+OK max sessions: N``, 23b),
``last_sps``, ``pause_check [inbound|outbound]``, ``ready_check``, ``shutdown_check`` (``true`` or
``false``, no newline) and ``hupall`` (calls end MANAGER_REQUEST). A number is read as C's
``atoi`` reads it; 0 (or no number) only reports the current value. Every other subcommand of the
real fsctl (shutdown, loglevel, ...) is not simulated and gets ``-ERR ... not simulated``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from c2c.fakeswitch.limits import SessionLimits

CTL_SYNTAX = (
    "[recover|send_sighup|hupall|pause [inbound|outbound]|resume [inbound|outbound]|shutdown "
    "[cancel|elegant|asap|now|restart]|sps|sync_clock|sync_clock_when_idle|reclaim_mem|"
    "max_sessions|min_dtmf_duration [num]|max_dtmf_duration [num]|default_dtmf_duration [num]|"
    "min_idle_cpu|loglevel [level]|debug_level [level]]"
)
# Real subcommands the simulator does not act on.
NOT_SIMULATED = frozenset(
    """recover flush_db_handles send_sighup calibrate_clock crash verbose_events api_expansion
    threaded_system_exec save_history shutdown debug_sql sql reclaim_mem min_idle_cpu
    max_dtmf_duration min_dtmf_duration default_dtmf_duration loglevel debug_level sync_clock
    sync_clock_when_idle""".split()
)

_LEADING_INT = re.compile(r"^\s*([+-]?\d+)")


def atoi(text: str | None) -> int:
    """C's atoi: the leading integer, 0 when there is none (clamped to 32 bits)."""
    match = _LEADING_INT.match(text or "")
    if match is None:
        return 0
    return max(-(2**31), min(2**31 - 1, int(match.group(1))))


def fsctl(args: str, limits: SessionLimits, count: int, hupall: Callable[[], object]) -> str:
    """The reply to ``fsctl <args>`` with ``count`` sessions up."""
    words = args.split()
    if not words:
        return f"-USAGE: {CTL_SYNTAX}\n"
    verb = words[0].lower()
    argument = words[1] if len(words) > 1 else None
    if verb in ("pause", "resume"):
        limits.pause(argument, paused=verb == "pause")
        return "+OK\n"
    if verb == "sps":
        return f"+OK sessions per second: {limits.set_sps(atoi(argument), count)}\n"
    if verb == "max_sessions":
        return f"+OK max sessions: {limits.set_max_sessions(atoi(argument))}\n"
    if verb == "last_sps":
        limits.catch_up(count)
        return f"+OK last sessions per second: {limits.sps_last}\n"
    if verb == "pause_check":
        which = (argument or "").lower()
        if which == "inbound":
            paused = limits.paused_inbound
        elif which == "outbound":
            paused = limits.paused_outbound
        else:
            paused = not limits.ready
        return _bool(paused)
    if verb == "ready_check":
        return _bool(limits.ready)
    if verb == "shutdown_check":
        return _bool(False)
    if verb == "hupall":
        hupall()
        return "+OK\n"
    if verb in NOT_SIMULATED:
        return f"-ERR fsctl {verb} is not simulated\n"
    return f"-ERR INVALID COMMAND\nUSAGE: fsctl {CTL_SYNTAX}"


def _bool(value: bool) -> str:
    return "true" if value else "false"

"""What the caller hears from the switch itself (pure): the ringback while the callee's leg is set
up (C2C_RINGBACK) and the press-1 prompt (C2C_CONFIRM_PROMPT).

Values are returned as the operator (or this table) writes them, commas and all; the originate
builder writes them into the caller's ``{}`` with their commas escaped (recording 16).
"""

from __future__ import annotations

from c2c.numbers import NANP_COUNTRY_CODE

RINGBACK_AUTO = "auto"
RINGBACK_OFF = "off"

UK_COUNTRY_CODE = "44"

# The ringback people expect from their own country's network (teletone: on ms, off ms, Hz...).
NANP_RINGBACK = "%(2000,4000,440,480)"  # North America: 2 s of 440+480 Hz, 4 s off
UK_RINGBACK = "%(400,200,400,450);%(400,2000,400,450)"  # the UK's double ring, 400+450 Hz
OTHER_RINGBACK = "%(1000,4000,425)"  # ITU-T E.180's 425 Hz, 1 s on 4 s off (most of Europe)

# The default prompt needs no sound package on the switch: a 440 Hz beep each second. It lasts
# the whole confirmation window (one loop a second); FreeSWITCH plays it again after a short
# wait if it ends first, and group_confirm_timeout ends the wait (recording 20b).
CONFIRM_BEEP_SECONDS = 1
CONFIRM_BEEP = "tone_stream://%(500,500,440);loops={loops}"


def ringback_for(setting: str, country_code: str) -> str:
    """What an answered caller hears while the callee's phone rings and it sends no early media
    of its own; '' for nothing (C2C_RINGBACK=off). ``setting`` is C2C_RINGBACK: auto (by the
    caller's country), off, or the operator's tone or file."""
    if setting == RINGBACK_OFF:
        return ""
    if setting != RINGBACK_AUTO:
        return setting
    if country_code == NANP_COUNTRY_CODE:
        return NANP_RINGBACK
    if country_code == UK_COUNTRY_CODE:
        return UK_RINGBACK
    return OTHER_RINGBACK


def confirm_prompt(setting: str, timeout_seconds: int) -> str:
    """The press-1 prompt: C2C_CONFIRM_PROMPT, or when blank the beep, sized to the timeout."""
    if setting:
        return setting
    return CONFIRM_BEEP.format(loops=max(1, timeout_seconds // CONFIRM_BEEP_SECONDS))

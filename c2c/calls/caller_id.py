"""Caller IDs: which number each phone is shown, in which format, under which name (pure).

- **The callee** is shown the request's ``caller_id``, or the caller's own number when it is blank.
- **The caller** is shown C2C_CALLER_ID_FOR_CALLER, or the callee's number when it is blank.
- **Format** (C2C_CALLER_ID_FORMAT): ``e164`` ``+`` country code and number (``+442071234567``);
  ``digits`` the same without ``+``; ``national`` the number as dialed inside its own country,
  digits only, trunk prefix included where the country uses one (``02071234567``,
  ``2125550123``). ``national`` suits a service whose callers and callees share one country: a
  number shown nationally on a phone abroad cannot be called back.
- **Name** (C2C_CALLER_ID_NAME): the same display name on both legs, or when blank the number
  each phone is shown, formatted. Left unset, FreeSWITCH would fill the name in itself, with a
  different string than the number (recording 16: ``Caller-Caller-ID-Name: 12123010210``).

**Reading digits without a country code.** The request's ``caller_id`` (4-15 digits) and a
C2C_CALLER_ID_FOR_CALLER without ``+`` name no country. They are read, in this order:

1. as dialed from the caller's country, when phonenumbers finds the result a valid number: a
   national number with or without its trunk prefix (``2071234567`` or ``02071234567`` from the
   UK), or with the country's international prefix or country code (``0033612345678`` from the
   UK, ``12125550123`` from North America);
2. else, when the digits are not even a possible number of the caller's country (the wrong
   length), as international digits starting with their country code, if that is a valid number
   (``33612345678`` from North America is France's ``+33612345678``);
3. else, when it is a possible number as dialed from the caller's country, as that number
   (a trunk or international prefix dropped): a fictitious number (``555`` in North America) or
   an unassigned range stays in the caller's country rather than becoming a valid number
   somewhere else;
4. else as the caller's country code followed by the digits as given, which is what c2c always
   did.

The caller's country decides because the caller is the person the customer's form served, and a
business normally names its own numbers nationally. C2C_CALLER_ID_FOR_CALLER written as
``+E164`` is taken as it is; that is the way to name one number for callers of every country.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

from c2c.numbers import PhoneNumber

E164 = "e164"
DIGITS = "digits"
NATIONAL = "national"
FORMATS = (E164, DIGITS, NATIONAL)

POLICY_ANY = "any"
POLICY_OWN = "own"
POLICIES = (POLICY_ANY, POLICY_OWN)

_DIGITS = re.compile(r"[0-9]+")
_NOT_DIGIT = re.compile(r"[^0-9]")


@dataclass(frozen=True)
class Number:
    """A number read as a country code and the national (significant) number, ASCII digits;
    the national part keeps leading zeros that belong to it (Italy's ``06...``)."""

    country_code: str
    national: str

    @property
    def digits(self) -> str:
        return self.country_code + self.national

    @property
    def e164_int(self) -> int:
        return int(self.digits)


@dataclass(frozen=True)
class ShownIds:
    """What each phone shows: number (formatted) and display name."""

    to_callee_number: str
    to_callee_name: str
    to_caller_number: str
    to_caller_name: str


def _from_library(parsed: phonenumbers.PhoneNumber) -> Number:
    return Number(str(parsed.country_code), phonenumbers.national_significant_number(parsed))


def _parse(digits: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(digits, region)
    except NumberParseException:
        return None


@lru_cache(maxsize=16384)
def read_digits(digits: str, country_code: str) -> Number:
    """Digits without a country code (4-15), read as the module docstring says, for a caller in
    ``country_code``; ValueError if they are not digits."""
    if not isinstance(digits, str) or not _DIGITS.fullmatch(digits):
        raise ValueError("a caller ID must be ASCII digits")
    if not isinstance(country_code, str) or not _DIGITS.fullmatch(country_code):
        raise ValueError("a country code must be ASCII digits")
    region = phonenumbers.region_code_for_country_code(int(country_code))
    dialed = None
    if region != phonenumbers.UNKNOWN_REGION:
        dialed = _parse(digits, region)
        if dialed is not None and phonenumbers.is_valid_number(dialed):
            return _from_library(dialed)
        if dialed is not None and not phonenumbers.is_possible_number(dialed):
            dialed = None
    if dialed is None:
        international = _parse("+" + digits, None)
        if international is not None and phonenumbers.is_valid_number(international):
            return _from_library(international)
        return Number(country_code, digits)
    return _from_library(dialed)


def read_setting(value: str, country_code: str) -> Number:
    """C2C_CALLER_ID_FOR_CALLER for a caller in ``country_code``: ``+E164`` as it is, digits
    read as ``read_digits`` reads them; ValueError if it is neither."""
    if value.startswith("+"):
        parsed = _parse(value, None)
        if parsed is None or not _DIGITS.fullmatch(value[1:]):
            raise ValueError("not +E164 with a known country code")
        return _from_library(parsed)
    return read_digits(value, country_code)


def _library_number(number: Number) -> phonenumbers.PhoneNumber:
    national = number.national
    leading_zeros = len(national) - len(str(int(national)))  # "0000" is 0 after three zeros
    return phonenumbers.PhoneNumber(
        country_code=int(number.country_code),
        national_number=int(national),
        # Leading zeros belong to the number (Italy's 06...): keep them, as c2c.numbers does.
        italian_leading_zero=leading_zeros > 0 or None,
        number_of_leading_zeros=leading_zeros if leading_zeros > 1 else None,
    )


@lru_cache(maxsize=16384)
def _national_digits(country_code: str, national: str) -> str:
    formatted = phonenumbers.format_number(
        _library_number(Number(country_code, national)), PhoneNumberFormat.NATIONAL
    )
    return _NOT_DIGIT.sub("", formatted) or national


def format_number(number: Number | PhoneNumber, fmt: str) -> str:
    """``number`` in C2C_CALLER_ID_FORMAT ``fmt``: ``+`` and digits, or digits only."""
    if fmt == E164:
        return "+" + number.country_code + number.national
    if fmt == DIGITS:
        return number.country_code + number.national
    if fmt == NATIONAL:
        return _national_digits(number.country_code, number.national)
    raise ValueError(f"unknown caller ID format {fmt!r}; one of {', '.join(FORMATS)}")


def shown_to_callee(caller_id: str, caller: PhoneNumber) -> Number:
    """The number the callee is shown: the request's caller_id, read for the caller's country,
    or the caller's own number."""
    if not caller_id:
        return Number(caller.country_code, caller.national)
    return read_digits(caller_id, caller.country_code)


def shown_to_caller(for_caller: str, caller: PhoneNumber, callee: PhoneNumber) -> Number:
    """The number the caller is shown: C2C_CALLER_ID_FOR_CALLER, or the callee's number."""
    if not for_caller:
        return Number(callee.country_code, callee.national)
    return read_setting(for_caller, caller.country_code)


def caller_id_allowed(caller_id: str, caller: PhoneNumber, own_numbers: frozenset[int]) -> bool:
    """C2C_CALLER_ID_POLICY=own: a blank caller_id (the caller's own number is shown), or one
    that reads as one of the account's own numbers (E.164 digits)."""
    return not caller_id or read_digits(caller_id, caller.country_code).e164_int in own_numbers


def shown_ids(
    caller_id: str,
    caller: PhoneNumber,
    callee: PhoneNumber,
    *,
    fmt: str,
    name: str,
    for_caller: str,
) -> ShownIds:
    """Both legs' caller IDs for one call. ``name`` (C2C_CALLER_ID_NAME) blank: each phone's
    name is the number it is shown."""
    to_callee = format_number(shown_to_callee(caller_id, caller), fmt)
    to_caller = format_number(shown_to_caller(for_caller, caller, callee), fmt)
    return ShownIds(
        to_callee_number=to_callee,
        to_callee_name=name or to_callee,
        to_caller_number=to_caller,
        to_caller_name=name or to_caller,
    )

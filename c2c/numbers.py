"""Phone numbers: a self-validating value, E.164 forms and the NANP area code (pure).

The public API takes a number as two fields, a country calling code and a national number, both
plain ASCII digits. Nothing is normalised: no '+', spaces, dashes or trunk prefixes are stripped, so
the number we dial is exactly the digits the customer sent (a UK customer sends ``2071234567``,
not ``02071234567``). Coverage prefixes are matched by the store, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumber as _LibNumber
from phonenumbers import ValidationResult

NANP_COUNTRY_CODE = "1"

# [0-9] and not \d or str.isdigit: those accept Arabic-Indic, fullwidth and superscript digits.
_COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")
_NATIONAL = re.compile(r"[0-9]{4,14}")


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A number as dialed: ``country_code`` and ``national`` are ASCII digit strings.

    Construction checks only the shape (what makes the value safe to put in a dial string);
    ``parse_phone`` adds the policy (NANP length, plausibility for the country).
    """

    country_code: str
    national: str

    def __post_init__(self) -> None:
        _check_shape(self.country_code, self.national)

    @property
    def digits(self) -> str:
        """Country code and national number, digits only (E.164 without the '+')."""
        return self.country_code + self.national

    @property
    def e164(self) -> str:
        return "+" + self.digits

    @property
    def e164_int(self) -> int:
        return int(self.digits)

    @property
    def area(self) -> str | None:
        """The NANP area code (NPA); None elsewhere, where coverage uses national prefixes."""
        return self.national[:3] if self.country_code == NANP_COUNTRY_CODE else None

    def __str__(self) -> str:
        return self.e164


def _check_shape(country_code: object, national: object) -> None:
    if not isinstance(country_code, str) or not _COUNTRY_CODE.fullmatch(country_code):
        raise ValueError("country code must be 1-3 ASCII digits without a leading zero")
    if not isinstance(national, str) or not _NATIONAL.fullmatch(national):
        raise ValueError("national number must be 4-14 ASCII digits")


@lru_cache(maxsize=1024)
def _known_to_phonenumbers(country_code: str) -> bool:
    # Cached: the region lookup is the only part of the check that is not constant time.
    return bool(phonenumbers.region_codes_for_country_code(int(country_code)))


@lru_cache(maxsize=65536)
def _possibility(country_code: str, national: str) -> int:  # a ValidationResult constant
    leading_zeros = len(national) - len(national.lstrip("0"))
    number = _LibNumber(
        country_code=int(country_code),
        national_number=int(national),
        # Leading zeros are significant (Italy's 06..., and anything a customer sends): keep them,
        # or the length check would run on a different number than the one we dial.
        italian_leading_zero=leading_zeros > 0 or None,
        number_of_leading_zeros=leading_zeros if leading_zeros > 1 else None,
    )
    return phonenumbers.is_possible_number_with_reason(number)


_WHY_NOT_POSSIBLE: dict[int, str] = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "a length no number there has",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "only dialable locally, not in E.164",
    ValidationResult.INVALID_COUNTRY_CODE: "an unknown country code",
}


def parse_phone(country_code: str, national: str) -> PhoneNumber:
    """Validate a number as the public API defines it; ValueError says why not.

    Rules: country code 1-3 digits, no leading zero; national number 4-14 digits, exactly 10 for
    country 1; where phonenumbers knows the country code, a *possible* number there (length only:
    fictitious 555 numbers and unassigned ranges pass, since is_valid would refuse them).
    """
    number = PhoneNumber(country_code, national)
    if country_code == NANP_COUNTRY_CODE and len(national) != 10:
        raise ValueError("a North American national number has exactly 10 digits")
    if _known_to_phonenumbers(country_code):
        result = _possibility(country_code, national)
        # Strictly IS_POSSIBLE: a local-only number cannot be dialed from a gateway in E.164.
        if result != ValidationResult.IS_POSSIBLE:
            why = _WHY_NOT_POSSIBLE.get(result, "not a possible number")
            raise ValueError(f"not a possible number for country code {country_code}: {why}")
    return number


def split_e164(digits: int) -> PhoneNumber:
    """E.164 digits (no '+') as country code and national number: the shortest leading 1-3
    digits that are an assigned country calling code. ValueError when none is."""
    text = str(digits)
    for length in (1, 2, 3):
        code = text[:length]
        if int(code) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE and len(text) > length:
            return PhoneNumber(code, text[length:])
    raise ValueError(f"+{text} starts with no country calling code")

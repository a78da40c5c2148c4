import dataclasses
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2c.numbers import PhoneNumber, parse_phone

VALID = [
    # (country code, national, e164, area)
    ("1", "5552104427", "+15552104427", "555"),
    ("1", "5551230001", "+15551230001", "555"),  # fictitious 555 numbers are fine
    ("1", "9005550100", "+19005550100", "900"),  # premium is a coverage question, not a format one
    ("44", "2071234567", "+442071234567", None),
    ("44", "7700900123", "+447700900123", None),
    ("39", "0612345678", "+390612345678", None),  # Italy keeps its leading zero
    ("49", "3012345", "+493012345", None),
    ("800", "12345678", "+80012345678", None),  # non-geographic, known to phonenumbers
    ("999", "1234", "+9991234", None),  # unknown to phonenumbers: only the shape is checked
    ("999", "12345678901234", "+99912345678901234", None),
]


@pytest.mark.parametrize(("cc", "national", "e164", "area"), VALID)
def test_valid_numbers(cc, national, e164, area):
    number = parse_phone(cc, national)
    assert number == PhoneNumber(cc, national)
    assert number.e164 == e164
    assert number.e164_int == int(e164[1:])
    assert number.digits == e164[1:]
    assert number.area == area
    assert str(number) == e164


INVALID = [
    # country code shape
    ("", "5552104427", "country code"),
    ("0", "5552104427", "country code"),
    ("01", "5552104427", "country code"),
    ("1234", "5552104427", "country code"),
    ("+1", "5552104427", "country code"),
    (" 1", "5552104427", "country code"),
    ("1 ", "5552104427", "country code"),
    ("١", "5552104427", "country code"),  # Arabic-Indic one
    ("¹", "5552104427", "country code"),  # superscript one: str.isdigit() says True
    # national shape
    ("44", "", "national"),
    ("44", "123", "national"),
    ("999", "123456789012345", "national"),  # 15 digits
    ("1", "555-210-4427", "national"),
    ("1", "555 2104427", "national"),
    ("1", "(555)2104427", "national"),
    ("1", "555210442٧", "national"),  # Arabic-Indic seven
    ("1", "５５５２１０４４２７", "national"),  # fullwidth digits
    ("1", "5552104427\n", "national"),
    ("1", "+5552104427", "national"),
    # NANP is exactly 10 digits
    ("1", "555210442", "10 digits"),
    ("1", "55521044270", "10 digits"),
    ("1", "2104427", "10 digits"),
    # phonenumbers' possibility for known codes
    ("44", "02071234567", "possible"),  # the trunk '0' is not part of the national number
    ("44", "1234", "possible"),  # local-only length
    ("33", "0612345678", "possible"),
    ("882", "123456", "possible"),
    ("44", "207123456789", "possible"),  # too long
    ("33", "61234567890", "possible"),
]


@pytest.mark.parametrize(("cc", "national", "why"), INVALID)
def test_invalid_numbers(cc, national, why):
    with pytest.raises(ValueError, match=why):
        parse_phone(cc, national)


@pytest.mark.parametrize("bad", [None, 1, 5552104427, b"5552104427", ["1"]])
def test_wrong_types_are_refused(bad):
    with pytest.raises(ValueError):
        PhoneNumber("1", bad)
    with pytest.raises(ValueError):
        PhoneNumber(bad, "5552104427")


def test_value_is_frozen_and_hashable():
    number = parse_phone("1", "5552104427")
    with pytest.raises(dataclasses.FrozenInstanceError):
        number.national = "5552104428"  # type: ignore[misc]
    assert {number, parse_phone("1", "5552104427")} == {number}


@given(st.text(max_size=5), st.text(max_size=20))
def test_accepted_numbers_are_plain_ascii_digits(cc, national):
    try:
        number = parse_phone(cc, national)
    except ValueError:
        return
    assert number.e164[0] == "+"
    assert number.e164[1:].isascii() and number.e164[1:].isdigit()


def test_parsing_is_fast():
    numbers = [("1", f"555{i:07d}") for i in range(2000)] + [("44", "2071234567")] * 2000
    started = time.perf_counter()
    for cc, national in numbers:
        parse_phone(cc, national)
    assert time.perf_counter() - started < 1.0  # about 10 us each uncached; far less cached

"""c2c.calls.caller_id: which number each phone is shown, read and formatted, and under which
name; the own-number rule of C2C_CALLER_ID_POLICY=own."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2c.calls.caller_id import (
    DIGITS,
    E164,
    NATIONAL,
    Number,
    ShownIds,
    caller_id_allowed,
    format_number,
    read_digits,
    read_setting,
    shown_ids,
)
from c2c.channel_values import check_display_name
from c2c.numbers import PhoneNumber

US = PhoneNumber("1", "2125550123")  # New York
US2 = PhoneNumber("1", "4155550199")  # San Francisco
UK = PhoneNumber("44", "2071234567")  # London
UK_MOBILE = PhoneNumber("44", "7911123456")
FR = PhoneNumber("33", "612345678")
IT = PhoneNumber("39", "0612345678")  # Rome: the leading zero belongs to the number
UNKNOWN = PhoneNumber("999", "12345678")  # a country code phonenumbers does not know


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "e164", "digits", "national"),
    [
        (US, "+12125550123", "12125550123", "2125550123"),  # NANP: no trunk prefix
        (UK, "+442071234567", "442071234567", "02071234567"),  # UK: trunk prefix 0
        (UK_MOBILE, "+447911123456", "447911123456", "07911123456"),
        (FR, "+33612345678", "33612345678", "0612345678"),
        (IT, "+390612345678", "390612345678", "0612345678"),  # no extra 0 for Italy
        (UNKNOWN, "+99912345678", "99912345678", "12345678"),
        (PhoneNumber("1", "5551230001"), "+15551230001", "15551230001", "5551230001"),
    ],
)
def test_formats(number, e164, digits, national):
    assert format_number(number, E164) == e164
    assert format_number(number, DIGITS) == digits
    assert format_number(number, NATIONAL) == national


@pytest.mark.parametrize("fmt", ["E164", "international", "", None])
def test_an_unknown_format_is_an_error(fmt):
    with pytest.raises(ValueError, match="format"):
        format_number(US, fmt)


# --- reading digits without a country code ------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "caller_country", "expected"),
    [
        # 1. valid as dialed from the caller's country
        ("2125550123", "1", ("1", "2125550123")),  # NANP national
        ("12125550123", "1", ("1", "2125550123")),  # with the NANP trunk/country 1
        ("2071234567", "44", ("44", "2071234567")),  # UK national, no trunk prefix
        ("02071234567", "44", ("44", "2071234567")),  # UK national with its 0
        ("442071234567", "44", ("44", "2071234567")),  # UK with its country code
        ("0033612345678", "44", ("33", "612345678")),  # UK's international prefix 00
        ("01133612345678", "1", ("33", "612345678")),  # NANP's international prefix 011
        ("0612345678", "39", ("39", "0612345678")),  # Italy keeps its 0
        ("0612345678", "33", ("33", "612345678")),  # France drops its trunk 0
        ("612345678", "33", ("33", "612345678")),
        # 2. not possible in the caller's country, valid with its own country code
        ("442071234567", "1", ("44", "2071234567")),  # 12 digits: no NANP number
        ("33612345678", "1", ("33", "612345678")),
        ("33612345678", "44", ("33", "612345678")),
        ("12125550123", "44", ("1", "2125550123")),  # a UK caller, a US number with 1
        ("33612345678", "999", ("33", "612345678")),  # unknown caller country: international
        # 3. possible (not valid) as dialed from the caller's country: that number
        ("5551234", "1", ("1", "5551234")),  # 7 digits: possible (locally), not valid
        ("5552104427", "1", ("1", "5552104427")),  # fictitious 555: stays North American
        ("15552104427", "1", ("1", "5552104427")),  # ...its 1 dropped as when dialed
        ("6465551234", "1", ("1", "6465551234")),  # also valid in New Zealand: not taken
        ("0044207946000", "44", ("44", "207946000")),  # UK's 00 dropped, too short to be valid
        # 4. neither: the caller's country code and the digits as given (c2c's old reading)
        ("6465551234", "999", ("64", "65551234")),  # an unknown caller country: NZ is valid
        ("02079460000", "33", ("33", "02079460000")),  # not possible in France, nor valid
        ("0000", "1", ("1", "0000")),
        ("123456789012345", "44", ("44", "123456789012345")),
    ],
)
def test_reading_digits(digits, caller_country, expected):
    assert read_digits(digits, caller_country) == Number(*expected)


@pytest.mark.parametrize(
    ("digits", "country"),
    [("", "1"), ("+12125550123", "1"), ("212 555", "1"), ("٣٣٣٣", "1"), ("2125550123", "+1")],
)
def test_reading_refuses_what_is_not_digits(digits, country):
    with pytest.raises(ValueError):
        read_digits(digits, country)


@given(
    st.from_regex(r"[0-9]{4,15}", fullmatch=True),
    st.sampled_from(["1", "44", "33", "39", "999", "7", "86"]),
)
def test_any_caller_id_reads_to_a_number_that_formats_safely(digits, country):
    number = read_digits(digits, country)
    assert number.national.isdigit() and number.country_code.isdigit()
    # nothing is invented: the digits read are the tail of the digits given, or the digits
    # given after a prefix that was dropped (trunk or international prefix, country code)
    assert digits.endswith(number.national.lstrip("0")) or number.national.endswith(
        digits.lstrip("0")
    )
    for fmt in (E164, DIGITS, NATIONAL):
        shown = format_number(number, fmt)
        assert shown.lstrip("+").isdigit() and shown.isascii()
        assert len(shown) <= 24
        check_display_name(shown)  # the default name is the number: a valid name


# --- the operator's number for the caller ---------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "caller_country", "expected"),
    [
        ("+18005550100", "44", ("1", "8005550100")),  # +E164 is taken as it is, for every caller
        ("+442079460000", "1", ("44", "2079460000")),
        ("+390612345678", "1", ("39", "0612345678")),
        ("2079460000", "44", ("44", "2079460000")),  # digits: read as from the caller's country
        ("02079460000", "44", ("44", "2079460000")),
        ("442079460000", "1", ("44", "2079460000")),
    ],
)
def test_reading_the_setting(setting, caller_country, expected):
    assert read_setting(setting, caller_country) == Number(*expected)


@pytest.mark.parametrize("setting", ["+", "+0123456", "+1 800", "+12x"])
def test_reading_a_bad_plus_setting_is_an_error(setting):
    with pytest.raises(ValueError):
        read_setting(setting, "1")


# --- both legs --------------------------------------------------------------------------------


def test_defaults_each_side_sees_the_other_in_e164_named_by_the_number():
    assert shown_ids("", US, UK, fmt=E164, name="", for_caller="") == ShownIds(
        to_callee_number="+12125550123",
        to_callee_name="+12125550123",
        to_caller_number="+442071234567",
        to_caller_name="+442071234567",
    )


def test_nanp_to_nanp_in_every_format():
    for fmt, callee_sees, caller_sees in (
        (E164, "+12125550123", "+14155550199"),
        (DIGITS, "12125550123", "14155550199"),
        (NATIONAL, "2125550123", "4155550199"),
    ):
        shown = shown_ids("", US, US2, fmt=fmt, name="", for_caller="")
        assert (shown.to_callee_number, shown.to_caller_number) == (callee_sees, caller_sees)
        assert (shown.to_callee_name, shown.to_caller_name) == (callee_sees, caller_sees)


def test_uk_to_uk_nationally_has_the_trunk_prefix():
    shown = shown_ids("", UK, UK_MOBILE, fmt=NATIONAL, name="", for_caller="")
    assert (shown.to_callee_number, shown.to_caller_number) == ("02071234567", "07911123456")


def test_mixed_countries():
    # A French caller connected to a UK business that shows its own line as caller_id. Its
    # UK national digits mean nothing from France (not possible there, not valid with a
    # country code): shown as given after France's code, as c2c always did. With the country
    # code they are the UK line.
    shown = shown_ids("02079460000", FR, UK, fmt=E164, name="", for_caller="")
    assert shown.to_callee_number == "+3302079460000"
    shown = shown_ids("442079460000", FR, UK, fmt=E164, name="", for_caller="")
    assert shown.to_callee_number == "+442079460000"
    assert shown.to_caller_number == "+442071234567"
    shown = shown_ids("442079460000", US, UK, fmt=DIGITS, name="", for_caller="+18005550100")
    assert (shown.to_callee_number, shown.to_caller_number) == ("442079460000", "18005550100")


def test_the_request_caller_id_is_read_for_the_callers_country():
    shown = shown_ids("2079460000", UK, US, fmt=E164, name="", for_caller="")
    assert shown.to_callee_number == "+442079460000"
    shown = shown_ids("5551234", US, UK, fmt=E164, name="", for_caller="")
    assert shown.to_callee_number == "+15551234"  # as given, with the caller's country code


def test_a_configured_name_goes_to_both_legs():
    shown = shown_ids("", US, UK, fmt=E164, name="Acme Sales", for_caller="")
    assert (shown.to_callee_name, shown.to_caller_name) == ("Acme Sales", "Acme Sales")
    assert (shown.to_callee_number, shown.to_caller_number) == ("+12125550123", "+442071234567")


def test_the_callers_number_setting_read_for_each_caller():
    for caller, expected in ((UK, "+442079460000"), (US, "+12079460000")):
        shown = shown_ids("", caller, US2, fmt=E164, name="", for_caller="2079460000")
        assert shown.to_caller_number == expected  # digits name no country: the caller's
    for caller in (UK, US, FR):
        shown = shown_ids("", caller, US2, fmt=E164, name="", for_caller="+442079460000")
        assert shown.to_caller_number == "+442079460000"


# --- C2C_CALLER_ID_POLICY=own ----------------------------------------------------------------


OWN = frozenset({442079460000, 12125550100})


@pytest.mark.parametrize(
    ("caller_id", "caller", "allowed"),
    [
        ("", US, True),  # blank: the caller's own number is shown
        ("2079460000", UK, True),
        ("02079460000", UK, True),
        ("442079460000", UK, True),
        ("442079460000", US, True),  # with its country code, from anywhere
        ("2125550100", US, True),
        ("12125550100", US, True),
        ("2125550100", UK, False),  # read as a UK number: not the account's
        ("2079460001", UK, False),
        ("5551234", US, False),
        ("0044207946000", UK, False),
    ],
)
def test_own_numbers(caller_id, caller, allowed):
    assert caller_id_allowed(caller_id, caller, OWN) is allowed


def test_no_own_numbers_allow_only_a_blank_caller_id():
    assert caller_id_allowed("", US, frozenset())
    assert not caller_id_allowed("2125550100", US, frozenset())

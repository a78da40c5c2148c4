"""c2c.calls.tones: the ringback by the caller's country and the default press-1 prompt."""

from __future__ import annotations

import pytest

from c2c.calls.tones import (
    NANP_RINGBACK,
    OTHER_RINGBACK,
    UK_RINGBACK,
    confirm_prompt,
    ringback_for,
)
from c2c.channel_values import check_media


@pytest.mark.parametrize(
    ("country_code", "tone"),
    [
        ("1", "%(2000,4000,440,480)"),
        ("44", "%(400,200,400,450);%(400,2000,400,450)"),
        ("33", "%(1000,4000,425)"),
        ("49", "%(1000,4000,425)"),
        ("999", "%(1000,4000,425)"),
    ],
)
def test_auto_ringback_by_the_callers_country(country_code, tone):
    assert ringback_for("auto", country_code) == tone
    assert check_media(tone) == tone  # fit for the caller's {}


def test_off_and_the_operators_own():
    assert ringback_for("off", "1") == ""
    assert ringback_for("local_stream://moh", "44") == "local_stream://moh"
    assert ringback_for("/srv/ring.wav", "1") == "/srv/ring.wav"


def test_the_table_is_the_issues():
    assert (NANP_RINGBACK, UK_RINGBACK, OTHER_RINGBACK) == (
        "%(2000,4000,440,480)",
        "%(400,200,400,450);%(400,2000,400,450)",
        "%(1000,4000,425)",
    )


@pytest.mark.parametrize(("timeout", "loops"), [(10, 10), (3, 3), (60, 60)])
def test_the_default_prompt_is_a_beep_a_second_for_the_timeout(timeout, loops):
    prompt = confirm_prompt("", timeout)
    assert prompt == f"tone_stream://%(500,500,440);loops={loops}"  # recording 19's tone
    assert check_media(prompt) == prompt


def test_the_operators_prompt_is_used_as_it_is():
    path = "/usr/share/freeswitch/sounds/c2c/press-1.wav"
    assert confirm_prompt(path, 10) == path

"""The widget's pure parts: origins and countries as the CLI takes them, the call token, the
challenge's expiry and binding, the visitor's address as the limits count it."""

from __future__ import annotations

import time
import uuid

import pytest

from c2c.widgets.challenge import Challenges
from c2c.widgets.origins import normalise_origin, parse_countries, parse_origins
from c2c.widgets.service import visitor_scope
from c2c.widgets.tokens import call_token, read_call_token
from tests.support.widget_client import solve

KEY = b"k" * 32


@pytest.mark.parametrize("raw, origin", [
    ("https://Shop.Example", "https://shop.example"),
    ("https://shop.example/", "https://shop.example"),
    ("https://shop.example:443", "https://shop.example"),
    ("http://shop.example:80", "http://shop.example"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
])
def test_origins_are_spelled_as_browsers_send_them(raw: str, origin: str) -> None:
    assert normalise_origin(raw) == origin


@pytest.mark.parametrize("raw", ["shop.example", "ftp://shop.example", "https://",
                                 "https://shop.example/page", "https://u:p@shop.example",
                                 "https://shop.example?x=1", "https://shop.example:99999", ""])
def test_what_is_not_an_origin(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_origin(raw)


def test_origin_and_country_lists() -> None:
    assert parse_origins("https://a.example, https://A.example/,http://b.example:81") == (
        "https://a.example", "http://b.example:81")
    assert parse_countries("+44, 1,44") == ("44", "1")
    for bad in ("", "0", "1234", "x", "+"):
        with pytest.raises(ValueError):
            parse_countries(bad)
    with pytest.raises(ValueError):
        parse_origins(" , ")


def test_a_token_names_one_call_of_one_widget() -> None:
    call_id = str(uuid.uuid4())
    token = call_token(KEY, "wid_abc", call_id)
    assert len(token) < 80
    assert read_call_token(KEY, token) == ("wid_abc", call_id)
    assert read_call_token(b"another key" * 3, token) is None
    widget, _, rest = token.rpartition(".")
    assert read_call_token(KEY, f"wid_abd.{rest}") is None
    for garbage in ("", ".", "wid_abc.", "wid_abc.!!!!", "wid_abc." + "A" * 43, "é.x",
                    token + "A", "x" * 1000):
        assert read_call_token(KEY, garbage) is None, garbage


def test_a_challenge_is_bound_to_its_widget_and_key() -> None:
    challenges = Challenges(lambda: KEY, 300, 60)
    issued = challenges.issue("wid_a")
    answer = challenges.verify("wid_a", solve(issued))
    assert answer is not None and answer.expires_at >= time.time() + 59
    assert challenges.verify("wid_b", solve(issued)) is None
    assert Challenges(lambda: b"other" * 8, 300, 60).verify("wid_a", solve(issued)) is None


def test_a_challenge_expires() -> None:
    """Issued at a moment in the future (the library checks the expiry against the real clock,
    which it passes), so our own clock decides: good until its expiry, not after."""
    issued_at = time.time() + 3600
    issued = Challenges(lambda: KEY, 300, 60, clock=lambda: issued_at).issue("wid_a")
    solved = solve(issued)
    assert Challenges(lambda: KEY, 300, 60, clock=lambda: issued_at + 59).verify(
        "wid_a", solved) is not None
    assert Challenges(lambda: KEY, 300, 60, clock=lambda: issued_at + 61).verify(
        "wid_a", solved) is None


@pytest.mark.parametrize("address, scope", [
    ("203.0.113.7", "ip:203.0.113.7"),
    ("2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"),
    ("2001:db8:1:2::9", "ip:2001:db8:1:2::/64"),
    ("::ffff:203.0.113.7", "ip:203.0.113.7"),
    (None, "ip:unknown"),
    ("not an address", "ip:unknown"),
])
def test_the_visitor_address_a_limit_counts(address: str | None, scope: str) -> None:
    assert visitor_scope(address) == scope

"""The callback URL builder (pure): the customer's URL, with the result appended."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from c2c.domain.callback_url import build_callback_url


def row(**overrides):
    base = {
        "callback_url": "https://example.com/cb",
        "caller_number": "5552104427",
        "callee_number": "2071234567",
        "minutes": 2,
        "secret": "",
        "answered": True,
        "reason": None,
    }
    return {**base, **overrides}


def test_answered():
    assert build_callback_url(row()) == (
        "https://example.com/cb?caller_phone_number=5552104427&callee_phone_number=2071234567"
        "&minutes=2&secret=&answered=1&reason="
    )


def test_unanswered_carries_the_reason_and_zero_minutes():
    url = build_callback_url(row(answered=False, minutes=0, reason=3))
    assert url.endswith("&minutes=0&secret=&answered=0&reason=3")


def test_the_urls_own_query_is_kept_and_the_fragment_dropped():
    url = build_callback_url(row(callback_url="http://h:8080/p/a%20b?token=x%2By&z=#frag"))
    assert url.startswith("http://h:8080/p/a%20b?token=x%2By&z=&caller_phone_number=")
    assert "#" not in url


def test_an_empty_path_becomes_slash():
    assert build_callback_url(row(callback_url="http://h")).startswith("http://h/?caller_")


def test_the_secret_is_percent_encoded():
    url = build_callback_url(row(secret="a b&c=d+e#f%"))
    assert "&secret=a%20b%26c%3Dd%2Be%23f%25&" in url


@given(secret=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30))
def test_any_printable_secret_round_trips(secret):
    url = build_callback_url(row(callback_url="https://e.com/cb?a=1", secret=secret))
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    assert query[0] == ("a", "1")
    assert dict(query[1:])["secret"] == secret
    assert [name for name, _ in query[1:]] == [
        "caller_phone_number",
        "callee_phone_number",
        "minutes",
        "secret",
        "answered",
        "reason",
    ]

import string
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from c2c.calls.request import (
    KNOWN_PARAMETERS,
    ClickToCallRequest,
    api_key_from,
    first_coverage_failure,
    validate_clicktocall,
)
from c2c.errors import RequestRejected
from c2c.numbers import PhoneNumber

BASE = {
    "api_key": "k-123",
    "caller_country_code": "1",
    "caller_phone_number": "5552104427",
    "callee_country_code": "44",
    "callee_phone_number": "2071234567",
}


def params(**changes: str | None) -> list[tuple[str, str]]:
    """BASE with some values replaced (None removes the parameter)."""
    merged = {**BASE, **changes}
    return [(name, value) for name, value in merged.items() if value is not None]


def code_of(pairs) -> int:
    with pytest.raises(RequestRejected) as caught:
        validate_clicktocall(pairs)
    return caught.value.code


def test_minimal_request():
    req = validate_clicktocall(params())
    assert req == ClickToCallRequest(
        api_key="k-123",
        caller=PhoneNumber("1", "5552104427"),
        callee=PhoneNumber("44", "2071234567"),
        max_duration=None,
        caller_id="",
        callback_url=None,
        secret="",
    )


def test_full_request():
    req = validate_clicktocall(
        params(
            max_duration="1440",
            caller_id="0442071234567",
            callback_url="https://example.com/cb?order=7&x=%20y",
            secret="s3cr3t ~!@#$%^&*()_+{}|:<>?",
        )
    )
    assert req.max_duration == 1440
    assert req.caller_id == "0442071234567"
    assert req.callback_url == "https://example.com/cb?order=7&x=%20y"
    assert req.secret == "s3cr3t ~!@#$%^&*()_+{}|:<>?"


def test_repr_hides_api_key_and_secret():
    text = repr(validate_clicktocall(params(secret="hush-hush")))
    assert "k-123" not in text and "hush-hush" not in text


def test_blank_optional_fields_mean_defaults():
    req = validate_clicktocall(params(max_duration="", caller_id="", callback_url="", secret=""))
    assert (req.max_duration, req.caller_id, req.callback_url, req.secret) == (None, "", None, "")


def test_unknown_parameters_are_ignored_whatever_they_hold():
    pairs = params() + [
        ("utm_source", "é\x00\n"),
        ("API_KEY", "x"),
        ("caller_id ", "bad"),
        ("", ""),
    ]
    assert validate_clicktocall(pairs).caller_id == ""


@pytest.mark.parametrize("name", sorted(KNOWN_PARAMETERS - {"api_key"}))
def test_a_known_parameter_given_twice_is_malformed(name):
    value = {**BASE, "max_duration": "5", "caller_id": "5551230000", "secret": "x"}.get(
        name, "https://example.com/"
    )
    pairs = [p for p in params() if p[0] != name] + [(name, value), (name, value)]
    assert code_of(pairs) == 4
    assert code_of([p for p in params() if p[0] != name] + [(name, ""), (name, "")]) == 4


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (params(api_key=None), None),
        (params(api_key=""), None),
        (params() + [("api_key", "k-123")], None),  # repeated, even with the same value
        (params() + [("api_key", "")], None),
        (params(api_key="k\x00"), None),
        (params(api_key="ключ"), None),
        (params(api_key="k" * 257), None),
        ([("api_key", "k-123")], "k-123"),
        (params(api_key=" spaced key "), " spaced key "),
        ([("api_key", "k"), ["api_key", "x", "y"], 42], "k"),  # junk items are not keys
    ],
)
def test_api_key_from(pairs, expected):
    assert api_key_from(pairs) == expected


def test_missing_api_key_is_code_1_before_any_code_4():
    assert code_of(params(api_key=None, caller_phone_number="junk")) == 1
    assert code_of(params() + [("api_key", "again")]) == 1


BAD_VALUES = [
    # required phone fields
    ("caller_phone_number", None),
    ("caller_phone_number", ""),
    ("caller_country_code", None),
    ("caller_country_code", ""),
    ("callee_phone_number", None),
    ("callee_phone_number", ""),
    ("callee_country_code", None),
    ("callee_country_code", ""),
    # phone shapes
    ("caller_phone_number", "555210442"),
    ("caller_phone_number", "55521044270"),
    ("caller_phone_number", " 5552104427"),
    ("caller_phone_number", "555-210-4427"),
    ("caller_phone_number", "555210442٧"),
    ("caller_phone_number", "5552104427\x00"),
    ("callee_phone_number", "02071234567"),
    ("callee_phone_number", "1" * 15),
    ("caller_country_code", "0"),
    ("caller_country_code", "01"),
    ("caller_country_code", "+1"),
    ("caller_country_code", "1234"),
    ("callee_country_code", "4 4"),
    # max_duration
    ("max_duration", "0"),
    ("max_duration", "-1"),
    ("max_duration", "+5"),
    ("max_duration", "1.5"),
    ("max_duration", "1e3"),
    ("max_duration", "1441"),
    ("max_duration", "99999"),
    ("max_duration", " 5"),
    ("max_duration", "5 "),
    ("max_duration", "05"),
    ("max_duration", "0x10"),
    ("max_duration", "٥"),
    ("max_duration", "1_0"),
    # caller_id
    ("caller_id", "123"),
    ("caller_id", "1234567890123456"),
    ("caller_id", "5551,230000"),
    ("caller_id", "5551}230000"),
    ("caller_id", "{5551230000"),
    ("caller_id", "5551230000'"),
    ("caller_id", "+15551230000"),
    ("caller_id", "555 1230000"),
    ("caller_id", "${uuid}12345"),
    ("caller_id", "5551230000|1"),
    ("caller_id", "٥٥٥١٢٣٠٠٠٠"),
    # secret
    ("secret", "x" * 31),
    ("secret", "tab\there"),
    ("secret", "new\nline"),
    ("secret", "del\x7f"),
    ("secret", "café"),
    # callback_url
    ("callback_url", "example.com/cb"),
    ("callback_url", "//example.com/cb"),
    ("callback_url", "/cb"),
    ("callback_url", "ftp://example.com/cb"),
    ("callback_url", "javascript:alert(1)"),
    ("callback_url", "http:/example.com"),
    ("callback_url", "http://"),
    ("callback_url", "http:///path"),
    ("callback_url", "https://example.com/" + "a" * 2029),  # 2049 characters
    ("callback_url", "https://example.com/a b"),
    ("callback_url", "https://example.com/\x00"),
    ("callback_url", "https://example.com/\r\nX-Injected: 1"),
    ("callback_url", "https://exämple.com/"),
    ("callback_url", "https://user:pw@example.com/cb"),
    ("callback_url", "https://user@example.com/cb"),
    ("callback_url", "https://evil.com\\@good.com/"),
    ("callback_url", "https://example.com/cb#frag"),
    ("callback_url", "https://example.com:99999/"),
    ("callback_url", "https://example.com:8o/"),
    ("callback_url", "https://[::1/"),
    ("callback_url", "https://[not:an:ip]/"),
    ("callback_url", "https://exa_mple..com/"),
    ("callback_url", "https://%65xample.com/"),
    ("callback_url", "https://example.com/{x}"),
    ("callback_url", "https://example.com/%zz"),
    ("callback_url", "https://-example.com/"),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_values_are_malformed(name, value):
    assert code_of(params(**{name: value})) == 4


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "HTTPS://EXAMPLE.COM/CB",
        "https://example.com:8443/cb?a=1&b=%2F",
        "https://example.com./cb",
        "http://127.0.0.1:8080/cb",  # refused or allowed at delivery, by the address guard
        "http://[2001:db8::1]:8080/cb",
        "https://my_host.example.com/cb",
        "https://example.com/" + "a" * 2028,  # exactly 2048 characters
        "https://example.com/cb?x=(1)&y=a,b;c=d!e*f'g~h",
    ],
)
def test_good_callback_urls(url):
    assert validate_clicktocall(params(callback_url=url)).callback_url == url


@pytest.mark.parametrize(
    "secret", ["", " ", "x" * 30, string.punctuation[:30], string.punctuation[2:], " a b "]
)
def test_good_secrets(secret):
    assert validate_clicktocall(params(secret=secret)).secret == secret


@pytest.mark.parametrize(("raw", "minutes"), [("1", 1), ("9", 9), ("10", 10), ("1440", 1440)])
def test_good_max_durations(raw, minutes):
    assert validate_clicktocall(params(max_duration=raw)).max_duration == minutes


@pytest.mark.parametrize("caller_id", ["1234", "000000000000000", "15551230000"])
def test_good_caller_ids(caller_id):
    assert validate_clicktocall(params(caller_id=caller_id)).caller_id == caller_id


@pytest.mark.parametrize(
    "pairs",
    [
        params() + [("max_duration", 5)],  # not text
        params() + [("secret", None)],
        params() + [("caller_id", b"5551230000")],
        params() + [["secret", "x"]],  # not a pair
        params() + [("secret",)],
        params() + [("secret", "x", "y")],
    ],
)
def test_wrong_types_are_malformed(pairs):
    assert code_of(pairs) == 4


def test_a_query_string_round_trip():
    query = urlencode({**BASE, "max_duration": "3", "callback_url": "https://e.com/cb?a=1"})
    req = validate_clicktocall(parse_qsl(query, keep_blank_values=True))
    assert (req.max_duration, req.callback_url) == (3, "https://e.com/cb?a=1")


@settings(max_examples=400)
@given(st.text())
@example(
    "api_key=k&caller_country_code=1&caller_phone_number=5552104427"
    "&callee_country_code=1&callee_phone_number=5552104428"
)
@example("api_key=k&caller_country_code=1&caller_phone_number=555210442%FF&x=1")
@example(
    "api_key=k&caller_country_code=1&caller_phone_number=%D9%A3%D9%A3%D9%A3%D9%A3%D9%A3%D9%A3"
    "%D9%A3%D9%A3%D9%A3%D9%A3&callee_country_code=1&callee_phone_number=5552104428"
)
def test_arbitrary_query_strings_only_ever_raise_request_rejected(query):
    # as c2c.api.params decodes them: undecodable bytes survive as lone surrogates
    decoded = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    try:
        req = validate_clicktocall(decoded)
    except RequestRejected as exc:
        assert exc.code in (1, 4)
        return
    for number in (req.caller, req.callee):
        assert number.e164[1:].isascii() and number.e164[1:].isdigit()
    assert req.caller_id == "" or (req.caller_id.isascii() and req.caller_id.isdigit())


FIELD_VALUE = st.one_of(
    st.text(alphabet="0123456789", max_size=16),
    st.text(max_size=12),
    st.sampled_from(["", "1", "44", "5552104427", "2071234567", "1440", "0", "https://e.com/"]),
)


@settings(max_examples=400)
@given(st.lists(st.tuples(st.sampled_from(sorted(KNOWN_PARAMETERS)), FIELD_VALUE), max_size=12))
def test_arbitrary_known_parameters_only_ever_raise_request_rejected(pairs):
    try:
        req = validate_clicktocall(pairs)
    except RequestRejected as exc:
        assert exc.code in (1, 4)
        return
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names))  # nothing repeated got through
    for number in (req.caller, req.callee):
        assert number.e164[1:].isascii() and number.e164[1:].isdigit()


def _coverage(countries: set[str], denied_prefixes: set[tuple[str, str]]):
    def country_supported(cc: str) -> bool:
        return cc in countries

    def area_supported(cc: str, national: str) -> bool:
        return not any(cc == c and national.startswith(p) for c, p in denied_prefixes)

    return country_supported, area_supported


@pytest.mark.parametrize(
    ("caller", "callee", "countries", "denied", "expected"),
    [
        (("1", "5552104427"), ("44", "2071234567"), {"1", "44"}, set(), None),
        # every check fails: the caller's country decides
        (("1", "9005550100"), ("49", "3012345"), {"44"}, {("1", "900"), ("49", "30")}, 8),
        (("1", "9005550100"), ("49", "3012345"), {"1"}, {("1", "900"), ("49", "30")}, 7),
        (("1", "5552104427"), ("49", "3012345"), {"1"}, {("49", "30")}, 10),
        (("1", "5552104427"), ("1", "9765550100"), {"1"}, {("1", "976")}, 9),
        (("1", "9005550100"), ("1", "9765550100"), {"1"}, {("1", "900"), ("1", "976")}, 7),
        (("44", "2071234567"), ("1", "9765550100"), {"1"}, set(), 8),
    ],
)
def test_first_coverage_failure_order(caller, callee, countries, denied, expected):
    req = validate_clicktocall(
        params(
            caller_country_code=caller[0],
            caller_phone_number=caller[1],
            callee_country_code=callee[0],
            callee_phone_number=callee[1],
        )
    )
    assert first_coverage_failure(req, *_coverage(countries, denied)) == expected


def test_coverage_checks_stop_at_the_first_failure():
    asked = []

    def country_supported(cc):
        asked.append(("country", cc))
        return False

    req = validate_clicktocall(params())
    assert first_coverage_failure(req, country_supported, lambda cc, n: asked.append(n)) == 8
    assert asked == [("country", "1")]


# -- progress webhooks: status_callback_url and status_events --

PROGRESS_URL = "https://example.com/progress?site=7"


@pytest.mark.parametrize(
    ("raw", "events"),
    [
        ("", ("completed",)),  # blank: the default
        ("completed", ("completed",)),
        ("ringing", ("ringing",)),
        ("completed,bridged,answered,ringing", ("ringing", "answered", "bridged", "completed")),
        ("bridged,ringing", ("ringing", "bridged")),
    ],
)
def test_status_events_with_a_url_come_in_event_order(raw, events):
    req = validate_clicktocall(params(status_callback_url=PROGRESS_URL, status_events=raw))
    assert req.status_callback_url == PROGRESS_URL
    assert req.status_events == events
    assert req.callback_url is None  # independent of the final callback


def test_no_status_callback_url_means_no_webhooks():
    req = validate_clicktocall(params(status_callback_url="", status_events=""))
    assert (req.status_callback_url, req.status_events) == (None, ())
    assert validate_clicktocall(params()).status_events == ()


@pytest.mark.parametrize("raw", ["completed", "ringing,answered", "nonsense"])
def test_status_events_without_a_status_callback_url_are_malformed(raw):
    assert code_of(params(status_events=raw)) == 4
    assert code_of(params(status_events=raw, status_callback_url="")) == 4
    # The final callback's URL does not count.
    assert code_of(params(status_events=raw, callback_url="https://example.com/cb")) == 4


@pytest.mark.parametrize(
    "raw",
    [
        "Ringing",
        "RINGING",
        "ringing ",
        " ringing",
        "ringing, answered",
        "ringing,,answered",
        "ringing,",
        ",ringing",
        ",",
        "ringing,ringing",
        "answered,bridged,answered",
        "ring",
        "hangup",
        "ringing;answered",
        "ringing answered",
        "completed\x00",
        "répondu",
        "ringing,answered,bridged,completed,ringing",
    ],
)
def test_bad_status_events_are_malformed(raw):
    assert code_of(params(status_callback_url=PROGRESS_URL, status_events=raw)) == 4


@pytest.mark.parametrize("value", [v for n, v in BAD_VALUES if n == "callback_url"])
def test_status_callback_url_follows_the_callback_url_rules(value):
    assert code_of(params(status_callback_url=value)) == 4
    assert code_of(params(status_callback_url=value, status_events="ringing")) == 4


def test_a_bad_status_callback_url_is_named_in_the_message():
    with pytest.raises(RequestRejected) as caught:
        validate_clicktocall(params(status_callback_url="ftp://example.com/x"))
    assert "status_callback_url" in caught.value.message


def test_repr_names_the_events_but_not_the_url():
    text = repr(validate_clicktocall(params(status_callback_url=PROGRESS_URL,
                                            status_events="answered,ringing")))
    assert "status_events=ringing,answered" in text and "example.com" not in text

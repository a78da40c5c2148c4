"""The public API contract (DESIGN.md sections 1 and 2) through falcon's TestClient, on a real
store (SQLite and MariaDB) and a real in-process simulator, so that accepted calls are originated.

Every rejection is checked to leave nothing behind: the calls, flood and account rows (and the
ledger and callback counts) are the same after it as before.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import quote, urlencode

import gevent
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from c2c.numbers import PhoneNumber
from c2c.store import NewCall, Store
from tests.support.app_harness import AppHarness, fresh_number
from tests.support.originate_model import parse_originate
from tests.support.processes import free_port


@pytest.fixture
def h(store_url: str) -> Iterator[AppHarness]:
    with AppHarness(store_url) as harness:
        yield harness


@pytest.fixture
def rich(h: AppHarness) -> str:
    return h.account(credits=100_000, name="rich").api_key


def valid(api_key: str, /, **overrides: str) -> dict[str, str]:
    """A request that is accepted (0) unless overridden: fresh numbers, every field given."""
    params = {
        "api_key": api_key,
        **AppHarness.numbers(),
        "max_duration": "5",
        "caller_id": "5551234",
        "callback_url": "http://127.0.0.1:9/cb?order=1",
        "secret": "s3cret",
    }
    params.update(overrides)
    return params


def assert_nothing_left(h: AppHarness, before, after=None) -> None:
    after = after if after is not None else h.snapshot()
    assert after == before


# ------------------------------------------------------------------------------------------
# the shape of an answer


def test_accepted_request_answers_bare_zero_with_the_call_id(h, rich):
    before = h.snapshot()
    result = h.get(valid(rich))
    assert result.status_code == 200
    assert result.content == b"0"
    assert result.headers["content-type"] == "text/plain"
    call_id = result.headers["x-c2c-call-id"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", call_id)
    call = h.store.calls.get(call_id)
    assert call is not None and call["switch"] == h.connection.name
    after = h.snapshot()
    assert len(after.calls) == len(before.calls) + 1
    assert len(after.flood) == len(before.flood) + 2
    # The originate went out with our call id on both legs.
    (command,) = h.sent
    assert command.count(f"c2c_call_id={call_id}") == 2


def test_get_with_and_without_the_trailing_slash_and_post_with_a_form(h, rich):
    for path in ("/api/clicktocall/", "/api/clicktocall"):
        assert h.code(h.get(valid(rich), path=path)) == 0
        assert h.code(h.get({"api_key": "nope"}, path=path)) == 1
    assert h.code(h.post(valid(rich))) == 0
    assert h.code(h.post({"api_key": "nope"})) == 1
    assert h.code(h.post(valid(rich, max_duration="0"))) == 4
    # Query string and form body are one list of parameters: a name in both is a repeat.
    params = valid(rich)
    secret = params.pop("secret")
    result = h.request(
        "POST",
        query_string=urlencode({"secret": secret}),
        body=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert h.code(result) == 0
    result = h.request(
        "POST",
        query_string=urlencode({"secret": "x"}),
        body=urlencode(valid(rich)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert h.code(result) == 4
    # A form body over 16 KiB cannot be a request: 4, not a 413.
    big = urlencode({**valid(rich), "padding": "x" * 20_000})
    result = h.request(
        "POST", body=big, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert h.code(result) == 4


def test_plain_answers_ignore_accept_headers_other_than_json(h, rich):
    for accept in ("*/*", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "text/plain"):
        result = h.get(valid(rich), headers={"Accept": accept})
        assert h.code(result) == 0


def test_json_answers(h, rich):
    headers = {"Accept": "application/json"}
    result = h.get(valid(rich), headers=headers)
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/json"
    payload = result.json
    assert set(payload) == {"code", "message", "call_id"}
    assert payload["code"] == 0 and payload["message"]
    assert payload["call_id"] == result.headers["x-c2c-call-id"]

    disabled = h.account(credits=5, enabled=False).api_key
    broke = h.account(credits=0).api_key
    prem = {"caller_phone_number": "9005550123"}
    prem_callee = {"callee_phone_number": "9005550124"}
    fr = {"caller_country_code": "33", "caller_phone_number": "612345678"}
    fr_callee = {"callee_country_code": "33", "callee_phone_number": "612345679"}
    h.store.dnc.add([12125550111])
    flooded = valid(rich)
    assert h.code(h.get(flooded)) == 0
    cases = [
        (1, 401, {"api_key": "nope"}),
        (5, 403, valid(disabled)),
        (4, 400, valid(rich, max_duration="0")),
        (8, 422, valid(rich, **fr)),
        (7, 422, valid(rich, **prem)),
        (10, 422, valid(rich, **fr_callee)),
        (9, 422, valid(rich, **prem_callee)),
        (3, 403, valid(rich, caller_phone_number="2125550111")),
        (2, 402, valid(broke)),
        (6, 429, valid(rich, callee_phone_number=flooded["callee_phone_number"])),
    ]
    for code, status, params in cases:
        before = h.snapshot()
        result = h.get(params, headers=headers)
        assert result.status_code == status, (code, result.status, result.text)
        assert result.json["code"] == code
        assert result.json["message"]
        assert result.json.get("call_id") is None
        assert set(result.json) <= {"code", "message", "call_id"}
        assert "x-c2c-call-id" not in result.headers
        assert_nothing_left(h, before)


# ------------------------------------------------------------------------------------------
# the check order: 1, 5, 4, 8, 7, 10, 9, 3, 2, 6


FR = ("33", "612345678")  # France, not covered; area 6 denied as well
FR2 = ("33", "612345679")
PREM = ("1", "9005550123")  # NANP premium rate: area denied
PREM2 = ("1", "9005550124")
DNCF = ("1", "2125550111")  # on the Do-Not-Call list and flood-stamped
DNCF2 = ("1", "2125550112")
FLOOD = ("1", "2125550121")  # flood-stamped only
FLOOD2 = ("1", "2125550122")


def numbers(caller: tuple[str, str], callee: tuple[str, str]) -> dict[str, str]:
    return {
        "caller_country_code": caller[0],
        "caller_phone_number": caller[1],
        "callee_country_code": callee[0],
        "callee_phone_number": callee[1],
    }


def stamp_flood(
    store: Store, account_id: int, caller: tuple[str, str], callee: tuple[str, str]
) -> None:
    """Flood-stamp two numbers through the accept transaction itself (it checks no coverage)."""
    call = NewCall(
        id=str(uuid.uuid4()),
        account_id=account_id,
        caller=PhoneNumber(*caller),
        callee=PhoneNumber(*callee),
        caller_id=caller[1],
        callback_url=None,
        secret="",
        max_duration=1,
        switch="elsewhere:8021",
        job_uuid=str(uuid.uuid4()),
        caller_uuid=str(uuid.uuid4()),
        callee_uuid=str(uuid.uuid4()),
    )
    store.accept_call(
        account_id,
        call,
        flood_seconds=60,
        max_call_minutes=1,
        ring_timeout=30,
        settle_grace=120,
        now=time.time(),
    )


def test_check_order_first_failure_decides(h):
    """Each request fails its check and every later one; the earliest check decides."""
    rich = h.account(credits=100_000, name="rich")
    broke = h.account(credits=0, name="broke")
    disabled = h.account(credits=0, enabled=False, name="disabled")
    h.store.coverage.deny_area("33", "6")
    for caller, callee in ((FR, FR2), (PREM, PREM2), (DNCF, DNCF2), (FLOOD, FLOOD2)):
        stamp_flood(h.store, rich.id, caller, callee)
    h.store.dnc.add(int(cc + n) for cc, n in (FR, FR2, PREM, PREM2, DNCF, DNCF2))
    malformed = {"max_duration": "0"}
    ladder = [
        (1, {"api_key": "no-such-key", **malformed, **numbers(FR, FR2)}),
        (1, {**malformed, **numbers(FR, FR2)}),  # no api_key at all
        (5, {"api_key": disabled.api_key, **malformed, **numbers(FR, FR2)}),
        (4, {"api_key": broke.api_key, **malformed, **numbers(FR, FR2)}),
        (8, {"api_key": broke.api_key, **numbers(FR, FR2)}),
        (7, {"api_key": broke.api_key, **numbers(PREM, FR2)}),
        (10, {"api_key": broke.api_key, **numbers(DNCF, FR2)}),
        (9, {"api_key": broke.api_key, **numbers(DNCF, PREM2)}),
        (3, {"api_key": broke.api_key, **numbers(DNCF, DNCF2)}),
        (2, {"api_key": broke.api_key, **numbers(FLOOD, FLOOD2)}),
        (6, {"api_key": rich.api_key, **numbers(FLOOD, FLOOD2)}),
    ]
    got = []
    for expected, params in ladder:
        before = h.snapshot()
        got.append((expected, h.code(h.get(params))))
        assert_nothing_left(h, before)
    assert [code for _, code in got] == [expected for expected, _ in got]
    # And with every check passing, the same account is accepted.
    assert h.code(h.get({"api_key": rich.api_key, **h.numbers()})) == 0


# ------------------------------------------------------------------------------------------
# bad input: 4 (or 1 for the key), never a 500


def encoded(params: list[tuple[str, str]]) -> str:
    return urlencode(params, quote_via=quote)


def without(params: dict[str, str], name: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in params.items() if k != name]


def raw_query(params: dict[str, str], name: str, raw_value: str) -> str:
    """The query with one parameter's value written raw (not percent-encoded)."""
    return "&".join(
        f"{k}={raw_value}" if k == name else f"{k}={quote(v, safe='')}" for k, v in params.items()
    )


def bad_input_cases(key: str) -> list[tuple[str, Callable[[], str], int]]:
    """(label, a builder of the query string, expected code). Each build has fresh numbers, so
    the cases that are accepted never trip flood protection."""
    cases: list[tuple[str, Callable[[], str], int]] = []

    def add(label: str, expected: int, **overrides: str) -> None:
        cases.append((label, lambda: encoded(list(valid(key, **overrides).items())), expected))

    def add_raw(label: str, expected: int, name: str, raw_value: str) -> None:
        cases.append((label, lambda: raw_query(valid(key), name, raw_value), expected))

    def add_pairs(
        label: str, expected: int, pairs: Callable[[dict[str, str]], list[tuple[str, str]]]
    ) -> None:
        cases.append((label, lambda: encoded(pairs(valid(key))), expected))

    def add_suffix(label: str, expected: int, suffix: str) -> None:
        cases.append((label, lambda: encoded(list(valid(key).items())) + suffix, expected))

    # the key
    add_pairs("api_key missing", 1, lambda base: without(base, "api_key"))
    add("api_key empty", 1, api_key="")
    add("api_key unknown", 1, api_key="A" * 32)
    add("api_key over-long", 1, api_key=key + "x" * 300)
    add_raw("api_key non-ASCII raw", 1, "api_key", key + "\u00e9")
    add_raw("api_key invalid UTF-8", 1, "api_key", key + "%FF")
    add_pairs(
        "api_key repeated (ambiguous: refused as 1)",
        1,
        lambda base: [("api_key", key), *base.items()],
    )
    # numbers: wrong types, shapes, lengths
    for value in (
        "abc",
        "+2125550123",
        "212-555-0123",
        "212 555 0123",
        "2.125550123e9",
        "true",
        "[]",
        "null",
        "-2125550123",
        "0x7e8",
        "21255501234",
        "212555012",
        "1" * 15,
        "",
        " 2125550123",
        "2125550123 ",
    ):
        add(f"caller_phone_number={value!r}", 4, caller_phone_number=value)
    add("callee_phone_number letters", 4, callee_phone_number="abcdefghij")
    add("callee_phone_number empty", 4, callee_phone_number="")
    for value in ("", "0", "01", "+1", "1234", "1.0", "-1", "x"):
        add(f"caller_country_code={value!r}", 4, caller_country_code=value)
    add("callee_country_code empty", 4, callee_country_code="")
    add_pairs("callee_phone_number missing", 4, lambda base: without(base, "callee_phone_number"))
    add_pairs("caller_country_code missing", 4, lambda base: without(base, "caller_country_code"))
    add_raw(
        "Arabic-Indic digits (percent-encoded)",
        4,
        "caller_phone_number",
        quote("\u0662\u0661\u0662\u0665\u0665\u0665\u0660\u0661\u0662\u0663"),
    )
    add_raw(
        "fullwidth digits (percent-encoded)",
        4,
        "caller_phone_number",
        quote("\uff12\uff11\uff12\uff15\uff15\uff15\uff10\uff11\uff12\uff13"),
    )
    # repeated parameters, even with the same value
    for name in (
        "caller_phone_number",
        "callee_country_code",
        "max_duration",
        "secret",
        "caller_id",
        "callback_url",
    ):
        add_pairs(
            f"{name} repeated", 4, lambda base, name=name: [*base.items(), (name, base[name])]
        )
    add_pairs("secret repeated, blank first", 4, lambda base: [("secret", ""), *base.items()])
    # unknown parameters are ignored, whatever they hold
    add_pairs("unknown parameter", 0, lambda base: [*base.items(), ("foo", "bar")])
    add_pairs(
        "unknown parameter repeated", 0, lambda base: [*base.items(), ("foo", "1"), ("foo", "2")]
    )
    add_pairs(
        "unknown parameter non-ASCII", 0, lambda base: [*base.items(), ("\u00fcber", "\u2603")]
    )
    add_suffix("unknown parameter invalid UTF-8", 0, "&x=%FF%FE")
    add_suffix("unknown parameter raw control characters", 0, "&x=\x01\x7f")
    add_suffix("unknown parameter raw non-ASCII", 0, "&x=caf\u00e9")
    add_pairs("unknown parameter over-long", 0, lambda base: [*base.items(), ("pad", "x" * 10_000)])
    add_pairs("near-miss name is unknown", 0, lambda base: [*base.items(), ("Secret", "x" * 99)])
    # empty optional values are allowed, and so is leaving them out
    for name in ("max_duration", "caller_id", "callback_url", "secret"):
        add(f"{name} empty", 0, **{name: ""})
        add_pairs(f"{name} absent", 0, lambda base, name=name: without(base, name))
    # max_duration
    for value in (
        "0",
        "-1",
        "1.5",
        "99999",
        "1441",
        "01",
        " 5",
        "5 ",
        "+5",
        "1e3",
        "five",
        "\u0665",
    ):
        add(f"max_duration={value!r}", 4, max_duration=value)
    for value in ("1", "1440", "59"):
        add(f"max_duration={value!r}", 0, max_duration=value)
    # caller_id
    for value in (
        "123",
        "1" * 16,
        "5551,234",
        "{5551234}",
        "5551234}",
        "${x}",
        "555 1234",
        "+5551234",
        "5551234'",
        "555|1234",
        "abcd",
    ):
        add(f"caller_id={value!r}", 4, caller_id=value)
    for value in ("1234", "0123", "1" * 15):
        add(f"caller_id={value!r}", 0, caller_id=value)
    # secret: at most 30 printable ASCII characters
    add("secret of 31", 4, secret="s" * 31)
    add("secret of 30", 0, secret="s" * 30)
    add("secret punctuation 1", 0, secret=" !\"#$%&'()*+,-./:;<=>?")
    add("secret punctuation 2", 0, secret="@[\\]^_`{|}~")
    add("secret of spaces", 0, secret="   ")
    add_raw("secret non-ASCII raw", 4, "secret", "caf\u00e9")
    add_raw("secret non-ASCII raw UTF-8 bytes", 4, "secret", "caf\u00e9".encode().decode("latin-1"))
    add_raw("secret non-ASCII percent-encoded", 4, "secret", "caf%C3%A9")
    add_raw("secret invalid UTF-8 percent bytes", 4, "secret", "%FF%FE")
    add_raw("secret lone continuation byte", 4, "secret", "a%80")
    for char in ("%00", "%0A", "%0D", "%09", "%7F", "%1B"):
        add_raw(f"secret control {char}", 4, "secret", f"a{char}b")
    add_raw("secret raw tab", 4, "secret", "a\tb")
    # callback_url
    add("callback_url 2048", 0, callback_url="http://127.0.0.1:9/" + "a" * (2048 - 19))
    add("callback_url 2049", 4, callback_url="http://127.0.0.1:9/" + "a" * (2049 - 19))
    for value in (
        "ftp://127.0.0.1/cb",
        "127.0.0.1/cb",
        "http://",
        "javascript:alert(1)",
        "http://user:pw@127.0.0.1/cb",
        "http://127.0.0.1/a b",
        "http://127.0.0.1/#x",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1/\u00e9",
        "//127.0.0.1/cb",
    ):
        add(f"callback_url={value!r}", 4, callback_url=value)
    return cases


def test_bad_input_table(h, rich):
    mismatches = []
    for label, build, expected in bad_input_cases(rich):
        before = h.snapshot()
        result = h.request("GET", query_string=build())
        if result.status_code != 200:
            mismatches.append((label, f"HTTP {result.status}", result.text[:200]))
            continue
        code = h.code(result)
        if code != expected:
            mismatches.append((label, code, expected))
        if code != 0 and h.snapshot() != before:
            mismatches.append((label, "left something behind", code))
    assert mismatches == []


def test_bad_input_in_a_form_body(h, rich):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for label, build, expected in bad_input_cases(rich)[::5]:
        result = h.request("POST", body=build().encode("latin-1"), headers=form)
        assert h.code(result) == expected, label


def test_huge_query_string_is_4_not_an_error(h, rich):
    query = encoded(list(valid(rich).items())) + "&caller_id=" + "9" * 200_000
    assert h.code(h.request("GET", query_string=query)) == 4


# ------------------------------------------------------------------------------------------
# any query at all: HTTP 200, one of the codes, and a new call row only for a 0

NAMES = [
    "api_key",
    "caller_phone_number",
    "caller_country_code",
    "callee_phone_number",
    "callee_country_code",
    "max_duration",
    "caller_id",
    "callback_url",
    "secret",
]


def nanp(prefix: str) -> st.SearchStrategy[str]:
    return st.integers(0, 9999).map(lambda n: f"{prefix}{n:04d}")


# Values that are accepted (with "1" as country code), and a few that fail a later check.
VALUES: dict[str, st.SearchStrategy[str]] = {
    "caller_phone_number": nanp("646555") | st.sampled_from(["9005550123", "612345678"]),
    "caller_country_code": st.sampled_from(["1"] * 6 + ["44", "33"]),
    "callee_phone_number": nanp("718555") | st.just("9765550123"),
    "callee_country_code": st.sampled_from(["1"] * 6 + ["33"]),
    "max_duration": st.sampled_from(["", "1", "30", "1440"]),
    "caller_id": st.sampled_from(["", "5551234", "0044123456789"]),
    "callback_url": st.sampled_from(["", "http://127.0.0.1:9/cb", "https://127.0.0.1/x?y=1"]),
    "secret": st.sampled_from(["", "s", "s" * 30, "a b c"]),
}
ANYTHING = st.text(max_size=30) | st.binary(max_size=30).map(lambda b: b.decode("latin-1"))


@st.composite
def queries(draw: st.DrawFn, api_key: str) -> str:
    """A plausible request (so that some are accepted), mutated 0-3 times: a field dropped,
    doubled or replaced by anything, an unknown one added; written encoded or raw; sometimes
    with arbitrary bytes on the end."""
    key = draw(st.sampled_from([api_key] * 8 + ["", "nope"]))
    pairs = [("api_key", key)] + [(name, draw(VALUES[name])) for name in NAMES[1:]]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["drop", "double", "replace", "unknown"]))
        if kind == "unknown" or not pairs:
            pairs.append((draw(st.text(max_size=10)), draw(ANYTHING)))
            continue
        index = draw(st.integers(0, len(pairs) - 1))
        if kind == "drop":
            del pairs[index]
        elif kind == "double":
            pairs.append(pairs[index])
        else:
            pairs[index] = (pairs[index][0], draw(ANYTHING))
    if draw(st.booleans()):
        pairs = draw(st.permutations(pairs))
    if draw(st.booleans()):
        query = urlencode(pairs)
    else:
        # Written raw: the bytes a client sends reach the app as latin-1 text (PEP 3333).
        query = "&".join(f"{n}={v}" for n, v in pairs).encode("utf-8", "surrogatepass")
        query = query.decode("latin-1")
    if draw(st.integers(0, 3)) == 0:
        query += draw(st.binary(max_size=40)).decode("latin-1")
    return query


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_any_query_answers_200_with_a_code_and_leaves_a_row_only_for_0(h, rich, method):
    codes_seen: set[int] = set()

    @settings(
        max_examples=120,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(query=queries(rich))
    def check(query: str) -> None:
        before = h.snapshot()
        if method == "GET":
            result = h.request("GET", query_string=query)
        else:
            result = h.request(
                "POST",
                body=query.encode("latin-1"),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        code = h.code(result)  # asserts HTTP 200, text/plain, bare digits in 0..11
        codes_seen.add(code)
        after = h.snapshot()
        if code == 0:
            assert len(after.calls) == len(before.calls) + 1
        else:
            assert after == before

    check()
    assert codes_seen >= {0, 1, 4}, codes_seen


# ------------------------------------------------------------------------------------------
# the rules behind the codes


def test_reservation_is_the_least_of_limit_cap_and_available(h):
    def placed(api_key: str, **params: str) -> dict:
        result = h.get({"api_key": api_key, **h.numbers(), **params})
        assert h.code(result) == 0
        return h.store.calls.get(result.headers["x-c2c-call-id"])

    ten = h.account(credits=10)
    call = placed(ten.api_key)  # no max_duration: min(cap 120, available 10)
    assert call["max_minutes"] == 10
    assert "sched_hangup +599 ALLOTTED_TIMEOUT" in h.sent[-1]
    assert h.store.accounts.find(ten.id).reserved == 10
    assert h.place(ten.api_key) == 2  # every minute is reserved: no credit left

    hundred = h.account(credits=100)
    assert placed(hundred.api_key, max_duration="3")["max_minutes"] == 3
    assert "sched_hangup +179 ALLOTTED_TIMEOUT" in h.sent[-1]
    assert placed(hundred.api_key, max_duration="500")["max_minutes"] == 97  # the rest
    assert h.store.accounts.find(hundred.id).reserved == 100
    assert h.place(hundred.api_key) == 2

    big = h.account(credits=10_000)
    assert placed(big.api_key)["max_minutes"] == 120  # the operator's cap
    assert placed(big.api_key, max_duration="1440")["max_minutes"] == 120
    assert placed(big.api_key, max_duration="1")["max_minutes"] == 1
    assert "sched_hangup +59 ALLOTTED_TIMEOUT" in h.sent[-1]
    assert h.store.accounts.find(big.id).reserved == 241


def test_operator_cap_bounds_the_reservation(store_url):
    with AppHarness(store_url, max_call_minutes=5) as h:
        acct = h.account(credits=100)
        result = h.get({"api_key": acct.api_key, **h.numbers()})
        assert h.code(result) == 0
        assert h.store.calls.get(result.headers["x-c2c-call-id"])["max_minutes"] == 5
        assert h.store.accounts.find(acct.id).reserved == 5


def test_credits_exhausted_is_2_and_leaves_nothing(h):
    one = h.account(credits=1)
    assert h.place(one.api_key) == 0
    before = h.snapshot()
    assert h.place(one.api_key) == 2
    assert_nothing_left(h, before)
    zero = h.account(credits=0)
    assert h.place(zero.api_key) == 2
    # credits below what is reserved (an operator took credits back): still 2, never negative
    h.store.accounts.add_credits(one.id, -1)
    assert h.place(one.api_key) == 2
    assert h.store.accounts.find(one.id).credits == 0


def test_do_not_call_either_number_is_3(h, rich):
    h.store.dnc.add([12125550188, 442071234567])
    cases = [
        {"caller_phone_number": "2125550188"},
        {"callee_phone_number": "2125550188"},
        {"callee_country_code": "44", "callee_phone_number": "2071234567"},
    ]
    for overrides in cases:
        before = h.snapshot()
        assert h.code(h.get(valid(rich, **overrides))) == 3, overrides
        assert_nothing_left(h, before)
    # The same national digits in another country are another number.
    assert (
        h.code(h.get(valid(rich, callee_country_code="44", callee_phone_number="2125550188"))) == 0
    )
    h.store.dnc.remove([12125550188])
    assert h.code(h.get(valid(rich, caller_phone_number="2125550188"))) == 0


def test_coverage_premium_rate_and_unlisted_countries(h, rich):
    cases = [
        (7, {"caller_phone_number": "9005550123"}),
        (7, {"caller_phone_number": "9765550123"}),
        (9, {"callee_phone_number": "9005550123"}),
        (9, {"callee_phone_number": "9765550123"}),
        (8, {"caller_country_code": "33", "caller_phone_number": "612345678"}),
        (10, {"callee_country_code": "33", "callee_phone_number": "612345678"}),
        (8, {"caller_country_code": "49", "caller_phone_number": "30123456"}),
    ]
    for code, overrides in cases:
        before = h.snapshot()
        assert h.code(h.get(valid(rich, **overrides))) == code, overrides
        assert_nothing_left(h, before)
    # The UK is covered by default.
    assert (
        h.code(h.get(valid(rich, callee_country_code="44", callee_phone_number="7700900123"))) == 0
    )


def test_a_country_allowed_elsewhere_is_covered_after_the_cache_ttl(store_url):
    ttl = 1.0
    with AppHarness(store_url, coverage_cache_seconds=ttl) as h:
        key = h.account(credits=100).api_key
        france = {"callee_country_code": "33", "callee_phone_number": "612345678"}
        assert h.code(h.get(valid(key, **france))) == 10
        operator = Store.from_url(store_url)  # another process's store: no shared cache
        try:
            operator.coverage.allow_country("33")
        finally:
            operator.dispose()
        allowed_at = time.monotonic()
        assert h.code(h.get(valid(key, **france))) == 10  # still the cached rules
        gevent.sleep(max(0.0, ttl + 0.1 - (time.monotonic() - allowed_at)))
        assert h.code(h.get(valid(key, **france))) == 0
        assert (
            h.code(h.get(valid(key, caller_country_code="33", caller_phone_number="612345679")))
            == 0
        )


def test_flood_protection_for_either_number_in_either_role(h, rich):
    a, b = fresh_number(), fresh_number()
    assert h.place(rich, caller_phone_number=a, callee_phone_number=b) == 0
    for caller, callee in ((a, None), (None, a), (b, None), (None, b), (b, a), (a, b)):
        before = h.snapshot()
        code = h.place(
            rich,
            caller_phone_number=caller or fresh_number(),
            callee_phone_number=callee or fresh_number(),
        )
        assert code == 6, (caller, callee)
        assert_nothing_left(h, before)
    # Another account is no way around it.
    other = h.account(credits=100).api_key
    assert h.place(other, caller_phone_number=a) == 6
    # The same digits in another country are another number.
    assert h.place(rich, callee_country_code="44", callee_phone_number="7700900" + a[-3:]) == 0


def test_flood_window_expires(store_url):
    with AppHarness(store_url, flood_seconds=1) as h:
        key = h.account(credits=1000).api_key
        a, b = fresh_number(), fresh_number()
        assert h.place(key, caller_phone_number=a, callee_phone_number=b) == 0
        stamped = time.time()
        assert h.place(key, caller_phone_number=b) == 6
        gevent.sleep(max(0.0, 1.05 - (time.time() - stamped)))
        assert h.place(key, caller_phone_number=b, callee_phone_number=a) == 0


def test_disabled_then_enabled_key(h):
    acct = h.account(credits=10)
    h.store.accounts.set_enabled(acct.id, False)
    assert h.place(acct.api_key) == 5
    h.store.accounts.set_enabled(acct.id, True)
    assert h.place(acct.api_key) == 0


# ------------------------------------------------------------------------------------------
# 11: the store or the switch unreachable, and nothing half-written


def test_store_on_a_closed_port_answers_11_quickly():
    url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/c2c"
    with AppHarness(url, upgrade=False) as h:
        started = time.monotonic()
        assert h.code(h.get(valid("any-key"))) == 11
        result = h.get(valid("any-key"), headers={"Accept": "application/json"})
        assert result.status_code == 503 and result.json["code"] == 11
        assert time.monotonic() - started < 3


def test_sqlite_store_that_cannot_be_opened_answers_11(tmp_path):
    with AppHarness(f"sqlite:///{tmp_path}/missing/dir/c2c.sqlite3", upgrade=False) as h:
        assert h.code(h.get(valid("any-key"))) == 11


@pytest.mark.mysql
def test_database_dropped_mid_test_answers_11(mysql_url):
    import pymysql
    from sqlalchemy.engine import make_url

    with AppHarness(mysql_url) as h:
        key = h.account(credits=10).api_key
        assert h.place(key) == 0
        url = make_url(mysql_url)
        admin = pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            autocommit=True,
        )
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE `{url.database}`")
        finally:
            admin.close()
        started = time.monotonic()
        for _ in range(3):
            assert h.place(key) == 11
        assert time.monotonic() - started < 3


def test_no_switch_connected_is_11_and_leaves_nothing(h, rich):
    assert h.code(h.get(valid(rich))) == 0
    h.switch.stop()
    h.wait_until(lambda: h.switch_state().value != "connected", 5, "switch seen as down")
    before = h.snapshot()
    sent = len(h.sent)
    assert h.code(h.get(valid(rich))) == 11
    result = h.get(valid(rich), headers={"Accept": "application/json"})
    assert result.status_code == 503 and result.json["code"] == 11
    assert_nothing_left(h, before)
    assert len(h.sent) == sent  # nothing was even tried


def test_switches_on_a_closed_port_is_11(store_url):
    with AppHarness(store_url, start_switch=False) as h:
        key = h.account(credits=10).api_key
        before = h.snapshot()
        assert h.place(key) == 11
        assert_nothing_left(h, before)


def test_switch_refusing_the_originate_is_11_and_the_accept_is_undone(h, rich):
    h.switch.faults.error_all = True
    before = h.snapshot()
    params = valid(rich)
    assert h.code(h.get(params)) == 11
    assert len(h.sent) == 1  # it was sent, refused with -ERR, and cancelled
    assert_nothing_left(h, before)
    # The customer may retry at once: no flood stamp was left.
    h.switch.faults.error_all = False
    assert h.code(h.get(params)) == 0


def test_stalled_switch_answers_within_the_esl_timeout_and_keeps_the_call(store_url):
    """What we see: bgapi gets no reply within C2C_ESL_TIMEOUT; the switch may have started the
    call, so the request answers 0 and the row stays 'queued' with its reservation and flood
    stamps, for the events, reconciliation or the deadline sweep to settle."""
    esl_timeout = 0.5
    with AppHarness(store_url, esl_timeout=esl_timeout) as h:
        acct = h.account(credits=10)
        h.switch.faults.stall = True
        started = time.monotonic()
        result = h.get(valid(acct.api_key, max_duration="2"))
        elapsed = time.monotonic() - started
        assert h.code(result) == 0
        assert esl_timeout <= elapsed < esl_timeout + 1.0
        call = h.store.calls.get(result.headers["x-c2c-call-id"])
        assert call["state"] == "queued" and call["max_minutes"] == 2
        assert h.store.accounts.find(acct.id).reserved == 2


# ------------------------------------------------------------------------------------------
# what the originate carries: ringback, early media, press 1, caller IDs (issue 11)


def uk_number() -> str:
    """A fresh London number (national, 10 digits: 20 and eight more)."""
    return "20" + fresh_number()[-8:]


def sent_originate(h: AppHarness) -> tuple[dict[str, str], dict[str, str]]:
    """The caller's and the callee's variables in the last originate c2c sent, read as
    FreeSWITCH reads them (tests/support/originate_model.py)."""
    a_vars, _, b_vars, _ = parse_originate(h.sent[-1])
    return a_vars, b_vars


def test_the_originate_carries_ringback_early_media_and_e164_caller_ids(h, rich):
    caller, callee = uk_number(), fresh_number()
    result = h.get({"api_key": rich, **h.numbers(caller=caller, callee=callee, caller_cc="44")})
    assert h.code(result) == 0
    a_vars, b_vars = sent_originate(h)
    # what the answered caller hears while the callee rings: the UK's ringback, by the caller
    assert a_vars["transfer_ringback"] == "%(400,200,400,450);%(400,2000,400,450)"
    assert "transfer_ringback=%(400\\,200\\,400\\,450);" in h.sent[-1]
    # a 183 is an answer on neither leg; the callee's early media reaches the caller
    assert a_vars["ignore_early_media"] == "true"
    assert (b_vars["ignore_early_media"], b_vars["bridge_early_media"]) == ("false", "true")
    # E.164 both ways, named by the number
    assert b_vars["origination_caller_id_number"] == f"+44{caller}"
    assert b_vars["origination_caller_id_name"] == f"+44{caller}"
    assert a_vars["origination_caller_id_number"] == f"+1{callee}"
    assert a_vars["origination_caller_id_name"] == f"+1{callee}"
    assert not any(name.startswith("group_confirm") for name in a_vars)  # C2C_CONFIRM=off

    # What the simulator made of it: the caller's leg at once, the callee's once it answered.
    a_leg = h.wait_until(
        lambda: h.switch.legs.get(a_vars["origination_uuid"]), message="caller leg"
    )
    assert a_leg.channel.variables.get("transfer_ringback") == a_vars["transfer_ringback"]
    assert a_leg.channel.caller.caller_id_number == f"+1{callee}"
    b_leg = h.wait_until(
        lambda: h.switch.legs.get(b_vars["origination_uuid"]), message="callee leg"
    )
    assert b_leg.channel.caller.caller_id_number == f"+44{caller}"
    assert b_leg.channel.caller.caller_id_name == f"+44{caller}"
    assert b_leg.channel.variables.get("bridge_early_media") == "true"


def test_the_request_caller_id_is_shown_in_e164_with_the_callers_country(h, rich):
    assert h.code(h.get(valid(rich, caller_id="2125550100"))) == 0
    _, b_vars = sent_originate(h)
    assert b_vars["origination_caller_id_number"] == "+12125550100"
    # digits with their own country code, not possible as a North American number
    assert h.code(h.get(valid(rich, caller_id="442079460000"))) == 0
    _, b_vars = sent_originate(h)
    assert b_vars["origination_caller_id_number"] == "+442079460000"


def test_caller_id_format_name_and_the_callers_number_from_the_config(store_url):
    with AppHarness(
        store_url,
        caller_id_format="national",
        caller_id_name="Acme Sales",
        caller_id_for_caller="+442079460000",
        ringback="off",
    ) as h:
        key = h.account().api_key
        caller, callee = uk_number(), fresh_number()
        params = h.numbers(caller=caller, callee=callee, caller_cc="44")
        assert h.code(h.get({"api_key": key, **params})) == 0
        a_vars, b_vars = sent_originate(h)
        assert b_vars["origination_caller_id_number"] == f"0{caller}"  # UK national: trunk 0
        assert a_vars["origination_caller_id_number"] == "02079460000"
        assert a_vars["origination_caller_id_name"] == "Acme Sales"
        assert b_vars["origination_caller_id_name"] == "Acme Sales"
        assert "origination_caller_id_name='Acme Sales'" in h.sent[-1]
        assert "transfer_ringback" not in a_vars
        b_leg = h.wait_until(
            lambda: h.switch.legs.get(b_vars["origination_uuid"]), message="callee leg"
        )
        assert b_leg.channel.caller.caller_id_name == "Acme Sales"


def test_press_1_by_the_config_unless_the_key_says_otherwise(store_url):
    with AppHarness(store_url, confirm="key", confirm_timeout=7) as h:
        asked = h.account(name="follows the config")
        result = h.get({"api_key": asked.api_key, **h.numbers()})
        assert h.code(result) == 0
        a_vars, b_vars = sent_originate(h)
        assert a_vars["group_confirm_key"] == "1"
        assert a_vars["group_confirm_file"] == "tone_stream://%(500,500,440);loops=7"
        assert a_vars["group_confirm_timeout"] == "7"
        # ring (10 in the harness) bounded by leg_timeout; originate_timeout only a backstop
        assert (a_vars["leg_timeout"], a_vars["originate_timeout"]) == ("10", "22")
        assert not any(name.startswith("group_confirm") for name in b_vars)
        assert h.store.calls.get(result.headers["x-c2c-call-id"])["confirm"] == "required"

        exempt = h.account(name="key says off")
        h.store.accounts.set_confirm(exempt.id, False)
        result = h.get({"api_key": exempt.api_key, **h.numbers()})
        assert h.code(result) == 0
        a_vars, _ = sent_originate(h)
        assert not any(name.startswith("group_confirm") for name in a_vars)
        assert a_vars["originate_timeout"] == "10" and "leg_timeout" not in a_vars
        assert h.store.calls.get(result.headers["x-c2c-call-id"])["confirm"] is None


def test_press_1_for_one_key_with_the_config_off(h):
    account = h.account()
    h.store.accounts.set_confirm(account.id, True)
    assert h.code(h.get({"api_key": account.api_key, **h.numbers()})) == 0
    a_vars, _ = sent_originate(h)
    assert a_vars["group_confirm_key"] == "1"
    assert a_vars["group_confirm_timeout"] == "10"  # C2C_CONFIRM_TIMEOUT's default
    other = h.account().api_key
    assert h.code(h.get({"api_key": other, **h.numbers()})) == 0
    a_vars, _ = sent_originate(h)
    assert "group_confirm_key" not in a_vars


# ------------------------------------------------------------------------------------------
# an account's own numbers: C2C_CALLER_ID_POLICY=own, flood exemption


OWN_LINE = ("1", "2125550100")  # the account's sales line


def test_caller_id_policy_own_answers_4_for_a_number_not_the_accounts(store_url):
    with AppHarness(store_url, caller_id_policy="own") as h:
        account = h.account(credits=100)
        h.store.own_numbers.add(account.id, int("".join(OWN_LINE)))
        key = account.api_key
        # blank (the caller's own number is shown) and the account's own number: accepted
        assert h.code(h.get(valid(key, caller_id=""))) == 0
        for caller_id in ("2125550100", "12125550100"):
            assert h.code(h.get(valid(key, caller_id=caller_id))) == 0
            _, b_vars = sent_originate(h)
            assert b_vars["origination_caller_id_number"] == "+12125550100"
        # anything else: 4, and nothing left behind
        for caller_id in ("2125550101", "5551234", "442079460000"):
            before = h.snapshot()
            sent = len(h.sent)
            result = h.get(valid(key, caller_id=caller_id), headers={"Accept": "application/json"})
            assert (result.status_code, result.json["code"]) == (400, 4)
            assert_nothing_left(h, before)
            assert len(h.sent) == sent
        # a UK caller's 2125550100 is a London-less UK number, not the account's line
        params = valid(
            key, caller_id="2125550100", caller_country_code="44", caller_phone_number=uk_number()
        )
        assert h.code(h.get(params)) == 4


def test_caller_id_policy_any_keeps_todays_contract(h, rich):
    assert h.code(h.get(valid(rich, caller_id="2125550101"))) == 0


def test_check_order_with_the_own_number_policy(store_url):
    """The policy's 4 comes after 1 and 5 and before coverage (8, 7, 10, 9), DNC (3), credits (2)
    and flood (6); a permitted caller_id lets the next check decide."""
    with AppHarness(store_url, caller_id_policy="own") as h:
        broke = h.account(credits=0, name="broke")
        disabled = h.account(credits=0, enabled=False, name="disabled")
        rich_account = h.account(credits=100_000, name="rich")
        for account in (broke, disabled, rich_account):
            h.store.own_numbers.add(account.id, int("".join(OWN_LINE)))
        h.store.coverage.deny_area("33", "6")
        stamp_flood(h.store, rich_account.id, FLOOD, FLOOD2)
        h.store.dnc.add(int(cc + n) for cc, n in (FR, FR2, PREM, PREM2, DNCF, DNCF2))
        foreign = {"caller_id": "2125550101"}  # not the accounts' own
        own = {"caller_id": "".join(OWN_LINE)}  # with its country code: own from France too
        ladder = [
            (1, {"api_key": "no-such-key", **foreign, **numbers(FR, FR2)}),
            (5, {"api_key": disabled.api_key, **foreign, **numbers(FR, FR2)}),
            (4, {"api_key": broke.api_key, **foreign, **numbers(FR, FR2)}),
            (8, {"api_key": broke.api_key, **own, **numbers(FR, FR2)}),
            (4, {"api_key": broke.api_key, **foreign, **numbers(PREM, PREM2)}),
            (7, {"api_key": broke.api_key, **own, **numbers(PREM, FR2)}),
            (4, {"api_key": broke.api_key, **foreign, **numbers(DNCF, DNCF2)}),
            (3, {"api_key": broke.api_key, **own, **numbers(DNCF, DNCF2)}),
            (4, {"api_key": broke.api_key, **foreign, **numbers(FLOOD, FLOOD2)}),
            (2, {"api_key": broke.api_key, **own, **numbers(FLOOD, FLOOD2)}),
            (4, {"api_key": rich_account.api_key, **foreign, **numbers(FLOOD, FLOOD2)}),
            (6, {"api_key": rich_account.api_key, **own, **numbers(FLOOD, FLOOD2)}),
            (0, {"api_key": rich_account.api_key, **own, **h.numbers()}),
        ]
        got = []
        for expected, params in ladder:
            before = h.snapshot()
            code = h.code(h.get(params))
            got.append(code)
            if expected:
                assert_nothing_left(h, before)
        assert got == [expected for expected, _ in ladder]


def test_own_numbers_are_exempt_from_flood_in_the_accounts_requests(h):
    account = h.account(credits=100)
    short = {"max_duration": "1"}
    line = fresh_number()
    h.store.own_numbers.add(account.id, int("1" + line))
    # Two visitors within the window ask to be connected to the business's line: both placed.
    for _ in range(2):
        assert h.code(h.get({"api_key": account.api_key, **h.numbers(callee=line), **short})) == 0
    # ...and the line as the caller (a salesperson calling visitors back), twice as well.
    for _ in range(2):
        assert h.code(h.get({"api_key": account.api_key, **h.numbers(caller=line), **short})) == 0
    # A number that is not the account's own is still flood-protected.
    other = fresh_number()
    assert h.code(h.get({"api_key": account.api_key, **h.numbers(callee=other), **short})) == 0
    before = h.snapshot()
    assert h.code(h.get({"api_key": account.api_key, **h.numbers(callee=other), **short})) == 6
    assert_nothing_left(h, before)

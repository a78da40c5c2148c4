"""The shipped coverage: fraud-prone areas of countries 1 and 44 denied, each with its reason;
seeded into a fresh store, added to an older one without touching the operator's rules, listed
and lifted through `c2c coverage`, and enforced by the API (codes 7 and 9)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, insert, select

from c2c.store import CoverageRules, Store, schema
from c2c.store.coverage import valid_prefix
from c2c.store.coverage_defaults import (
    DEFAULT_AREAS,
    DEFAULT_COUNTRIES,
    add_missing_defaults,
    default_reason,
    deny_all_but,
)
from tests.support.app_harness import AppHarness, fresh_number

DENIED = [
    ("1", "8765550123"),  # Jamaica
    ("1", "6585550123"),  # Jamaica's overlay
    ("1", "8095550123"),  # Dominican Republic
    ("1", "2425550123"),  # Bahamas
    ("1", "4415550123"),  # Bermuda
    ("1", "9005550123"),  # premium rate
    ("1", "9765550123"),
    ("1", "5005550123"),  # personal communications
    ("1", "7005550123"),  # carrier-specific
    ("44", "9098790000"),  # 09 premium rate
    ("44", "7012345678"),  # 070 personal numbering
    ("44", "8712345678"),  # 0871 service charge
    ("44", "8445550123"),  # 0844 service charge
    ("44", "118500"),  # directory enquiries
    ("44", "7600123456"),  # pager
    ("44", "7625123456"),  # pager beside the Isle of Man's mobiles
    ("44", "5612345678"),  # location-independent VoIP
    ("44", "02071234567"),  # a trunk 0 a gateway might strip
]
ALLOWED = [
    ("1", "2125550123"),  # New York
    ("1", "4165550123"),  # Toronto
    ("1", "7875550123"),  # Puerto Rico: US domestic rates
    ("1", "9395550123"),
    ("1", "3405550123"),  # US Virgin Islands
    ("1", "6715550123"),  # Guam
    ("1", "5305550123"),  # California: a geographic 5XX
    ("1", "8005550123"),  # toll-free
    ("1", "8885550123"),
    ("1", "5552104427"),  # the fictitious numbers the other tests use
    ("44", "2071234567"),  # London
    ("44", "7700900123"),  # a mobile
    ("44", "7624123456"),  # an Isle of Man mobile
    ("44", "8001234567"),  # freephone
    ("44", "3001234567"),  # 03, charged as geographic
]


def defaults_only() -> CoverageRules:
    areas: dict[str, dict[str, bool]] = {}
    for d in DEFAULT_AREAS:
        areas.setdefault(d.country_code, {})[d.prefix] = d.allowed
    return CoverageRules.build(dict.fromkeys(DEFAULT_COUNTRIES, True), areas)


def table_rows(store: Store) -> tuple[set[tuple[str, bool]], set[tuple[str, str, bool]]]:
    c, a = schema.coverage_countries, schema.coverage_areas
    with store.engine.connect() as conn:
        countries = {
            (cc, bool(ok)) for cc, ok in conn.execute(select(c.c.country_code, c.c.allowed))
        }
        areas = {
            (cc, p, bool(ok))
            for cc, p, ok in conn.execute(select(a.c.country_code, a.c.prefix, a.c.allowed))
        }
    return countries, areas


# -- the data --------------------------------------------------------------------------------


def test_every_default_has_a_reason_a_valid_prefix_and_no_twin():
    keys = [(d.country_code, d.prefix) for d in DEFAULT_AREAS]
    assert len(keys) == len(set(keys))
    for d in DEFAULT_AREAS:
        assert d.country_code in DEFAULT_COUNTRIES
        assert valid_prefix(d.prefix), d
        assert d.reason.strip() and default_reason(d.country_code, d.prefix) == d.reason
        if d.country_code == "1" and len(d.prefix) > 1:
            assert len(d.prefix) == 3 and d.prefix[0] in "23456789", d  # an NPA


def test_no_default_allows_or_repeats_what_a_shorter_rule_decides():
    # An allow rule would make its country admit only its allowed areas (see coverage.py).
    assert not [d for d in DEFAULT_AREAS if d.allowed]
    prefixes = {(d.country_code, d.prefix) for d in DEFAULT_AREAS}
    for d in DEFAULT_AREAS:
        shorter = [d.prefix[:n] for n in range(1, len(d.prefix))]
        assert not [p for p in shorter if (d.country_code, p) in prefixes], d


def test_the_defaults_decide_the_listed_numbers():
    rules = defaults_only()
    for cc, national in DENIED:
        assert not rules.area_supported(cc, national), (cc, national)
    for cc, national in ALLOWED:
        assert rules.area_supported(cc, national), (cc, national)
    assert default_reason("1", "876") == (
        "Jamaica: international rates, NANP revenue-share fraud target"
    )
    assert default_reason("1", "212") is None and default_reason("44", "7624") is None


def test_deny_all_but_denies_every_sibling_and_keeps_the_one_range():
    reason = "why"
    rows = list(deny_all_but("44", "76", "7624", reason))
    rules = CoverageRules.build({"44": True}, {"44": {r.prefix: r.allowed for r in rows}})
    for n in range(10_000):
        national = f"76{n:04d}1234"
        assert rules.area_supported("44", national) == national.startswith("7624"), national
    assert rules.area_supported("44", "7712345678")  # outside 76: not its business
    assert {r.reason for r in rows} == {reason} and len(rows) == 18
    with pytest.raises(ValueError):
        list(deny_all_but("44", "76", "77", reason))
    with pytest.raises(ValueError):
        list(deny_all_but("44", "76", "76", reason))


# -- the store -------------------------------------------------------------------------------


def test_a_fresh_store_holds_exactly_the_defaults(store):
    countries, areas = table_rows(store)
    assert countries == {(cc, True) for cc in DEFAULT_COUNTRIES}
    assert areas == {(d.country_code, d.prefix, d.allowed) for d in DEFAULT_AREAS}
    rules = store.coverage.rules()
    for cc, national in DENIED:
        assert not rules.area_supported(cc, national), (cc, national)
    for cc, national in ALLOWED:
        assert rules.area_supported(cc, national), (cc, national)
    with store.engine.begin() as conn:
        assert add_missing_defaults(conn) == 0


def test_an_older_database_gains_the_defaults_but_keeps_the_operators_rules(store):
    c, a = schema.coverage_countries, schema.coverage_areas
    with store.engine.begin() as conn:  # what an older c2c seeded, then an operator's edits
        conn.execute(delete(a))
        conn.execute(delete(c))
        conn.execute(
            insert(c),
            [
                {"country_code": "1", "allowed": True},
                {"country_code": "44", "allowed": False},
                {"country_code": "49", "allowed": True},
            ],
        )
        conn.execute(
            insert(a),
            [
                {"country_code": "1", "prefix": "900", "allowed": False},
                {"country_code": "1", "prefix": "976", "allowed": False},
                {"country_code": "1", "prefix": "212", "allowed": True},
                {"country_code": "1", "prefix": "876", "allowed": True},
                {"country_code": "44", "prefix": "9", "allowed": True},
            ],
        )
    before_countries, before_areas = table_rows(store)

    with store.engine.begin() as conn:
        added = add_missing_defaults(conn)
    assert added == len(DEFAULT_AREAS) - 4  # 900, 976, 876 and 44/9 were there
    countries, areas = table_rows(store)
    assert countries == before_countries  # 44 stays denied, 49 stays
    assert before_areas <= areas  # 876 and 44/9 still allowed: the operator's
    assert areas - before_areas == {
        (d.country_code, d.prefix, d.allowed)
        for d in DEFAULT_AREAS
        if (d.country_code, d.prefix) not in {("1", "900"), ("1", "976"), ("1", "876"), ("44", "9")}
    }
    rules = store.coverage.load()
    assert rules.area_supported("1", "8765550123") and rules.area_supported("1", "2125550123")
    assert not rules.area_supported("1", "8095550123")

    with store.engine.begin() as conn:
        assert add_missing_defaults(conn) == 0  # idempotent
        conn.execute(delete(c))
    with store.engine.begin() as conn:
        assert add_missing_defaults(conn) == len(DEFAULT_COUNTRIES)
    assert table_rows(store)[0] == {(cc, True) for cc in DEFAULT_COUNTRIES}
    assert table_rows(store)[1] == areas


# -- `c2c coverage`, through the real entry point, on both stores -----------------------------


@pytest.fixture
def c2c(store_url, monkeypatch, capsys):
    """c2c("coverage", "show") -> (exit status, stdout, stderr) as the `c2c` command runs."""
    from c2c.cli.main import main

    monkeypatch.setenv("C2C_DATABASE_URL", store_url)
    monkeypatch.setenv("C2C_LOG_LEVEL", "WARNING")

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse: bad arguments
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    assert run("db", "upgrade")[0] == 0
    return run


@pytest.fixture
def operator(store_url) -> Iterator[Store]:
    """The store as another process sees it (no shared cache)."""
    store = Store.from_url(store_url)
    yield store
    store.dispose()


def test_show_and_defaults_give_each_shipped_rule_its_reason(c2c, operator):
    jamaica = "Jamaica: international rates, NANP revenue-share fraud target"
    status, out, _ = c2c("coverage", "show")
    assert status == 0
    assert f"  area 876: denied ({jamaica})\n" in out
    assert "  area 9: denied (premium rate (09))\n" in out

    operator.coverage.deny_area("1", "212")  # the operator's own rule has no reason
    operator.coverage.deny_area("1", "345")  # nor has a shipped one they set again
    status, out, _ = c2c("coverage", "show", "--json")
    assert status == 0
    nanp = next(c for c in json.loads(out)["countries"] if c["country_code"] == "1")
    by_prefix = {area["prefix"]: area for area in nanp["areas"]}
    assert by_prefix["876"] == {"prefix": "876", "allowed": False, "reason": jamaica}
    assert by_prefix["212"] == {"prefix": "212", "allowed": False, "reason": None}
    assert by_prefix["345"]["reason"] == default_reason("1", "345")

    status, out, _ = c2c("coverage", "defaults", "--json")
    assert status == 0
    listed = {
        (country["country_code"], area["prefix"], area["allowed"], area["reason"])
        for country in json.loads(out)["countries"]
        for area in country["areas"]
    }
    assert listed == {(d.country_code, d.prefix, d.allowed, d.reason) for d in DEFAULT_AREAS}
    status, out, _ = c2c("coverage", "defaults")
    assert status == 0 and f"  area 876: denied ({jamaica})\n" in out
    assert out.count("  area ") == len(DEFAULT_AREAS)


def test_allow_area_lifts_a_shipped_denial_and_only_that(c2c, operator):
    assert not operator.coverage.load().area_supported("1", "8765550123")
    assert c2c("coverage", "allow-area", "1", "876") == (
        0,
        "country 1 area 876: allowed (its deny rule removed)\n",
        "",
    )
    rules = operator.coverage.load()
    assert rules.area_supported("1", "8765550123")
    # Every other NANP area is as it was: no allow rule turned NANP into an allow-list.
    assert rules.area_supported("1", "2125550123") and rules.area_supported("1", "4165550123")
    assert not rules.area_supported("1", "6585550123")  # Jamaica's other NPA: its own rule
    assert not rules.area_supported("1", "9005550123")
    assert "area 876" not in c2c("coverage", "show")[1]
    # Denied again, it shows its reason again.
    assert c2c("coverage", "deny-area", "1", "876")[:2] == (0, "country 1 area 876: denied\n")
    assert "  area 876: denied (Jamaica: " in c2c("coverage", "show")[1]

    # An allow inside a denied range needs an allow rule, which makes 44 an allow-list: said so.
    status, out, err = c2c("coverage", "allow-area", "44", "908")
    assert (status, out) == (0, "country 44 area 908: allowed\n")
    assert "country 44 now admits only its allowed areas" in err
    rules = operator.coverage.load()
    assert rules.area_supported("44", "9081234567") and not rules.area_supported("44", "2071234567")


# -- the API ---------------------------------------------------------------------------------


@pytest.fixture
def h(store_url: str) -> Iterator[AppHarness]:
    with AppHarness(store_url) as harness:
        yield harness


def request(api_key: str, **numbers: str) -> dict[str, str]:
    return {"api_key": api_key, **AppHarness.numbers(), "max_duration": "5", **numbers}


def test_the_api_refuses_a_denied_area_with_7_or_9(h):
    key = h.account(credits=1000).api_key
    jamaica = {"country_code": "1", "phone_number": "8765550123"}
    premium = {"country_code": "44", "phone_number": "9098790000"}
    for leg, code in (("caller", 7), ("callee", 9)):
        for number in (jamaica, premium):
            params = request(key, **{f"{leg}_{k}": v for k, v in number.items()})
            before = h.snapshot()
            assert h.code(h.get(params)) == code, (leg, number)
            assert h.snapshot() == before
    # Puerto Rico, London and the Isle of Man's mobiles are called.
    for cc, national in (
        ("1", "787" + fresh_number()[3:]),
        ("44", "2071234567"),
        ("44", "7624123456"),
    ):
        params = request(key, callee_country_code=cc, callee_phone_number=national)
        assert h.code(h.get(params)) == 0, (cc, national)

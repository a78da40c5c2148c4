"""Coverage rules: the pure value, the table edits and the short cache."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2c.store import CoverageRules
from c2c.store.coverage import Coverage


def rules(countries=None, areas=None):
    return CoverageRules.build(countries or {}, areas or {})


def test_only_listed_allowed_countries_are_supported():
    r = rules({"1": True, "44": True, "49": False})
    assert r.country_supported("1") and r.country_supported("44")
    assert not r.country_supported("49")
    assert not r.country_supported("33")


def test_nanp_denied_npas():
    r = rules({"1": True}, {"1": {"900": False, "976": False}})
    assert not r.area_supported("1", "9005551234")
    assert not r.area_supported("1", "9765551234")
    assert r.area_supported("1", "2125551234")
    assert r.area_rule("1", "9005551234") == ("900", False)
    assert r.area_rule("1", "2125551234") is None


def test_longest_prefix_wins():
    r = rules({"44": True}, {"44": {"7": False, "77": True, "7700": False}})
    assert not r.area_supported("44", "7100123456")  # "7"
    assert r.area_supported("44", "7712345678")  # "77"
    assert not r.area_supported("44", "7700900123")  # "7700"
    # No rule matches, and "77" is an allow rule, so the country admits only matching areas:
    assert r.area_rule("44", "2071234567") is None
    assert not r.area_supported("44", "2071234567")
    only_denials = rules({"44": True}, {"44": {"7": False}})
    assert only_denials.area_supported("44", "2071234567")


def test_a_country_with_an_allow_rule_admits_only_matching_areas():
    r = rules({"1": True}, {"1": {"212": True, "646": True, "900": False}})
    assert r.area_supported("1", "2125551234")
    assert r.area_supported("1", "6465551234")
    assert not r.area_supported("1", "3125551234")
    assert not r.area_supported("1", "9005551234")


def test_countries_without_area_rules_admit_every_area():
    r = rules({"1": True, "44": True}, {"1": {"900": False}})
    assert r.area_supported("44", "2071234567")


def test_rules_are_read_only():
    r = rules({"1": True}, {"1": {"900": False}})
    with pytest.raises(TypeError):
        r.countries["2"] = True  # type: ignore[index]
    with pytest.raises(TypeError):
        r.areas["1"]["212"] = True  # type: ignore[index]


@given(
    national=st.text(alphabet="0123456789", min_size=4, max_size=14),
    prefixes=st.dictionaries(
        st.text(alphabet="0123456789", min_size=1, max_size=5), st.booleans(), max_size=8
    ),
)
def test_the_decision_follows_the_longest_matching_rule(national, prefixes):
    r = rules({"44": True}, {"44": prefixes})
    matching = [p for p in prefixes if national.startswith(p)]
    if matching:
        assert r.area_supported("44", national) == prefixes[max(matching, key=len)]
    else:
        assert r.area_supported("44", national) == (not any(prefixes.values()))


def test_the_store_seeds_and_edits_the_rules(store):
    r = store.coverage.rules()
    assert r.country_supported("1") and r.country_supported("44")
    assert not r.area_supported("1", "9005551234") and not r.area_supported("1", "9765551234")

    store.coverage.allow_country("49")
    store.coverage.deny_country("44")
    store.coverage.allow_area("49", "30")
    store.coverage.deny_area("1", "212")
    store.coverage.allow_area("1", "900")  # an existing rule flips
    r = store.coverage.rules()  # edits made here drop this process's cache at once
    assert r.country_supported("49") and not r.country_supported("44")
    assert r.area_supported("49", "301234567") and not r.area_supported("49", "891234567")
    assert not r.area_supported("1", "2125551234")
    assert r.area_supported("1", "9005551234")

    assert store.coverage.remove_area("1", "212") is True
    assert store.coverage.remove_area("1", "212") is False
    assert store.coverage.rules().area_supported("1", "2125551234") is False  # 900 allow rule now


def test_bad_codes_are_refused(store):
    with pytest.raises(ValueError):
        store.coverage.allow_country("0")
    with pytest.raises(ValueError):
        store.coverage.allow_country("1234")
    with pytest.raises(ValueError):
        store.coverage.deny_area("1", "9x")
    with pytest.raises(ValueError):
        store.coverage.deny_area("1", "1" * 15)


def test_the_cache_lasts_its_ttl(store):
    clock = [1000.0]
    other_process = Coverage(store._db, cache_seconds=5.0, clock=lambda: clock[0])
    assert other_process.rules().country_supported("44")
    store.coverage.deny_country("44")  # another process's edit
    clock[0] += 4.9
    assert other_process.rules().country_supported("44")  # still cached
    clock[0] += 0.2
    assert not other_process.rules().country_supported("44")

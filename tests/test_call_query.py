"""The pure parts of the customer's read API: list parameters and cursors, the public state of
a row, where the api_key is read from."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2c.api.auth import api_key_of, bearer_token
from c2c.api.call_query import DEFAULT_LIMIT, CallQuery, encode_cursor, parse_call_query
from c2c.api.problems import INVALID_PARAMETER, UNAUTHORIZED, Problem
from c2c.domain.call_status import PublicState, public_state, rows_in
from c2c.domain.confirmation import Confirmation
from c2c.domain.states import CallState
from c2c.store.call_views import Position

CONFIRMS = [None, *(c.value for c in Confirmation)]


@pytest.mark.parametrize(("state", "confirm"), list(itertools.product(CallState, CONFIRMS)))
def test_rows_in_is_the_inverse_of_public_state(state: CallState, confirm: str | None) -> None:
    public = public_state(state, confirm)
    for candidate in PublicState:
        condition = rows_in(candidate)
        matches = condition.state is state and (
            condition.confirm_in is None or confirm in condition.confirm_in)
        assert matches == (candidate is public), (state, confirm, candidate)


def test_without_parameters_the_newest_page() -> None:
    assert parse_call_query([("api_key", "k"), ("other", "x")]) == CallQuery(DEFAULT_LIMIT)


@given(st.floats(allow_nan=False, allow_infinity=False),
       st.uuids().map(str))
def test_a_cursor_gives_back_its_position_exactly(created_at: float, call_id: str) -> None:
    cursor = encode_cursor(Position(created_at, call_id))
    assert cursor.isascii() and len(cursor) <= 200
    assert parse_call_query([("cursor", cursor)]).after == Position(created_at, call_id)


@given(st.lists(st.tuples(st.sampled_from(["state", "since", "limit", "cursor", "x"]),
                          st.text(max_size=60)), max_size=6))
def test_any_parameters_parse_or_are_a_400(params: list[tuple[str, str]]) -> None:
    try:
        parse_call_query(params)
    except Problem as problem:
        assert problem.kind is INVALID_PARAMETER


@given(st.text(max_size=80), st.lists(st.tuples(st.sampled_from(["api_key", "x"]),
                                                st.text(max_size=40)), max_size=3))
def test_any_credentials_give_a_key_or_a_401_or_400(authorization: str,
                                                    params: list[tuple[str, str]]) -> None:
    try:
        key = api_key_of(authorization, params)
    except Problem as problem:
        assert problem.kind in (UNAUTHORIZED, INVALID_PARAMETER)
    else:
        assert key.isascii() and key.isprintable() and 0 < len(key) <= 256


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"), ("Bearer", None),
    ("Bearer a b", None), ("Basic abc", None), ("", None), ("Bearerabc", None),
])
def test_bearer_token(header: str, token: str | None) -> None:
    assert bearer_token(header) == token

"""The customer's list query walks the index that bounds it (SQLite's plan; MySQL's depends on
its statistics and was checked by hand: c2c/store/call_views.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text, true

from c2c.domain.call_status import PublicState
from c2c.store import Store, make_engine, schema
from c2c.store import call_views as views


def _plan(store: Store, state: PublicState | None) -> str:
    c = schema.calls
    query = (views._views()
             .where(views._of_account(1, state),
                    true() if state is None else views._in_state(state))
             .order_by(c.c.created_at.desc(), c.c.id.desc()).limit(21))
    compiled = query.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True})
    with store.engine.connect() as conn:
        return " / ".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))


@pytest.mark.parametrize(("state", "index"), [
    (None, "ix_calls_account_created"),
    (PublicState.ENDED, "ix_calls_account_created"),
    (PublicState.QUEUED, "ix_calls_state_switch"),
    (PublicState.DIALING_CALLEE, "ix_calls_state_switch"),
])
def test_a_page_walks_the_bounded_index(tmp_path: Path, state: PublicState | None,
                                        index: str) -> None:
    store = Store(make_engine(f"sqlite:///{tmp_path / 'c2c.sqlite3'}"))
    store.upgrade()
    try:
        assert f"SEARCH calls USING INDEX {index}" in _plan(store, state)
    finally:
        store.dispose()

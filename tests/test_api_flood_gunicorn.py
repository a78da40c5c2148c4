"""Flood protection under concurrency, through real gunicorn (4 gevent workers) on MariaDB: 50
requests at the same instant for one caller number, each to another callee, must yield exactly
one accepted call (0) and 49 refusals (6), and exactly one call row."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from c2c.store import schema
from tests.support.deployment import Deployment

REQUESTS = 50


@pytest.mark.slow
@pytest.mark.mysql
def test_one_caller_many_callees_at_once_only_one_is_accepted(tmp_path, mysql_url):
    with Deployment(
        tmp_path, mysql_url, workers=4, env={"C2C_FLOOD_SECONDS": "60", "C2C_LOG_LEVEL": "WARNING"}
    ) as d:
        barrier = threading.Barrier(REQUESTS, timeout=30)
        answers: dict[int, tuple[int, str | None]] = {}
        errors: list[BaseException] = []

        def request(index: int) -> None:
            try:
                barrier.wait()
                answers[index] = d.place(
                    callback=False,
                    caller_phone_number="2125550123",
                    callee_phone_number=f"31255502{index:02d}",
                )
            except BaseException as exc:  # reported below, with the others
                errors.append(exc)

        threads = [threading.Thread(target=request, args=(i,)) for i in range(REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert Counter(code for code, _ in answers.values()) == {0: 1, 6: REQUESTS - 1}
        (accepted_id,) = [call_id for code, call_id in answers.values() if code == 0]
        assert all(call_id is None for code, call_id in answers.values() if code == 6)
        with d.store.engine.connect() as conn:
            ids = conn.execute(select(schema.calls.c.id)).scalars().all()
            stamps = conn.execute(select(func.count()).select_from(schema.flood)).scalar_one()
        assert ids == [accepted_id]
        assert stamps == 2  # the caller and the one accepted callee
        # One call's reservation (the operator's cap), or none once that call has settled.
        assert d.store.calls.get(accepted_id)["max_minutes"] == 120
        assert d.store.accounts.find(d.account_id).reserved in (0, 120)

"""switch_states: drain flags and the event holders' reports, on both backends."""

from __future__ import annotations

import threading

from c2c.domain.switch_state import SwitchLoad, SwitchRecord
from c2c.store import Store, make_engine

NOW = 1_800_000_000.0
LOAD = SwitchLoad(
    ready=True, sessions=4, max_sessions=4000, sps_limit=30, sps_last=2, idle_cpu=42.75
)


def test_nothing_until_drained_or_reported(store: Store) -> None:
    assert store.switch_states.all() == []
    assert store.switch_states.get("fs1:8021") is None


def test_drain_and_undrain(store: Store) -> None:
    states = store.switch_states
    assert states.set_draining("fs1:8021", True, NOW) is True
    assert states.set_draining("fs1:8021", True, NOW + 1) is False  # already
    assert states.get("fs1:8021") == SwitchRecord("fs1:8021", draining=True)
    assert states.set_draining("fs1:8021", False, NOW + 2) is True
    assert states.set_draining("fs1:8021", False, NOW + 3) is False
    assert states.set_draining("fs2:8021", False, NOW) is True  # a row, not draining
    assert states.all() == [SwitchRecord("fs1:8021"), SwitchRecord("fs2:8021")]


def test_a_report_and_a_drain_leave_each_other_alone(store: Store) -> None:
    states = store.switch_states
    states.report("fs1:8021", holder="h1", connected=True, heard_at=NOW, load=LOAD, load_at=NOW - 1)
    expected = SwitchRecord(
        "fs1:8021", holder="h1", connected=True, heard_at=NOW, load_at=NOW - 1, load=LOAD
    )
    assert states.get("fs1:8021") == expected
    states.set_draining("fs1:8021", True, NOW + 1)
    states.report("fs1:8021", holder="h2", connected=False, heard_at=NOW, load=None, load_at=None)
    assert states.get("fs1:8021") == SwitchRecord(
        "fs1:8021", draining=True, holder="h2", connected=False, heard_at=NOW
    )


def test_a_report_of_a_paused_switch_keeps_its_figures(store: Store) -> None:
    paused = SwitchLoad(ready=False, sessions=0)
    store.switch_states.report("fs1:8021", holder="h", connected=True, heard_at=NOW,
                               load=paused, load_at=NOW)
    record = store.switch_states.get("fs1:8021")
    assert record is not None and record.load == paused


def test_concurrent_first_writers_make_one_row(store_url: str) -> None:
    stores = [Store(make_engine(store_url)) for _ in range(4)]
    stores[0].upgrade()
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(index: int, store: Store) -> None:
        try:
            barrier.wait(timeout=10)
            if index % 2:
                store.switch_states.set_draining("fs1:8021", True, NOW)
            else:
                store.switch_states.report("fs1:8021", holder=f"h{index}", connected=True,
                                           heard_at=NOW, load=LOAD, load_at=NOW)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=pair) for pair in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    try:
        assert errors == []
        (record,) = stores[0].switch_states.all()
        assert record.draining and record.connected and record.load == LOAD
    finally:
        for store in stores:
            store.dispose()

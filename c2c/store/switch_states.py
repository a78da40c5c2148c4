"""Switch states shared by every worker and host: the operator's drain flags, and the last report
of each switch's event holder (connected, last heard from, the figures of its last HEARTBEAT).

A row is created by whichever comes first, a drain or a report; the two never overwrite each
other's columns. Every worker reads all rows every couple of seconds (a handful of switches).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError

from c2c.domain.switch_state import SwitchLoad, SwitchRecord
from c2c.store import schema
from c2c.store.db import Database

log = logging.getLogger(__name__)

_LOAD_COLUMNS = ("ready", "sessions", "max_sessions", "sps_limit", "sps_last", "idle_cpu")


class SwitchStates:
    def __init__(self, db: Database) -> None:
        self._db = db

    def all(self) -> list[SwitchRecord]:
        """Every switch's row, by name."""
        t = schema.switch_states
        with self._db.read() as conn:
            rows = conn.execute(select(t).order_by(t.c.name)).mappings().all()
        return [_record(row) for row in rows]

    def get(self, name: str) -> SwitchRecord | None:
        t = schema.switch_states
        with self._db.read() as conn:
            row = conn.execute(select(t).where(t.c.name == name)).mappings().first()
        return _record(row) if row is not None else None

    def set_draining(self, name: str, draining: bool, now: float) -> bool:
        """Drain (or undrain) ``name``; False when it already was (or was not)."""
        t = schema.switch_states

        def change(conn: Connection) -> bool:
            return bool(
                conn.execute(
                    update(t)
                    .where(t.c.name == name, t.c.draining == (not draining))
                    .values(draining=draining, drain_changed_at=now)
                ).rowcount
            )

        changed = self._upsert(name, change, {"draining": draining, "drain_changed_at": now})
        if changed:
            log.info("switch %s %s", name, "draining" if draining else "undrained")
        return changed

    def report(
        self,
        name: str,
        *,
        holder: str,
        connected: bool,
        heard_at: float | None,
        load: SwitchLoad | None,
        load_at: float | None,
    ) -> None:
        """The event holder's report; the drain flag is left as it is."""
        values: dict[str, Any] = {
            "holder": holder,
            "connected": connected,
            "heard_at": heard_at,
            "load_at": load_at,
        }
        load = load or SwitchLoad()
        values.update({column: getattr(load, column) for column in _LOAD_COLUMNS})
        t = schema.switch_states

        def change(conn: Connection) -> bool:
            return bool(conn.execute(update(t).where(t.c.name == name).values(**values)).rowcount)

        self._upsert(name, change, {"draining": False, **values})

    def _upsert(
        self, name: str, change: Callable[[Connection], bool], new_row: Mapping[str, Any]
    ) -> bool:
        """``change`` on an existing row, else insert ``new_row``: True when either did."""
        t = schema.switch_states
        with self._db.write() as conn:
            exists = conn.execute(select(t.c.name).where(t.c.name == name)).first() is not None
            if exists:
                return change(conn)
            try:
                with conn.begin_nested():
                    conn.execute(insert(t).values(name=name, **new_row))
                return True
            except IntegrityError:
                pass  # another writer created it meanwhile
            return change(conn)


def _record(row: RowMapping) -> SwitchRecord:
    figures = {column: row[column] for column in _LOAD_COLUMNS}
    has_load = any(value is not None for value in figures.values())
    if figures["ready"] is not None:
        figures["ready"] = bool(figures["ready"])
    return SwitchRecord(
        name=row["name"],
        draining=bool(row["draining"]),
        holder=row["holder"],
        connected=None if row["connected"] is None else bool(row["connected"]),
        heard_at=row["heard_at"],
        load_at=row["load_at"],
        load=SwitchLoad(**figures) if has_load else None,
    )

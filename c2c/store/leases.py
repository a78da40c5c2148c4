"""Leases: who holds a named role (e.g. a switch's event listener) until when.

A holder renews before expires_at; when it stops renewing, anyone may take the lease once it has
expired. All times come from the callers' clocks, so hosts need them roughly in sync (NTP), and
the lease should last several renew intervals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from c2c.store import schema
from c2c.store.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    expires_at: float


class Leases:
    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire_or_renew(self, name: str, holder: str, seconds: float, now: float) -> bool:
        """Hold ``name`` until now + seconds if we hold it or it is free/expired; else False."""
        t = schema.leases
        with self._db.write() as conn:
            taken = conn.execute(
                update(t)
                .where(t.c.name == name, or_(t.c.holder == holder, t.c.expires_at < now))
                .values(holder=holder, expires_at=now + seconds)
            ).rowcount
            if taken:
                return True
            try:
                conn.execute(insert(t).values(name=name, holder=holder, expires_at=now + seconds))
            except IntegrityError:
                return False  # someone else holds it (or just took it)
        log.info("lease %s acquired by %s", name, holder)
        return True

    def release(self, name: str, holder: str) -> bool:
        """Give the lease up (only if we hold it), so another can take it at once."""
        t = schema.leases
        with self._db.write() as conn:
            released = conn.execute(
                delete(t).where(t.c.name == name, t.c.holder == holder)
            ).rowcount
        if released:
            log.info("lease %s released by %s", name, holder)
        return bool(released)

    def get(self, name: str) -> Lease | None:
        t = schema.leases
        with self._db.read() as conn:
            row = conn.execute(select(t).where(t.c.name == name)).first()
        return Lease(row.name, row.holder, float(row.expires_at)) if row else None

    def holder_of(self, name: str, now: float | None = None) -> str | None:
        """Who holds ``name`` (with ``now``: None once the lease has expired)."""
        lease = self.get(name)
        if lease is None or (now is not None and lease.expires_at < now):
            return None
        return lease.holder

"""Widgets (issue 15): publishable ids that let a web page ring the visitor and then one callee.

A widget belongs to an account and names one callee, which must be one of the account's own
numbers when it is created and whenever it calls (c2c.calls.widget_calls checks the account as
read then); the origins its page may be served from; the country codes a visitor may give; and
an optional limit of calls per hour of its own.

Also here, because every host must share them: the abuse counters (calls per clock hour for a
widget, a visitor's address, a visitor's number: one upsert each under the row's lock, exact
across workers and hosts), the spent challenges (a solution is good once) and the installation's
secrets (the challenge and call-token keys), made at random on first use.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Executable, case, delete, func, insert, select, update
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import IntegrityError

from c2c.store import schema
from c2c.store.accounts import Accounts
from c2c.store.db import Database

log = logging.getLogger(__name__)

WIDGET_ID_PREFIX = "wid_"
HOUR = 3600
DEFAULT_MAX_MINUTES = 30


@dataclass(frozen=True)
class Widget:
    id: str
    account_id: int
    callee: int  # E.164 digits
    origins: tuple[str, ...]
    countries: tuple[str, ...]  # country calling codes, the first the widget's default
    max_per_hour: int | None
    max_minutes: int  # each call's max_duration
    callback_url: str | None
    enabled: bool
    created_at: float


@dataclass(frozen=True)
class Limit:
    """At most ``most`` calls per clock hour for ``scope``."""

    scope: str
    most: int


class OverLimit(Exception):
    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(scope)
        self.scope = scope
        self.retry_after = retry_after


def _widget(row: object) -> Widget:
    r = row._mapping  # type: ignore[attr-defined]
    return Widget(
        id=r["id"], account_id=int(r["account_id"]), callee=int(r["callee"]),
        origins=tuple(o for o in r["origins"].split(",") if o),
        countries=tuple(c for c in r["countries"].split(",") if c),
        max_per_hour=r["max_per_hour"], max_minutes=int(r["max_minutes"]),
        callback_url=r["callback_url"],
        enabled=bool(r["enabled"]), created_at=float(r["created_at"]),
    )


class Widgets:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._secrets: dict[str, bytes] = {}

    # -- the operator's (c2c widgets) ----------------------------------------------------------

    def create(self, key_or_id: str | int, *, callee: int, origins: Sequence[str],
               countries: Sequence[str], max_per_hour: int | None = None,
               max_minutes: int = DEFAULT_MAX_MINUTES, callback_url: str | None = None,
               now: float | None = None) -> Widget | None:
        """A new widget of the account (None: no such account). ValueError when the callee is
        not one of the account's own numbers."""
        now = time.time() if now is None else now
        widget = Widget(WIDGET_ID_PREFIX + secrets.token_urlsafe(16), 0, callee, tuple(origins),
                        tuple(countries), max_per_hour, max_minutes, callback_url, True, now)
        with self._db.write() as conn:
            account = Accounts.find_in(conn, key_or_id, lock=True)
            if account is None:
                return None
            if callee not in account.own_numbers:
                raise ValueError(f"+{callee} is not one of account {account.id}'s own numbers "
                                 "(c2c numbers add)")
            widget = Widget(**{**widget.__dict__, "account_id": account.id})
            conn.execute(insert(schema.widgets).values(
                id=widget.id, account_id=account.id, callee=callee, origins=",".join(origins),
                countries=",".join(countries), max_per_hour=max_per_hour,
                max_minutes=max_minutes, callback_url=callback_url, enabled=True,
                created_at=now))
        log.info("account %d: widget %s created for +%d", widget.account_id, widget.id, callee)
        return widget

    def get(self, widget_id: str) -> Widget | None:
        w = schema.widgets
        with self._db.read() as conn:
            row = conn.execute(select(w).where(w.c.id == widget_id)).first()
        return _widget(row) if row else None

    def list(self, key_or_id: str | int | None = None) -> list[Widget]:
        """Every widget, or the account's (none when there is no such account)."""
        w = schema.widgets
        with self._db.read() as conn:
            query = select(w).order_by(w.c.account_id, w.c.created_at)
            if key_or_id is not None:
                account = Accounts.find_in(conn, key_or_id)
                if account is None:
                    return []
                query = query.where(w.c.account_id == account.id)
            return [_widget(r) for r in conn.execute(query)]

    def set_enabled(self, widget_id: str, enabled: bool) -> Widget | None:
        w = schema.widgets
        with self._db.write() as conn:
            conn.execute(update(w).where(w.c.id == widget_id).values(enabled=enabled))
            row = conn.execute(select(w).where(w.c.id == widget_id)).first()
        if row is not None:
            log.info("widget %s %s", widget_id, "enabled" if enabled else "disabled")
        return _widget(row) if row else None

    def remove(self, widget_id: str) -> bool:
        w = schema.widgets
        with self._db.write() as conn:
            removed = conn.execute(delete(w).where(w.c.id == widget_id)).rowcount > 0
        if removed:
            log.info("widget %s removed", widget_id)
        return removed

    # -- the public endpoint's ----------------------------------------------------------------

    def spend_challenge(self, salt_sha256: str, expires_at: float) -> bool:
        """Mark a solved challenge as used; False when it already was (a replay). Its own
        transaction: on MySQL a duplicate key leaves a lock until the transaction ends."""
        with self._db.write() as conn:
            try:
                conn.execute(insert(schema.widget_challenges).values(
                    salt_sha256=salt_sha256, expires_at=expires_at))
            except IntegrityError:
                return False
        return True

    def count(self, limits: Sequence[Limit], *, now: float | None = None) -> None:
        """Count one call against each limit, all or none: raises OverLimit (naming the first
        scope over its limit, and when its hour ends) and counts nothing when any is reached."""
        now = time.time() if now is None else now
        hour = int(now // HOUR)
        # One order for every request, so that two counting the same scopes never deadlock.
        ordered = sorted(limits, key=lambda limit: limit.scope)
        upsert = _count_upsert(self._db.is_mysql)

        def work(conn: Connection) -> None:
            for limit in ordered:
                conn.execute(upsert, {"scope": limit.scope, "hour": hour, "hits": 1})
            c = schema.widget_counters
            hits = {row.scope: row.hits for row in conn.execute(select(c.c.scope, c.c.hits).where(
                c.c.scope.in_([limit.scope for limit in ordered])))}
            for limit in ordered:
                if hits.get(limit.scope, 0) > limit.most:
                    raise OverLimit(limit.scope, HOUR - int(now % HOUR))

        self._db.write_retrying(work)

    def prune(self, *, now: float | None = None) -> int:
        """Forget expired challenges and counters of past hours; how many rows went."""
        now = time.time() if now is None else now
        c, s = schema.widget_counters, schema.widget_challenges
        with self._db.write() as conn:
            gone = conn.execute(delete(s).where(s.c.expires_at < now)).rowcount
            gone += conn.execute(delete(c).where(c.c.hour < int(now // HOUR))).rowcount
        return int(gone)

    def secret(self, name: str) -> bytes:
        """The installation's secret ``name``: 32 random bytes made by the first process that
        asks, the same for every process after (the insert races are settled by the key)."""
        if name not in self._secrets:
            t = schema.site_secrets
            with self._db.write() as conn:
                try:
                    conn.execute(insert(t).values(name=name, value=secrets.token_hex(32),
                                                  created_at=time.time()))
                except IntegrityError:
                    pass  # made by another process
            with self._db.read() as conn:
                value = conn.execute(select(t.c.value).where(t.c.name == name)).scalar_one()
            self._secrets[name] = bytes.fromhex(value)
        return self._secrets[name]


def _count_upsert(is_mysql: bool) -> Executable:
    """One more hit for a scope in ``hour``; a row of an earlier hour starts again at 1."""
    c = schema.widget_counters
    if is_mysql:
        statement = mysql.insert(c)
        # MySQL assigns left to right: hits is decided before hour changes.
        return statement.on_duplicate_key_update([
            ("hits", func.if_(c.c.hour == statement.inserted.hour, c.c.hits + 1, 1)),
            ("hour", statement.inserted.hour),
        ])
    lite = sqlite.insert(c)
    return lite.on_conflict_do_update(index_elements=[c.c.scope], set_={
        "hits": case((c.c.hour == lite.excluded.hour, c.c.hits + 1), else_=1),
        "hour": lite.excluded.hour,
    })

"""Accounts: API keys (kept only as SHA-256), webhook secrets, credits and reservations.

Credits are minutes and never drop below 0: removing more than an account has leaves it at 0, and
the ledger row says what was actually removed. ``reserved`` (minutes held by running calls) is
separate and only moved by accepting and settling calls, so removing credits may leave
credits < reserved; that only means no new call is accepted until enough calls have ended.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, insert, or_, select, update

from c2c.store import ledger, schema
from c2c.store.db import Database

log = logging.getLogger(__name__)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    return secrets.token_urlsafe(24)  # 32 URL-safe characters, 192 bits


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    enabled: bool
    credits: int  # minutes
    reserved: int  # minutes held by calls in flight
    webhook_secret: str = field(repr=False)  # signs callbacks; never logged
    confirm: bool | None = None  # press 1 to connect: None follows C2C_CONFIRM
    own_numbers: frozenset[int] = frozenset()  # E.164 digits of the account's own numbers

    @property
    def available(self) -> int:
        return self.credits - self.reserved


class CreatedAccount(NamedTuple):
    """What `create` hands back once: the only time the api_key exists in clear."""

    id: int
    api_key: str
    webhook_secret: str

    def __repr__(self) -> str:
        return f"CreatedAccount(id={self.id})"


def account_from_row(row: Any) -> Account:
    return Account(
        id=int(row.id),
        name=row.name,
        enabled=bool(row.enabled),
        credits=int(row.credits),
        reserved=int(row.reserved),
        webhook_secret=row.webhook_secret,
    )


def key_or_id_clause(key_or_id: str | int) -> ColumnElement[bool]:
    """Match an account by numeric id or by api_key (a short all-digit string is tried as both)."""
    t = schema.accounts
    if isinstance(key_or_id, int):
        return t.c.id == key_or_id
    by_key = t.c.api_key_sha256 == hash_api_key(key_or_id)
    if key_or_id.isascii() and key_or_id.isdigit() and len(key_or_id) <= 18:
        return or_(t.c.id == int(key_or_id), by_key)
    return by_key


_COLUMNS = (
    schema.accounts.c.id,
    schema.accounts.c.name,
    schema.accounts.c.enabled,
    schema.accounts.c.credits,
    schema.accounts.c.reserved,
    schema.accounts.c.webhook_secret,
)


class Accounts:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str, credits: int = 0, *, now: float | None = None) -> CreatedAccount:
        """A new enabled account; returns its id, api_key and webhook secret (shown once)."""
        if credits < 0:
            raise ValueError("credits must not be negative")
        now = time.time() if now is None else now
        api_key, webhook_secret = new_api_key(), new_webhook_secret()
        with self._db.write() as conn:
            inserted = conn.execute(
                insert(schema.accounts).values(
                    name=name,
                    api_key_sha256=hash_api_key(api_key),
                    enabled=True,
                    credits=credits,
                    reserved=0,
                    webhook_secret=webhook_secret,
                    created_at=now,
                )
            )
            account_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            if credits:
                ledger.record_entries(conn, [ledger.entry(
                    account_id=account_id,
                    delta=credits,
                    balance_after=credits,
                    kind=ledger.LedgerKind.GRANT,
                    note="initial credits",
                    now=now,
                )])
        log.info("account %s created (%r) with %d credits", account_id, name, credits)
        return CreatedAccount(int(account_id), api_key, webhook_secret)

    def find_by_key(self, api_key: str) -> Account | None:
        """The account whose api_key this is (the request path: one indexed lookup)."""
        t = schema.accounts
        with self._db.read() as conn:
            row = conn.execute(
                select(*_COLUMNS).where(t.c.api_key_sha256 == hash_api_key(api_key))
            ).first()
        return account_from_row(row) if row else None

    def find(self, key_or_id: str | int) -> Account | None:
        """By numeric id or api_key (for the CLI)."""
        with self._db.read() as conn:
            return self._find(conn, key_or_id)

    def list(self) -> list[Account]:
        with self._db.read() as conn:
            rows = conn.execute(select(*_COLUMNS).order_by(schema.accounts.c.id)).all()
        return [account_from_row(row) for row in rows]

    def set_enabled(self, key_or_id: str | int, enabled: bool) -> Account | None:
        """Enable or disable; returns the account as it now is, None if there is none."""
        t = schema.accounts
        with self._db.write() as conn:
            account = self._find(conn, key_or_id, lock=True)
            if account is None:
                return None
            conn.execute(update(t).where(t.c.id == account.id).values(enabled=enabled))
        log.info("account %d %s", account.id, "enabled" if enabled else "disabled")
        return dataclasses.replace(account, enabled=enabled)

    def add_credits(
        self,
        key_or_id: str | int,
        minutes: int,
        *,
        note: str | None = None,
        now: float | None = None,
    ) -> Account | None:
        """Add (or with a negative number remove) credits, never below 0, with a ledger row.

        Returns the account after the change, None if there is no such account.
        """
        now = time.time() if now is None else now
        t = schema.accounts
        with self._db.write() as conn:
            account = self._find(conn, key_or_id, lock=True)
            if account is None:
                return None
            balance = max(account.credits + minutes, 0)
            delta = balance - account.credits
            if delta:
                conn.execute(update(t).where(t.c.id == account.id).values(credits=balance))
                ledger.record_entries(conn, [ledger.entry(
                    account_id=account.id,
                    delta=delta,
                    balance_after=balance,
                    kind=ledger.LedgerKind.GRANT if delta > 0 else ledger.LedgerKind.CORRECTION,
                    note=note,
                    now=now,
                )])
        log.info("account %d credits %+d -> %d", account.id, delta, balance)
        return dataclasses.replace(account, credits=balance)

    @staticmethod
    def _find(conn: Connection, key_or_id: str | int, lock: bool = False) -> Account | None:
        query = select(*_COLUMNS).where(key_or_id_clause(key_or_id)).order_by(schema.accounts.c.id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        return account_from_row(row) if row else None

"""Accounts: API keys (kept only as SHA-256), webhook secrets, credits and reservations.

Credits are exact decimals (c2c.domain.credits: a call costs its minutes at its rates, 1 credit
per minute by default) and never drop below 0: removing more than an account has leaves it at 0,
and the ledger row says what was actually removed. ``reserved`` (credits held by running calls) is
separate and only moved by accepting and settling calls, so removing credits may leave
credits < reserved; that only means no new call is accepted until enough calls have ended.

An Account as read carries its settings (``confirm``) and its own numbers (own_numbers.py
changes them), so the API's account cache has in one lookup all a request needs of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)

from c2c.domain.credits import format_credits, parse_credits
from c2c.store import ledger, schema
from c2c.store.db import Database

log = logging.getLogger(__name__)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def new_api_key() -> str:
    """32 URL-safe characters, 192 bits, never starting with '-': the operator passes keys to
    `c2c keys|numbers ... KEY_OR_ID`, where a leading '-' reads as an option."""
    while True:
        key = secrets.token_urlsafe(24)
        if not key.startswith("-"):
            return key


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    enabled: bool
    credits: Decimal
    reserved: Decimal  # held by calls in flight
    webhook_secret: str = field(repr=False)  # signs callbacks; never logged
    confirm: bool | None = None  # press 1 to connect: None follows C2C_CONFIRM
    own_numbers: frozenset[int] = frozenset()  # E.164 digits of the account's own numbers
    limits: KeyLimits = field(default_factory=lambda: KeyLimits())

    @property
    def available(self) -> Decimal:
        return self.credits - self.reserved


@dataclass(frozen=True)
class KeyLimits:
    """An account's limits (None: unlimited): calls in flight at once, calls accepted per clock
    minute, credits per UTC day, and the client networks it may call from (CIDR text)."""

    max_concurrent: int | None = None
    max_per_minute: int | None = None
    daily_credits: Decimal | None = None
    allow_ips: tuple[str, ...] = ()


class CreatedAccount(NamedTuple):
    """What `create` hands back once: the only time the api_key exists in clear."""

    id: int
    api_key: str
    webhook_secret: str

    def __repr__(self) -> str:
        return f"CreatedAccount(id={self.id})"


def account_from_row(row: Any, own_numbers: Iterable[int] = ()) -> Account:
    return Account(
        id=int(row.id),
        name=row.name,
        enabled=bool(row.enabled),
        credits=Decimal(row.credits),
        reserved=Decimal(row.reserved),
        webhook_secret=row.webhook_secret,
        confirm=None if row.confirm is None else bool(row.confirm),
        own_numbers=frozenset(int(n) for n in own_numbers),
        limits=KeyLimits(
            max_concurrent=row.max_concurrent,
            max_per_minute=row.max_per_minute,
            daily_credits=row.daily_credits,
            allow_ips=tuple(n for n in (row.allow_ips or "").split(",") if n),
        ),
    )


def accounts_from_joined_rows(rows: Iterable[Any]) -> list[Account]:
    """Fold rows of _with_numbers (an account's columns once per own number, or once with
    number NULL) into accounts, in the order they first appear."""
    found: dict[int, tuple[Any, list[int]]] = {}
    for row in rows:
        _, numbers = found.setdefault(int(row.id), (row, []))
        if row.number is not None:
            numbers.append(row.number)
    return [account_from_row(row, numbers) for row, numbers in found.values()]


def own_numbers_of(conn: Connection, account_id: int) -> list[int]:
    n = schema.account_numbers
    return list(conn.execute(select(n.c.number).where(n.c.account_id == account_id)).scalars())


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
    schema.accounts.c.confirm,
    schema.accounts.c.max_concurrent,
    schema.accounts.c.max_per_minute,
    schema.accounts.c.daily_credits,
    schema.accounts.c.allow_ips,
)


def _with_numbers(where: ColumnElement[bool] | None = None) -> Select[Any]:
    """Accounts (matching ``where``) with their own numbers beside them, in one query: the
    account cache's lookup stays one round trip (the key's unique index, then a primary-key
    range of account_numbers)."""
    a, n = schema.accounts, schema.account_numbers
    query = select(*_COLUMNS, n.c.number).select_from(a.outerjoin(n, n.c.account_id == a.c.id))
    return (query if where is None else query.where(where)).order_by(a.c.id)


# Built once: find_by_key is what the API calls for a key its account cache does not hold. A key
# replaced by `c2c keys rotate` matches too until its grace period ends.
_BY_KEY = _with_numbers(or_(
    schema.accounts.c.api_key_sha256 == bindparam("key_sha256"),
    and_(schema.accounts.c.previous_api_key_sha256 == bindparam("key_sha256"),
         schema.accounts.c.previous_key_until > bindparam("now")),
))


class RotatedKey(NamedTuple):
    """What `rotate` hands back once: the new api_key, and the new webhook secret if asked."""

    id: int
    api_key: str
    webhook_secret: str | None

    def __repr__(self) -> str:
        return f"RotatedKey(id={self.id})"


class Accounts:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str, credits: Decimal | int | str = 0, *,
               now: float | None = None) -> CreatedAccount:
        """A new enabled account; returns its id, api_key and webhook secret (shown once)."""
        credits = parse_credits(credits)
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
                    active_calls=0,
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
        log.info("account %s created (%r) with %s credits", account_id, name,
                 format_credits(credits))
        return CreatedAccount(int(account_id), api_key, webhook_secret)

    def find_by_key(self, api_key: str, *, now: float | None = None) -> Account | None:
        """The account whose api_key this is (or was, within a rotation's grace period), with
        its own numbers (the request path, behind the account cache: one query, by the indexes
        on the key's hashes)."""
        now = time.time() if now is None else now
        with self._db.read() as conn:
            accounts = accounts_from_joined_rows(
                conn.execute(_BY_KEY, {"key_sha256": hash_api_key(api_key), "now": now}))
        return accounts[0] if accounts else None

    def rotate(self, key_or_id: str | int, *, grace_seconds: float = 0,
               webhook_secret: bool = False, now: float | None = None) -> RotatedKey | None:
        """A new api_key (and with ``webhook_secret`` a new secret); the replaced ones keep
        working until ``now + grace_seconds`` (a key replaced earlier is forgotten at once).
        None if there is no such account."""
        now = time.time() if now is None else now
        t = schema.accounts
        api_key = new_api_key()
        with self._db.write() as conn:
            row = conn.execute(select(t.c.id, t.c.api_key_sha256, t.c.webhook_secret)
                               .where(key_or_id_clause(key_or_id)).order_by(t.c.id)
                               .with_for_update()).first()
            if row is None:
                return None
            values: dict[str, Any] = {
                "api_key_sha256": hash_api_key(api_key),
                "previous_api_key_sha256": row.api_key_sha256 if grace_seconds > 0 else None,
                "previous_key_until": now + grace_seconds if grace_seconds > 0 else None,
            }
            secret = None
            if webhook_secret:
                secret = new_webhook_secret()
                values.update(
                    webhook_secret=secret,
                    previous_webhook_secret=row.webhook_secret if grace_seconds > 0 else None,
                    previous_secret_until=now + grace_seconds if grace_seconds > 0 else None,
                )
            conn.execute(update(t).where(t.c.id == row.id).values(**values))
        log.info("account %d: api_key%s rotated, the old one valid for %ss", row.id,
                 " and webhook secret" if webhook_secret else "", grace_seconds)
        return RotatedKey(int(row.id), api_key, secret)

    def set_limits(self, key_or_id: str | int, **limits: Any) -> Account | None:
        """Set some of an account's limits (KeyLimits' fields; None: unlimited). Returns the
        account as it now is, None if there is none. Requests see it within
        C2C_ACCOUNT_CACHE_SECONDS for --allow-ip; the accept reads the others under its lock."""
        unknown = set(limits) - {f.name for f in dataclasses.fields(KeyLimits)}
        if unknown:
            raise ValueError(f"no such limit: {', '.join(sorted(unknown))}")
        if not limits:
            return self.find(key_or_id)
        columns = dict(limits)
        if "allow_ips" in columns:
            columns["allow_ips"] = ",".join(columns["allow_ips"] or ()) or None
        account = self._set(key_or_id, **columns)
        if account is None:
            return None
        changed: dict[str, Any] = {k: (tuple(v or ()) if k == "allow_ips" else v)
                                   for k, v in limits.items()}
        account = dataclasses.replace(account, limits=dataclasses.replace(account.limits,
                                                                          **changed))
        log.info("account %d limits: %s", account.id, account.limits)
        return account

    def find(self, key_or_id: str | int) -> Account | None:
        """By numeric id or api_key (for the CLI)."""
        with self._db.read() as conn:
            accounts = accounts_from_joined_rows(
                conn.execute(_with_numbers(key_or_id_clause(key_or_id))))
        return accounts[0] if accounts else None

    def list(self) -> list[Account]:
        with self._db.read() as conn:
            return accounts_from_joined_rows(conn.execute(_with_numbers()))

    def set_enabled(self, key_or_id: str | int, enabled: bool) -> Account | None:
        """Enable or disable; returns the account as it now is, None if there is none."""
        account = self._set(key_or_id, enabled=enabled)
        if account is not None:
            log.info("account %d %s", account.id, "enabled" if enabled else "disabled")
        return account

    def set_confirm(self, key_or_id: str | int, confirm: bool | None) -> Account | None:
        """Press 1 to connect for this account's calls: on (True), off (False), or None to
        follow the operator's C2C_CONFIRM. Returns the account as it now is, None if there is
        none. (The API's account cache sees it within C2C_ACCOUNT_CACHE_SECONDS.)"""
        account = self._set(key_or_id, confirm=confirm)
        if account is not None:
            log.info("account %d confirm %s", account.id,
                     "default" if confirm is None else "on" if confirm else "off")
        return account

    def _set(self, key_or_id: str | int, **values: Any) -> Account | None:
        """Set columns of one account; the account after the change, None if there is none."""
        t = schema.accounts
        with self._db.write() as conn:
            account = self.find_in(conn, key_or_id, lock=True)
            if account is None:
                return None
            conn.execute(update(t).where(t.c.id == account.id).values(**values))
        fields = {f.name for f in dataclasses.fields(Account)}
        return dataclasses.replace(account, **{k: v for k, v in values.items() if k in fields})

    def add_credits(
        self,
        key_or_id: str | int,
        amount: Decimal | int | str,
        *,
        note: str | None = None,
        now: float | None = None,
    ) -> Account | None:
        """Add (or with a negative amount remove) credits, never below 0, with a ledger row.

        Returns the account after the change, None if there is no such account.
        """
        amount = parse_credits(amount)
        now = time.time() if now is None else now
        t = schema.accounts
        with self._db.write() as conn:
            account = self.find_in(conn, key_or_id, lock=True)
            if account is None:
                return None
            balance = max(account.credits + amount, Decimal(0))
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
        log.info("account %d credits %s -> %s", account.id,
                 ("+" if delta >= 0 else "") + format_credits(delta), format_credits(balance))
        return dataclasses.replace(account, credits=balance)

    @staticmethod
    def find_in(conn: Connection, key_or_id: str | int, lock: bool = False) -> Account | None:
        """find() inside a transaction of the caller's; with ``lock`` the account's row is
        locked (its numbers are read apart: a locking read of the join would lock them too, and
        MariaDB has no FOR UPDATE OF)."""
        query = select(*_COLUMNS).where(key_or_id_clause(key_or_id)).order_by(schema.accounts.c.id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        return account_from_row(row, own_numbers_of(conn, int(row.id))) if row else None

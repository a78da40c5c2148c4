"""Idempotent requests: per account and key, what the first request with that key answered.

One row per (account, key). The first request inserts it with ``code`` NULL (in progress) and the
call id it will use should it place a call; the primary key lets exactly one of any number of
concurrent duplicates, across workers and hosts, insert it, and the others read it. The winner
then records its answer (``record``), or, for an answer that is not kept, deletes the row
(``release``) so the key is free again. The claim is its own short transaction, committed before
anything is placed: a duplicate waiting for the first never waits on a lock, only on the row's
``code``.

A claim nobody answered for a long time (its worker died mid-request, or the store failed as it
recorded) is resolved from the calls table, the truth about what was placed: a call row with the
claim's call id means the call was accepted, and the key answers 0 with it; no call row means
nothing was placed, and the next request with the key places it. The caller (c2c.calls.idempotent)
chooses how old "a long time" is, and how old a row may be before it no longer counts at all.

Keys are stored as their SHA-256: MariaDB's utf8mb4 collations compare case- and trailing-space-
insensitively, so 'abc' and 'ABC ' would be one key there and two on SQLite; a hex digest is the
same on both, and a customer's key (which may be anything printable) never sits in the table.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    delete,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from c2c.store import schema
from c2c.store.db import Database

log = logging.getLogger(__name__)

# A claim is re-read and re-tried at most this often when other requests change its row in
# between (each change is another request answering or taking over): then it counts as busy.
CLAIM_ATTEMPTS = 3


class KeyState(enum.Enum):
    CLAIMED = "claimed"  # ours: place the call, then record or release
    ANSWERED = "answered"  # an earlier request with these parameters answered: replay it
    MISMATCH = "mismatch"  # the key was used with other parameters (code 4)
    IN_PROGRESS = "in_progress"  # an earlier request with these parameters is still at it
    FREE = "free"  # (peek only) nothing that counts: claim it


@dataclass(frozen=True)
class KeyAnswer:
    state: KeyState
    code: int | None = None
    call_id: str | None = None  # CLAIMED: the call id to place with; ANSWERED: the answer's


@dataclass(frozen=True)
class KeyTimes:
    """The moments that decide what a row still counts for."""

    now: float
    expired_before: float  # a row created before this is forgotten: as if absent
    stale_before: float  # an unanswered claim created before this was abandoned


def key_digest(key: str) -> str:
    """What the table stores for a customer's key (see the module's docstring)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


class IdempotencyKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, account_id: int, key: str, params_sha256: str, call_id: str,
              times: KeyTimes) -> KeyAnswer:
        """Take the key for a request with these parameters that would place ``call_id``, or
        say what holds it (never FREE). A stale or expired row is resolved or taken over here;
        IN_PROGRESS means an earlier request is at it, or the row kept changing under us."""
        digest = key_digest(key)
        for _ in range(CLAIM_ATTEMPTS):
            if self._insert(account_id, digest, params_sha256, call_id, times.now):
                return KeyAnswer(KeyState.CLAIMED, call_id=call_id)
            row = self._row(account_id, digest)
            if row is None:
                continue  # released between our insert and our read
            if row.created_at < times.expired_before:
                if self._take_over(account_id, digest, row, params_sha256, call_id, times.now):
                    return KeyAnswer(KeyState.CLAIMED, call_id=call_id)
                continue
            if row.code is None and row.created_at < times.stale_before:
                answer = self._resolve_abandoned(account_id, digest, row, params_sha256,
                                                 call_id, times.now)
                if answer is not None:
                    return answer
                continue
            return _judge(row, params_sha256)
        return KeyAnswer(KeyState.IN_PROGRESS)

    def peek(self, account_id: int, key: str, params_sha256: str, times: KeyTimes) -> KeyAnswer:
        """What the key holds, read only: FREE when absent, expired or abandoned (claim it)."""
        row = self._row(account_id, key_digest(key))
        if row is None or row.created_at < times.expired_before:
            return KeyAnswer(KeyState.FREE)
        if row.code is None and row.created_at < times.stale_before:
            return KeyAnswer(KeyState.FREE)
        return _judge(row, params_sha256)

    def record(self, account_id: int, key: str, claimed_call_id: str, code: int,
               call_id: str | None, now: float) -> bool:
        """Keep the answer of the request that claimed the key with ``claimed_call_id``; False
        when the claim is no longer its own (it was resolved or taken over meanwhile)."""
        t = schema.idempotency_keys
        with self._db.write() as conn:
            return bool(conn.execute(
                update(t)
                .where(*_pk(account_id, key_digest(key)), t.c.call_id == claimed_call_id,
                       t.c.code.is_(None))
                .values(code=code, call_id=call_id, answered_at=now)
            ).rowcount)

    def release(self, account_id: int, key: str, claimed_call_id: str) -> bool:
        """Free the key after an answer that is not kept. A claim whose call row exists is left
        alone: something was placed after all, and resolving the abandoned claim says so."""
        t, c = schema.idempotency_keys, schema.calls
        with self._db.write() as conn:
            return bool(conn.execute(
                delete(t).where(
                    *_pk(account_id, key_digest(key)),
                    t.c.call_id == claimed_call_id,
                    t.c.code.is_(None),
                    ~exists().where(c.c.id == claimed_call_id),
                )
            ).rowcount)

    def prune(self, before: float) -> int:
        """Delete keys created before ``before`` (they no longer count); returns how many."""
        t = schema.idempotency_keys
        with self._db.write() as conn:
            return conn.execute(delete(t).where(t.c.created_at < before)).rowcount

    # -- steps of a claim ----------------------------------------------------------------------

    def _insert(self, account_id: int, digest: str, params_sha256: str, call_id: str,
                now: float) -> bool:
        # Its own transaction: on MySQL a duplicate-key error leaves a shared lock on the row
        # until the transaction ends, and duplicates that went on to write it would deadlock.
        t = schema.idempotency_keys
        with self._db.write() as conn:
            try:
                conn.execute(insert(t).values(
                    account_id=account_id, idem_key=digest, params_sha256=params_sha256,
                    code=None, call_id=call_id, created_at=now, answered_at=None))
            except IntegrityError:
                return False  # taken: its first request committed it (MySQL waited for that)
        return True

    def _row(self, account_id: int, digest: str) -> Row | None:
        t = schema.idempotency_keys
        with self._db.read() as conn:
            return conn.execute(select(t).where(*_pk(account_id, digest))).first()

    def _take_over(self, account_id: int, digest: str, old: Row, params_sha256: str,
                   call_id: str, now: float) -> bool:
        """Make a row that no longer counts ours, unless another request changed it since we
        read it (its created_at is the generation)."""
        with self._db.write() as conn:
            return _replace(conn, account_id, digest, old, params_sha256, call_id, now)

    def _resolve_abandoned(self, account_id: int, digest: str, old: Row, params_sha256: str,
                           call_id: str, now: float) -> KeyAnswer | None:
        """An unanswered claim past the stale bound: answered 0 if its call was accepted, else
        ours. None when another request changed the row first (read it again)."""
        t, c = schema.idempotency_keys, schema.calls
        with self._db.write() as conn:
            placed = conn.execute(select(c.c.id).where(c.c.id == old.call_id)).first()
            if placed is None:
                if not _replace(conn, account_id, digest, old, params_sha256, call_id, now):
                    return None
                log.warning("idempotency key of account %d: an abandoned request placed "
                            "nothing; taken over by call %s", account_id, call_id)
                return KeyAnswer(KeyState.CLAIMED, call_id=call_id)
            answered = conn.execute(
                update(t)
                .where(*_pk(account_id, digest), t.c.created_at == old.created_at,
                       t.c.code.is_(None))
                .values(code=0, answered_at=now)
            ).rowcount
        if not answered:
            return None
        log.warning("idempotency key of account %d: an abandoned request had placed call %s; "
                    "recorded as its answer", account_id, old.call_id)
        if old.params_sha256 != params_sha256:
            return KeyAnswer(KeyState.MISMATCH)
        return KeyAnswer(KeyState.ANSWERED, code=0, call_id=old.call_id)


def _pk(account_id: int, digest: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    t = schema.idempotency_keys
    return (t.c.account_id == account_id, t.c.idem_key == digest)


def _replace(conn: Connection, account_id: int, digest: str, old: Row, params_sha256: str,
             call_id: str, now: float) -> bool:
    t = schema.idempotency_keys
    guard = [t.c.created_at == old.created_at]
    if old.code is None:
        guard.append(t.c.code.is_(None))
    else:
        guard.append(t.c.code == old.code)
    return bool(conn.execute(
        update(t)
        .where(*_pk(account_id, digest), and_(*guard))
        .values(params_sha256=params_sha256, code=None, call_id=call_id, created_at=now,
                answered_at=None)
    ).rowcount)


def _judge(row: Row, params_sha256: str) -> KeyAnswer:
    """A row that counts: the same parameters get its answer (or wait for it), others 4."""
    if row.params_sha256 != params_sha256:
        return KeyAnswer(KeyState.MISMATCH)
    if row.code is None:
        return KeyAnswer(KeyState.IN_PROGRESS)
    return KeyAnswer(KeyState.ANSWERED, code=int(row.code), call_id=row.call_id)

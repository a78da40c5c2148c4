"""An account's own numbers (its sales lines), as E.164 digits.

In that account's requests an own number, as caller or callee, is exempt from flood protection (a
business's line is called by many visitors a minute; DESIGN.md section 2); the Do-Not-Call list
still applies to it. With C2C_CALLER_ID_POLICY=own they are also the only caller IDs the account
may send. The API reads them with the account (Accounts.find_by_key), through its short-lived
account cache, so a change here takes effect within C2C_ACCOUNT_CACHE_SECONDS.

Adding a number the account already has, or removing one it does not have, changes nothing and
says so (``changed`` False): the CLI reports it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import delete, insert, select

from c2c.store import schema
from c2c.store.accounts import Account, Accounts
from c2c.store.db import Database

log = logging.getLogger(__name__)

# E.164: at most 15 digits; the API's shortest number is a 1-digit country code and 4 digits.
SMALLEST = 10_000
LARGEST = 10**15 - 1


def check_number(number: int) -> int:
    """``number`` if it can be E.164 digits, else ValueError (a caller's mistake, not the data's)."""
    if isinstance(number, bool) or not isinstance(number, int) or not SMALLEST <= number <= LARGEST:
        raise ValueError(f"{number!r} is not E.164 digits (5 to 15 digits, no leading zero)")
    return number


@dataclass(frozen=True)
class OwnNumber:
    number: int  # E.164 digits
    created_at: float

    @property
    def e164(self) -> str:
        return f"+{self.number}"


class OwnNumberChange(NamedTuple):
    """What add or remove did: the account as it now is, and whether the number was added
    (removed), False when it already was (was not) one of the account's."""

    account: Account
    number: int
    changed: bool


class AccountNumbers(NamedTuple):
    account: Account
    numbers: list[OwnNumber]  # by number


class OwnNumbers:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self, key_or_id: str | int, number: int, *, now: float | None = None
    ) -> OwnNumberChange | None:
        """Make ``number`` (E.164 digits) one of the account's own; None if there is no such
        account. Harmless when it already is one (``changed`` False)."""
        check_number(number)
        now = time.time() if now is None else now
        n = schema.account_numbers
        with self._db.write() as conn:
            # The account's row is locked, so two adds of one number cannot both insert it.
            account = Accounts.find_in(conn, key_or_id, lock=True)
            if account is None:
                return None
            if number in account.own_numbers:
                return OwnNumberChange(account, number, False)
            conn.execute(insert(n).values(account_id=account.id, number=number, created_at=now))
        log.info("account %d: own number +%d added", account.id, number)
        numbers = account.own_numbers | {number}
        return OwnNumberChange(dataclasses.replace(account, own_numbers=numbers), number, True)

    def remove(self, key_or_id: str | int, number: int) -> OwnNumberChange | None:
        """Make ``number`` no longer one of the account's own; None if there is no such account,
        ``changed`` False if it was not one of them."""
        check_number(number)
        n = schema.account_numbers
        with self._db.write() as conn:
            account = Accounts.find_in(conn, key_or_id, lock=True)
            if account is None:
                return None
            deleted = conn.execute(
                delete(n).where(n.c.account_id == account.id, n.c.number == number)
            ).rowcount
        if not deleted:
            return OwnNumberChange(account, number, False)
        log.info("account %d: own number +%d removed", account.id, number)
        numbers = account.own_numbers - {number}
        return OwnNumberChange(dataclasses.replace(account, own_numbers=numbers), number, True)

    def list(self, key_or_id: str | int) -> AccountNumbers | None:
        """The account's own numbers, with when each was added; None if there is no such
        account."""
        n = schema.account_numbers
        with self._db.read() as conn:
            account = Accounts.find_in(conn, key_or_id)
            if account is None:
                return None
            rows = conn.execute(
                select(n.c.number, n.c.created_at)
                .where(n.c.account_id == account.id)
                .order_by(n.c.number)
            ).all()
        return AccountNumbers(account, [OwnNumber(int(r.number), float(r.created_at)) for r in rows])

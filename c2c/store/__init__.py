"""The store: every durable fact of c2c, in SQLite (one host) or MySQL/MariaDB (many hosts).

``Store(engine)`` is the facade the rest of c2c uses; each concern has its own module and object:

- ``store.accounts`` (accounts.py): keys, enablement, credits;
- ``store.own_numbers`` (own_numbers.py): an account's own numbers (exempt from its flood checks);
- ``store.ledger`` (ledger.py): credit history and consistency checks;
- ``store.dnc`` (dnc.py): the Do-Not-Call list and its bulk import;
- ``store.coverage`` (coverage.py): supported countries and areas, cached briefly;
- ``store.calls`` (calls.py): call rows, forward-only state changes, settlement;
- ``store.call_views`` (call_views.py): the customer's reads of its calls (one, or a page);
- ``store.callbacks`` (callbacks.py): the callback outbox;
- ``store.progress`` (progress.py): the progress webhooks outbox, in order per call;
- ``store.leases`` (leases.py): who listens to which switch;
- ``store.switch_states`` (switch_states.py): drain flags and the event holders' reports;
- ``store.idempotency`` (idempotency.py): idempotent requests' keys and what they answered;
- ``store.widgets`` (widgets.py): publishable widgets, their abuse counters, spent challenges;
- ``store.accept_call`` / ``cancel_call`` / ``prune_flood`` (accept.py): the one transaction that
  reserves credit, stamps flood protection and records a call; ``move_call`` and
  ``record_originate_error``, the two sides of sending a refused call to another switch.

Every method runs its own short transaction and raises c2c.errors.StoreError when the database
fails (RequestRejected from accept_call is the request's fault, not the store's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine, text

from c2c.errors import RequestRejected
from c2c.store import migrations
from c2c.store.accept import (
    FLAT_PRICING,
    AcceptedCall,
    Move,
    NewCall,
    Pricing,
    accept_call,
    accept_calls,
    cancel_call,
    move_call,
    prune_flood,
    record_originate_error,
)
from c2c.store.accounts import Account, Accounts, CreatedAccount
from c2c.store.call_views import CallViews
from c2c.store.callbacks import CallbackJob, Callbacks, CallbackStatus
from c2c.store.calls import Calls, Outcome, SettledOutcome
from c2c.store.coverage import Coverage, CoverageRules
from c2c.store.db import Database
from c2c.store.dnc import Dnc, DncImportResult
from c2c.store.engine import make_engine
from c2c.store.idempotency import IdempotencyKeys
from c2c.store.leases import Lease, Leases
from c2c.store.ledger import Ledger, LedgerProblem
from c2c.store.own_numbers import OwnNumbers
from c2c.store.progress import Progress, ProgressJob, ProgressStatus, Report
from c2c.store.rates import Rates
from c2c.store.reports import Reports
from c2c.store.switch_states import SwitchStates
from c2c.store.widgets import Widgets

__all__ = [
    "Account",
    "AcceptedCall",
    "CallbackJob",
    "CallbackStatus",
    "CoverageRules",
    "CreatedAccount",
    "DncImportResult",
    "Lease",
    "LedgerProblem",
    "Move",
    "NewCall",
    "Pricing",
    "Outcome",
    "ProgressJob",
    "ProgressStatus",
    "Report",
    "SettledOutcome",
    "Store",
    "make_engine",
]


class Store:
    def __init__(self, engine: Engine, coverage_cache_seconds: float = 5.0) -> None:
        self.engine = engine
        self._db = Database(engine)
        self.accounts = Accounts(self._db)
        self.own_numbers = OwnNumbers(self._db)
        self.ledger = Ledger(self._db)
        self.dnc = Dnc(self._db)
        self.coverage = Coverage(self._db, cache_seconds=coverage_cache_seconds)
        self.rates = Rates(self._db)
        self.reports = Reports(self._db)
        self.calls = Calls(self._db)
        self.call_views = CallViews(self._db)
        self.callbacks = Callbacks(self._db)
        self.progress = Progress(self._db)
        self.leases = Leases(self._db)
        self.switch_states = SwitchStates(self._db)
        self.idempotency = IdempotencyKeys(self._db)
        self.widgets = Widgets(self._db)

    @classmethod
    def from_url(cls, url: str) -> Store:
        """A store on a new engine (no connection is opened until first use)."""
        return cls(make_engine(url))

    def accept_call(
        self,
        account_id: int,
        call: NewCall,
        *,
        flood_seconds: int,
        max_call_minutes: int,
        ring_timeout: int,
        settle_grace: int,
        now: float,
        pricing: Pricing = FLAT_PRICING,
    ) -> AcceptedCall:
        """Reserve credit, stamp flood protection and record the call, all or nothing.

        Raises RequestRejected 1 (no such account), 5 (disabled), 2 (no available minute) or 6
        (a number used within flood_seconds). See accept.py.
        """
        return accept_call(
            self._db,
            account_id,
            call,
            flood_seconds=flood_seconds,
            max_call_minutes=max_call_minutes,
            ring_timeout=ring_timeout,
            settle_grace=settle_grace,
            now=now,
            pricing=pricing,
        )

    def accept_calls(
        self,
        account_id: int,
        calls: Sequence[tuple[NewCall, float]],
        *,
        flood_seconds: int,
        max_call_minutes: int,
        ring_timeout: int,
        settle_grace: int,
        pricing: Pricing = FLAT_PRICING,
    ) -> list[AcceptedCall | RequestRejected]:
        """accept_call for several calls of one account (each with its ``now``) in one
        transaction: each call's result, or its rejection, in order. See accept.py."""
        return accept_calls(
            self._db,
            account_id,
            calls,
            flood_seconds=flood_seconds,
            max_call_minutes=max_call_minutes,
            ring_timeout=ring_timeout,
            settle_grace=settle_grace,
            pricing=pricing,
        )

    def cancel_call(self, call_id: str) -> bool:
        """Undo the accept of a call still 'queued' whose originate never reached a switch."""
        return cancel_call(self._db, call_id)

    def move_call(self, call_id: str, from_job_uuid: str, move: Move, *,
                  recheck_at: float) -> bool:
        """Point a queued call with no trace of a caller leg at another switch, with fresh
        ids, while it is still on ``from_job_uuid``; returns whether it moved. See accept.py."""
        return move_call(self._db, call_id, from_job_uuid, move, recheck_at=recheck_at)

    def record_originate_error(self, call_id: str, job_uuid: str, cause: str) -> bool:
        """Record a job's -ERR cause on the call while it is still on that job (then it can no
        longer move); returns whether it is. See accept.py."""
        return record_originate_error(self._db, call_id, job_uuid, cause)

    def prune_flood(self, before: float) -> int:
        """Delete flood stamps older than ``before``; returns how many."""
        return prune_flood(self._db, before)

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """The store calls this greenlet makes in the block share one transaction (Database.grouped):
        all committed together, or none."""
        with self._db.grouped():
            yield

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once this greenlet's writes are committed (at once outside a group)."""
        self._db.after_commit(hook)

    def upgrade(self) -> list[int]:
        """Create or upgrade the schema; returns the versions applied."""
        return migrations.upgrade(self.engine)

    def is_current(self) -> bool:
        """Whether the schema is at the version this code expects."""
        return migrations.check_current(self.engine)

    def ping(self) -> None:
        """A round trip to the database; raises StoreError when it is unreachable."""
        with self._db.read() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close pooled connections (at shutdown, or in a child after fork)."""
        self.engine.dispose()

"""The tables, as SQLAlchemy Core metadata: the same schema on SQLite and MySQL/MariaDB.

Times are Unix seconds as DOUBLE (portable, no time-zone games). Phone numbers in E.164 are kept as
BIGINT digits without the '+' (15 digits fit; the DNC list holds millions, so the key stays small).
States and reasons are short strings/ints; see c2c.domain.states.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from c2c.domain.credits import from_micro, parse_credits, to_micro

metadata = MetaData()


class Credits(TypeDecorator[Decimal]):
    """An exact amount of credits (c2c.domain.credits), kept as an integer of micro-credits:
    BIGINT on MySQL, INTEGER (64-bit) on SQLite, so sums and comparisons in SQL stay exact on
    both. Binds an int, a Decimal or decimal text; reads a Decimal."""

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(Integer() if dialect.name == "sqlite" else BigInteger())

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else to_micro(parse_credits(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_micro(int(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal

# InnoDB (row locks, SKIP LOCKED) and utf8mb4 whatever the server's defaults are; ignored by SQLite.
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

# Times: Float maps to DOUBLE on MySQL (53-bit mantissa: microseconds for centuries).
Time = Float(precision=53)

schema_version = Table(
    "c2c_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", Time, nullable=False),
    **MYSQL,
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("api_key_sha256", String(64), nullable=False, unique=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("credits", Credits, nullable=False, default=0),
    Column("reserved", Credits, nullable=False, default=0),  # held by running calls
    Column("webhook_secret", String(64), nullable=False),
    Column("created_at", Time, nullable=False),
    # Press 1 to connect for this key's calls: NULL follows C2C_CONFIRM, else on/off.
    Column("confirm", Boolean, nullable=True),
    # Limits of the key (issue 14; NULL: unlimited): calls in flight at once, calls accepted per
    # clock minute, credits reserved per UTC day, and the client addresses it may call from
    # (comma-separated CIDRs).
    Column("max_concurrent", Integer, nullable=True),
    Column("max_per_minute", Integer, nullable=True),
    Column("daily_credits", Credits, nullable=True),
    Column("allow_ips", String(1000), nullable=True),
    # The counters the limits are checked against, kept on the row the accept locks anyway, so
    # they are exact across workers and hosts: calls not yet ended; calls accepted in clock
    # minute ``minute_window`` (Unix seconds // 60); credits reserved, less what settled calls
    # did not use, in UTC day ``credits_day`` (Unix seconds // 86400).
    Column("active_calls", Integer, nullable=True),
    Column("minute_window", Integer, nullable=True),
    Column("minute_count", Integer, nullable=True),
    Column("credits_day", Integer, nullable=True),
    Column("day_credits", Credits, nullable=True),
    # Key rotation: the replaced key (and webhook secret) keep working until these times.
    Column("previous_api_key_sha256", String(64), nullable=True),
    Column("previous_key_until", Time, nullable=True),
    Column("previous_webhook_secret", String(64), nullable=True),
    Column("previous_secret_until", Time, nullable=True),
    Index("ix_accounts_previous_key", "previous_api_key_sha256"),
    **MYSQL,
)

# Rates (issue 14): credits per started minute of a leg to numbers under an E.164 prefix (digits
# without '+'); the longest prefix that matches a number decides. No row: C2C_DEFAULT_RATE.
rates = Table(
    "rates",
    metadata,
    Column("prefix", String(15), primary_key=True),
    Column("rate", Credits, nullable=False),
    Column("description", String(200), nullable=True),
    Column("updated_at", Time, nullable=False),
    **MYSQL,
)

# The account's own numbers (its sales lines), E.164 digits: exempt from flood protection in that
# account's requests, and with C2C_CALLER_ID_POLICY=own the only caller IDs it may send.
account_numbers = Table(
    "account_numbers",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True,
           autoincrement=False),
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at", Time, nullable=False),
    **MYSQL,
)

# Every change to an account's credits, written in the same transaction as the change.
ledger = Table(
    "ledger",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("delta", Credits, nullable=False),
    Column("balance_after", Credits, nullable=False),
    Column("kind", String(16), nullable=False),  # grant, debit, correction
    Column("call_id", String(36), nullable=True),
    Column("note", String(200), nullable=True),
    Column("created_at", Time, nullable=False),
    # A correction of a call's estimated minutes (kind 'correction'): the call it corrects. Its
    # own column, not call_id, so that call_id still means "the call's one debit".
    Column("corrects", String(36), nullable=True),
    # The rates the call's debit or correction was charged at (credits per minute of the
    # callee's talk; of the caller's leg, when billed).
    Column("rate", Credits, nullable=True),
    Column("caller_rate", Credits, nullable=True),
    Index("ix_ledger_account", "account_id"),
    Index("ix_ledger_created", "created_at"),  # reports by period
    UniqueConstraint("call_id", name="uq_ledger_call"),  # a call is debited at most once
    Index("uq_ledger_corrects", "corrects", unique=True),  # and corrected at most once
    **MYSQL,
)

dnc = Table(
    "dnc",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),  # E.164 digits
    sqlite_with_rowid=False,  # the key is the row: half the size of a rowid table plus index
    **MYSQL,
)

coverage_countries = Table(
    "coverage_countries",
    metadata,
    Column("country_code", String(3), primary_key=True),
    Column("allowed", Boolean, nullable=False),
    **MYSQL,
)

# Per-country area rules; the longest matching prefix decides. A country with any "allow" rule
# admits only the areas that match one.
coverage_areas = Table(
    "coverage_areas",
    metadata,
    Column("country_code", String(3), primary_key=True),
    Column("prefix", String(14), primary_key=True),
    Column("allowed", Boolean, nullable=False),
    **MYSQL,
)

flood = Table(
    "flood",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),  # E.164 digits
    Column("stamped_at", Time, nullable=False),
    sqlite_with_rowid=False,
    **MYSQL,
)

calls = Table(
    "calls",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("caller_country_code", String(3), nullable=False),
    Column("caller_number", String(14), nullable=False),
    Column("callee_country_code", String(3), nullable=False),
    Column("callee_number", String(14), nullable=False),
    Column("caller_id", String(15), nullable=False),
    Column("callback_url", String(2048), nullable=True),
    Column("secret", String(30), nullable=False, default=""),
    Column("max_minutes", Integer, nullable=False),  # reserved minutes = hard time limit
    Column("switch", String(255), nullable=False),
    Column("job_uuid", String(36), nullable=False),
    Column("caller_uuid", String(36), nullable=False),
    Column("callee_uuid", String(36), nullable=False),
    Column("answered", Boolean, nullable=True),
    Column("minutes", Integer, nullable=True),
    Column("reason", SmallInteger, nullable=True),  # None when answered
    Column("billsec", Integer, nullable=True),
    Column("caller_hangup_cause", String(64), nullable=True),
    Column("callee_hangup_cause", String(64), nullable=True),
    Column("caller_sip_status", String(8), nullable=True),
    Column("callee_sip_status", String(8), nullable=True),
    Column("caller_gone_at", Time, nullable=True),
    Column("callee_gone_at", Time, nullable=True),
    Column("originate_error", String(64), nullable=True),
    # From the caller leg's originate_disposition / last_bridge_hangup_cause: the callee's fate
    # when its channel never existed (no events of its own).
    Column("callee_fate", String(64), nullable=True),
    # Press 1 to connect: NULL when not asked; 'required' from the accept; 'confirmed' once the
    # caller pressed the key (the callee was dialed); 'unconfirmed' when the caller never did.
    Column("confirm", String(12), nullable=True),
    # When the caller is gone but the callee's end has not been seen: look again at this time.
    Column("recheck_at", Time, nullable=True),
    Column("created_at", Time, nullable=False),
    Column("caller_answered_at", Time, nullable=True),
    Column("callee_answered_at", Time, nullable=True),
    Column("bridged_at", Time, nullable=True),
    Column("ended_at", Time, nullable=True),
    Column("deadline_at", Time, nullable=False),  # past this with no trace: settle failed
    # Settled from what the store saw, its end never seen (NULL: not settled, or not estimated).
    Column("estimated", Boolean, nullable=True),
    # The last time the call's channel was known alive (e.g. found by a reconciliation).
    Column("alive_at", Time, nullable=True),
    # When a leg's end (a CDR, a late event) replaced the estimate with what was measured; once.
    Column("corrected_at", Time, nullable=True),
    # Progress webhooks asked for by the request (issue 13): where to POST them, and which of
    # ringing, answered, bridged, completed (comma-separated; NULL: none asked).
    Column("status_callback_url", String(2048), nullable=True),
    Column("status_events", String(64), nullable=True),
    # POST /api/calls/{id}/hangup: when the customer asked to end the call (its legs are killed
    # on the switch; one not yet there when asked is killed when it appears).
    Column("hangup_requested_at", Time, nullable=True),
    # Rates fixed at acceptance (issue 14): credits per minute of the callee's talk, and of the
    # caller's leg when C2C_BILL_CALLER_LEG is on (else NULL); the credits reserved for the call
    # (released at settlement); the caller leg's billed minutes and what the call cost.
    Column("rate", Credits, nullable=True),
    Column("caller_rate", Credits, nullable=True),
    Column("reserved_credits", Credits, nullable=True),
    Column("caller_minutes", Integer, nullable=True),
    Column("charged", Credits, nullable=True),
    Index("ix_calls_state_switch", "state", "switch"),
    Index("ix_calls_job_uuid", "job_uuid"),
    Index("ix_calls_account_created", "account_id", "created_at"),
    Index("ix_calls_created", "created_at"),  # `c2c calls list`, newest first
    # On SQLite only: on InnoDB, inserting a call would take a shared lock on its account's row
    # for the foreign key check, and the accept must lock that hot row only for its last two
    # round trips (c2c.store.accept). Accounts are never deleted.
    ForeignKeyConstraint(["account_id"], ["accounts.id"]).ddl_if(dialect="sqlite"),
    **MYSQL,
)

callbacks = Table(
    "callbacks",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("call_id", String(36), ForeignKey("calls.id"), nullable=False, unique=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("url", Text, nullable=False),  # the full URL to GET, parameters appended
    Column("status", String(12), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Time, nullable=False),
    Column("claimed_until", Time, nullable=True),
    Column("last_error", String(255), nullable=True),
    Column("created_at", Time, nullable=False),
    Column("delivered_at", Time, nullable=True),
    Index("ix_callbacks_due", "status", "next_attempt_at"),
    **MYSQL,
)

callback_attempts = Table(
    "callback_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("callback_id", BigInteger().with_variant(Integer, "sqlite"),
           ForeignKey("callbacks.id"), nullable=False),
    Column("at", Time, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", String(255), nullable=True),
    Index("ix_callback_attempts_cb", "callback_id"),
    **MYSQL,
)

# Who listens to a switch's events: one holder at a time, renewed before expires_at.
leases = Table(
    "leases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", Time, nullable=False),
    **MYSQL,
)

# One row per switch an operator drained or an event holder reported on: the drain flag every
# worker re-reads, and the holder's last report (`c2c switches list`). Times: the holder's clock.
switch_states = Table(
    "switch_states",
    metadata,
    Column("name", String(255), primary_key=True),  # host:port, as in C2C_SWITCHES
    Column("draining", Boolean, nullable=False, default=False),
    Column("drain_changed_at", Time, nullable=True),
    Column("holder", String(128), nullable=True),
    Column("connected", Boolean, nullable=True),  # the holder's event connection was up
    Column("heard_at", Time, nullable=True),  # its last sign of life: a connect or a HEARTBEAT
    Column("load_at", Time, nullable=True),  # when the figures below were read
    Column("ready", Boolean, nullable=True),  # false: paused or shutting down
    Column("sessions", Integer, nullable=True),
    Column("max_sessions", Integer, nullable=True),
    Column("sps_limit", Integer, nullable=True),
    Column("sps_last", Integer, nullable=True),
    Column("idle_cpu", Float, nullable=True),
    **MYSQL,
)

# Idempotent requests (issue 13): the first request with a key records what it answered; the same
# key with the same parameters answers that again for 24 hours without placing anything. The
# primary key makes concurrent duplicates across workers and hosts take turns: one inserts.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", Integer, primary_key=True, autoincrement=False),
    Column("idem_key", String(64), primary_key=True),
    Column("params_sha256", String(64), nullable=False),  # the request's parameters, canonical
    Column("code", SmallInteger, nullable=True),  # NULL while the first request is in progress
    Column("call_id", String(36), nullable=True),
    Column("created_at", Time, nullable=False),
    Column("answered_at", Time, nullable=True),
    Index("ix_idempotency_created", "created_at"),  # pruning after 24 hours
    **MYSQL,
)

# Progress webhooks (issue 13): one row per event of a call (ringing, answered, bridged,
# completed), numbered in order per call, POSTed with a JSON body by the same dispatcher and retry
# policy as the final callback; an event is due only once every earlier one of its call is
# delivered or given up, so none arrives before an earlier one.
progress_webhooks = Table(
    "progress_webhooks",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("call_id", String(36), nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("sequence", Integer, nullable=False),  # 1, 2, ... per call
    Column("event", String(12), nullable=False),  # ringing, answered, bridged, completed
    Column("at", Time, nullable=False),  # when it happened (the switch's event time)
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON sent (the signature covers it)
    Column("status", String(12), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Time, nullable=False),
    Column("claimed_until", Time, nullable=True),
    Column("last_error", String(255), nullable=True),
    Column("last_http_status", Integer, nullable=True),
    Column("created_at", Time, nullable=False),
    Column("delivered_at", Time, nullable=True),
    UniqueConstraint("call_id", "sequence", name="uq_progress_call_sequence"),
    Index("ix_progress_due", "status", "next_attempt_at"),
    **MYSQL,
)

# Widgets (issue 15): a publishable id a web page may use to call the visitor's number and then
# one callee, which must be one of the account's own numbers, from the listed origins only.
widgets = Table(
    "widgets",
    metadata,
    Column("id", String(32), primary_key=True),  # public: 'wid_' and 22 random characters
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("callee", BigInteger, nullable=False),  # E.164 digits
    Column("origins", String(2000), nullable=False),  # comma-separated, scheme://host[:port]
    Column("countries", String(200), nullable=False),  # comma-separated country calling codes
    Column("max_per_hour", Integer, nullable=True),  # NULL: no limit of the widget's own
    # Each call's max_duration: what it reserves of the account's credit (several visitors'
    # calls at once must not each hold the whole balance).
    Column("max_minutes", Integer, nullable=False),
    Column("callback_url", Text, nullable=True),  # the call's final callback (signed as usual)
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", Time, nullable=False),
    Index("ix_widgets_account", "account_id"),
    **MYSQL,
)

# The widgets' abuse limits: calls counted per clock hour (Unix seconds // 3600) for each scope
# ('w:' widget, 'ip:' visitor address or IPv6 /64, 'n:' visitor number), across workers and
# hosts (the upsert locks the row).
widget_counters = Table(
    "widget_counters",
    metadata,
    Column("scope", String(80), primary_key=True),
    Column("hour", Integer, nullable=False),
    Column("hits", Integer, nullable=False),
    **MYSQL,
)

# Challenges solved and spent: a solution is good once (its salt's SHA-256 is the key); rows are
# pruned once the challenge expired, when it could not be used anyway.
widget_challenges = Table(
    "widget_challenges",
    metadata,
    Column("salt_sha256", String(64), primary_key=True),
    Column("expires_at", Time, nullable=False),
    Index("ix_widget_challenges_expires", "expires_at"),
    **MYSQL,
)

# Secrets of the installation shared by every host (the widgets' challenge and call-token keys),
# made once at random by whichever process needs one first.
site_secrets = Table(
    "site_secrets",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", Time, nullable=False),
    **MYSQL,
)

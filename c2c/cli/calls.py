"""`c2c calls show|list|export`: what happened to calls (times in ISO-8601 UTC).

A call settled on an estimate (its end never seen: c2c.calls.estimate) shows ``estimated`` true;
``calls show`` adds its ledger rows (the debit, and the correction a later CDR made), and
``calls list`` marks its minutes ``~`` until a CDR or a late event has corrected them.

``calls export`` writes every call of a period, for billing, as CSV or JSON lines while it reads
them (a server-side cursor): its memory stays the same whether the period holds a thousand calls
or ten million.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterable, Mapping
from contextlib import closing
from decimal import Decimal
from typing import Any, TextIO

from c2c.cli.args import int_between
from c2c.cli.db import fail, iso_time, store_command
from c2c.cli.report import add_period_arguments, reports_of, resolve_scope
from c2c.domain.credits import format_credits, json_credits
from c2c.domain.states import CallState
from c2c.store import Store

_TIME_FIELDS = {
    "created_at",
    "caller_answered_at",
    "callee_answered_at",
    "bridged_at",
    "ended_at",
    "caller_gone_at",
    "callee_gone_at",
    "deadline_at",
    "recheck_at",
    "alive_at",
    "corrected_at",
    "next_attempt_at",
    "claimed_until",
    "delivered_at",
    "at",
}
# The customer's callback secret is theirs: shown only as set or not, here and inside URLs.
_SECRET_IN_URL = re.compile(r"([?&]secret=)[^&#]*")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("calls", help="inspect calls")
    actions = parser.add_subparsers(dest="calls_command", metavar="ACTION", required=True)

    show = actions.add_parser("show", help="one call, with its callback attempts")
    show.add_argument("call_id", metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=store_command(_show))

    listing = actions.add_parser("list", help="the newest calls")
    listing.add_argument("--limit", type=int_between(1, 100_000), default=50, metavar="N")
    listing.add_argument(
        "--state",
        choices=[s.value for s in CallState],
        metavar="S",
        help="only calls in this state: " + ", ".join(s.value for s in CallState),
    )
    listing.add_argument("--account", type=int, metavar="ID", help="only this account's calls")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=store_command(_list))

    export = actions.add_parser(
        "export",
        help="every call created in a period, one row each, for billing",
        description="Every call created from --from to --to (whole UTC days, inclusive), oldest "
        "first, written as it is read. Amounts are exact decimals; times ISO-8601 UTC; numbers "
        "+E.164.",
    )
    add_period_arguments(export, required=True)
    form = export.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="CSV with a header row (the default)")
    form.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    export.set_defaults(func=store_command(_export))


def presentable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for people and scripts: ISO times, booleans, the customer's secret masked."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name in _TIME_FIELDS:
            value = iso_time(value)
        elif name in ("answered", "estimated") and value is not None:
            value = bool(value)
        elif isinstance(value, Decimal):  # an amount of credits (rate, charged, ...)
            value = json_credits(value)
        elif name == "secret":
            value = "(set)" if value else ""
        elif name == "url" and value:
            value = _SECRET_IN_URL.sub(r"\1(secret)", value)
        out[name] = value
    return out


def _show(args: argparse.Namespace, store: Store) -> int:
    call = store.calls.get(args.call_id)
    if call is None:
        return fail(f"no call {args.call_id}")
    callback = store.callbacks.get_for_call(args.call_id)
    attempts = store.callbacks.list_for_call(args.call_id)
    data = presentable(call)
    data["callback"] = presentable(callback) if callback else None
    data["callback_attempts"] = [presentable(a) for a in attempts]
    data["ledger"] = [_ledger_row(row) for row in store.ledger.for_call(args.call_id)]
    if args.json:
        print(json.dumps({**data, "ledger": [presentable(row) for row in data["ledger"]]},
                         indent=2))
        return 0
    for name, value in data.items():
        if name in ("callback", "callback_attempts", "ledger"):
            continue
        print(f"{name:20} {'' if value is None else value}")
    for row in data["ledger"]:
        note = f"  {row['note']}" if row["note"] else ""
        sign = "+" if row["delta"] >= 0 else ""
        rate = f" at {format_credits(row['rate'])}/min" if row["rate"] is not None else ""
        print(f"ledger               {row['kind']} {sign}{format_credits(row['delta'])} credits"
              f"{rate}, balance {format_credits(row['balance_after'])}, "
              f"{iso_time(row['created_at'])}{note}")
    if callback:
        cb = data["callback"]
        print(
            f"callback             {cb['status']}, {cb['attempts']} attempt(s), "
            f"next {cb['next_attempt_at']}: {cb['url']}"
        )
    for attempt in data["callback_attempts"]:
        status = attempt["http_status"] if attempt["http_status"] is not None else "-"
        print(f"  attempt {attempt['at']}  HTTP {status}  {attempt['error'] or ''}")
    return 0


def _ledger_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in ("id", "kind", "delta", "balance_after", "rate",
                                         "caller_rate", "note", "created_at")}


def _minutes(row: Mapping[str, Any]) -> str:
    """The minutes column: ``~`` marks an estimate not (yet) corrected by a CDR."""
    if row["minutes"] is None:
        return ""
    pending = row.get("estimated") and row.get("corrected_at") is None
    return f"~{row['minutes']}" if pending else str(row["minutes"])


def _list(args: argparse.Namespace, store: Store) -> int:
    calls = store.calls.list(limit=args.limit, state=args.state, account_id=args.account)
    rows = [presentable(call) for call in calls]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'id':36}  {'created (UTC)':24}  {'state':15}  {'acct':>5}  ans  min  reason  "
          "press 1")
    for row in rows:
        answered = "" if row["answered"] is None else ("yes" if row["answered"] else "no")
        print(
            f"{row['id']:36}  {row['created_at']:24}  {row['state']:15}  {row['account_id']:>5}  "
            f"{answered:3}  {_minutes(row):>3}  "
            f"{'' if row['reason'] is None else row['reason']:<6}  {row.get('confirm') or ''}"
        )
    return 0


# The export's columns, in order (from the calls' columns c2c.store.reports.export_calls reads).
EXPORT_FIELDS = (
    "id", "account_id", "created_at", "ended_at", "caller", "callee", "answered", "reason",
    "minutes", "billsec", "caller_minutes", "rate", "caller_rate", "charged", "estimated",
    "state",
)
_AMOUNTS = ("rate", "caller_rate", "charged")
_FLAGS = ("answered", "estimated")


def export_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A call row of the export as values: ISO times, +E.164 numbers, booleans, Decimals."""
    out = {name: row.get(name) for name in EXPORT_FIELDS}
    out["created_at"], out["ended_at"] = iso_time(row["created_at"]), iso_time(row["ended_at"])
    out["caller"] = f"+{row['caller_country_code']}{row['caller_number']}"
    out["callee"] = f"+{row['callee_country_code']}{row['callee_number']}"
    # answered is NULL until the call ends; estimated NULL means it was not estimated.
    out["answered"] = None if row["answered"] is None else bool(row["answered"])
    out["estimated"] = bool(row["estimated"])
    return out


def write_csv(rows: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    """The rows as CSV with a header (empty: NULL; true/false; amounts exact); how many."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    count = 0
    for row in rows:
        values = export_row(row)
        for name in _AMOUNTS:
            if values[name] is not None:
                values[name] = format_credits(values[name])
        for name in _FLAGS:
            if values[name] is not None:
                values[name] = "true" if values[name] else "false"
        writer.writerow(["" if values[name] is None else values[name] for name in EXPORT_FIELDS])
        count += 1
    return count


def write_jsonl(rows: Iterable[Mapping[str, Any]], out: TextIO) -> int:
    """The rows as JSON lines (amounts as json_credits numbers); how many."""
    count = 0
    for row in rows:
        values = export_row(row)
        for name in _AMOUNTS:
            if values[name] is not None:
                values[name] = json_credits(values[name])
        out.write(json.dumps(values) + "\n")
        count += 1
    return count


def _export(args: argparse.Namespace, store: Store) -> int:
    scope = resolve_scope(args, store)
    if isinstance(scope, str):
        return fail(scope)
    period, account = scope
    write = write_jsonl if args.jsonl else write_csv
    # Closed even when writing fails (a closed pipe): it ends the read transaction at once.
    with closing(reports_of(store).export_calls(
            period, None if account is None else account.id)) as rows:
        write(rows, sys.stdout)
    return 0

"""`c2c calls show|list`: what happened to calls (times in ISO-8601 UTC).

A call settled on an estimate (its end never seen: c2c.calls.estimate) shows ``estimated`` true;
``calls show`` adds its ledger rows (the debit, and the correction a later CDR made), and
``calls list`` marks its minutes ``~`` until a CDR or a late event has corrected them.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from typing import Any

from c2c.cli.args import int_between
from c2c.cli.db import fail, iso_time, store_command
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


def presentable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row for people and scripts: ISO times, booleans, the customer's secret masked."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name in _TIME_FIELDS:
            value = iso_time(value)
        elif name in ("answered", "estimated") and value is not None:
            value = bool(value)
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
        print(json.dumps(data, indent=2))
        return 0
    for name, value in data.items():
        if name in ("callback", "callback_attempts", "ledger"):
            continue
        print(f"{name:20} {'' if value is None else value}")
    for row in data["ledger"]:
        note = f"  {row['note']}" if row["note"] else ""
        print(f"ledger               {row['kind']} {row['delta']:+d} min, balance "
              f"{row['balance_after']}, {row['created_at']}{note}")
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
    return {name: row[name] if name != "created_at" else iso_time(row[name])
            for name in ("id", "kind", "delta", "balance_after", "note", "created_at")}


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

"""`c2c report usage`: what an operator bills from, per UTC day, month or destination.

Only ended calls count, by the UTC day they were created. Per group: calls, answered calls, the
answer-seizure ratio (answered / calls, a fraction to 4 places: 0.6667), the average talk
(billsec averaged over the answered calls whose billsec is known, in seconds to one place),
billed minutes, and the credits debited as the ledger has them (a call's debit and the correction
of its estimate, so the total is exactly what the accounts were charged); then a total row.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from c2c.cli.db import fail, store_command
from c2c.domain.credits import format_credits, json_credits
from c2c.store import Account, Store
from c2c.store.reports import DAY_SECONDS, GroupBy, Period, Reports, UsageRow

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ASR_PLACES = Decimal("0.0001")
_TALK_PLACES = Decimal("0.1")
TOTAL = "total"


def utc_date(raw: str) -> date:
    """The argparse type of --from/--to: YYYY-MM-DD, else a usage error (status 2)."""
    try:
        if _DATE.fullmatch(raw):
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{raw!r} is not a date: write it as YYYY-MM-DD (UTC)")


def add_period_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """--from and --to (whole UTC days, both inclusive) and --key, for report and export."""
    parser.add_argument("--from", dest="first_day", type=utc_date, required=required,
                        metavar="DATE", help="from this UTC day, YYYY-MM-DD (inclusive)")
    parser.add_argument("--to", dest="last_day", type=utc_date, required=required,
                        metavar="DATE", help="to this UTC day, YYYY-MM-DD (inclusive: all of it)")
    parser.add_argument("--key", metavar="KEY_OR_ID",
                        help="only this account's calls (its api_key or id)")


def period_of(first_day: date | None, last_day: date | None) -> Period:
    """created_at from the start of ``first_day`` to the end of ``last_day``, UTC."""
    return Period(
        start=None if first_day is None else _midnight(first_day),
        end=None if last_day is None else _midnight(last_day + timedelta(days=1)),
    )


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def day_text(day_number: int) -> str:
    """A UTC day number (Unix seconds // 86400) as YYYY-MM-DD."""
    return datetime.fromtimestamp(day_number * DAY_SECONDS, UTC).date().isoformat()


def resolve_scope(args: argparse.Namespace, store: Store) -> tuple[Period, Account | None] | str:
    """The period and account the arguments name, or why they name none (a one-line error)."""
    if args.first_day and args.last_day and args.first_day > args.last_day:
        return f"--from {args.first_day} is after --to {args.last_day}"
    account = None
    if args.key is not None:
        account = store.accounts.find(args.key)
        if account is None:
            return "no such account"
    return period_of(args.first_day, args.last_day), account


def reports_of(store: Store) -> Reports:
    return store.reports


@dataclass(frozen=True)
class Usage:
    """A group's figures (or the total's): sums, from which the ratios are derived."""

    key: str
    calls: int = 0
    answered: int = 0
    timed: int = 0
    billsec: int = 0
    minutes: int = 0
    credits: Decimal = Decimal(0)

    def __add__(self, other: Usage) -> Usage:
        return replace(
            self,
            calls=self.calls + other.calls,
            answered=self.answered + other.answered,
            timed=self.timed + other.timed,
            billsec=self.billsec + other.billsec,
            minutes=self.minutes + other.minutes,
            credits=self.credits + other.credits,
        )

    @property
    def asr(self) -> Decimal | None:
        """Answered / calls, to 4 places (None with no calls)."""
        if not self.calls:
            return None
        return (Decimal(self.answered) / self.calls).quantize(_ASR_PLACES, ROUND_HALF_UP)

    @property
    def average_talk(self) -> Decimal | None:
        """Seconds of billsec per answered call that has one, to one place."""
        if not self.timed:
            return None
        return (Decimal(self.billsec) / self.timed).quantize(_TALK_PLACES, ROUND_HALF_UP)


def group_usage(rows: Iterable[UsageRow], group_by: GroupBy) -> list[Usage]:
    """The query's rows under their keys (days folded into months), in key order."""
    groups: dict[str, Usage] = {}
    for row in rows:
        key = _key_text(row.key, group_by)
        found = Usage(key, row.calls, row.answered, row.timed, row.billsec, row.minutes,
                      row.credits)
        groups[key] = groups[key] + found if key in groups else found
    if group_by is GroupBy.DESTINATION:
        return sorted(groups.values(), key=lambda u: (len(u.key), u.key))  # numeric order
    return sorted(groups.values(), key=lambda u: u.key)


def _key_text(key: str | int, group_by: GroupBy) -> str:
    if group_by is GroupBy.DESTINATION:
        return str(key)
    day = day_text(int(key))
    return day[:7] if group_by is GroupBy.MONTH else day


def total_of(groups: Iterable[Usage]) -> Usage:
    total = Usage(TOTAL)
    for group in groups:
        total = total + group
    return total


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("report", help="billing reports")
    actions = parser.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    usage = actions.add_parser(
        "usage",
        help="ended calls, answer ratio, talk, minutes and credits per day, month or destination",
        description="Ended calls by the UTC day they were created. asr is answered / calls as a "
        "fraction (0.6667); avg_talk_s is billsec averaged over answered calls; credits are "
        "the ledger's debits and corrections of those calls.",
    )
    add_period_arguments(usage, required=False)
    usage.add_argument("--by", choices=[g.value for g in GroupBy], default=GroupBy.DAY.value,
                       help="group by UTC day (default), UTC month, or the callee's country code")
    form = usage.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="CSV with a header row")
    form.add_argument("--json", action="store_true", help="one JSON object")
    usage.set_defaults(func=store_command(_usage))


def _usage(args: argparse.Namespace, store: Store) -> int:
    scope = resolve_scope(args, store)
    if isinstance(scope, str):
        return fail(scope)
    period, account = scope
    group_by = GroupBy(args.by)
    rows = reports_of(store).usage(period, group_by, None if account is None else account.id)
    groups = group_usage(rows, group_by)
    total = total_of(groups)
    if args.json:
        print(json.dumps(_usage_json(args, account, groups, total), indent=2))
    elif args.csv:
        _write_usage_csv(group_by, groups, total)
    else:
        _print_usage_table(args, account, groups, total)
    return 0


COLUMNS = ("calls", "answered", "asr", "avg_talk_s", "minutes", "credits")


def _figures_json(usage: Usage) -> dict[str, Any]:
    asr, talk = usage.asr, usage.average_talk
    return {
        "calls": usage.calls,
        "answered": usage.answered,
        "asr": None if asr is None else float(asr),
        "avg_talk_s": None if talk is None else float(talk),
        "minutes": usage.minutes,
        "credits": json_credits(usage.credits),
    }


def _figures_text(usage: Usage) -> list[str]:
    asr, talk = usage.asr, usage.average_talk
    return [str(usage.calls), str(usage.answered), "" if asr is None else str(asr),
            "" if talk is None else str(talk), str(usage.minutes), format_credits(usage.credits)]


def _usage_json(args: argparse.Namespace, account: Account | None, groups: list[Usage],
                total: Usage) -> dict[str, Any]:
    return {
        "by": args.by,
        "from": None if args.first_day is None else args.first_day.isoformat(),
        "to": None if args.last_day is None else args.last_day.isoformat(),
        "account": None if account is None else {"id": account.id, "name": account.name},
        "groups": [{args.by: g.key, **_figures_json(g)} for g in groups],
        "total": _figures_json(total),
    }


def _write_usage_csv(group_by: GroupBy, groups: list[Usage], total: Usage) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([group_by.value, *COLUMNS])
    for usage in [*groups, total]:
        writer.writerow([usage.key, *_figures_text(usage)])


def _print_usage_table(args: argparse.Namespace, account: Account | None, groups: list[Usage],
                       total: Usage) -> None:
    who = "all accounts" if account is None else f"account {account.id} ({account.name})"
    start = args.first_day.isoformat() if args.first_day else "the start"
    end = args.last_day.isoformat() if args.last_day else "now"
    print(f"ended calls of {who}, {start} to {end} (UTC), by {args.by}")
    widths = (12, 8, 9, 7, 11, 9, 14)
    header = [args.by, *COLUMNS]
    for cells in [header, *([g.key, *_figures_text(g)] for g in [*groups, total])]:
        print(cells[0].ljust(widths[0]) + "".join(
            cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)))

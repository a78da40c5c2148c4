"""`c2c coverage show|allow-country|deny-country|allow-area|deny-area|remove-area`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from c2c.cli.db import fail, store_command
from c2c.store import CoverageRules, Store
from c2c.store.coverage import MAX_PREFIX, valid_country_code, valid_prefix


def _country_code(raw: str) -> str:
    if not valid_country_code(raw):
        raise argparse.ArgumentTypeError(f"{raw!r}: a country code is 1-3 digits, no leading 0")
    return raw


def _prefix(raw: str) -> str:
    if not valid_prefix(raw):
        raise argparse.ArgumentTypeError(
            f"{raw!r}: an area is 1-{MAX_PREFIX} digits (for country 1, the 3-digit area code)"
        )
    return raw


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("coverage", help="supported countries and area codes")
    actions = parser.add_subparsers(dest="coverage_command", metavar="ACTION", required=True)

    show = actions.add_parser("show", help="list the rules")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=store_command(_show))

    for name, allowed in (("allow-country", True), ("deny-country", False)):
        command = actions.add_parser(name, help=f"{name.split('-')[0]} a country code")
        command.add_argument("country_code", type=_country_code, metavar="CC")
        command.set_defaults(func=store_command(_set_country), allowed=allowed)

    area_help = (
        "{} an area: the longest matching rule wins; a country with any allowed area admits "
        "only its allowed areas"
    )
    for name, allowed in (("allow-area", True), ("deny-area", False)):
        command = actions.add_parser(name, help=area_help.format(name.split("-")[0]))
        command.add_argument("country_code", type=_country_code, metavar="CC")
        command.add_argument("prefix", type=_prefix, metavar="PREFIX")
        command.set_defaults(func=store_command(_set_area), allowed=allowed)

    remove = actions.add_parser("remove-area", help="drop an area rule")
    remove.add_argument("country_code", type=_country_code, metavar="CC")
    remove.add_argument("prefix", type=_prefix, metavar="PREFIX")
    remove.set_defaults(func=store_command(_remove_area))


def rules_json(rules: CoverageRules) -> dict[str, Any]:
    codes = sorted(set(rules.countries) | set(rules.areas), key=lambda cc: (len(cc), cc))
    return {
        "countries": [
            {
                "country_code": cc,
                "allowed": rules.country_supported(cc),
                "areas": [
                    {"prefix": prefix, "allowed": allowed}
                    for prefix, allowed in sorted(rules.areas.get(cc, {}).items())
                ],
            }
            for cc in codes
        ]
    }


def _show(args: argparse.Namespace, store: Store) -> int:
    rules = store.coverage.load()
    data = rules_json(rules)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    if not data["countries"]:
        print("no country is supported")
    for country in data["countries"]:
        listed = country["country_code"] in rules.countries
        status = "allowed" if country["allowed"] else "denied" if listed else "not listed (denied)"
        print(f"country {country['country_code']}: {status}")
        areas = country["areas"]
        if any(area["allowed"] for area in areas):
            print("  only allowed areas are supported")
        for area in areas:
            print(f"  area {area['prefix']}: {'allowed' if area['allowed'] else 'denied'}")
    return 0


def _set_country(args: argparse.Namespace, store: Store) -> int:
    if args.allowed:
        store.coverage.allow_country(args.country_code)
    else:
        store.coverage.deny_country(args.country_code)
    print(f"country {args.country_code}: {'allowed' if args.allowed else 'denied'}")
    return 0


def _set_area(args: argparse.Namespace, store: Store) -> int:
    if args.allowed:
        store.coverage.allow_area(args.country_code, args.prefix)
    else:
        store.coverage.deny_area(args.country_code, args.prefix)
    print(
        f"country {args.country_code} area {args.prefix}: {'allowed' if args.allowed else 'denied'}"
    )
    return 0


def _remove_area(args: argparse.Namespace, store: Store) -> int:
    if not store.coverage.remove_area(args.country_code, args.prefix):
        return fail(f"no rule for country {args.country_code} area {args.prefix}")
    print(f"country {args.country_code} area {args.prefix}: rule removed")
    return 0

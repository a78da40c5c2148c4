"""`c2c coverage show|defaults|allow-country|deny-country|allow-area|deny-area|remove-area`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from c2c.cli.db import fail, store_command
from c2c.config import Config
from c2c.store import CoverageRules, Store
from c2c.store.coverage import MAX_PREFIX, valid_country_code, valid_prefix
from c2c.store.coverage_defaults import DEFAULT_AREAS, DEFAULT_COUNTRIES, default_area


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

    defaults = actions.add_parser(
        "defaults", help="list the rules a new database ships with, and why each is there"
    )
    defaults.add_argument("--json", action="store_true")
    defaults.set_defaults(func=_defaults)

    for name, allowed in (("allow-country", True), ("deny-country", False)):
        command = actions.add_parser(name, help=f"{name.split('-')[0]} a country code")
        command.add_argument("country_code", type=_country_code, metavar="CC")
        command.set_defaults(func=store_command(_set_country), allowed=allowed)

    area_help = {
        "allow-area": "allow an area: a denied one loses its deny rule when nothing shorter "
        "denies it and the country allows no area yet; else the country admits only its "
        "allowed areas from then on",
        "deny-area": "deny an area: the longest matching rule wins",
    }
    for name, allowed in (("allow-area", True), ("deny-area", False)):
        command = actions.add_parser(name, help=area_help[name])
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
                    {"prefix": prefix, "allowed": allowed, "reason": _reason(cc, prefix, allowed)}
                    for prefix, allowed in sorted(rules.areas.get(cc, {}).items())
                ],
            }
            for cc in codes
        ]
    }


def _reason(country_code: str, prefix: str, allowed: bool) -> str | None:
    """The shipped reason for a rule that is still as shipped (not for one an operator flipped)."""
    default = default_area(country_code, prefix)
    return default.reason if default is not None and default.allowed == allowed else None


def _print_areas(areas: list[dict[str, Any]]) -> None:
    for area in areas:
        why = f" ({area['reason']})" if area["reason"] else ""
        print(f"  area {area['prefix']}: {'allowed' if area['allowed'] else 'denied'}{why}")


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
        _print_areas(areas)
    return 0


def _defaults(args: argparse.Namespace, config: Config) -> int:
    """The shipped rules: data in this c2c, no database needed."""
    areas: dict[str, dict[str, bool]] = {}
    for default in DEFAULT_AREAS:
        areas.setdefault(default.country_code, {})[default.prefix] = default.allowed
    rules = CoverageRules.build(dict.fromkeys(DEFAULT_COUNTRIES, True), areas)
    data = rules_json(rules)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for country in data["countries"]:
        print(f"country {country['country_code']}: allowed")
        _print_areas(country["areas"])
    return 0


def _set_country(args: argparse.Namespace, store: Store) -> int:
    if args.allowed:
        store.coverage.allow_country(args.country_code)
    else:
        store.coverage.deny_country(args.country_code)
    print(f"country {args.country_code}: {'allowed' if args.allowed else 'denied'}")
    return 0


def lifts_a_denial(rules: CoverageRules, country_code: str, prefix: str) -> bool:
    """Whether allowing this area is just dropping its deny rule: it has one, nothing shorter
    decides for it, and the country has no allow rule. An allow rule there would instead make
    the country admit only its allowed areas (coverage.py), which re-allowing one denied area
    (a shipped default, say) never means."""
    areas = rules.areas.get(country_code, {})
    return (
        areas.get(prefix) is False
        and not any(areas.values())
        and not any(prefix[:length] in areas for length in range(1, len(prefix)))
    )


def _set_area(args: argparse.Namespace, store: Store) -> int:
    cc, prefix = args.country_code, args.prefix
    if not args.allowed:
        store.coverage.deny_area(cc, prefix)
        print(f"country {cc} area {prefix}: denied")
        return 0
    rules = store.coverage.load()
    if lifts_a_denial(rules, cc, prefix):
        store.coverage.remove_area(cc, prefix)
        print(f"country {cc} area {prefix}: allowed (its deny rule removed)")
        return 0
    first_allow = not any(rules.areas.get(cc, {}).values())
    store.coverage.allow_area(cc, prefix)
    print(f"country {cc} area {prefix}: allowed")
    if first_allow:
        print(
            f"c2c: note: country {cc} now admits only its allowed areas; "
            "every other area is denied",
            file=sys.stderr,
        )
    return 0


def _remove_area(args: argparse.Namespace, store: Store) -> int:
    if not store.coverage.remove_area(args.country_code, args.prefix):
        return fail(f"no rule for country {args.country_code} area {args.prefix}")
    print(f"country {args.country_code} area {args.prefix}: rule removed")
    return 0

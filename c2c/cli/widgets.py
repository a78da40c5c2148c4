"""`c2c widgets create|list|disable|enable|remove`: click-to-call buttons for web pages.

A widget id is public: it can only ring a visitor and then the widget's callee (one of the
account's own numbers: `c2c numbers add`), from pages of the listed origins, debiting that
account, within the abuse limits (C2C_WIDGET_* and --max-per-hour). `create` prints the snippet
a site owner pastes; C2C_PUBLIC_URL (or --public-url) is where pages load /widget.js from.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from c2c.calls.request import MAX_DURATION_MINUTES, validate_clicktocall
from c2c.cli.db import fail, iso_time, store_command
from c2c.cli.numbers import _own_number
from c2c.config import Config
from c2c.errors import RequestRejected
from c2c.numbers import PhoneNumber
from c2c.store import Store
from c2c.store.widgets import DEFAULT_MAX_MINUTES, Widget
from c2c.widgets.origins import parse_countries, parse_origins

PLACEHOLDER_URL = "https://YOUR-C2C-HOST"


def snippet(widget_id: str, public_url: str) -> str:
    """What a site owner pastes where the button goes (the box is reserved: no layout shift)."""
    base = public_url or PLACEHOLDER_URL
    return (f'<div data-c2c-widget="{widget_id}" style="min-height:11rem"></div>\n'
            f'<script src="{base}/widget.js" async></script>')


def _argument(parse: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def parsed(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{what}: {exc}") from None
    return parsed


def _callback_url(raw: str) -> str:
    """A callback URL under the API's own rules (c2c.calls.request)."""
    params = [("api_key", "x"), ("caller_country_code", "1"),
              ("caller_phone_number", "2125550123"), ("callee_country_code", "1"),
              ("callee_phone_number", "2125550199"), ("callback_url", raw)]
    try:
        url = validate_clicktocall(params).callback_url
    except RequestRejected as exc:
        raise ValueError(exc.message) from None
    assert url is not None
    return url


def _minutes(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_DURATION_MINUTES:
        raise ValueError(f"between 1 and {MAX_DURATION_MINUTES}")
    return value


def _positive(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 1_000_000:
        raise ValueError("between 1 and 1000000")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "widgets", help="click-to-call buttons for web pages (publishable widget ids)")
    actions = parser.add_subparsers(dest="widgets_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="a new widget; prints the snippet to paste")
    create.add_argument("key_or_id", metavar="KEY_OR_ID", help="the api_key or account id")
    create.add_argument("--callee", required=True, type=_own_number, metavar="+E164",
                        help="the number visitors are connected to: one of the account's own")
    create.add_argument("--origin", required=True, metavar="ORIGIN[,ORIGIN...]",
                        type=_argument(parse_origins, "--origin"),
                        help="the pages' origins, e.g. https://shop.example")
    create.add_argument("--countries", metavar="CC[,CC...]",
                        type=_argument(parse_countries, "--countries"),
                        help="country codes a visitor may give (default: the callee's)")
    create.add_argument("--max-per-hour", type=_argument(_positive, "--max-per-hour"),
                        metavar="N", help="calls per clock hour through this widget (unlimited)")
    create.add_argument("--max-minutes", type=_argument(_minutes, "--max-minutes"),
                        default=DEFAULT_MAX_MINUTES, metavar="N",
                        help=f"each call's longest talk, what it reserves of the credit "
                             f"({DEFAULT_MAX_MINUTES})")
    create.add_argument("--callback-url", type=_argument(_callback_url, "--callback-url"),
                        metavar="URL", help="where each call's final callback goes (none)")
    create.add_argument("--public-url", metavar="URL",
                        help="where pages load /widget.js (C2C_PUBLIC_URL)")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(func=_with_public_url(store_command(_create)))

    listing = actions.add_parser("list", help="the widgets (of one account)")
    listing.add_argument("key_or_id", nargs="?", metavar="KEY_OR_ID",
                         help="the api_key or account id (all accounts)")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(func=store_command(_list))

    for name, handler, help_text in (
        ("disable", _disable, "refuse the widget's requests (its page shows 'unavailable')"),
        ("enable", _enable, "accept the widget's requests again"),
        ("remove", _remove, "delete the widget (its calls stay)"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("widget_id", metavar="WIDGET_ID")
        action.set_defaults(func=store_command(handler))


def _with_public_url(command: Callable[[argparse.Namespace, Config], int]
                     ) -> Callable[[argparse.Namespace, Config], int]:
    def run(args: argparse.Namespace, config: Config) -> int:
        args.public_url = (args.public_url or config.public_url).rstrip("/")
        return command(args, config)
    return run


def widget_json(widget: Widget) -> dict[str, Any]:
    return {
        "id": widget.id, "account_id": widget.account_id, "callee": f"+{widget.callee}",
        "origins": list(widget.origins), "countries": list(widget.countries),
        "max_per_hour": widget.max_per_hour, "max_minutes": widget.max_minutes,
        "callback_url": widget.callback_url,
        "enabled": widget.enabled, "created_at": iso_time(widget.created_at),
    }


def _create(args: argparse.Namespace, store: Store) -> int:
    callee: PhoneNumber = args.callee
    try:
        widget = store.widgets.create(
            args.key_or_id, callee=callee.e164_int, origins=args.origin,
            countries=args.countries or (callee.country_code,),
            max_per_hour=args.max_per_hour, max_minutes=args.max_minutes,
            callback_url=args.callback_url)
    except ValueError as exc:
        return fail(str(exc))
    if widget is None:
        return fail("no such account")
    code = snippet(widget.id, args.public_url)
    if args.json:
        print(json.dumps({**widget_json(widget), "snippet": code}, indent=2))
        return 0
    print(f"widget {widget.id} of account {widget.account_id}: calls {callee} from "
          f"{', '.join(widget.origins)}")
    print("Paste this where the button goes:\n")
    print(code)
    if not args.public_url:
        print(f"\n(replace {PLACEHOLDER_URL} with this API's public address, or set "
              "C2C_PUBLIC_URL)")
    return 0


def _list(args: argparse.Namespace, store: Store) -> int:
    if args.key_or_id is not None and store.accounts.find(args.key_or_id) is None:
        return fail("no such account")
    widgets = store.widgets.list(args.key_or_id)
    if args.json:
        print(json.dumps({"widgets": [widget_json(w) for w in widgets]}, indent=2))
        return 0
    if not widgets:
        print("no widgets")
    for w in widgets:
        limit = f"{w.max_per_hour}/h" if w.max_per_hour else "no limit of its own"
        print(f"{w.id}  account {w.account_id}  +{w.callee}  "
              f"{'enabled' if w.enabled else 'DISABLED'}  countries {','.join(w.countries)}  "
              f"{limit}  {' '.join(w.origins)}")
    return 0


def _set(args: argparse.Namespace, store: Store, enabled: bool) -> int:
    widget = store.widgets.set_enabled(args.widget_id, enabled)
    if widget is None:
        return fail("no such widget")
    print(f"widget {widget.id} {'enabled' if enabled else 'disabled'} (pages see it within "
          "C2C_ACCOUNT_CACHE_SECONDS)")
    return 0


def _disable(args: argparse.Namespace, store: Store) -> int:
    return _set(args, store, False)


def _enable(args: argparse.Namespace, store: Store) -> int:
    return _set(args, store, True)


def _remove(args: argparse.Namespace, store: Store) -> int:
    if not store.widgets.remove(args.widget_id):
        return fail("no such widget")
    print(f"widget {args.widget_id} removed")
    return 0

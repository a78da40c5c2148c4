"""`c2c demo`: everything on one machine with the embedded defaults.

Starts the FreeSWITCH simulator, the store on SQLite, the API and a local callback receiver; creates
a demo key; prints a ready-to-paste curl; prints each call's outcome and callback as they happen.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import secrets
import signal
import sys
from typing import Any
from urllib.parse import urlencode

from c2c.config import Config, SwitchAddress

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("demo", help="run the simulator, the store and the API on this machine")
    parser.add_argument("--host", default="127.0.0.1", help="address of the API (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port of the API (8080; 0: any)")
    parser.add_argument("--credits", type=int, default=1000, help="minutes on the demo key (1000)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="the simulator's time scale (1.0 real time; 0 instant)")
    parser.add_argument("--scenario", help="the simulator's scenario file (JSON)")
    parser.set_defaults(func=run)
    return parser


def _out(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace, config: Config) -> int:
    import gevent
    import gevent.event
    from gevent.pywsgi import WSGIServer

    from c2c.api.app import create_app
    from c2c.api.runtime import Runtime
    from c2c.cli.demo_receiver import CallbackPrinter
    from c2c.esl.switches import Switches
    from c2c.fakeswitch.scenarios import load_scenario
    from c2c.fakeswitch.server import FakeSwitch
    from c2c.store import Store

    password = secrets.token_hex(8)
    scenario = load_scenario(args.scenario) if args.scenario else None
    fake = FakeSwitch("127.0.0.1", 0, password, scenario=scenario, time_scale=args.time_scale)
    fake.start()
    config = dataclasses.replace(
        config,
        switches=(SwitchAddress("127.0.0.1", fake.port, password),),
        callback_allow_private=True,
    )
    store = Store.from_url(config.database_url)
    store.upgrade()
    created = store.accounts.create("demo", args.credits)

    printer = CallbackPrinter("127.0.0.1", 0, _out)
    printer.start()

    def settled(call_id: str, outcome: object = None) -> None:
        call = store.calls.get(call_id) or {}
        reason = "" if call.get("reason") is None else call.get("reason")
        _out(f"call {call_id} settled: answered={int(bool(call.get('answered')))} "
             f"minutes={call.get('minutes')} reason={reason} "
             f"caller={call.get('caller_hangup_cause')} callee={call.get('callee_hangup_cause')}")

    runtime = Runtime(config, store, Switches(config), on_settled=settled)
    app = create_app(runtime)
    server = WSGIServer((args.host, args.port), app, log=None)
    server.start()
    runtime.start()
    if not runtime.switches.wait_any_connected(10):
        _out("the simulator did not come up; giving up")
        return 1

    api = f"http://{args.host}:{server.server_port}"
    shop = _demo_widget(app, store, created.id, args.host, server.server_port,
                        f"http://127.0.0.1:{printer.port}/callback")
    query = urlencode({
        "api_key": created.api_key,
        "caller_phone_number": "2125550123",
        "caller_country_code": "1",
        "callee_phone_number": "2125550199",
        "callee_country_code": "1",
        "callback_url": f"http://127.0.0.1:{printer.port}/callback",
        "secret": "demo",
    })
    _out(json.dumps({"api": api, "switch_port": fake.port, "api_key": created.api_key,
                     "webhook_secret": created.webhook_secret,
                     "database": config.database_url}))
    _out("")
    _out(f"c2c demo is running: the FreeSWITCH simulator, the store ({config.database_url}) "
         "and the API.")
    _out("Place a call (the simulator answers both phones, the callee hangs up after a few s):")
    _out("")
    _out(f"  curl '{api}/api/clicktocall/?{query}'")
    _out("")
    _out(f"Or open the sample shop page with the click-to-call widget: {shop}")
    _out("")
    _out("Numbers ending in 0486 are busy, 0503 congested, 0408 never answer, 0603 reject.")
    _out("Outcomes and callbacks are printed below as they happen. Ctrl-C stops.")
    # Ctrl-C and TERM end the demo through a handler: a KeyboardInterrupt raised in gevent's hub
    # would make it print a bare "KeyboardInterrupt" line and a timestamp first.
    stopping = gevent.event.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stopping.set)
    try:
        stopping.wait()
    finally:
        runtime.stop()
        server.stop(timeout=2)
        printer.stop()
        fake.stop()
    return 0


DEMO_CALLEE = 12125550199  # the shop's own line, which the widget connects visitors to


def _demo_widget(app: Any, store: Any, account_id: int, host: str, port: int,
                 callback_url: str) -> str:
    """A widget of the demo account on a sample shop page served at /demo/shop; its URL."""
    from c2c.api.demo_shop import DemoShopResource

    store.own_numbers.add(account_id, DEMO_CALLEE)
    # The page may be opened by either loopback name: both are the widget's origins.
    names = {host, "127.0.0.1", "localhost"} if host in ("127.0.0.1", "localhost") else {host}
    origins = sorted(f"http://{name}:{port}" for name in names)
    widget = store.widgets.create(account_id, callee=DEMO_CALLEE, origins=origins,
                                  countries=("1", "44"), callback_url=callback_url)
    app.add_route("/demo/shop", DemoShopResource(widget.id))
    return f"http://{host}:{port}/demo/shop"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)

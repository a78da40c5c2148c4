"""`c2c switches list [--json] | drain NAME | undrain NAME`: the configured switches as the store
sees them, and the drain flag every worker of every host honours within a few seconds.

What `list` shows comes from the store, not from a connection of its own: connected is the event
holder's last report (while its lease holds), live a sign of life (a connect or a HEARTBEAT)
within C2C_ESL_LIVENESS_SECONDS, sessions and max from the switch's last HEARTBEAT or `status`,
calls in flight from the calls table.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from c2c.calls.ownership import lease_name
from c2c.cli.db import fail, iso_time, store_command
from c2c.config import Config
from c2c.domain.switch_state import SwitchRecord
from c2c.esl.switches import SHARED_REFRESH_SECONDS
from c2c.store import Store

ConfiguredHandler = Callable[[argparse.Namespace, Store, Config], int]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("switches", help="list, drain and undrain the switches")
    actions = parser.add_subparsers(dest="switches_command", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list", help="each configured switch: connected, live, sessions, calls in flight, draining"
    )
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_configured(_list))

    drain = actions.add_parser(
        "drain", help="send no new calls to a switch; its running calls go on until they end"
    )
    drain.add_argument("name", metavar="NAME", help="HOST:PORT, as in C2C_SWITCHES")
    drain.set_defaults(func=_configured(_drain), draining=True)

    undrain = actions.add_parser("undrain", help="let a drained switch take calls again")
    undrain.add_argument("name", metavar="NAME", help="HOST:PORT, as in C2C_SWITCHES")
    undrain.set_defaults(func=_configured(_drain), draining=False)


def _configured(handler: ConfiguredHandler) -> Callable[[argparse.Namespace, Config], int]:
    def run(args: argparse.Namespace, config: Config) -> int:
        def with_config(args: argparse.Namespace, store: Store) -> int:
            return handler(args, store, config)

        return store_command(with_config)(args, config)

    return run


def switch_rows(store: Store, config: Config, now: float) -> list[dict[str, Any]]:
    """One row per configured switch, in config order."""
    records = {record.name: record for record in store.switch_states.all()}
    in_flight = store.calls.in_flight_by_switch()
    rows = []
    for address in config.switches:
        name = address.name
        record = records.get(name) or SwitchRecord(name)
        holder = store.leases.holder_of(lease_name(name), now)
        # A report counts while the worker that wrote it still holds the lease.
        connected = bool(record.connected) and holder is not None and holder == record.holder
        heard_at = record.heard_at
        live = connected and heard_at is not None and now - heard_at <= config.esl_liveness_seconds
        load = record.load
        rows.append({
            "name": name,
            "connected": connected,
            "live": live,
            "sessions": load.sessions if load else None,
            "max_sessions": load.max_sessions if load else None,
            "in_flight": in_flight.get(name, 0),
            "draining": record.draining,
            "ready": load.ready if load else None,
            "idle_cpu": load.idle_cpu if load else None,
            "sps_limit": load.sps_limit if load else None,
            "holder": holder,
            "heard_at": iso_time(heard_at),
        })
    return rows


def _list(args: argparse.Namespace, store: Store, config: Config) -> int:
    rows = switch_rows(store, config, time.time())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max([len("switch"), *(len(row["name"]) for row in rows)])
    print(f"{'switch':{width}}  connected  live  sessions     max  in flight  draining")
    for row in rows:
        print(
            f"{row['name']:{width}}  {_yes(row['connected']):9}  {_yes(row['live']):4}  "
            f"{_num(row['sessions']):>8}  {_num(row['max_sessions']):>6}  "
            f"{row['in_flight']:>9}  {_yes(row['draining'])}"
        )
    return 0


def _drain(args: argparse.Namespace, store: Store, config: Config) -> int:
    names = [address.name for address in config.switches]
    name, draining = args.name, args.draining
    if name not in names:
        return fail(f"no switch {name!r} in C2C_SWITCHES; the configured switches are: "
                    + ", ".join(names))
    changed = store.switch_states.set_draining(name, draining, time.time())
    in_flight = store.calls.in_flight_by_switch().get(name, 0)
    if draining:
        said = "draining" if changed else "already draining"
        print(f"{name}: {said}; every worker stops sending it calls within "
              f"{SHARED_REFRESH_SECONDS:g} s; its {in_flight} call(s) in flight go on")
        drained = {record.name for record in store.switch_states.all() if record.draining}
        if all(other in drained for other in names):
            print("warning: every configured switch is draining: requests answer 11")
    else:
        said = "takes calls again" if changed else "was not draining"
        print(f"{name}: {said}")
    return 0


def _yes(value: object) -> str:
    return "yes" if value else "no"


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)

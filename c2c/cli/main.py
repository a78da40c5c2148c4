"""The `c2c` command: one module per command group, wired here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from c2c.config import Config, describe
from c2c.errors import C2CError, ConfigError

# Command groups that read the store take the Config; the simulator needs none.
_CONFIGURED_GROUPS = (
    "db", "keys", "dnc", "coverage", "calls", "demo", "cdr", "check", "numbers", "switches",
    "report", "rates", "widgets", "worker",
)


def build_parser() -> argparse.ArgumentParser:
    from c2c.cli import (
        calls,
        cdr,
        check,
        coverage,
        db,
        demo,
        dnc,
        fakeswitch,
        keys,
        numbers,
        rates,
        report,
        switches,
        widgets,
        worker,
    )

    parser = argparse.ArgumentParser(
        prog="c2c",
        description="Click-to-call orchestrator for FreeSWITCH.",
        epilog="Settings come from C2C_* environment variables; `c2c config` lists them.",
    )
    sub = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for module in (db, keys, numbers, widgets, dnc, coverage, rates, calls, report, switches,
                   cdr, check, demo, worker):
        module.add_parser(sub)
    fakeswitch.add_parser(sub)
    config = sub.add_parser("config", help="list every setting with its default")
    config.set_defaults(func=lambda args, cfg: _print_settings())
    return parser


def _print_settings() -> int:
    print(describe())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["demo"], ["fakeswitch"], ["worker"]):
        # These serve sockets with gevent: patch before anything else opens or imports one.
        from gevent import monkey

        monkey.patch_all()
    if argv[:1] == ["worker"] and os.environ.get("C2C_METRICS_DIR"):
        # Into gunicorn's directory (gunicorn.conf.py), before prometheus_client is imported.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ["C2C_METRICS_DIR"]
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.group == "fakeswitch":
            from c2c.cli import fakeswitch

            return int(fakeswitch.run(args) or 0)
        config = Config.from_env() if args.group in _CONFIGURED_GROUPS else None
        if config is not None:
            logging.getLogger().setLevel(config.log_level)
        return int(args.func(args, config) or 0)
    except ConfigError as exc:
        print(f"c2c: configuration error: {exc}", file=sys.stderr)
        return 2
    except C2CError as exc:
        print(f"c2c: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

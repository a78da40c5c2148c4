"""``c2c fakeswitch``: run the FreeSWITCH simulator (options in c2c/fakeswitch/runner.py)."""

from __future__ import annotations

import argparse
from typing import Any

from c2c.fakeswitch import runner


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "fakeswitch",
        help="run the FreeSWITCH Event Socket simulator",
        description="A FreeSWITCH stand-in speaking the Event Socket protocol: originate with "
        "&bridge, the recorded events, a scenario file for what each number does. Prints "
        "'LISTENING HOST:PORT' once it accepts connections.",
    )
    runner.add_arguments(parser)
    parser.set_defaults(func=lambda args, config: run(args))
    return parser


def run(args: argparse.Namespace) -> int:
    return runner.serve(args)

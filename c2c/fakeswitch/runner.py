"""Running the simulator as a process: the command-line options, shared by ``c2c fakeswitch``
and ``python -m c2c.fakeswitch``.

On start it prints ``LISTENING <host>:<port>`` on stdout (the bound port, so ``--listen
127.0.0.1:0`` works for tests) and serves until SIGINT or SIGTERM, then shuts down like
FreeSWITCH (calls end SYSTEM_SHUTDOWN, clients get the shutdown notice). SIGUSR1 freezes the
switch, or thaws it when frozen (faults.py); each change prints ``FROZEN`` or ``THAWED`` on
stdout once it has taken effect.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys

import gevent
import gevent.event

from c2c.fakeswitch.cdr import CdrPoster
from c2c.fakeswitch.faults import Faults
from c2c.fakeswitch.scenarios import DEFAULT_RULES, Scenario, ScenarioError
from c2c.fakeswitch.server import (
    HEARTBEAT_INTERVAL,
    IDLE_CPU,
    MAX_SESSIONS,
    SESSIONS_PER_SECOND,
    FakeSwitch,
)

log = logging.getLogger(__name__)


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if not 1 <= value <= 2**31 - 1:
        raise argparse.ArgumentTypeError("must be from 1 to 2147483647")
    return value


def _percent(text: str) -> float:
    value = _non_negative(text)
    if value > 100:
        raise argparse.ArgumentTypeError("must be <= 100")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        type=_listen_address,
        default=("127.0.0.1", 8021),
        metavar="HOST:PORT",
        help="where to listen (default 127.0.0.1:8021; port 0 picks a free one, printed on stdout)",
    )
    parser.add_argument("--password", default="ClueCon", help="Event Socket password")
    parser.add_argument(
        "--scenario",
        metavar="FILE",
        help="JSON scenario file: what each dialled number does "
        "(default: see --show-default-scenario)",
    )
    parser.add_argument(
        "--time-scale",
        type=_non_negative,
        default=1.0,
        metavar="X",
        help="multiply every delay by X (0: instant, for load tests)",
    )
    parser.add_argument(
        "--acl", metavar="CIDR,...", help="only these networks may connect (default: anyone)"
    )
    parser.add_argument("--hostname", help="FreeSWITCH-Hostname in events (default: this host)")
    parser.add_argument(
        "--max-sessions",
        type=_positive_int,
        default=MAX_SESSIONS,
        metavar="N",
        help="max-sessions: a new leg is refused (DESTINATION_OUT_OF_ORDER, no channel) when N "
        "are up; 'api fsctl max_sessions N' changes it (default %(default)s)",
    )
    parser.add_argument(
        "--sps",
        type=_positive_int,
        default=SESSIONS_PER_SECOND,
        metavar="N",
        help="sessions-per-second: the budget refilled every second of the switch's time; "
        "N-1 new legs a second get through, refused attempts use it up too; "
        "'api fsctl sps N' changes it from the next second (default %(default)s)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=_non_negative,
        default=HEARTBEAT_INTERVAL,
        metavar="SECONDS",
        help="a HEARTBEAT event every SECONDS of the switch's uptime, like FreeSWITCH's "
        "event-heartbeat-interval; scaled by --time-scale like every delay (so SECONDS x X "
        "real seconds; real seconds at time scale 0); 0: none (default %(default)s)",
    )
    parser.add_argument(
        "--idle-cpu",
        type=_percent,
        default=IDLE_CPU,
        metavar="PERCENT",
        help="the idle CPU that status and HEARTBEAT report (default %(default)s)",
    )
    parser.add_argument(
        "--show-default-scenario",
        action="store_true",
        help="print the built-in scenario as JSON and exit",
    )
    faults = parser.add_argument_group("faults (for failure tests)")
    faults.add_argument(
        "--fault-close-mid-frame",
        action="store_true",
        help="after auth, write half of the next frame and close",
    )
    faults.add_argument(
        "--fault-stall", action="store_true", help="after auth, accept commands but never reply"
    )
    faults.add_argument(
        "--fault-error-all", action="store_true", help="after auth, answer every command with -ERR"
    )
    faults.add_argument(
        "--fault-drop-every",
        type=_non_negative,
        metavar="SECONDS",
        help="close every connection every SECONDS (real time)",
    )
    faults.add_argument(
        "--fault-freeze-after",
        type=_non_negative,
        metavar="SECONDS",
        help="freeze SECONDS (real time) after start, 0: at once. A frozen host: connections "
        "stay open and new ones are accepted, but nothing is written to any (no auth/request, "
        "reply, event or HEARTBEAT) and no command is run; calls go on and events queue per "
        "connection until it thaws. SIGUSR1 freezes or thaws at any time; each change prints "
        "FROZEN or THAWED on stdout",
    )
    faults.add_argument(
        "--fault-freeze-for",
        type=_non_negative,
        metavar="SECONDS",
        help="with --fault-freeze-after: thaw again after SECONDS (real time); "
        "default: stay frozen until SIGUSR1",
    )
    cdr = parser.add_argument_group("CDRs (like mod_xml_cdr)")
    cdr.add_argument("--cdr-url", metavar="URL", help="POST each leg's XML CDR here")
    cdr.add_argument(
        "--cdr-encode",
        choices=("true", "textxml"),
        default="true",
        help="true: cdr=<url-encoded XML> (default); textxml: the XML as text/xml",
    )
    cdr.add_argument(
        "--cdr-spool", metavar="DIR", help="where CDRs that could not be posted are written"
    )
    cdr.add_argument(
        "--cdr-retries",
        type=int,
        default=2,
        metavar="N",
        help="further attempts after a failed POST (default 2)",
    )
    cdr.add_argument(
        "--cdr-delay",
        type=_non_negative,
        default=1.0,
        metavar="SECONDS",
        help="pause between attempts (default 1)",
    )
    cdr.add_argument("--cdr-cred", metavar="USER:PASSWORD", help="HTTP basic credentials")


def build(args: argparse.Namespace) -> FakeSwitch:
    scenario = Scenario.load(args.scenario) if args.scenario else Scenario.default()
    host, port = args.listen
    switch = FakeSwitch(
        host,
        port,
        args.password,
        scenario=scenario,
        time_scale=args.time_scale,
        acl=args.acl,
        faults=Faults(
            close_mid_frame=args.fault_close_mid_frame,
            stall=args.fault_stall,
            error_all=args.fault_error_all,
            drop_every=args.fault_drop_every or None,
        ),
        hostname=args.hostname,
        heartbeat=args.heartbeat_interval or None,
        max_sessions=args.max_sessions,
        sps=args.sps,
        idle_cpu=args.idle_cpu,
    )
    if args.cdr_url:
        CdrPoster(
            args.cdr_url,
            spool_dir=args.cdr_spool,
            retries=args.cdr_retries,
            delay=args.cdr_delay,
            credentials=args.cdr_cred,
            encode=args.cdr_encode,
        ).attach(switch)
    return switch


def set_frozen(switch: FakeSwitch, frozen: bool) -> None:
    """Freeze or thaw, and say so on stdout (tests wait for the line)."""
    switch.faults.frozen = frozen
    log.info("fakeswitch %s", "frozen" if frozen else "thawed")
    print("FROZEN" if frozen else "THAWED", flush=True)


def _freeze_on_schedule(switch: FakeSwitch, after: float, lasting: float | None) -> None:
    gevent.sleep(after)
    set_frozen(switch, True)
    if lasting is not None:
        gevent.sleep(lasting)
        set_frozen(switch, False)


def serve(args: argparse.Namespace) -> int:
    if args.show_default_scenario:
        print(json.dumps({"rules": DEFAULT_RULES}, indent=2))
        return 0
    if args.fault_freeze_for is not None and args.fault_freeze_after is None:
        print("fakeswitch: --fault-freeze-for needs --fault-freeze-after", file=sys.stderr)
        return 2
    try:
        switch = build(args)
        switch.start()
    except ScenarioError as exc:
        print(f"fakeswitch: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"fakeswitch: cannot listen on {args.listen[0]}:{args.listen[1]}: {exc}",
            file=sys.stderr,
        )
        return 1
    print(f"LISTENING {switch.host}:{switch.port}", flush=True)
    stopping = gevent.event.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stopping.set)
    gevent.signal_handler(signal.SIGUSR1, lambda: set_frozen(switch, not switch.faults.frozen))
    if args.fault_freeze_after is not None:
        gevent.spawn(_freeze_on_schedule, switch, args.fault_freeze_after, args.fault_freeze_for)
    stopping.wait()
    log.info("fakeswitch stopping")
    switch.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m c2c.fakeswitch",
        description="A FreeSWITCH Event Socket simulator (c2c fakeswitch).",
    )
    add_arguments(parser)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return serve(args)

#!/usr/bin/env python3
"""Rehearse c2c's fault handling against a running deployment: the faults of tests/test_faults.py.

NEVER POINT THIS AT PRODUCTION TRAFFIC YOU CANNOT AFFORD TO DISTURB. It places real calls to the
numbers you give, kill -9s a gunicorn worker, reloads gunicorn, and runs the commands you give to
restart the switch, drop its Event Socket or take the database away. Calls of other customers that
are up at that moment live through the same faults. Use a staging or lab deployment (FreeSWITCH
with a test gateway, or `c2c fakeswitch`), or a maintenance window you have announced.

What it does, for each fault asked for (--faults, in that order):

1. sends a bounded stream of click-to-call requests (--requests, from --concurrency threads,
   --interval s apart) for the rehearsal account (--api-key), with max_duration=1 and a
   callback_url pointing at a receiver this script runs (--receiver-listen/--receiver-host);
2. once a third of them are answered, injects the fault:
   - ``kill-listener``: kill -9 of the gunicorn worker holding a switch's event lease (found in the
     store's leases table; it must be a child of --gunicorn-pid on this host);
   - ``hup``: SIGHUP to the gunicorn master (graceful reload);
   - ``callbacks-down``: the receiver refuses connections for --outage s;
   - ``switch-restart``: runs --switch-restart-cmd (e.g. ``systemctl restart freeswitch``);
   - ``esl-drop``: runs --esl-drop-cmd (e.g. ``fs_cli -x 'reload mod_event_socket'``);
   - ``store-outage``: runs --store-stop-cmd, waits --outage s, runs --store-start-cmd;
3. waits (bounded by --settle-timeout) until every call of the account made since the fault's
   stream began is settled and its callback delivered, then prints the figures (requests,
   accepted, 11s, errors, settled, delivered, duplicates, time to recover) and checks:
   every 0 has a call row, every row settled, no call debited twice or called back twice,
   reservations released, credits = before - minutes, and `c2c check` exits 0.

What it needs:

- a checkout of c2c with its environment (run it with the venv's python, from anywhere);
- the store's URL (--database-url, or C2C_DATABASE_URL) readable from here;
- a rehearsal account of its own (``c2c keys create rehearsal``, then ``c2c keys credit``) that
  nothing else uses while it runs (its credits and reservations are checked exactly);
- caller and callee numbers (--caller/--callee, national, country code 1 unless
  --country-code) that are safe to dial and answer (a test gateway, or the simulator's default
  scenario: any number answers after 1 s and the callee hangs up 5 s later);
- a callback address the deployment can reach: the receiver listens on --receiver-listen, and
  callbacks go to --receiver-host (loopback or private addresses need
  C2C_CALLBACK_ALLOW_PRIVATE=on in the deployment);
- for kill-listener and hup: --gunicorn-pid (the master's pid, this host);
- the commands for the faults that need them (run with the shell, each bounded by 120 s).

Exit status: 0 when every fault's checks passed, 1 when one failed, 2 on bad usage. Without
--yes it only prints what it would do.

Example (a lab box running gunicorn and `c2c fakeswitch` under systemd):

    .venv/bin/python scripts/rehearse-faults.py --yes \\
        --api http://127.0.0.1:8080 --api-key "$REHEARSAL_KEY" \\
        --database-url mysql+pymysql://c2c:pw@127.0.0.1/c2c --gunicorn-pid "$(cat /run/c2c.pid)" \\
        --caller 2125550123 --callee 2125550199 \\
        --switch-restart-cmd 'systemctl restart c2c-fakeswitch' \\
        --faults kill-listener,hup,callbacks-down,switch-restart
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402 (after the path is set)

from c2c.store import Store, schema  # noqa: E402
from tests.callback_receiver import CallbackReceiver  # noqa: E402
from tests.support.faults import (  # noqa: E402
    RequestStream,
    Tally,
    assert_consistent,
    tally,
    wait_all_delivered,
    wait_all_settled,
)
from tests.support.processes import wait_until  # noqa: E402

FAULTS = ("kill-listener", "hup", "callbacks-down", "switch-restart", "esl-drop", "store-outage")
COMMAND_TIMEOUT = 120.0


class Rehearsal:
    """The deployment as the tallies see it (tests.support.faults.Target)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.database_url: str = args.database_url
        self.store = Store.from_url(self.database_url)
        account = self.store.accounts.find_by_key(args.api_key)
        if account is None:
            raise SystemExit("rehearse-faults: --api-key names no account in that store")
        self.account_id = account.id
        host, _, port = args.receiver_listen.rpartition(":")
        self.receiver = CallbackReceiver(host or "127.0.0.1", int(port or 0)).start()

    def params(self) -> dict[str, str]:
        a = self.args
        callback = self.receiver.url("/rehearsal", host=a.receiver_host or None)
        return {
            "api_key": a.api_key,
            "caller_phone_number": a.caller,
            "caller_country_code": a.country_code,
            "callee_phone_number": a.callee,
            "callee_country_code": a.country_code,
            "max_duration": "1",
            "secret": "rehearsal",
            "callback_url": callback,
        }

    # -- the faults --------------------------------------------------------------------------

    def kill_listener(self, stream: RequestStream) -> dict[str, object]:
        victim = self._listener_worker()
        stream.pause()  # between requests: none dies with the worker
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        stream.resume()

        def taken_over() -> bool:
            try:
                return self._listener_worker() != victim
            except LookupError:
                return False

        wait_until(taken_over, 60, 0.1, "another worker listening")
        return {"killed worker": victim, "takeover s": round(time.monotonic() - killed_at, 1)}

    def _listener_worker(self) -> int:
        """A live child of the gunicorn master holding a switch's event lease on this host."""
        workers = _children(self._master())
        with self.store.engine.connect() as conn:
            leases = conn.execute(select(schema.leases)).mappings().all()
        for lease in leases:
            host, _, rest = str(lease["holder"]).partition(":")
            pid = int(rest.split(":")[0]) if rest.split(":")[0].isdigit() else -1
            if (
                lease["name"].startswith("switch:")
                and host == socket.gethostname()
                and pid in workers
                and lease["expires_at"] >= time.time()
            ):
                return pid
        raise LookupError("no worker of this gunicorn holds a switch's lease")

    def _master(self) -> int:
        if not self.args.gunicorn_pid:
            raise SystemExit("rehearse-faults: this fault needs --gunicorn-pid")
        return int(self.args.gunicorn_pid)

    def hup(self, stream: RequestStream) -> dict[str, object]:
        master = self._master()
        old = _children(master)
        hup_at = time.monotonic()
        os.kill(master, signal.SIGHUP)
        wait_until(lambda: not old & _children(master), 120, 0.1, "old workers replaced")
        return {"old workers gone after s": round(time.monotonic() - hup_at, 1)}

    def callbacks_down(self, stream: RequestStream) -> dict[str, object]:
        self.receiver.go_down()
        time.sleep(self.args.outage)
        self.receiver.come_up()
        return {"receiver down s": self.args.outage}

    def switch_restart(self, stream: RequestStream) -> dict[str, object]:
        return _run("switch restart", self.args.switch_restart_cmd)

    def esl_drop(self, stream: RequestStream) -> dict[str, object]:
        return _run("esl drop", self.args.esl_drop_cmd)

    def store_outage(self, stream: RequestStream) -> dict[str, object]:
        stopped = _run("store stop", self.args.store_stop_cmd)
        time.sleep(self.args.outage)
        started = _run("store start", self.args.store_start_cmd)
        return {**stopped, **started, "store down s": self.args.outage}

    # -- one fault, measured -----------------------------------------------------------------

    def rehearse(self, fault: str) -> bool:
        a = self.args
        inject: Callable[[RequestStream], dict[str, object]] = getattr(
            self, fault.replace("-", "_")
        )
        since = time.time() - 1  # created_at is the API host's clock: allow a little skew
        before = self.store.accounts.find(self.account_id)
        assert before is not None
        if before.reserved:
            print(
                f"[{fault}] SKIPPED: the account has {before.reserved} minute(s) reserved by "
                "calls in flight; it must be used by this rehearsal only"
            )
            return False
        stream = RequestStream(
            a.api.rstrip("/"),
            self.params(),
            a.requests,
            concurrency=a.concurrency,
            interval=a.interval,
        ).start()
        stream.wait_answered(max(1, a.requests // 3), timeout=120)
        injected_at = time.time()
        extra = inject(stream)
        stream.join(300)
        recovered = min(
            (x.started for x in stream.answers if x.code == 0 and x.started >= injected_at),
            default=None,
        )
        extra["first 0 after the fault s"] = (
            None if recovered is None else round(recovered - injected_at, 1)
        )
        result: Tally | None = None
        try:
            wait_all_settled(self, a.settle_timeout, since)
            wait_all_delivered(self, a.settle_timeout, since)
            time.sleep(2)  # a duplicate callback, if any, would arrive now
            result = tally(fault, self, stream, since)
            result.extra = extra
            assert_consistent(result, self, stream, before.credits, since)
        except (AssertionError, TimeoutError) as exc:
            if result is None:
                result = tally(fault, self, stream, since)
                result.extra = extra
            print(result.line())
            print(f"[{fault}] FAILED: {exc}")
            return False
        print(result.line())
        print(f"[{fault}] ok")
        return True


def _children(master: int) -> set[int]:
    """The live children of ``master`` (its workers), from /proc."""
    children = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == master and stat[0] != b"Z":
            children.add(int(entry))
    return children


def _run(what: str, command: str | None) -> dict[str, object]:
    if not command:
        raise SystemExit(f"rehearse-faults: {what} needs its command (see --help)")
    started = time.monotonic()
    done = subprocess.run(command, shell=True, timeout=COMMAND_TIMEOUT, check=False)
    if done.returncode != 0:
        print(f"warning: {what} command exited {done.returncode}")
    return {f"{what} took s": round(time.monotonic() - started, 1)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rehearse-faults",
        description="Inject faults into a running c2c deployment under a bounded load and "
        "check that every call settles exactly once. Read the top of this file first: never "
        "against production traffic you cannot afford to disturb.",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="really inject the faults (without it: print the plan and exit)",
    )
    parser.add_argument("--api", required=True, help="c2c's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--api-key", required=True, help="the rehearsal account's key")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("C2C_DATABASE_URL"),
        help="the store (default: C2C_DATABASE_URL)",
    )
    parser.add_argument("--caller", required=True, help="caller number (national digits)")
    parser.add_argument("--callee", required=True, help="callee number (national digits)")
    parser.add_argument("--country-code", default="1")
    parser.add_argument(
        "--faults",
        default="kill-listener,hup,callbacks-down",
        help=f"comma-separated, from {', '.join(FAULTS)}",
    )
    parser.add_argument("--requests", type=int, default=30, help="requests per fault (30)")
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument(
        "--interval",
        type=float,
        default=0.5,
        help="seconds each sender waits between its requests (0.5)",
    )
    parser.add_argument(
        "--outage", type=float, default=4.0, help="seconds the receiver or the store stays down (4)"
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for every call to settle and be called back; "
        "a call that vanished settles at its deadline: 2 x ring timeout + "
        "1 min + C2C_SETTLE_GRACE (300)",
    )
    parser.add_argument(
        "--receiver-listen",
        default="127.0.0.1:0",
        help="where the callback receiver listens (HOST:PORT)",
    )
    parser.add_argument(
        "--receiver-host",
        default="",
        help="host c2c should send callbacks to (default: the listen host)",
    )
    parser.add_argument("--gunicorn-pid", type=int, help="the gunicorn master's pid")
    parser.add_argument("--switch-restart-cmd", help="shell command restarting the switch")
    parser.add_argument("--esl-drop-cmd", help="shell command dropping Event Socket connections")
    parser.add_argument("--store-stop-cmd", help="shell command making the store unreachable")
    parser.add_argument("--store-start-cmd", help="shell command bringing it back")
    args = parser.parse_args(argv)
    args.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in args.faults if f not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {unknown}; choose from {', '.join(FAULTS)}")
    if not args.database_url:
        parser.error("--database-url (or C2C_DATABASE_URL) is required")
    if not 1 <= args.requests <= 1000 or not 1 <= args.concurrency <= 50:
        parser.error("--requests 1..1000 and --concurrency 1..50")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.yes:
        print("Would rehearse, in order: " + ", ".join(args.faults))
        print(
            f"against {args.api}, {args.requests} requests per fault, calling {args.caller} "
            f"-> {args.callee}. Nothing done: add --yes to inject the faults."
        )
        return 2
    rehearsal = Rehearsal(args)
    try:
        results = [rehearsal.rehearse(fault) for fault in args.faults]
    finally:
        rehearsal.receiver.stop()
        rehearsal.store.dispose()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

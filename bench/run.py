"""The c2c benchmark: one command, one table, bench/RESULTS.md.

    .venv/bin/python -m bench            # the full run (about 13 minutes)
    .venv/bin/python -m bench --quick    # the same measurements, short (about 5 minutes)
    .venv/bin/python -m bench --smoke    # seconds per phase; figures are meaningless (tests)

Needs wrk (``apt-get install -y wrk``), MariaDB on 127.0.0.1:3306 (C2C_BENCH_MYSQL_URL; the
benchmark creates and drops its own ``c2c_bench_*`` databases) and, for the profiles, py-spy
in the venv. ``--only api,e2e,...`` runs some phases; ``--db sqlite`` uses SQLite files instead.

Phases (the numbers are the brief's items):

1+2 ``api``          accept path and reject paths (codes 1 and 4) vs a bare falcon app
3   ``e2e``          request -> callback at 500 calls/s offered, then at a rate c2c sustains;
                     CPU per completed call (c2c, MariaDB, simulator); the same rate again with
                     C2C_BACKGROUND=separate and one ``c2c worker``
4   ``concurrency``  10,000 calls in flight, ended by hupall, settled and called back
5   ``parser``       our Event Socket frame parser vs greenswitch's on the recordings
6   ``dnc``          ``c2c dnc import`` rates, and the accept p99 with the big list vs empty
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import profiling
from bench.cpu import CpuMeter, machine_seconds, mariadb_pids
from bench.loadgen import WRK, WrkResult, run_wrk
from bench.results import (
    BENCH_DIR,
    Report,
    Row,
    machine_description,
    ratio,
    table,
    verdict,
    write_results,
)
from bench.stack import (
    CALLER_BASE,
    CREDITS,
    LONG_CALLS,
    QUICK_CALLS,
    SWITCH_PASSWORD,
    WARMUP_CALLER_BASE,
    AppServer,
    Stack,
    bare_server,
    esl_api,
    innodb_row_lock_waits,
    mariadb_version,
    mysql_reachable,
    scratch_database,
    write_scenario,
)
from tests.support.processes import REPO, SimulatorProcess, http_get

PHASES = ("api", "e2e", "concurrency", "parser", "dnc")
# c2c's processes in the CPU meters (bench/stack.py, Stack.c2c_pids), and their figures' keys
C2C_PARTS = (("gunicorn master", "master_ms"), ("gunicorn workers", "gunicorn_workers_ms"),
             ("c2c worker", "c2c_worker_ms"))
PROFILES_DIR = BENCH_DIR / "profiles"


@dataclass(frozen=True)
class Plan:
    mode: str
    db: str
    connections: int = 32  # wrk connections for the API runs (one wrk thread)
    api_seconds: float = 10.0
    e2e_rate: float = 500.0  # the target, offered
    e2e_seconds: float = 60.0
    e2e_sustained_seconds: float = 30.0
    e2e_drain: float = 30.0  # how long to wait for the last callbacks after a run
    switch_only_seconds: float = 5.0
    inflight: int = 10_000
    ramp_rate: float = 90.0  # calls/s while filling the switch (the listener keeps up)
    settle_timeout: float = 300.0
    parser_seconds: float = 2.0
    dnc_sizes: tuple[int, ...] = (1_000_000, 10_000_000)
    dnc_baseline_max: int = 1_000_000  # LOAD DATA baseline only up to this size (10M: minutes)
    profile: bool = True
    loadgen_calibration: bool = True
    drain_timeout: float = 120.0


def plan_for(mode: str, db: str) -> Plan:
    if mode == "quick":
        return Plan(mode, db, api_seconds=4, e2e_seconds=5, e2e_sustained_seconds=5,
                    e2e_drain=15, switch_only_seconds=3, inflight=2_000, settle_timeout=120,
                    parser_seconds=1, dnc_sizes=(100_000,), dnc_baseline_max=100_000,
                    drain_timeout=60)
    if mode == "smoke":
        return Plan(mode, db, connections=8, api_seconds=1, e2e_rate=50, e2e_seconds=2,
                    e2e_sustained_seconds=2, e2e_drain=10, switch_only_seconds=1, inflight=100,
                    ramp_rate=100, settle_timeout=60, parser_seconds=0.2, dnc_sizes=(10_000,),
                    dnc_baseline_max=10_000 if db == "mysql" else 0,
                    profile=False, loadgen_calibration=False, drain_timeout=30)
    return Plan(mode, db)


class Numbers:
    """Blocks of request numbers: distinct across every run of the benchmark."""

    BLOCK = 4_000_000

    def __init__(self) -> None:
        self._next = 0

    def block(self) -> int:
        base = self._next
        self._next += self.BLOCK
        return base


class Bench:
    def __init__(self, plan: Plan, workdir: Path, report: Report) -> None:
        self.plan = plan
        self.workdir = workdir
        self.report = report
        self.numbers = Numbers()
        self.state: dict[str, float] = {}

    # -- helpers ----------------------------------------------------------------------------

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def wait_quiet(self, limit: float = 30.0) -> None:
        """Give other work on the machine (other people's test runs) a chance to finish."""
        if self.plan.mode == "smoke":
            return
        deadline = time.monotonic() + limit
        while True:
            before = machine_seconds()
            time.sleep(1.0)
            after = machine_seconds()
            busy = sum(after[k] - before[k] for k in after if k not in ("idle", "iowait",
                                                                          "steal"))
            if busy < 0.3 or time.monotonic() > deadline:
                if busy >= 0.3:
                    self.log(f"machine still busy ({busy:.2f} cores) before the phase")
                    self.report.note("Interference", f"- {busy:.2f} cores busy before a phase "
                                     "(other processes on the machine)")
                return

    def meter(self, stack: Stack | None = None, server: AppServer | None = None) -> CpuMeter:
        groups: dict[str, list[int]] = {}
        if server is not None:
            groups["gunicorn workers"] = server.worker_pids()
        elif stack is not None:
            groups.update(stack.c2c_pids())  # gunicorn master, workers, any `c2c worker`
        groups["mariadb"] = mariadb_pids()
        if stack is not None and stack.simulator is not None:
            groups["simulator"] = [stack.simulator.pid]
        if stack is not None and stack.observer is not None:
            groups["observer"] = [stack.observer.pid]
        return CpuMeter(groups, children_label="wrk")

    def cpu_note(self, label: str, meter: CpuMeter) -> None:
        other = meter.machine_busy - meter.accounted
        self.report.note("CPU during the measured runs (cores; 2 = the whole machine)",
                         f"- {label}: {meter.describe()}; not ours (other processes, kernel): "
                         f"{other:.2f}")

    def wait_drained(self, stack: Stack, timeout: float | None = None) -> float:
        """Until every call is settled (the listener has caught up); returns the seconds."""
        started = time.monotonic()
        deadline = started + (timeout or self.plan.drain_timeout)
        while time.monotonic() < deadline:
            if stack.count_calls("WHERE state <> 'ended'") == 0:
                break
            time.sleep(0.25)
        else:
            left = stack.count_calls("WHERE state <> 'ended'")
            self.log(f"{left} calls still unsettled after {timeout or self.plan.drain_timeout}s")
        return time.monotonic() - started

    def stack(self, url: str, **kwargs: Any) -> Stack:
        return Stack(self.workdir, url, **kwargs)

    def profile(self, name: str, pids: list[int], seconds: float, run: Callable[[], Any],
                labels: dict[int, str]) -> str:
        """py-spy every pid while run() runs; the summary goes to bench/profiles/<name>.txt."""
        spies = profiling.start(pids, seconds, self.workdir)
        time.sleep(0.5)
        run()
        text = profiling.finish(spies, seconds, label=lambda pid: labels.get(pid, "process"))
        PROFILES_DIR.mkdir(exist_ok=True)
        path = PROFILES_DIR / f"{name}.txt"
        path.write_text(f"# py-spy: {name} ({self.plan.mode} mode, "
                        f"{time.strftime('%Y-%m-%d %H:%M')})\n\n{text}", encoding="utf-8")
        return str(path.relative_to(REPO))

    # -- 1 + 2: the API ----------------------------------------------------------------------

    def phase_api(self) -> None:
        plan, report = self.plan, self.report
        c, d = plan.connections, plan.api_seconds
        numbers = "caller_phone_number=2125550123&caller_country_code=1" \
                  "&callee_phone_number=2125550199&callee_country_code=1"
        bad_key = f"/api/clicktocall/?api_key=no-such-key&{numbers}"

        def malformed(key: str) -> str:
            return (f"/api/clicktocall/?api_key={key}&caller_phone_number=12ab"
                    "&caller_country_code=1&callee_phone_number=2125550199&callee_country_code=1")

        self.log("api: baseline (bare falcon app, same gunicorn settings)")
        with bare_server(self.workdir) as bare:
            run_wrk(bare.base_url, duration=1, connections=c, fixed_path=bad_key)
            with self.meter(server=bare) as m:
                b_accept = run_wrk(bare.base_url, duration=d, connections=c, api_key="k" * 32,
                                   number_base=self.numbers.block())
            self.cpu_note("bare app, accept-shaped requests", m)
            b_bad = run_wrk(bare.base_url, duration=d, connections=c, fixed_path=bad_key)
            b_bad4 = run_wrk(bare.base_url, duration=d, connections=c,
                             fixed_path=malformed("k" * 32))
            if plan.loadgen_calibration:
                self.calibrate_loadgen(bare, bad_key)

        with scratch_database(plan.db, self.workdir) as url, \
                self.stack(url, rules=QUICK_CALLS) as st:
            self.log("api: c2c warm-up")
            run_wrk(st.base_url, duration=2, connections=c, api_key=st.api_key,
                    number_base=self.numbers.block())
            self.wait_drained(st)
            calls_before = st.count_calls()

            self.log("api: reject paths")
            with self.meter(st) as m:
                r_bad = run_wrk(st.base_url, duration=d, connections=c, fixed_path=bad_key)
            self.cpu_note("c2c, reject code 1", m)
            with self.meter(st) as m:
                r_bad4 = run_wrk(st.base_url, duration=d, connections=c,
                                 fixed_path=malformed(st.api_key))
            self.cpu_note("c2c, reject code 4", m)
            with self.meter(st) as m:
                r_bad_many = run_wrk(st.base_url, duration=d, connections=c,
                                     vary_key="no-such-key-", number_base=self.numbers.block())
            self.cpu_note("c2c, reject code 1, a different unknown key per request", m)
            assert st.count_calls() == calls_before, "a rejected request left a call row"

            self.log("api: accept path, as fast as it goes")
            locks = self.row_locks()
            with self.meter(st) as m:
                r_acc = run_wrk(st.base_url, duration=d, connections=c, api_key=st.api_key,
                                number_base=self.numbers.block())
            self.cpu_note("c2c, accept path at the maximum rate", m)
            locks_one = self.row_locks(locks)
            drained = self.wait_drained(st)
            accepted_rate = r_acc.rate_of("0")
            report.note("Accept path", f"- at the maximum rate, {r_acc.count_body('0'):,} "
                        f"requests accepted in {r_acc.seconds:.1f} s; the event listener then "
                        f"needed {drained:.1f} s more to settle the calls they started")
            half = max(1.0, accepted_rate / 2)
            self.log(f"api: accept path paced at half the maximum ({half:.0f}/s)")
            with self.meter(st) as m:
                r_half = run_wrk(st.base_url, duration=d, connections=c, api_key=st.api_key,
                                 number_base=self.numbers.block(), rate=half)
            self.cpu_note(f"c2c, accept path paced at {half:.0f}/s", m)
            self.wait_drained(st)
            self.state["half_rate"] = half
            self.state["accept_rps"] = accepted_rate

            # What-if: the same load spread over 16 accounts (each accept locks its account's
            # row from the credit check to the commit, so one account's accepts queue).
            keys = [st.api_key] + [st.store.accounts.create(f"bench-{i}", CREDITS).api_key
                                   for i in range(15)]
            self.log("api: accept path over 16 accounts (what-if)")
            locks = self.row_locks()
            with self.meter(st) as m:
                r_many = run_wrk(st.base_url, duration=d, connections=c, api_keys=keys,
                                 number_base=self.numbers.block())
            self.cpu_note("c2c, accept path at the maximum rate, 16 accounts", m)
            locks_many = self.row_locks(locks)
            self.wait_drained(st)

            if plan.profile and profiling.available():
                self.log("api: profiling the accept path (py-spy, separate run)")
                pids = st.server.worker_pids()
                path = self.profile(
                    "api_accept", pids, d,
                    lambda: run_wrk(st.base_url, duration=d, connections=c, api_key=st.api_key,
                                    number_base=self.numbers.block()),
                    {pid: "gunicorn worker" for pid in pids})
                report.note("Profiles", f"- accept path at the maximum rate: `{path}`")
                self.wait_drained(st)
            self.count_queries(url, st)

        for result in (r_acc, r_half, r_bad, r_bad4):
            self.check_errors(result)
        acc_ratio = accepted_rate / b_accept.rps if b_accept.rps else 0
        report.add(Row("1", f"accept path: accepted requests/s (max, {c} connections)",
                       f"{accepted_rate:,.0f}/s (p50 {r_acc.p50_ms:.1f} ms, p99 "
                       f"{r_acc.p99_ms:.1f} ms)",
                       f"bare falcon {b_accept.rps:,.0f}/s (p50 {b_accept.p50_ms:.1f}, p99 "
                       f"{b_accept.p99_ms:.1f} ms)",
                       ratio(accepted_rate, b_accept.rps), ">= 0.3", verdict(acc_ratio >= 0.3)))
        report.add(Row("1", "what-if: accept path with the load spread over 16 accounts",
                       f"{r_many.rate_of('0'):,.0f}/s (p50 {r_many.p50_ms:.1f} ms, p99 "
                       f"{r_many.p99_ms:.1f} ms)", f"bare falcon {b_accept.rps:,.0f}/s",
                       ratio(r_many.rate_of("0"), b_accept.rps), "", ""))
        if locks_one is not None and locks_many is not None:
            report.note("Accept path", (
                f"- InnoDB row lock waits during the maximum-rate run (server-wide counters): "
                f"one account {locks_one[0]:,} waits, {locks_one[1] / 1000:,.1f} s waited in "
                f"all; 16 accounts {locks_many[0]:,} waits, {locks_many[1] / 1000:,.1f} s."))
        report.add(Row("1", f"accept path p99, paced at half the max ({half:.0f}/s)",
                       f"p99 {r_half.p99_ms:.1f} ms (p50 {r_half.p50_ms:.1f} ms, sent "
                       f"{r_half.rps:.0f}/s)", "", "", "< 50 ms",
                       verdict(r_half.p99_ms < 50)))
        for code, result, base, how in (
                ("1", r_bad, b_bad, "code 1"), ("4", r_bad4, b_bad4, "code 4"),
                ("1", r_bad_many, b_bad, "what-if: code 1, a new unknown key every request")):
            rate = result.rate_of(code)
            what_if = how.startswith("what-if")
            report.add(Row("2", f"reject path, {how}: requests/s (max)",
                           f"{rate:,.0f}/s (p50 {result.p50_ms:.1f} ms, p99 "
                           f"{result.p99_ms:.1f} ms)",
                           f"bare falcon {base.rps:,.0f}/s (p50 {base.p50_ms:.1f}, p99 "
                           f"{base.p99_ms:.1f} ms)",
                           ratio(rate, base.rps), "" if what_if else ">= 0.7",
                           "" if what_if else verdict(base.rps > 0 and rate / base.rps >= 0.7)))
        report.figure("accept_rps", accepted_rate)
        report.figure("accept_p99_ms", r_acc.p99_ms)
        report.figure("accept_half_p99_ms", r_half.p99_ms)
        report.figure("bare_accept_rps", b_accept.rps)
        report.figure("reject1_rps", r_bad.rate_of("1"))
        report.figure("reject4_rps", r_bad4.rate_of("4"))
        report.figure("reject1_varied_keys_rps", r_bad_many.rate_of("1"))

    def row_locks(self, since: tuple[int, int] | None = None) -> tuple[int, int] | None:
        if self.plan.db != "mysql":
            return None
        now = innodb_row_lock_waits()
        if now is None or since is None:
            return now
        return now[0] - since[0], now[1] - since[1]

    def check_errors(self, result: WrkResult) -> None:
        if result.socket_errors:
            self.report.note("Load generator errors",
                             f"- {result.label or 'a run'}: wrk socket errors {result.errors}")
        odd = {k: v for k, v in result.bodies.items() if not k.startswith("200:")}
        if odd:
            self.report.note("Load generator errors", f"- non-200 answers: {odd}")

    def calibrate_loadgen(self, bare: AppServer, path: str) -> None:
        seconds = 3.0
        with CpuMeter({}, children_label="load generator") as m_wrk:
            r = run_wrk(bare.base_url, duration=seconds, connections=self.plan.connections,
                        fixed_path=path)
        wrk_us = m_wrk.shares["load generator"] * m_wrk.seconds / max(r.requests, 1) * 1e6
        with CpuMeter({}, children_label="load generator") as m_py:
            out = subprocess.run(
                [sys.executable, "-m", "bench.pyclient", bare.base_url + path,
                 "--connections", str(self.plan.connections), "--seconds", str(seconds)],
                capture_output=True, text=True, timeout=seconds + 30, cwd=REPO, check=False)
        try:
            py = json.loads(out.stdout)
        except ValueError:
            self.report.note("Load generator", f"- the Python client failed: {out.stderr[-300:]}")
            return
        py_rps = py["requests"] / py["seconds"]
        py_us = m_py.shares["load generator"] * m_py.seconds / max(py["requests"], 1) * 1e6
        self.report.note("Load generator", "\n".join([
            f"- wrk (1 thread, {self.plan.connections} connections) against the bare app: "
            f"{r.rps:,.0f} requests/s, {wrk_us:.1f} us of load-generator CPU per request.",
            f"- the leanest gevent client we could write (bench/pyclient.py, raw keep-alive "
            f"sockets) against the same app and URL: {py_rps:,.0f} requests/s, {py_us:.1f} us "
            "of CPU per request (process start included).",
            "- wrk is used for every figure: it loads the server harder "
            f"({r.rps / py_rps:.2f}x the requests/s) with less CPU per request, and on this "
            "2-core machine every cycle the load generator burns is taken from the server it "
            "measures. Its Lua script (bench/loadgen.py) varies the numbers per request, "
            "tallies the response bodies (c2c's codes) and paces requests when a rate is "
            "asked for.",
        ]))

    def count_queries(self, url: str, st: Stack) -> None:
        assert st.simulator is not None
        lines = []
        for kind in ("none", "bad-key", "malformed"):
            out = subprocess.run(
                [sys.executable, "-m", "bench.queries", "--database", url,
                 "--switch", st.simulator.switch_url, "--requests", "100", "--reject", kind,
                 "--number-base", str(self.numbers.block())],
                capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
            try:
                data = json.loads(out.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                lines.append(f"- {kind}: harness failed: {out.stderr[-500:]}")
                continue
            label = {"none": "accepted request (code 0)", "bad-key": "code 1 (unknown key)",
                     "malformed": "code 4 (malformed)"}[kind]
            per = data["round_trips_per_request"]
            lines.append(f"- **{label}**: {per:g} round trips to MariaDB per request "
                         f"(answers {data['bodies']}; {data['serial_ms_per_request']:.2f} ms per "
                         "request one at a time, in-process):")
            lines += [f"    - {n:g} x `{sql}`" for sql, n in data["statements"].items()]
            if kind == "none":
                self.report.figure("accept_round_trips", per)
        self.report.note("SQL per request (counted on the wire, bench/queries.py)", "\n".join(
            lines))

    # -- 3: end to end -----------------------------------------------------------------------

    def phase_e2e(self) -> None:
        plan, report = self.plan, self.report
        base_rate = self.switch_only_rate()
        self.log(f"e2e: switch alone {base_rate:,.0f} calls/s")

        self.log(f"e2e: offered {plan.e2e_rate:.0f} calls/s for {plan.e2e_seconds:.0f} s")
        a = self.e2e_run(plan.e2e_rate, plan.e2e_seconds, "e2e at the target rate")
        self.e2e_rows(a, base_rate, f"offered {plan.e2e_rate:.0f}/s for "
                      f"{plan.e2e_seconds:.0f} s")
        report.figure("e2e_completed_rate", a["completed_rate"])
        report.figure("e2e_callback_p99_s", a["p99"])
        met = a["completed_rate"] >= 500 * 0.98 and a["p99"] < 1.0
        if not met:
            # How fast can it go and keep the callbacks prompt? Start from 80% of what the
            # listener got through once the requests stopped; while the callbacks lag, 60% of
            # the rate tried, up to three tries (the listener alone drains faster than the
            # whole system sustains with the API busy too, by how much varies by machine).
            capacity = max(a["drain_throughput"], a["throughput"])
            rate = max(5.0, math.floor(capacity * 0.8 / 5) * 5)
            how = "80% of the listener's throughput after the requests above stopped"
            tries = 3
            for attempt in range(tries):
                self.log(f"e2e: sustained run at {rate:.0f} calls/s")
                b = self.e2e_run(rate, plan.e2e_sustained_seconds, "e2e at a sustainable rate")
                if b["p99"] < 1.0 and b["missing"] == 0 or attempt == tries - 1:
                    break
                report.note("End to end", f"- (at {rate:.0f}/s the callbacks lagged: trying "
                            f"{max(5.0, math.floor(rate * 0.6 / 5) * 5):.0f}/s)")
                rate = max(5.0, math.floor(rate * 0.6 / 5) * 5)
                how = ("after a faster try lagged" if attempt == 0
                       else f"after {attempt + 1} faster tries lagged")
            self.e2e_rows(b, base_rate, f"offered {rate:.0f}/s for "
                          f"{plan.e2e_sustained_seconds:.0f} s, {how}", target=False)
            report.figure("e2e_sustained_rate", b["completed_rate"])
            report.figure("e2e_sustained_p99_s", b["p99"])
            self.state["sustained_rate"] = b["completed_rate"]
            sustained, sustained_seconds, sustained_how = b, plan.e2e_sustained_seconds, how
        else:
            self.state["sustained_rate"] = a["completed_rate"]
            rate, sustained, sustained_seconds = plan.e2e_rate, a, plan.e2e_seconds
            sustained_how = "the target rate"
        self.e2e_cpu_rows(sustained, "C2C_BACKGROUND=workers", "")

        # The same offered rate with the background in a process of its own (issue 17).
        self.log(f"e2e: C2C_BACKGROUND=separate (one `c2c worker`) at {rate:.0f} calls/s")
        c = self.e2e_run(rate, sustained_seconds, "e2e, C2C_BACKGROUND=separate",
                         background="separate")
        how_c = (f"C2C_BACKGROUND=separate, one `c2c worker`; offered {rate:.0f}/s for "
                 f"{sustained_seconds:.0f} s, as the run above")
        self.e2e_rows(c, base_rate, how_c, target=False)
        self.e2e_cpu_rows(c, "C2C_BACKGROUND=separate", " + `c2c worker`")
        report.figure("e2e_separate_completed_rate", c["completed_rate"])
        report.figure("e2e_separate_callback_p99_s", c["p99"])
        self.e2e_side_by_side(base_rate, rate, sustained_how,
                              [("workers", sustained), ("separate, 1 `c2c worker`", c)])
        if plan.profile and profiling.available():
            self.e2e_profile(max(5.0, self.state["sustained_rate"]))
            self.e2e_profile_separate(max(5.0, self.state["sustained_rate"]))

    def e2e_cpu_rows(self, f: dict[str, float], mode: str, extra: str) -> None:
        """CPU per completed call (issue 17's targets) for one end-to-end run."""
        report = self.report
        how = f"{mode}, offered {f['offered']:.0f}/s"
        key = "" if mode.endswith("workers") else "_separate"
        parts = ", ".join(f"{name} {f[k]:.2f}" for name, k in C2C_PARTS if k in f)
        report.add(Row(
            "3", f"end to end: c2c CPU per completed call (gunicorn master + workers{extra}; "
            f"{how})", f"{f['c2c_ms']:.2f} ms ({parts})",
            f"simulator {f['simulator_ms']:.2f} ms per call", ratio(f["c2c_ms"],
                                                                    f["simulator_ms"]),
            "<= 1 ms", verdict(f["c2c_ms"] <= 1.0)))
        mariadb = self.plan.db == "mysql"
        report.add(Row(
            "3", f"end to end: MariaDB CPU per completed call ({how})",
            f"{f['mariadb_ms']:.2f} ms" if mariadb else "not used (--db sqlite)",
            f"simulator {f['simulator_ms']:.2f} ms per call" if mariadb else "",
            ratio(f["mariadb_ms"], f["simulator_ms"]) if mariadb else "",
            "<= 0.5 ms", verdict(f["mariadb_ms"] <= 0.5) if mariadb else ""))
        for name in ("c2c_ms", "mariadb_ms", "simulator_ms"):
            if math.isfinite(f[name]):
                report.figure(f"e2e{key}_{name}_per_call", f[name])

    def e2e_side_by_side(self, base_rate: float, rate: float, how: str,
                         runs: list[tuple[str, dict[str, float]]]) -> None:
        lines = [
            f"Offered {rate:.0f} calls/s ({how}), each mode on a fresh database, simulator and "
            f"gunicorn ({os.cpu_count()} workers); CPU per call = CPU seconds from the first "
            "request to the last callback / calls called back; the simulator alone did "
            f"{base_rate:,.0f} calls/s.", "",
            "| C2C_BACKGROUND | completed calls/s | callback p50 / p99 after hangup | "
            "c2c ms/call | of which `c2c worker` | MariaDB ms/call | simulator ms/call | "
            "c2c / simulator |",
            "|---|---|---|---|---|---|---|---|"]
        for name, f in runs:
            lines.append(
                f"| {name} | {f['completed_rate']:.1f} ({int(f['missing'])} of "
                f"{int(f['accepted']):,} not called back) | {f['p50']:.3f} s / {f['p99']:.3f} s "
                f"| {f['c2c_ms']:.2f} | {f.get('c2c_worker_ms', 0.0):.2f} | "
                f"{f['mariadb_ms']:.2f} | {f['simulator_ms']:.2f} | "
                f"{ratio(f['c2c_ms'], f['simulator_ms'])} |")
        self.report.note("End to end: the background in the workers or in a `c2c worker`",
                         "\n".join(lines))

    def switch_only_rate(self) -> float:
        sim = SimulatorProcess(self.workdir, password=SWITCH_PASSWORD, time_scale=0,
                               scenario=write_scenario(self.workdir, QUICK_CALLS)).start()
        try:
            out = subprocess.run(
                [sys.executable, "-m", "bench.switch_only", "--port", str(sim.port),
                 "--password", SWITCH_PASSWORD, "--seconds", str(self.plan.switch_only_seconds)],
                capture_output=True, text=True, timeout=self.plan.switch_only_seconds + 60,
                cwd=REPO, check=False)
        finally:
            sim.stop()
        data = json.loads(out.stdout.strip().splitlines()[-1])
        return data["calls"] / data["seconds"]

    def e2e_run(self, rate: float, seconds: float, label: str, background: str = "workers"
                ) -> dict[str, float]:
        plan = self.plan
        with scratch_database(plan.db, self.workdir) as url, \
                self.stack(url, rules=QUICK_CALLS, tap=True, background=background) as st:
            assert st.observer is not None
            callback = st.observer.callback_url("/cb?order=42")
            params = {"callback_url": callback, "secret": "s3cret"}
            # warm-up: a few calls end to end, not counted
            run_wrk(st.base_url, duration=1, connections=8, api_key=st.api_key, rate=20,
                    number_base=self.numbers.block(), extra_params=params)
            self.wait_drained(st, 30)
            time.sleep(0.5)
            block = self.numbers.block()
            started = time.time()
            # m: the requests' window (the cores busy); whole: from the first request to the
            # last callback (the CPU per completed call: every call's events, settlement and
            # callback included, also those after the requests stopped)
            with self.meter(st) as whole:
                with self.meter(st) as m:
                    result = run_wrk(st.base_url, duration=seconds, connections=100,
                                     api_key=st.api_key, rate=rate, number_base=block,
                                     extra_params=params, label=label)
                ended = time.time()
                # the calls are counted again only once that many callbacks are in (polling
                # MariaDB all along would add to its CPU per call)
                total = st.count_calls()
                deadline = time.monotonic() + plan.e2e_drain
                while time.monotonic() < deadline:
                    if st.observer.callback_count() >= total:
                        total = st.count_calls()  # requests wrk left in flight may add some
                        if st.observer.callback_count() >= total:
                            break
                    time.sleep(0.1)
            drained = time.time() - ended
            self.cpu_note(f"{label} ({rate:.0f}/s offered)", m)
            self.check_errors(result)
            hangups, callbacks = st.observer.records()
            # this run's calls: those with its numbers (10 digits: text order is number order)
            ours = {row[0] for row in st.rows(
                f"SELECT id FROM calls WHERE caller_number >= '{CALLER_BASE + block}' "
                f"AND caller_number < '{CALLER_BASE + block + Numbers.BLOCK}'")}
            unsettled = st.count_calls("WHERE state <> 'ended'")
        for worker in st.c2c_workers:
            if worker.returncode != 0:
                self.report.note("Failures", f"- {label}: `c2c worker` {worker.pid} did not stop "
                                 f"cleanly on TERM (exit {worker.returncode}; log "
                                 f"{worker.log_path.name})")
        accepted = len(ours)
        latencies = sorted(callbacks[cid] - hangups[cid] for cid in ours
                           if cid in callbacks and cid in hangups)
        in_window = sum(1 for cid in ours if cid in callbacks and callbacks[cid] <= ended)
        missing = accepted - sum(1 for cid in ours if cid in callbacks)
        window = ended - started
        last = max((callbacks[cid] for cid in ours if cid in callbacks), default=ended)
        # calls called back per second from the start to the last callback: what the event
        # listener got through, backlog included
        throughput = (accepted - missing) / max(last - started, 1e-9)
        # after the requests stopped: what the listener gets through with the API quiet
        after_stop = sum(1 for cid in ours if cid in callbacks and callbacks[cid] > ended)
        drain_throughput = after_stop / max(last - ended, 1e-9) if last > ended + 1 else 0.0

        def pct(p: float) -> float:
            if not latencies:
                return float("nan")
            return latencies[min(len(latencies) - 1, int(len(latencies) * p))]

        figures = {
            "offered": rate, "sent_rate": result.rps,
            "accepted_rate": accepted / window if window else 0.0,
            "completed_rate": in_window / window if window else 0.0,
            "p50": pct(0.50), "p99": pct(0.99), "max": latencies[-1] if latencies else math.nan,
            "accepted": accepted, "called_back": accepted - missing, "missing": missing,
            "drain": drained, "unsettled": unsettled, "api_p99_ms": result.p99_ms,
            "throughput": throughput, "drain_throughput": drain_throughput,
            **self.cpu_per_call(whole, accepted - missing),
        }
        self.report.note("End to end", (
            f"- {label}: offered {rate:.0f}/s, sent {result.rps:.0f}/s, accepted "
            f"{figures['accepted_rate']:.0f}/s ({accepted:,} calls, API p99 "
            f"{result.p99_ms:.0f} ms); callbacks that arrived within the {window:.0f} s window: "
            f"{in_window:,} ({figures['completed_rate']:.1f}/s); {throughput:.1f} calls/s called "
            f"back from the start to the last callback ({drain_throughput:.1f}/s after the "
            f"requests stopped); after waiting up to "
            f"{plan.e2e_drain:.0f} s more, {accepted - missing:,} called back, {missing:,} not yet "
            f"({unsettled:,} calls still unsettled); hangup -> callback p50 "
            f"{figures['p50']:.3f} s, p99 {figures['p99']:.3f} s, max {figures['max']:.3f} s "
            "(over the calls called back)"))
        self.report.note("End to end", (
            f"- {label}: CPU per completed call (CPU seconds from the first request to the last "
            f"callback, {figures['cpu_window']:.1f} s, / {accepted - missing:,} calls called "
            f"back): c2c {figures['c2c_ms']:.2f} ms (" + ", ".join(
                f"{name} {figures[key]:.2f}" for name, key in C2C_PARTS
                if key in figures) + f"), MariaDB {figures['mariadb_ms']:.2f} ms, simulator "
            f"{figures['simulator_ms']:.2f} ms, observer (callback receiver and hangup tap) "
            f"{figures['observer_ms']:.2f} ms, wrk {figures['wrk_ms']:.2f} ms"))
        return figures

    def cpu_per_call(self, meter: CpuMeter, completed: int) -> dict[str, float]:
        """Milliseconds of CPU per completed call, by process group (NaN if none completed);
        ``c2c_ms``: gunicorn's master and workers and any `c2c worker` together."""
        def ms(seconds: float) -> float:
            return 1000 * seconds / completed if completed else math.nan

        used = meter.used
        out = {key: ms(used[name]) for name, key in C2C_PARTS if name in used}
        out["c2c_ms"] = ms(sum(used.get(name, 0.0) for name, _ in C2C_PARTS))
        for name, key in (("mariadb", "mariadb_ms"), ("simulator", "simulator_ms"),
                          ("observer", "observer_ms"), ("wrk", "wrk_ms")):
            out[key] = ms(used.get(name, 0.0))
        out["cpu_window"] = meter.seconds
        return out

    def e2e_rows(self, f: dict[str, float], base_rate: float, how: str,
                 target: bool = True) -> None:
        self.report.add(Row(
            "3", f"end to end: calls/s request -> callback received ({how})",
            f"{f['completed_rate']:.1f}/s completed (accepted {f['accepted_rate']:.0f}/s; "
            f"{int(f['missing']):,} of {int(f['accepted']):,} without callback "
            f"{f['drain']:.0f} s after" + (
                f"; the listener alone, once the requests stopped: "
                f"{f['drain_throughput']:.0f}/s)" if f["drain_throughput"] else ")"),
            f"simulator alone {base_rate:,.0f} calls/s",
            ratio(f["completed_rate"], base_rate), ">= 500/s" if target else "",
            verdict(f["completed_rate"] >= 490) if target else ""))
        self.report.add(Row(
            "3", f"end to end: hangup -> callback p99 ({how})",
            f"p99 {f['p99']:.3f} s (p50 {f['p50']:.3f} s)", "", "", "< 1 s",
            verdict(f["p99"] < 1.0 and f["missing"] == 0)))

    def e2e_profile(self, rate: float) -> None:
        """py-spy on the workers and every SQL statement counted, at a rate c2c sustains."""
        plan = self.plan
        seconds = 10.0 if plan.mode == "full" else 4.0
        sql_dir = self.workdir / f"sql-{time.monotonic_ns()}"
        sql_dir.mkdir()
        conf = BENCH_DIR / "probe_gunicorn.conf.py"
        with scratch_database(plan.db, self.workdir) as url, \
                self.stack(url, rules=QUICK_CALLS, tap=True, conf=conf,
                           env={"BENCH_PROBE_SQL_OUT": str(sql_dir)}) as st:
            assert st.observer is not None and st.server is not None
            params = {"callback_url": st.observer.callback_url("/cb"), "secret": "s"}
            pids = st.server.worker_pids()
            time.sleep(1.5)  # the lease is taken; the counters dump every second
            idle_start = _sql_counts(sql_dir)
            idle_seconds = 5.0
            time.sleep(idle_seconds)  # the background's own rate: polls, sweeps, leases
            before = _sql_counts(sql_dir)
            idle = {k: (before.get(k, 0) - idle_start.get(k, 0)) / idle_seconds for k in before}
            run_started = time.monotonic()
            path = self.profile(
                "e2e_workers", pids, seconds,
                lambda: run_wrk(st.base_url, duration=seconds, connections=50,
                                api_key=st.api_key, rate=rate,
                                number_base=self.numbers.block(), extra_params=params),
                {pid: "gunicorn worker" for pid in pids})
            deadline = time.monotonic() + plan.drain_timeout
            while time.monotonic() < deadline and \
                    st.observer.callback_count() < st.count_calls():
                time.sleep(0.25)
            time.sleep(1.5)
            after = _sql_counts(sql_dir)
            seconds_run = time.monotonic() - run_started
            calls = st.count_calls("WHERE state = 'ended' AND created_at > "
                                   f"{time.time() - seconds_run - 1}")
        self.report.note("Profiles", f"- end to end at {rate:.0f} calls/s (both workers; "
                         f"one holds the event listener; this run also counts the SQL, so "
                         f"bench/sqlnorm.py's normalise shows in it): `{path}`")
        delta = {k: after.get(k, 0) - before.get(k, 0) - idle.get(k, 0.0) * seconds_run
                 for k in after}
        delta = {k: v for k, v in delta.items() if v >= 0.5}
        total = sum(delta.values())
        if not calls or not total:
            return
        idle_rate = sum(idle.values())
        lines = [f"- {calls:,} calls placed, settled and called back ({seconds_run:.0f} s from "
                 f"the first request to the last callback): {total / calls:.1f} round trips to "
                 "MariaDB per call in all (API request, event listener, settlement, callback "
                 f"dispatcher), after subtracting what the idle deployment sends anyway "
                 f"({idle_rate:.0f}/s: outbox polls, sweeps, lease renewals); of which:"]
        for sql, n in sorted(delta.items(), key=lambda kv: -kv[1])[:25]:
            lines.append(f"    - {n / calls:.2f} x `{sql[:220]}`")
        self.report.figure("e2e_round_trips_per_call", total / calls)
        self.report.note("SQL per call, end to end (counted in both workers)", "\n".join(lines))

    def e2e_profile_separate(self, rate: float) -> None:
        """py-spy on gunicorn's workers and the `c2c worker` (C2C_BACKGROUND=separate)."""
        plan = self.plan
        seconds = 10.0 if plan.mode == "full" else 4.0
        with scratch_database(plan.db, self.workdir) as url, \
                self.stack(url, rules=QUICK_CALLS, tap=True, background="separate") as st:
            assert st.observer is not None and st.server is not None
            params = {"callback_url": st.observer.callback_url("/cb"), "secret": "s"}
            labels = {pid: "gunicorn worker (requests only)" for pid in st.server.worker_pids()}
            labels.update({w.pid: "c2c worker (events, settlement, callbacks)"
                           for w in st.c2c_workers})
            path = self.profile(
                "e2e_separate", list(labels), seconds,
                lambda: run_wrk(st.base_url, duration=seconds, connections=50,
                                api_key=st.api_key, rate=rate,
                                number_base=self.numbers.block(), extra_params=params),
                labels)
            deadline = time.monotonic() + plan.drain_timeout
            while time.monotonic() < deadline and \
                    st.observer.callback_count() < st.count_calls():
                time.sleep(0.25)
        self.report.note("Profiles", f"- end to end at {rate:.0f} calls/s with "
                         f"C2C_BACKGROUND=separate (gunicorn's workers and the `c2c worker`): "
                         f"`{path}`")

    # -- 4: concurrency ----------------------------------------------------------------------

    def phase_concurrency(self) -> None:
        plan, report = self.plan, self.report
        n = plan.inflight
        warmup = max(50, min(2000, n // 5))
        with scratch_database(plan.db, self.workdir) as url, \
                self.stack(url, rules=LONG_CALLS, time_scale=1.0,
                           # c2c sends no call to a switch past 90% of its max-sessions
                           max_sessions=int(2 * n / 0.9) + 1000) as st:
            assert st.server is not None and st.simulator is not None
            assert st.observer is not None
            self.log(f"concurrency: warm-up, {warmup} calls that end at once")
            run_wrk(st.base_url, duration=120, connections=16, api_key=st.api_key,
                    quota=warmup, rate=plan.ramp_rate, caller_base=WARMUP_CALLER_BASE,
                    number_base=self.numbers.block(),
                    stop_when=lambda: st.count_calls() >= warmup)
            self.wait_drained(st, plan.settle_timeout)
            time.sleep(2)
            before = st.server.rss_kib()
            first = st.count_calls()
            ramp_started = time.monotonic()
            ramp_t0 = time.time()
            long_calls = f"WHERE created_at >= {ramp_t0}"
            params = {"callback_url": st.observer.callback_url("/cb"), "secret": "long"}
            lag = [0]  # the most calls placed but not yet bridged (the listener's backlog)

            def fill(upto: int) -> int:
                """Place long calls until ``upto`` are in the store, then wait until the
                listener has seen every one bridged; returns how many were placed one by one."""
                def placed_enough() -> bool:
                    placed = st.count_calls() - first
                    lag[0] = max(lag[0], placed - st.count_calls("WHERE state = 'bridged'"))
                    return placed >= upto

                missing = upto - (st.count_calls() - first)
                run_wrk(st.base_url, duration=missing / plan.ramp_rate * 2 + 60,
                        connections=50, api_key=st.api_key, quota=missing, rate=plan.ramp_rate,
                        number_base=self.numbers.block(), extra_params=params,
                        stop_when=placed_enough)
                topped = self.top_up(st, first + upto, params)
                deadline = time.monotonic() + plan.settle_timeout
                while time.monotonic() < deadline:
                    if st.count_calls("WHERE state = 'bridged'") >= st.count_calls(long_calls):
                        break
                    time.sleep(0.5)
                time.sleep(2)
                return topped

            self.log(f"concurrency: placing {n:,} long calls at {plan.ramp_rate:.0f}/s")
            half = n // 2
            topped = fill(half)
            middle = st.server.rss_kib()
            bridged_half = st.count_calls("WHERE state = 'bridged'")
            topped += fill(n)
            ramp_seconds = time.monotonic() - ramp_started
            placed = st.count_calls(long_calls)
            bridged = st.count_calls("WHERE state = 'bridged'")
            status = esl_api(st.simulator.port, "show calls count").strip()
            after = st.server.rss_kib()
            growth_kib = sum(after.values()) - sum(before.values())
            per_call = growth_kib * 1024 / max(bridged, 1)
            second_half = (sum(after.values()) - sum(middle.values())) * 1024 / max(
                bridged - bridged_half, 1)
            self.log(f"concurrency: {bridged:,} bridged; hupall")
            hup_started = time.monotonic()
            esl_api(st.simulator.port, "hupall NORMAL_CLEARING")
            deadline = time.monotonic() + plan.settle_timeout
            while time.monotonic() < deadline:
                if (st.count_calls("WHERE state <> 'ended'") == 0
                        and st.observer.callback_count() >= placed):
                    break
                time.sleep(0.5)
            settle_seconds = time.monotonic() - hup_started
            check = st.rows(
                f"SELECT COUNT(*), SUM(state = 'ended'), SUM(answered = 1), "
                f"SUM(reason IS NULL), SUM(minutes >= 1 AND minutes <= max_minutes), "
                f"SUM(minutes) FROM calls {long_calls}")[0]
            account = st.rows(f"SELECT credits, reserved FROM accounts WHERE id = "
                              f"{st.account_id}")[0]
            _, callbacks = st.observer.records()
        total, ended, answered, no_reason, minutes_ok, minutes = (int(v or 0) for v in check)
        correct = (total == ended == answered == no_reason == minutes_ok == bridged
                   and len(callbacks) >= total and int(account[1]) == 0)
        said = status.splitlines()[-1] if status else "?"
        report.add(Row("4", "calls in flight at once (answered, talking; time scale 1)",
                       f"{bridged:,} bridged (simulator's show calls count: {said})",
                       "", "", f">= {n:,}", verdict(bridged >= n)))
        report.add(Row("4", "all settled correctly after hupall",
                       f"{ended:,} ended, {answered:,} answered, {minutes_ok:,} with 1..max "
                       f"minutes, {len(callbacks):,} callbacks, reserved left "
                       f"{int(account[1])}; settled in {settle_seconds:.0f} s",
                       "", "", "all", verdict(correct)))
        report.add(Row("4", "daemon memory per in-flight call (RSS of the workers)",
                       f"{per_call / 1024:.2f} KB ({growth_kib / 1024:.1f} MiB for "
                       f"{bridged:,} calls); second half alone {second_half / 1024:.2f} KB",
                       f"workers before: {sum(before.values()) / 1024:.0f} MiB", "",
                       "< 10 KB", verdict(per_call < 10 * 1024)))
        report.note("Concurrency", "\n".join([
            f"- warm-up: {warmup} calls refused at once by the scenario (settled), then "
            f"{n:,} calls placed at {plan.ramp_rate:.0f}/s in two halves, each followed by a "
            f"wait until the event listener had every call bridged; {topped} placed one by one "
            f"to make up requests wrk lost; all bridged after {ramp_seconds:.0f} s. The "
            f"listener's backlog (calls placed, not yet seen bridged) peaked at {lag[0]:,}: "
            "queued events are parsed Event objects (~100 headers each) and the allocator "
            "keeps the memory they used, so a backlog shows in RSS as if it were per call.",
            f"- worker RSS (KiB) before: {before}; with {bridged_half:,} in flight: {middle}; "
            f"with {bridged:,}: {after}. The second half's growth per call excludes most "
            "one-off growth (caches, pools, arenas filled once).",
            f"- hupall NORMAL_CLEARING: {ended:,} of {total:,} settled and "
            f"{len(callbacks):,} callbacks received {settle_seconds:.0f} s later; "
            f"{minutes:,} minutes billed in all; account reserved minutes back to "
            f"{int(account[1])}.",
        ]))
        report.figure("inflight_bridged", bridged)
        report.figure("inflight_kb_per_call", per_call / 1024)
        report.figure("inflight_kb_per_call_second_half", second_half / 1024)
        report.figure("inflight_settled", ended)

    def top_up(self, st: Stack, wanted: int, params: dict[str, str]) -> int:
        """Place single calls until the store holds ``wanted`` (wrk may lose a request or two
        when it is stopped)."""
        from urllib.parse import urlencode

        from bench.stack import CALLEE_BASE, CALLER_BASE

        placed = 0
        base = self.numbers.block()
        for i in range(1000):
            if st.count_calls() >= wanted:
                break
            query = urlencode({"api_key": st.api_key, "caller_country_code": "1",
                               "callee_country_code": "1",
                               "caller_phone_number": str(CALLER_BASE + base + i),
                               "callee_phone_number": str(CALLEE_BASE + base + i), **params})
            http_get(f"{st.base_url}/api/clicktocall/?{query}", timeout=10)
            placed += 1
        return placed

    # -- 5: the event parser -----------------------------------------------------------------

    def phase_parser(self) -> None:
        from bench.parser_bench import compare

        result = compare(self.plan.parser_seconds)
        ours, theirs = result["ours_eps"], result["greenswitch_eps"]
        self.report.add(Row("5", "event parsing: events/s (plain-event recordings)",
                            f"{ours:,.0f}/s (FrameParser, parse_event and the listener's reads)",
                            f"greenswitch ESLProtocol {theirs:,.0f}/s",
                            ratio(ours, theirs), ">= 3x", verdict(ours >= 3 * theirs)))
        self.report.note("Event parsing", result["note"])
        self.report.figure("parser_eps", ours)
        self.report.figure("greenswitch_eps", theirs)

    # -- 6: the Do-Not-Call list -------------------------------------------------------------

    def phase_dnc(self) -> None:
        from bench.dnc_import import dnc_import, write_numbers

        plan, report = self.plan, self.report
        sizes = sorted(plan.dnc_sizes)
        biggest = sizes[-1]
        files: dict[int, Path] = {}
        for size in sizes:
            files[size] = self.workdir / f"dnc-{size}.txt"
            write_numbers(files[size], size)
        env_base = {**os.environ, "C2C_LOG_LEVEL": "WARNING"}
        for size in sizes[:-1]:
            self.log(f"dnc: importing {size:,} numbers")
            with scratch_database(plan.db, self.workdir) as url:
                rate, seconds, own = dnc_import(url, files[size], env_base)
            self.dnc_row(size, rate, seconds, own, self.dnc_baseline(size, files[size]))
        # A rate the whole system sustains (the end-to-end phase's), so that the p99 is the
        # request path's and not the event listener's backlog; else half the accept maximum.
        half = self.state.get("sustained_rate") or self.state.get("half_rate") or 50.0
        half = max(5.0, math.floor(half))
        d = plan.api_seconds
        rounds = 3 if plan.mode == "full" else 1
        with scratch_database(plan.db, self.workdir) as url_full:
            self.log(f"dnc: importing {biggest:,} numbers")
            rate, seconds, own = dnc_import(url_full, files[biggest], env_base)
            self.dnc_row(biggest, rate, seconds, own,
                         self.dnc_baseline(biggest, files[biggest]))
            # The accept path against the big list and against an empty one: two deployments
            # side by side (idle in turn), measured alternately so that drift hits both.
            with scratch_database(plan.db, self.workdir) as url_empty, \
                    self.stack(url_empty, rules=QUICK_CALLS) as empty_st, \
                    self.stack(url_full, rules=QUICK_CALLS) as full_st:
                runs: dict[str, list[WrkResult]] = {"empty": [], "full": []}
                for st in (empty_st, full_st):
                    run_wrk(st.base_url, duration=2, connections=plan.connections,
                            api_key=st.api_key, number_base=self.numbers.block())
                    self.wait_drained(st)
                for _ in range(rounds):
                    for name, st in (("empty", empty_st), ("full", full_st)):
                        self.log(f"dnc: accept p99 at {half:.0f}/s, {name} list")
                        runs[name].append(run_wrk(
                            st.base_url, duration=d, connections=plan.connections,
                            api_key=st.api_key, number_base=self.numbers.block(), rate=half))
                        self.wait_drained(st)
                listed = files[biggest].open(encoding="ascii").readline().strip().lstrip("+")
                code = self.listed_code(full_st, listed)
                free_code = self.listed_code(empty_st, listed)
                lookup = {name: _dnc_lookup_ms(st.store) for name, st in
                          (("empty", empty_st), ("full", full_st))}
        empty_p99 = sorted(r.p99_ms for r in runs["empty"])[(rounds - 1) // 2]
        full_p99 = sorted(r.p99_ms for r in runs["full"])[(rounds - 1) // 2]
        report.note("Do-Not-Call import", (
            f"- the lookup itself (Dnc.contains_any of two unlisted numbers, 2,000 in a row, "
            f"one process): {lookup['full']:.3f} ms each with {biggest:,} numbers listed, "
            f"{lookup['empty']:.3f} ms with none."))
        increase = (full_p99 - empty_p99) / empty_p99 if empty_p99 else math.nan

        def each(results: list[WrkResult]) -> str:
            return ", ".join(f"{r.p99_ms:.1f}" for r in results)

        report.add(Row("6", f"accept p99 at {half:.0f}/s with {biggest:,} numbers listed",
                       f"p99 {full_p99:.1f} ms (runs: {each(runs['full'])}; p50 "
                       f"{runs['full'][0].p50_ms:.1f}); a listed number answers {code} "
                       f"(unlisted: {free_code})",
                       f"empty list: p99 {empty_p99:.1f} ms (runs: {each(runs['empty'])}; p50 "
                       f"{runs['empty'][0].p50_ms:.1f})",
                       f"{full_p99 / empty_p99:.3f}" if empty_p99 else "n/a",
                       "< +10%", verdict(increase < 0.10)))
        report.note("Do-Not-Call import", (
            f"- accept p99 compared on two deployments side by side, one on an empty list and "
            f"one on the {biggest:,}-number list, paced at {half:.0f}/s for {d:.0f} s, "
            f"alternately ({rounds} run(s) each; the median counts)."))
        report.figure("dnc_p99_empty_ms", empty_p99)
        report.figure("dnc_p99_full_ms", full_p99)
        for path in files.values():
            path.unlink(missing_ok=True)

    def listed_code(self, st: Stack, e164: str) -> str:
        from urllib.parse import urlencode

        query = urlencode({"api_key": st.api_key, "caller_country_code": e164[0],
                           "caller_phone_number": e164[1:], "callee_country_code": "1",
                           "callee_phone_number": "2125550199"})
        return http_get(f"{st.base_url}/api/clicktocall/?{query}")[2].decode()

    def dnc_baseline(self, size: int, path: Path) -> tuple[float, str] | None:
        if self.plan.db != "mysql" or size > self.plan.dnc_baseline_max:
            return None
        from bench.dnc_import import load_data

        with scratch_database("mysql", self.workdir) as url:
            rate = load_data(url, path)
        return rate, "LOAD DATA LOCAL INFILE"

    def dnc_row(self, size: int, rate: float, seconds: float, own: float,
                baseline: tuple[float, str] | None) -> None:
        self.report.add(Row(
            "6", f"`c2c dnc import`: {size:,} numbers ({self.plan.db})",
            f"{rate:,.0f}/s ({seconds:.1f} s with the command's start; it reports "
            f"{own:,.0f}/s)",
            f"{baseline[1]} of the same file: {baseline[0]:,.0f}/s" if baseline else
            "(LOAD DATA of 10M random numbers takes minutes: not run)",
            ratio(rate, baseline[0]) if baseline else "", ">= 200,000/s",
            verdict(rate >= 200_000)))
        self.report.figure(f"dnc_import_{size}_rate", rate)


def _dnc_lookup_ms(store: Any, checks: int = 2000) -> float:
    started = time.perf_counter()
    for n in range(checks):
        store.dnc.contains_any([12_100_000_000 + n, 12_150_000_000 + n])
    return (time.perf_counter() - started) * 1000 / checks


def _sql_counts(directory: Path) -> dict[str, int]:
    total: dict[str, int] = {}
    for path in directory.glob("sql-*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for sql, n in data.items():
            total[sql] = total.get(sql, 0) + int(n)
    return total


SAVED = BENCH_DIR / "results.json"  # the last full or quick run, for --render


def tree_state() -> str:
    """HEAD, plus a digest of uncommitted changes to c2c/ and the gunicorn settings."""
    import hashlib

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=30, check=False).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    diff = git("diff", "HEAD", "--", "c2c", "gunicorn.conf.py")
    return head + (f"+{hashlib.sha256(diff.encode()).hexdigest()[:8]}" if diff else "")


def render(out: Path) -> int:
    data = json.loads(SAVED.read_text(encoding="utf-8"))
    saved = data["report"]
    report = Report(saved["mode"], [Row(**row) for row in saved["rows"]], saved["notes"],
                    saved["figures"])
    write_results(report, data["machine"], out, data["command"], data["seconds"])
    print(f"written to {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="short runs (about 5 minutes)")
    mode.add_argument("--smoke", action="store_true", help="seconds per phase (for tests)")
    parser.add_argument("--only", help=f"comma-separated phases of {','.join(PHASES)}")
    parser.add_argument("--db", choices=("mysql", "sqlite"), default="mysql")
    parser.add_argument("--out", type=Path, help="where to write the results (default "
                        "bench/RESULTS.md; --smoke and --only: nowhere unless given)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--render", action="store_true", help="only rewrite bench/RESULTS.md "
                        "from the last full or quick run (bench/results.json) and the current "
                        "bench/ANALYSIS.md")
    args = parser.parse_args(argv)
    if args.render:
        return render(args.out or BENCH_DIR / "RESULTS.md")

    mode_name = "quick" if args.quick else "smoke" if args.smoke else "full"
    phases = [p.strip() for p in args.only.split(",")] if args.only else list(PHASES)
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if shutil.which(WRK) is None:
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.db == "mysql" and not mysql_reachable():
        print("MariaDB unreachable (C2C_BENCH_MYSQL_URL); use --db sqlite", file=sys.stderr)
        return 2
    out = args.out
    if out is None and mode_name != "smoke" and not args.only:
        out = BENCH_DIR / "RESULTS.md"

    plan = plan_for(mode_name, args.db)
    report = Report(mode_name)
    started = time.monotonic()
    failures = 0
    trees: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="c2c-bench-") as scratch:
        bench = Bench(plan, Path(scratch), report)
        for phase in phases:
            bench.wait_quiet()
            trees.append((phase, tree_state()))
            bench.log(f"phase {phase}")
            try:
                getattr(bench, f"phase_{phase}")()
            except Exception as exc:  # one phase failing must not lose the others' figures
                failures += 1
                bench.log(f"phase {phase} FAILED: {exc!r}")
                report.note("Failures", f"- phase {phase}: {exc!r}\n\n```\n"
                            f"{traceback.format_exc()[-3000:]}\n```")
    elapsed = time.monotonic() - started
    trees.append(("end", tree_state()))
    if len({state for _, state in trees}) > 1:
        report.note("Failures", "- the source tree changed during the run (someone committed or "
                    "edited c2c/ meanwhile), so its phases did not all measure the same code: "
                    + "; ".join(f"{phase} at {state}" for phase, state in trees))
        failures += 1
    machine = machine_description(mariadb_version() if args.db == "mysql" else "not used")
    print(table(report.rows))
    command = ".venv/bin/python -m bench" + {"quick": " --quick", "smoke": " --smoke"}.get(
        mode_name, "")
    if out is not None:
        write_results(report, machine, out, command, elapsed)
        print(f"\nwritten to {out}", file=sys.stderr)
        if out == BENCH_DIR / "RESULTS.md":
            SAVED.write_text(json.dumps({
                "report": {"mode": report.mode, "rows": [vars(r) for r in report.rows],
                           "notes": report.notes, "figures": report.figures},
                "machine": machine, "command": command, "seconds": elapsed}, indent=1),
                encoding="utf-8")
    if args.json is not None:
        args.json.write_text(json.dumps({"mode": mode_name, "figures": report.figures,
                                         "failures": failures, "seconds": elapsed},
                                        indent=2), encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

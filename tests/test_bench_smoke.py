"""The benchmark (bench/) still runs: every phase in its tiny ``--smoke`` mode.

Only that it completes and produces numbers is checked, never how fast anything is (the figures
of a smoke run are meaningless). It runs real processes (gunicorn, the simulator, wrk) for about
a minute, hence ``slow``; it needs wrk on the PATH and uses MariaDB when reachable, else SQLite.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.esl_captures import captures_dir

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _database() -> str:
    from bench.stack import mysql_reachable

    return "mysql" if mysql_reachable() else "sqlite"


def test_benchmark_smoke_run_produces_figures(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        # .ci/run does not install wrk (yet): skip rather than fail, and say how to run it.
        pytest.skip("wrk not installed (apt-get install -y wrk)")
    if captures_dir() is None:
        pytest.skip("esl-captures not found (the parser phase replays them)")
    figures_path = tmp_path / "figures.json"
    results_path = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--db", _database(),
         "--json", str(figures_path), "--out", str(results_path)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:] + done.stdout[-2000:]

    data = json.loads(figures_path.read_text())
    assert data["mode"] == "smoke"
    assert data["failures"] == 0
    figures = data["figures"]
    for name in ("accept_rps", "bare_accept_rps", "reject1_rps", "reject4_rps",
                 "accept_round_trips", "e2e_completed_rate", "e2e_callback_p99_s",
                 "e2e_c2c_ms_per_call", "e2e_separate_completed_rate",
                 "e2e_separate_c2c_ms_per_call",
                 "inflight_bridged", "inflight_kb_per_call", "parser_eps", "greenswitch_eps",
                 "dnc_p99_empty_ms", "dnc_p99_full_ms"):
        assert name in figures, f"{name} missing from {sorted(figures)}"
    for name, value in figures.items():
        assert isinstance(value, float) and math.isfinite(value), (name, value)
    assert any(name.startswith("dnc_import_") for name in figures)

    text = results_path.read_text()
    assert "| # | measure | c2c |" in text
    assert "## Machine" in text

"""The benchmark's output: rows of the table, the machine's description, RESULTS.md."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


@dataclass
class Row:
    section: str  # "1", "2"... the numbered item of the brief
    measure: str
    value: str  # c2c's figure, formatted
    baseline: str = ""  # the baseline's figure and what it is
    ratio: str = ""  # value / baseline, when a speed
    target: str = ""
    met: str = ""  # "met", "NOT met", "" (no target)


@dataclass
class Report:
    mode: str
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)  # section title -> lines
    figures: dict[str, float] = field(default_factory=dict)  # for the smoke test and JSON

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def note(self, title: str, line: str) -> None:
        self.notes.setdefault(title, []).append(line)

    def figure(self, name: str, value: float) -> float:
        self.figures[name] = float(value)
        return value


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.3f}" if baseline else "n/a"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def table(rows: list[Row]) -> str:
    header = ["#", "measure", "c2c", "baseline (same run)", "ratio", "target", "met?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row.section, row.measure, row.value, row.baseline, row.ratio, row.target,
                 row.met]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return ""


def machine_description(mariadb: str) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kib = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal:")), 0)
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=5)
        wrk_version = (wrk.stdout + wrk.stderr).splitlines()[0].split(" Copyright")[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        wrk_version = "wrk not found"
    import falcon
    import gevent
    import gunicorn
    import sqlalchemy

    return [
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- CPU: {cpu}, {os.cpu_count()} cores (shared by load generator, gunicorn, MariaDB, "
        "simulator and observer)",
        f"- memory: {mem_kib / 2**20:.1f} GiB",
        f"- OS: {platform.platform()}",
        f"- Python: {sys.version.split()[0]} ({sys.executable})",
        f"- MariaDB: {mariadb}",
        f"- gunicorn {gunicorn.__version__} (gevent {gevent.__version__} workers, "
        f"gunicorn.conf.py settings), falcon {falcon.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}",
        f"- load generator: {wrk_version}",
    ]


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH_DIR.parent,
                              capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=BENCH_DIR.parent, capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def write_results(report: Report, machine: list[str], path: Path, command: str,
                  seconds: float) -> str:
    analysis = _read(str(BENCH_DIR / "ANALYSIS.md")).strip()
    parts = [
        "# c2c benchmark results",
        "",
        f"Produced by `{command}` ({report.mode} mode, {seconds / 60:.1f} min, "
        f"tree at {git_revision()}). Every figure below comes from that one run on this "
        "machine; rerun the command to refresh this file (bench/ANALYSIS.md, the prose at "
        "the end, is kept by hand).",
        "",
        "## Machine",
        "",
        *machine,
        "",
        "## Results",
        "",
        table(report.rows),
        "",
    ]
    for title, lines in report.notes.items():
        parts += [f"## {title}", "", *lines, ""]
    if analysis:
        parts += [analysis, ""]
    text = "\n".join(parts)
    path.write_text(text, encoding="utf-8")
    return text

"""py-spy sampling of running workers, summarised as text (bench/profiles/*.txt).

``py-spy record --format raw`` writes one line per distinct stack with its sample count; the
summary gives, per process, how busy it was (samples / (rate * seconds), idle time is not
sampled) and the frames with the most samples, on their own (self) and with their callees
(inclusive). Profiling runs are separate from measured runs: sampling costs the target CPU.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
RATE = 100  # samples per second


def available() -> bool:
    return os.path.exists(PY_SPY) or shutil.which("py-spy") is not None


def start(pids: list[int], seconds: float, workdir: Path, rate: int = RATE
          ) -> list[tuple[int, Path, subprocess.Popen[bytes]]]:
    spies = []
    for pid in pids:
        raw = workdir / f"pyspy-{pid}.raw"
        argv = [PY_SPY, "record", "--nonblocking", "-r", str(rate), "-d", str(int(seconds)),
                "-f", "raw", "-o", str(raw), "--pid", str(pid)]
        spies.append((pid, raw, subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL)))
    return spies


def finish(spies: list[tuple[int, Path, subprocess.Popen[bytes]]], seconds: float,
           rate: int = RATE, label: Callable[[int], str] = str, top: int = 30) -> str:
    """Wait for the samplers; the text summary of every process."""
    sections = []
    for pid, raw, process in spies:
        try:
            process.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        sections.append(summarise(raw, f"{label(pid)} (pid {pid})", seconds, rate, top))
    return "\n".join(sections)


def summarise(raw: Path, title: str, seconds: float, rate: int = RATE, top: int = 30) -> str:
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    total = 0
    try:
        lines = raw.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return f"## {title}\n\n(no samples: py-spy failed)\n"
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        self_counts[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
        for function in {_function(f) for f in frames}:
            by_function[function] += n
    if not total:
        return f"## {title}\n\n(no samples)\n"
    busy = total / (rate * seconds)
    out = [f"## {title}", "",
           f"{total} samples in {seconds:.0f} s at {rate} Hz: busy {100 * busy:.0f}% of one core "
           "(idle time is not sampled; percentages below are of busy samples)", "",
           "### top frames, self", ""]
    out += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in self_counts.most_common(top)]
    out += ["", "### top functions, inclusive (any line of the function on the stack)", ""]
    out += [f"{100 * n / total:5.1f}%  {fn}" for fn, n in by_function.most_common(top * 2)]
    out += ["", "### top frames, inclusive", ""]
    out += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(out) + "\n"


def _function(frame: str) -> str:
    # "name (path/file.py:123)" -> "name (path/file.py)"
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name

"""Where the CPU went during a run: per process (from /proc/<pid>/stat) and for the machine.

    with CpuMeter({"c2c workers": pids, "mariadb": [mysqld]}) as meter:
        ... run ...
    meter.shares  # {"c2c workers": 1.42, ...} in cores (1.0 = one core busy the whole run)
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterable, Mapping

_TICK = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


_STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_seconds() -> dict[str, float]:
    """CPU seconds of the whole machine since boot, by kind (/proc/stat's first line)."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    return {name: value / _TICK for name, value in zip(_STAT_FIELDS, values, strict=False)}


def pids_named(*names: str) -> list[int]:
    """Processes whose command name (comm) is one of ``names``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8", errors="replace") as handle:
                if handle.read().strip() in names:
                    found.append(int(entry))
        except OSError:
            continue
    return found


def mariadb_pids() -> list[int]:
    return pids_named("mariadbd", "mysqld")


class CpuMeter:
    """CPU used by groups of processes (and by our reaped children, e.g. wrk) over a block."""

    def __init__(self, groups: Mapping[str, Iterable[int]], children_label: str = "wrk") -> None:
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self.children_label = children_label
        self.shares: dict[str, float] = {}
        self.used: dict[str, float] = {}  # CPU seconds per group over the block
        self.machine_busy = 0.0  # cores busy, whole machine (steal excluded)
        self.machine: dict[str, float] = {}  # cores, by /proc/stat kind
        self.seconds = 0.0

    def __enter__(self) -> CpuMeter:
        self._start = time.monotonic()
        self._before = {name: sum(process_seconds(p) for p in pids)
                        for name, pids in self.groups.items()}
        self._children = _children_seconds()
        self._machine = machine_seconds()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.monotonic() - self._start
        if self.seconds <= 0:
            return
        for name, pids in self.groups.items():
            used = sum(process_seconds(p) for p in pids) - self._before[name]
            self.used[name] = used
            self.shares[name] = used / self.seconds
        self.used[self.children_label] = _children_seconds() - self._children
        self.shares[self.children_label] = self.used[self.children_label] / self.seconds
        after = machine_seconds()
        self.machine = {k: (after[k] - self._machine[k]) / self.seconds for k in after}
        self.machine_busy = sum(v for k, v in self.machine.items()
                                if k not in ("idle", "iowait", "steal"))

    @property
    def accounted(self) -> float:
        return sum(self.shares.values())

    def describe(self) -> str:
        parts = [f"{name} {share:.2f}" for name, share in self.shares.items()]
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in self.machine.items() if v >= 0.005)
        return (f"cores busy: machine {self.machine_busy:.2f} of {os.cpu_count()} "
                f"({kinds}); " + ", ".join(parts))


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

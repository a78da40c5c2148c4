"""Sorting more integers than memory holds: sorted runs spilled to temporary files, merged back.

``SortedRuns`` collects integers (64-bit signed). Every ``run_size`` of them it sorts, drops the
repeats and writes them to an anonymous temporary file in binary (``array('q')``, 8 bytes a
number), so memory holds about one run at a time (a Python int in a list costs about 40 bytes).
``merged()`` then yields every distinct number once, in ascending order, in sorted lists. When
everything fits in one run, nothing touches the disk.

The merge goes chunk by chunk rather than number by number (``heapq.merge`` costs a Python-level
step per number): each step takes, from every run, what lies at or below the smallest of the
runs' current chunk ends, all of which can be emitted now, and sorts that with ``list.sort``,
which finds the already-sorted stretches and merges them in C.

At most MAX_FANIN runs are merged at once, to bound the open files and the merge's memory: as
runs pile up while numbers come in, every MAX_FANIN runs of one level are merged into one run of
the next (each number is rewritten once per level: past 128 million numbers at the default
sizes; the disk then briefly holds those runs twice).

The files are unlinked as they are created (``tempfile.TemporaryFile`` on POSIX), so they vanish
when closed, on an exception or Ctrl-C, and even when the process is killed. They go in
``tmpdir``, else the system's temporary directory (``TMPDIR``).
"""

from __future__ import annotations

import operator
import tempfile
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from itertools import islice
from typing import IO

RUN_SIZE = 1_000_000  # numbers sorted in memory at a time: about 40 MB of Python ints
MAX_FANIN = 128  # runs merged at once (open files, memory); more become longer runs first
_MIN_CHUNK = 4_096  # numbers read back from a run at a time, at least
_ITEM = array("q").itemsize


def drop_repeats(ordered: list[int]) -> list[int]:
    """A sorted list without its repeated values (the same list when it has none)."""
    if any(map(operator.eq, ordered, islice(ordered, 1, None))):
        return list(dict.fromkeys(ordered))
    return ordered


class _Run:
    """One sorted, repeat-free run in a temporary file."""

    def __init__(self, tmpdir: str | None, level: int = 0) -> None:
        self.count = 0
        self.level = level  # 0: sorted in memory; n + 1: merged from runs of level n
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="c2c-sort-", dir=tmpdir)

    def write(self, ascending: list[int]) -> None:
        """Append numbers above those already written."""
        array("q", ascending).tofile(self._file)
        self.count += len(ascending)

    def chunks(self, size: int) -> Iterator[list[int]]:
        self._file.flush()
        self._file.seek(0)
        left = self.count
        while left:
            chunk = array("q")
            chunk.fromfile(self._file, min(size, left))
            left -= len(chunk)
            yield chunk.tolist()

    def close(self) -> None:
        self._file.close()


def merge_sorted(sources: list[Iterator[list[int]]]) -> Iterator[tuple[list[int], int]]:
    """Merge sources of ascending, repeat-free chunks (each source ascending across its chunks)
    into ascending lists of distinct numbers, each with how many numbers it was made from."""
    heads: list[tuple[list[int], int, Iterator[list[int]]]] = []
    for source in sources:
        first = next(source, None)
        if first:
            heads.append((first, 0, source))
    while heads:
        # Whatever a run holds later is above its current chunk's end, so everything up to the
        # lowest of those ends is final now, whichever run it comes from.
        cut = min(chunk[-1] for chunk, _, _ in heads)
        pieces: list[list[int]] = []
        kept: list[tuple[list[int], int, Iterator[list[int]]]] = []
        for chunk, start, source in heads:
            end = bisect_right(chunk, cut, start)
            if end > start:
                pieces.append(chunk if start == 0 and end == len(chunk) else chunk[start:end])
            if end < len(chunk):
                kept.append((chunk, end, source))
            else:
                following = next(source, None)
                if following:
                    kept.append((following, 0, source))
        heads = kept
        if len(pieces) == 1:
            yield pieces[0], len(pieces[0])  # from one run: already sorted and repeat-free
            continue
        taken: list[int] = []
        for piece in pieces:
            taken += piece
        taken.sort()
        yield drop_repeats(taken), len(taken)


class SortedRuns:
    """Collect integers with ``extend``, then read them back with ``merged()``; use as a
    context manager (or call ``close``) so that the temporary files are closed."""

    def __init__(self, run_size: int = RUN_SIZE, tmpdir: str | None = None) -> None:
        if run_size < 1:
            raise ValueError("run_size must be positive")
        self._run_size = run_size
        self._tmpdir = tmpdir
        self._current: list[int] = []
        self._runs: list[_Run] = []
        self.count = 0  # numbers collected, repeats included
        self.repeats = 0  # repeats dropped so far (all of them once merged() is exhausted)
        self.spilled_runs = 0  # runs written to temporary files so far
        self.spilled_bytes = 0  # bytes written to them so far

    def __enter__(self) -> SortedRuns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def extend(self, numbers: list[int]) -> None:
        self.count += len(numbers)
        start = 0
        # Spill only once a run overflows, so that exactly run_size numbers stay in memory.
        while len(self._current) + len(numbers) - start > self._run_size:
            room = self._run_size - len(self._current)
            self._current += numbers[start : start + room]
            start += room
            self._spill()
        self._current += numbers[start:] if start else numbers

    def merged(self) -> Iterator[list[int]]:
        """Every distinct number collected, ascending, in lists. Call once, after extend."""
        if not self._runs:
            self._current.sort()
            distinct = drop_repeats(self._current)
            self.repeats += len(self._current) - len(distinct)
            self._current = []
            if distinct:
                yield distinct
            return
        if self._current:
            self._spill()  # so that every run is read back in bounded chunks
        while len(self._runs) > MAX_FANIN:  # the fewest numbers that bring it down to MAX_FANIN
            smallest = sorted(self._runs, key=lambda run: run.count)
            self._merge_into_one(smallest[: len(self._runs) - MAX_FANIN + 1])
        yield from self._merge(self._runs)

    def close(self) -> None:
        self._current = []
        runs, self._runs = self._runs, []
        for run in runs:
            run.close()

    def _spill(self) -> None:
        self._current.sort()
        distinct = drop_repeats(self._current)
        self.repeats += len(self._current) - len(distinct)
        self._current = []
        run = _Run(self._tmpdir)
        self._runs.append(run)  # closed by close() even if the write fails
        run.write(distinct)
        self.spilled_runs += 1
        self.spilled_bytes += len(distinct) * _ITEM
        # Keep the open files few, each number rewritten only once per level: MAX_FANIN runs
        # of one level become one run of the next.
        level = 0
        while len(same := [run for run in self._runs if run.level == level]) >= MAX_FANIN:
            self._merge_into_one(same)
            level += 1

    def _merge(self, runs: list[_Run]) -> Iterator[list[int]]:
        # Chunks of half a run in all: the chunks and the step they make stay near a run's memory.
        size = max(_MIN_CHUNK, self._run_size // (2 * len(runs)))
        for distinct, taken in merge_sorted([run.chunks(size) for run in runs]):
            self.repeats += taken - len(distinct)
            yield distinct

    def _merge_into_one(self, runs: list[_Run]) -> None:
        longer = _Run(self._tmpdir, max(run.level for run in runs) + 1)
        self._runs.append(longer)
        for distinct in self._merge(runs):
            longer.write(distinct)
        for run in runs:
            run.close()
        self._runs = [run for run in self._runs if run not in runs]
        self.spilled_bytes += longer.count * _ITEM

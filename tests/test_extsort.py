"""The external sort behind `c2c dnc import`: runs spilled to temporary files, merged back."""

from __future__ import annotations

import os
import random

import pytest

from c2c.store import extsort
from c2c.store.extsort import SortedRuns, drop_repeats, merge_sorted


def collect(numbers: list[int], run_size: int, chunk: int = 1_000, tmpdir=None) -> SortedRuns:
    runs = SortedRuns(run_size, str(tmpdir) if tmpdir else None)
    for start in range(0, len(numbers), chunk):
        runs.extend(numbers[start : start + chunk])
    return runs


def read_back(runs: SortedRuns) -> list[list[int]]:
    with runs:
        return list(runs.merged())


def flat(pieces: list[list[int]]) -> list[int]:
    return [n for piece in pieces for n in piece]


@pytest.mark.parametrize(
    ("run_size", "count"), [(1, 500), (7, 3_000), (1_000, 20_000), (50_000, 20_000)]
)
def test_distinct_numbers_come_back_ascending_with_the_repeats_counted(run_size, count):
    rng = random.Random(run_size)
    numbers = [rng.randrange(10**10, 10**10 + count * 3 // 2) for _ in range(count)]
    runs = collect(numbers, run_size, chunk=333)
    pieces = read_back(runs)
    assert flat(pieces) == sorted(set(numbers))
    assert all(pieces)
    assert (runs.count, runs.repeats) == (count, count - len(set(numbers)))
    assert runs.spilled_runs == (0 if run_size >= count else -(-count // run_size))


def test_what_fits_in_one_run_never_touches_the_disk(tmp_path):
    runs = collect([5, 3, 5, 1], run_size=4, tmpdir=tmp_path)
    assert read_back(runs) == [[1, 3, 5]]
    assert (runs.spilled_runs, runs.spilled_bytes, runs.repeats) == (0, 0, 1)


def test_runs_take_8_bytes_a_number_on_disk_and_are_exactly_run_size():
    runs = collect(list(range(25, 0, -1)), run_size=10, chunk=4)
    assert flat(read_back(runs)) == list(range(1, 26))
    assert (runs.spilled_runs, runs.spilled_bytes) == (3, 25 * 8)  # 10, 10 and the last 5


def test_a_number_repeated_in_every_run_comes_back_once():
    numbers = [7, 1, 2, 7, 3, 4, 7, 5, 6, 7] * 3
    runs = collect(numbers, run_size=3, chunk=2)
    assert flat(read_back(runs)) == [1, 2, 3, 4, 5, 6, 7]
    assert runs.repeats == len(numbers) - 7


def test_more_runs_than_the_fan_in_are_merged_in_passes(monkeypatch):
    monkeypatch.setattr(extsort, "MAX_FANIN", 3)
    rng = random.Random(1)
    numbers = [rng.randrange(10**12) for _ in range(5_000)] + [42] * 50
    rng.shuffle(numbers)
    runs = collect(numbers, run_size=100, chunk=37)
    assert flat(read_back(runs)) == sorted(set(numbers))
    assert runs.repeats == len(numbers) - len(set(numbers))
    assert runs.spilled_runs == 51  # plus the longer runs the passes wrote
    assert runs.spilled_bytes > 51 * 100 * 8


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
def test_runs_are_merged_while_reading_so_that_few_files_are_open(monkeypatch):
    monkeypatch.setattr(extsort, "MAX_FANIN", 3)
    before = len(os.listdir("/proc/self/fd"))
    runs = collect(list(range(1_000, 0, -1)), run_size=10, chunk=10)
    with runs:
        assert runs.spilled_runs == 99
        assert len(os.listdir("/proc/self/fd")) - before <= 3  # 99 = 10200 in base 3: 3 runs
        assert flat(list(runs.merged())) == list(range(1, 1_001))
    assert len(os.listdir("/proc/self/fd")) == before


def test_nothing_in_nothing_out():
    runs = collect([], run_size=10)
    assert read_back(runs) == []
    assert (runs.count, runs.repeats) == (0, 0)


def test_the_temporary_files_are_closed_when_the_reader_stops_early():
    fds = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else None
    runs = collect(list(range(10_000, 0, -1)), run_size=1_000)
    with pytest.raises(KeyboardInterrupt), runs:
        for _ in runs.merged():
            raise KeyboardInterrupt
    if fds is not None:
        assert os.listdir("/proc/self/fd") == fds


def test_the_files_live_in_tmpdir_without_a_name(tmp_path):
    runs = collect(list(range(100)), run_size=10, tmpdir=tmp_path)
    with runs:
        assert runs.spilled_runs == 9  # the tenth run is written when merging starts
        assert list(tmp_path.iterdir()) == []  # unlinked at creation: nothing left behind, ever
        assert flat(list(runs.merged())) == list(range(100))


def test_merge_sorted_cuts_at_the_lowest_chunk_end():
    def source(*chunks):
        return iter([list(chunk) for chunk in chunks])

    merged = list(merge_sorted([source([1, 4, 9], [10, 20]), source([2, 3], [4, 30]), source()]))
    assert merged == [([1, 2, 3], 3), ([4, 9], 3), ([10, 20], 2), ([30], 1)]
    assert flat([piece for piece, _ in merged]) == [1, 2, 3, 4, 9, 10, 20, 30]


def test_drop_repeats():
    same = [1, 2, 3]
    assert drop_repeats(same) is same
    assert drop_repeats([1, 1, 2, 3, 3, 3]) == [1, 2, 3]
    assert drop_repeats([]) == []


def test_run_size_must_be_positive():
    with pytest.raises(ValueError):
        SortedRuns(0)

"""The Do-Not-Call list: membership and bulk import."""

from __future__ import annotations

import io
import os
import random

import pytest
from sqlalchemy import select

from c2c.store import dnc, schema
from c2c.store.dnc import Dnc, NumberReader, first_field, parse_e164, plain_numbers


def test_add_contains_remove_count(store):
    assert store.dnc.count() == 0
    assert store.dnc.contains_any([]) is False
    assert store.dnc.add([15552104427, 442071234567, 15552104427]) == 2
    assert store.dnc.add([15552104427]) == 0
    assert store.dnc.contains_any([15550000000, 442071234567]) is True
    assert store.dnc.contains_any([15550000000]) is False
    assert store.dnc.count() == 2
    assert store.dnc.remove([15552104427, 15550000000]) == 1
    assert store.dnc.contains_any([15552104427]) is False
    assert store.dnc.count() == 1


def test_import_plain_lines_with_comments_blanks_and_bad_lines(store, tmp_path):
    store.dnc.add([15550000001])
    path = tmp_path / "dnc.txt"
    path.write_text(
        "\ufeff# exported list\n"
        "+15550000001\n"  # already listed
        "15550000002\n"
        "\n"
        "   +15550000003  \n"
        "15550000002\n"  # a duplicate within the file
        "555-000-0004\n"  # not E.164 digits
        "0123456\n"  # leading zero
        "1234\n"  # too short
        "+1234567890123456\n"  # too long
    )
    result = store.dnc.import_file(str(path))
    assert (result.read, result.added, result.duplicates, result.invalid) == (4, 2, 2, 4)
    assert result.invalid_lines == (7, 8, 9, 10)
    assert store.dnc.count() == 3
    assert store.dnc.contains_any([15550000003])


def test_import_csv_with_a_header_and_quotes(store, tmp_path):
    path = tmp_path / "dnc.csv"
    path.write_text(
        "phone_number,name,added\n"
        '"+447700900001",Alice,2024-01-01\n'
        "447700900002,Bob,2024-01-02\n"
        "not a number,Carol,2024-01-03\n"
    )
    result = store.dnc.import_file(str(path))
    assert (result.read, result.added, result.invalid) == (2, 2, 1)
    assert store.dnc.contains_any([447700900001]) and store.dnc.contains_any([447700900002])


def test_only_the_first_data_line_may_be_a_header(store, tmp_path):
    path = tmp_path / "dnc.tsv"
    path.write_text("number\tnote\n15550000001\tx\nnumber\tnote\n")
    result = store.dnc.import_file(str(path))
    assert (result.read, result.invalid) == (1, 1)


def test_import_in_batches_reports_progress(store):
    lines = [f"1555{n:07d}" for n in range(2_500)] + ["junk"]
    seen = []
    result = store.dnc.import_lines(lines, progress=seen.append, batch_size=1_000)
    assert [p.phase for p in seen] == ["reading", "inserting", "inserting", "inserting"]
    assert (seen[0].read, seen[0].processed, seen[0].invalid) == (2_500, 0, 1)
    assert [p.processed for p in seen[1:]] == [1_000, 2_000, 2_500]
    assert [p.added for p in seen[1:]] == [1_000, 2_000, 2_500]
    assert (result.phase, result.read, result.added, result.invalid) == ("done", 2_500, 2_500, 1)
    assert store.dnc.count() == 2_500
    again = store.dnc.import_lines(lines, batch_size=700)
    assert (again.added, again.duplicates) == (0, 2_500)


def listed(store) -> list[int]:
    with store.engine.connect() as conn:
        query = select(schema.dnc.c.number).order_by(schema.dnc.c.number)
        return [number for (number,) in conn.execute(query)]


SCATTERED = (
    "phone,name\n"  # 1: a header
    "+15550000009,x\n"
    "15550000001\n"
    "15550000005\n"  # already listed
    "15550000001\n"  # 5: a repeat within the first run
    "bad\n"  # 6: invalid
    "15550000003\n"
    "+15550000009\n"  # 8: a repeat from the first run, in the second
    "\n"
    "# a comment\n"  # 10
    "15550000007\n"
    "0155500000\n"  # 12: invalid (a leading zero)
    "15550000002\n"
    "15550000100\n"  # already listed
    "15550000003\n"  # 15: a repeat across runs
    '"+15550000004"\n'
    "15550000009"  # 17: the third time, and no line end
)


@pytest.mark.parametrize("source", ["file", "lines"])
def test_an_import_bigger_than_a_run_is_sorted_through_temporary_files(
    store, tmp_path, monkeypatch, source
):
    store.dnc.add([15550000005, 15550000100])
    path = tmp_path / "dnc.csv"
    path.write_text(SCATTERED)
    sort_dir = tmp_path / "sort"
    sort_dir.mkdir()
    monkeypatch.setattr(dnc, "READ_BLOCK", 40)  # blocks parsed in bulk and line by line
    inserted = []
    insert = Dnc._insert_ignoring_duplicates

    def spy(self, conn, ascending):
        inserted.append(list(ascending))
        return insert(self, conn, ascending)

    monkeypatch.setattr(Dnc, "_insert_ignoring_duplicates", spy)
    options = {"batch_size": 3, "run_size": 4, "tmpdir": str(sort_dir)}
    if source == "file":
        result = store.dnc.import_file(str(path), **options)
    else:
        result = store.dnc.import_lines(SCATTERED.splitlines(), **options)
    # 12 valid numbers in runs of 4: [9, 1, 5, 1], [3, 9, 7, 2], [100, 3, 4, 9]
    assert (result.read, result.added, result.duplicates) == (12, 6, 6)
    assert (result.invalid, result.invalid_lines) == (2, (6, 12))
    assert result.spilled_bytes == 8 * (3 + 4 + 4)  # each run without its repeats
    expected = [15550000000 + n for n in (1, 2, 3, 4, 5, 7, 9, 100)]
    assert inserted == [expected[:3], expected[3:6], expected[6:]]  # in key order, in batches
    assert listed(store) == expected
    assert list(sort_dir.iterdir()) == []


def test_a_big_scattered_import_with_repeats_and_listed_numbers(store, tmp_path):
    rng = random.Random(7)
    numbers = [rng.randrange(10**10, 10**10 + 40_000) for _ in range(30_000)]
    earlier = [rng.randrange(10**10, 10**10 + 40_000) for _ in range(1_000)]
    store.dnc.add(earlier)
    lines = [f"+{n}" if n & 1 else str(n) for n in numbers]
    for at in (10, 5_000, 29_000):
        lines.insert(at, "555-0100")
    path = tmp_path / "dnc.txt"
    path.write_text("\n".join(lines) + "\n")
    result = store.dnc.import_file(str(path), batch_size=2_500, run_size=4_000)
    new = set(numbers) - set(earlier)
    assert (result.read, result.added, result.duplicates) == (30_000, len(new), 30_000 - len(new))
    assert (result.invalid, result.invalid_lines) == (3, (11, 5_001, 29_001))
    assert listed(store) == sorted(set(numbers) | set(earlier))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files in /proc")
def test_an_interrupted_import_keeps_the_batches_done_and_closes_its_files(store):
    lines = [f"1555{n:07d}" for n in range(2_500, 0, -1)]
    before = len(os.listdir("/proc/self/fd"))

    def interrupt(progress):
        if progress.phase == "inserting":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.dnc.import_lines(lines, progress=interrupt, batch_size=1_000, run_size=500)
    assert len(os.listdir("/proc/self/fd")) == before
    assert listed(store) == [15550000000 + n for n in range(1, 1_001)]  # the lowest, committed


def test_a_missing_file_is_an_os_error(store, tmp_path):
    with pytest.raises(OSError):
        store.dnc.import_file(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("+15552104427", 15552104427),
        ("15552104427", 15552104427),
        (' "+442071234567" ', 442071234567),
        ("12345", 12345),
        ("123456789012345", 123456789012345),
        ("1234", None),
        ("1234567890123456", None),
        ("+0123456", None),
        ("++15552104427", None),
        ("1555 210 4427", None),
        ("１５５５２１０４４２７", None),  # fullwidth digits are not ASCII digits
        ("", None),
    ],
)
def test_parse_e164(text, number):
    assert parse_e164(text) == number


def test_first_field():
    assert first_field("1,2") == "1"
    assert first_field("1;2") == "1"
    assert first_field("1\t2") == "1"
    assert first_field("15552104427") == "15552104427"


@pytest.mark.parametrize(
    ("block", "numbers"),
    [
        (b"+15552104427\n15552104427\n", [15552104427, 15552104427]),
        (b"12345\r\n999999999999999\r\n\r\n\n+100000", [12345, 999999999999999, 100000]),
        (b"", []),
        (b"\n\n", []),
        (b"1234\n", None),  # too short
        (b"1000000000000000\n", None),  # too long
        (b"0123456\n", None),
        (b"15552104427\n+0123456\n", None),
        (b"+\n", None),
        (b"++15552104427\n", None),
        (b"1555+2104427\n", None),
        (b"15552104427\r15552104428\n", None),  # a lone CR ends a line too: the slow path
        (b" 15552104427\n", None),
        (b"15552104427,x\n", None),
        (b"#15552104427\n", None),
        (b"1_5552104427\n", None),
        (b"\xef\xbc\x91\xef\xbc\x95\xef\xbc\x95\xef\xbc\x95\xef\xbc\x95\n", None),
    ],
)
def test_plain_numbers(block, numbers):
    assert plain_numbers(block) == numbers


def test_reading_in_blocks_matches_reading_line_by_line():
    """The bulk path must see what the line-by-line one sees: numbers, invalid lines, headers."""
    rng = random.Random(3)
    pieces = ["15552104427", "+447700900001", "12345", "1234", "0123456", "+", "1+2", "\r",
              " ", ",x", "#", "number", "\xe9", "\ufeff", "99999999999999999", "\n", "\n",
              "\n", "\r\n"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 60)))
        data = (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + text.encode()
        if rng.random() < 0.2:
            data += b"\xff\n"  # not UTF-8
        by_line = NumberReader()
        lines = io.TextIOWrapper(io.BytesIO(data), "utf-8-sig", "replace")
        expected = [n for chunk in by_line.numbers_in_lines(lines) for n in chunk]
        in_blocks = NumberReader()
        block_size = rng.choice([1, 7, 64, 1 << 20])
        got = [n for c in in_blocks.numbers_in_file(io.BytesIO(data), block_size) for n in c]
        assert got == expected, data
        assert (in_blocks.invalid, in_blocks.invalid_lines) == (
            by_line.invalid,
            by_line.invalid_lines,
        ), data

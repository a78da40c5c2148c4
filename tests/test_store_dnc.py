"""The Do-Not-Call list: membership and bulk import."""

from __future__ import annotations

import pytest

from c2c.store.dnc import first_field, parse_e164


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
    assert [p.read for p in seen] == [1_000, 2_000, 2_500]
    assert (result.read, result.added, result.invalid) == (2_500, 2_500, 1)
    assert store.dnc.count() == 2_500
    again = store.dnc.import_lines(lines, batch_size=700)
    assert (again.added, again.duplicates) == (0, 2_500)


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

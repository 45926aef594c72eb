"""Offset translation: a committed source offset maps to the first restored record at or after it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libkb.errors import FormatError
from libkb.restore.mapping import OffsetMapping, PartitionMapping


def mapping(offsets: list[int], target_start: int = 1000) -> PartitionMapping:
    pm = PartitionMapping("src", 0, "dst", 2, target_start)
    pm.add_all(offsets)
    return pm


def test_runs_break_at_gaps() -> None:
    pm = mapping([5, 6, 7, 10, 11, 20])
    assert pm.runs == [(5, 1000, 3), (10, 1003, 2), (20, 1005, 1)]
    assert (pm.count, pm.target_end) == (6, 1006)


@pytest.mark.parametrize(
    ("committed", "expected"),
    [
        (0, 1000),  # before everything: the first restored record
        (5, 1000),
        (6, 1001),
        (7, 1002),
        (8, 1003),  # in a compaction gap: the next restored record (offset 10)
        (9, 1003),
        (10, 1003),
        (11, 1004),
        (12, 1005),
        (20, 1005),
        (21, 1006),  # past the last record: the end of the restored partition
        (10_000, 1006),
    ],
)
def test_translate_across_gaps(committed: int, expected: int) -> None:
    assert mapping([5, 6, 7, 10, 11, 20]).translate(committed) == expected


def test_empty_partition_translates_to_its_start() -> None:
    assert mapping([]).translate(42) == 1000


@given(
    st.lists(st.integers(min_value=0, max_value=500), unique=True), st.integers(min_value=0, max_value=600)
)
def test_translation_matches_the_definition(offsets: list[int], committed: int) -> None:
    offsets.sort()
    pm = mapping(offsets)
    later = [i for i, o in enumerate(offsets) if o >= committed]
    assert pm.translate(committed) == 1000 + (later[0] if later else len(offsets))


def test_json_round_trip_and_bad_input() -> None:
    om = OffsetMapping("bk", "r1", [mapping([1, 2, 5])])
    again = OffsetMapping.from_json(om.to_json())
    assert again == om and again.find("src", 0) == om.partitions[0] and again.find("src", 1) is None
    with pytest.raises(FormatError, match="not a libkb offset mapping"):
        OffsetMapping.from_json(b'{"format": "x"}')
    with pytest.raises(FormatError, match="offset mapping: not valid JSON"):
        OffsetMapping.from_json(b"{")

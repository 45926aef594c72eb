"""Index, manifest and snapshot models: JSON round trips, coverage checks, key layout."""

from __future__ import annotations

import pytest

from libkb.errors import FormatError
from libkb.format.models import (
    GroupOffsets,
    Manifest,
    MissingRange,
    PartitionIndex,
    RunInfo,
    SegmentEntry,
    TopicInfo,
    groups_from_json,
    groups_to_json,
    parse_segment_key,
    segment_key,
)


def entry(base: int, end: int, records: int = 1) -> SegmentEntry:
    return SegmentEntry(
        key=segment_key("b", "t", 0, base),
        base_offset=base,
        end_offset=end,
        record_count=records,
        first_offset=base if records else -1,
        last_offset=end - 1 if records else -1,
        min_timestamp=0,
        max_timestamp=0,
        size=10,
        raw_bytes=20,
        codec="zstd",
    )


def test_segment_keys_sort_by_offset_and_parse_back() -> None:
    keys = [segment_key("bk", "orders", 3, o) for o in (0, 9, 10, 2**40)]
    assert sorted(keys) == keys
    assert parse_segment_key(keys[2]) == ("bk", "orders", 3, 10)
    assert parse_segment_key("bk/topics/orders/partition=3/index.json") is None
    assert parse_segment_key("bk/manifest.json") is None


def test_index_round_trip_and_tiling() -> None:
    index = PartitionIndex(
        "t", 0, [entry(0, 10), entry(10, 25, records=0)], [MissingRange(25, 40, "retention")]
    )
    assert PartitionIndex.from_json(index.to_json()) == index
    assert (index.start_offset, index.end_offset) == (0, 40)
    assert index.coverage_problems() == []


def test_index_reports_holes_and_overlaps() -> None:
    holes = PartitionIndex("t", 0, [entry(0, 10), entry(12, 20)])
    assert any("hole [10, 12)" in p for p in holes.coverage_problems())
    overlap = PartitionIndex("t", 0, [entry(0, 10), entry(9, 20)])
    assert any("overlaps" in p for p in overlap.coverage_problems())


def test_manifest_round_trip() -> None:
    manifest = Manifest(
        backup_id="b",
        created_ms=1,
        updated_ms=2,
        compression="zstd",
        topics={"t": TopicInfo(3, 1, {"cleanup.policy": "compact"})},
        runs=[RunInfo("r1", 1, 2, "complete", "snapshot", 5, 50)],
        source_cluster_id="abc",
        libkb_version="0.1.0",
    )
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.status == "complete"


def test_groups_round_trip() -> None:
    groups = [GroupOffsets("g1", {"t": {0: 5, 1: 7}}), GroupOffsets("g2", {})]
    assert groups_from_json(groups_to_json(groups, 9)) == (9, groups)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"not json", "not valid JSON"),
        (b'{"x": 1}', "not a libkb object"),
        (b'{"format": "libkb-backup", "format_version": 99}', "newer than this libkb"),
        (b'{"format": "libkb-backup", "format_version": 1}', "malformed"),
    ],
)
def test_bad_objects_name_themselves(data: bytes, words: str) -> None:
    with pytest.raises(FormatError, match=words) as info:
        Manifest.from_json(data, name="bk/manifest.json")
    assert "bk/manifest.json" in str(info.value)

"""Index, manifest and snapshot models: JSON round trips, coverage checks, key layout."""

from __future__ import annotations

import dataclasses
import json
import re

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
from libkb.format.segment import FORMAT_VERSION


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
        (
            b'{"format": "libkb-backup", "format_version": 99}',
            f"format version 99 is newer than this libkb reads (1 to {FORMAT_VERSION}): it was written by a "
            "newer libkb; upgrade libkb",
        ),
        (b'{"format": "libkb-backup", "format_version": 1}', "malformed"),
    ],
)
def test_bad_objects_name_themselves(data: bytes, words: str) -> None:
    with pytest.raises(FormatError, match=re.escape(words)) as info:
        Manifest.from_json(data, name="bk/manifest.json")
    assert "bk/manifest.json" in str(info.value)


def _version(data: bytes) -> int:
    return int(json.loads(data)["format_version"])


def test_each_object_is_written_with_the_lowest_version_that_holds_it() -> None:
    """Without lz4 a backup stays version 1 (readable by every libkb); lz4 makes an object version 2."""
    zstd_only = PartitionIndex("t", 0, [entry(0, 10)])
    assert _version(zstd_only.to_json()) == 1
    with_lz4 = PartitionIndex("t", 0, [entry(0, 10), dataclasses.replace(entry(10, 20), codec="lz4")])
    assert _version(with_lz4.to_json()) == 2
    read = PartitionIndex.from_json(with_lz4.to_json())
    assert read.format_version == 2 and read.segments == with_lz4.segments
    for compression, version in (("zstd", 1), ("none", 1), ("lz4", 2)):
        manifest = Manifest("b", 1, 2, compression)
        assert _version(manifest.to_json()) == version
        assert Manifest.from_json(manifest.to_json()).format_version == version
    assert _version(groups_to_json([GroupOffsets("g", {"t": {0: 1}})], 9)) == 1


def test_a_version_1_object_naming_lz4_is_refused() -> None:
    index = json.loads(PartitionIndex("t", 0, [dataclasses.replace(entry(0, 10), codec="lz4")]).to_json())
    index["format_version"] = 1
    with pytest.raises(
        FormatError, match=r"^x/index\.json: codec lz4 needs format version 2, the object says 1$"
    ):
        PartitionIndex.from_json(json.dumps(index).encode(), name="x/index.json")
    manifest = json.loads(Manifest("b", 1, 2, "lz4").to_json())
    manifest["format_version"] = 1
    with pytest.raises(FormatError, match="codec lz4 needs format version 2"):
        Manifest.from_json(json.dumps(manifest).encode())
    index["segments"][0]["codec"] = "brotli"
    index["format_version"] = 2
    with pytest.raises(FormatError, match=r"^x/index\.json: unknown codec 'brotli'$"):
        PartitionIndex.from_json(json.dumps(index).encode(), name="x/index.json")

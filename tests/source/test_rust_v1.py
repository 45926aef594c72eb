"""The segment source over the Rust kafka-backup's backups, on the memory and filesystem backends.

The tool's own fixture backups are read record by record and compared with
the ground truth (what a consumer read from the source topics), with exactly
the losses docs/format.rst lists; checks and errors are tried on broken
copies and on backups written by :mod:`tests.source.rust_fixtures`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from libkb.catalog import describe_backup, list_backups, validate_backup
from libkb.cli.render import list_text
from libkb.errors import FormatError
from libkb.format.models import SegmentEntry
from libkb.format.segment import Record, SegmentError
from libkb.source import BackupSource, open_backup, scan_location
from libkb.source.libkb_v1.backup import LibkbV1Source
from libkb.source.rust_v1.backup import RustSource
from libkb.storage import FilesystemConfig, MemoryConfig, StorageBackend, create_backend_from_config
from tests.cli.stored import flip_byte
from tests.cli.stored import write_backup as write_libkb_backup
from tests.source.rust_fixtures import (
    AUDIT,
    FIXTURES,
    ORDERS,
    as_stored,
    encode_segment,
    fixture_dir,
    ground_truth,
    losses,
    records,
    stored_records,
    upload_fixture,
    with_tool_headers,
    write_backup,
)


@pytest.fixture(params=["memory", "filesystem"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    config = MemoryConfig() if request.param == "memory" else FilesystemConfig(str(tmp_path / "store"))
    with create_backend_from_config(config) as b:
        yield b


def read_all(source: BackupSource) -> dict[tuple[str, int], list[Record]]:
    """Every record the source gives a restore, by partition, as the restore reads them."""
    manifest = source.manifest()
    out = {}
    for topic, info in manifest.topics.items():
        for p in range(info.partitions):
            index = source.readable_coverage(topic, p)
            out[(topic, p)] = [
                r for s in index.segments for batch in source.load(s).batches(0, 1 << 62) for r in batch
            ]
    return out


# -- the fixtures: detected, read exactly ---------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_reads_as_the_ground_truth_less_the_formats_losses(
    backend: StorageBackend, name: str
) -> None:
    backup_id = upload_fixture(backend, name)
    source = open_backup(backend, backup_id)
    assert isinstance(source, RustSource)
    assert read_all(source) == stored_records(name)
    # Every record carried the tool's two headers; each was left out once.
    total = sum(map(len, stored_records(name).values()))
    assert source.read_notes() == [
        f"left out the Rust tool's own x-original-* headers of {total:,} records; "
        "restore.keep_rust_tool_headers: true keeps them"
    ]


def test_the_losses_are_the_documented_ones_and_no_more() -> None:
    """Record by record: a record differs from what the consumer saw only by the listed losses."""
    counts: dict[str, int] = {}
    for rows in ground_truth().values():
        for row in rows:
            found = losses(row)
            consumed_ts = row["timestamp"]
            stored = as_stored(row)
            if not found:
                assert stored[1] == consumed_ts and stored[2] == 1
            for loss in found:
                counts[loss] = counts.get(loss, 0) + 1
    assert counts == {
        "timestamp type (LogAppendTime stored as the producer's CreateTime)": 560,
        "null header value stored as empty": 367,
        "repeated header name collapsed to its last value": 660,
    }


def test_keep_tool_headers_gives_the_records_as_stored(backend: StorageBackend) -> None:
    source = open_backup(backend, upload_fixture(backend, "lz4"))
    source.keep_tool_headers = True
    got = read_all(source)
    expected = {tp: [with_tool_headers(r) for r in recs] for tp, recs in stored_records("lz4").items()}
    assert got == expected
    assert source.read_notes()[0].startswith("kept the Rust tool's own x-original-* headers of 3,500 records")


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_facts_list_describe_and_deep_validate(backend: StorageBackend, name: str) -> None:
    backup_id = upload_fixture(backend, name)
    total = sum(map(len, stored_records(name).values()))
    (summary,) = list_backups(backend)
    assert (summary.backup_id, summary.status, summary.records, summary.format_version) == (
        backup_id,
        "unknown",
        total,
        None,
    )
    assert summary.written_by == "kafka-backup (Rust) 0.12 or later (the tool records no version)"
    assert list_text([summary], "here").endswith(f"\n{backup_id}: written by {summary.written_by}")
    d = describe_backup(backend, backup_id)
    assert {t: i.partitions for t, i in d.manifest.topics.items()} == {ORDERS: 3, AUDIT: 1}
    per_partition = 1100 if name == "incremental" else 1000
    orders = [p for p in d.partitions if p.topic == ORDERS]
    assert [(p.start_offset, p.end_offset, p.records) for p in orders] == [
        (0, per_partition, per_partition)
    ] * 3
    assert orders[0].min_timestamp == 1700000000000
    assert d.records == total and d.stored_bytes == summary.stored_bytes
    assert d.groups is not None and d.groups.groups[0].offsets == {
        ORDERS: {0: 412, 1: 537, 2: 861},
        AUDIT: {0: 250},
    }
    body = d.to_dict()
    assert body["format"] == "kafka-backup (Rust) segment format 1" and body["format_version"] is None
    assert any("LogAppendTime" in n for n in body["format_notes"])
    assert any("carry the tool's own headers x-original-offset" in n for n in body["format_notes"])
    report = validate_backup(backend, backup_id, deep=True)
    assert report.ok, report.problems
    assert (report.warnings, report.checked_records) == ([], total)


def test_a_libkb_backup_beside_it_is_read_as_libkb(backend: StorageBackend) -> None:
    upload_fixture(backend, "zstd")
    write_libkb_backup(backend, "mine")
    backend.put("junk/manifest.json", b"{not json")
    sources = {s.backup_id: s for s in scan_location(backend)}
    assert isinstance(sources["fxa-zstd"], RustSource)
    assert isinstance(sources["mine"], LibkbV1Source) and isinstance(sources["junk"], LibkbV1Source)
    assert isinstance(open_backup(backend, "mine"), LibkbV1Source)


def test_reading_never_writes(backend: StorageBackend) -> None:
    upload_fixture(backend, "zstd")
    before = {k: backend.get(k) for k in backend.list()}
    describe_backup(backend, "fxa-zstd")
    validate_backup(backend, "fxa-zstd", deep=True)
    read_all(open_backup(backend, "fxa-zstd"))
    assert {k: backend.get(k) for k in backend.list()} == before


def test_segments_written_here_match_the_tools_bytes() -> None:
    """The test writer reproduces the tool's segments exactly (none and zstd; lz4 compressors differ)."""
    for name in ("none", "zstd"):
        root = fixture_dir(name)
        for path in sorted(root.rglob("segment-*")):
            memory = create_backend_from_config(MemoryConfig())
            backup_id = upload_fixture(memory, name)
            source = open_backup(memory, backup_id)
            source.keep_tool_headers = True
            key = path.relative_to(root).as_posix()
            entry = next(s for s in source.check_structure().segments if s.key == key)
            recs = [r for b in source.load(entry).batches(0, 1 << 62) for r in b]
            assert encode_segment(recs, name) == path.read_bytes(), key


# -- checks and errors ------------------------------------------------------------------


def entry_of(source: BackupSource, key_part: str) -> SegmentEntry:
    return next(s for s in source.check_structure().segments if key_part in s.key)


SEGMENT = "fxa-orders/partition=1/segment-00000000000000000400"


@pytest.mark.parametrize("name", ["zstd", "lz4", "none"])
def test_a_flipped_byte_names_the_segment_and_its_offsets(backend: StorageBackend, name: str) -> None:
    backup_id = upload_fixture(backend, name)
    source = open_backup(backend, backup_id)
    entry = entry_of(source, SEGMENT)
    flip_byte(backend, entry.key)
    report = validate_backup(backend, backup_id, deep=True)
    assert report.problems == [f"{entry.key} (offsets 400-799): checksum mismatch (corrupt bytes)"]
    assert validate_backup(backend, backup_id).ok  # the size still holds: only a deep check can tell
    with pytest.raises(SegmentError, match=r"segment-00000000000000000400.* \(offsets 400-799\): checksum"):
        next(source.load(entry).batches(0, 1 << 62))


@pytest.mark.parametrize("cut", [8, 1000])
def test_a_truncated_segment_names_the_segment_and_its_offsets(backend: StorageBackend, cut: int) -> None:
    upload_fixture(backend, "zstd")
    source = open_backup(backend, "fxa-zstd")
    entry = entry_of(source, SEGMENT)
    backend.put(entry.key, backend.get(entry.key)[:-cut])
    name = f"{entry.key} (offsets 400-799)"
    assert validate_backup(backend, "fxa-zstd").problems == [
        f"{name}: {entry.size - cut} bytes stored, the manifest says {entry.size}"
    ]
    assert validate_backup(backend, "fxa-zstd", deep=True).problems == [
        f"{name}: {entry.size - cut} bytes stored, the manifest says {entry.size}",
        f"{name}: truncated or corrupt: the footer magic is missing",
    ]
    with pytest.raises(SegmentError, match=r"\(offsets 400-799\): truncated or corrupt") as info:
        next(source.load(entry).batches(0, 1 << 62))
    assert str(info.value).startswith(name) and isinstance(info.value, FormatError)


def test_structure_problems_and_warnings(backend: StorageBackend) -> None:
    recs = records(0, 30)
    write_backup(
        backend,
        "b",
        {
            ("t", 0): [recs[:10], recs[10:20], recs[25:]],  # a hole at 20-24
            ("t", 1): [recs[:10]],
        },
        partition_counts={"t": 2},
        gaps={("t", 1): [(10, 15)]},
    )
    backend.delete("b/topics/t/partition=1/segment-00000000000000000000.bin.zst")
    backend.put("b/topics/t/partition=0/segment-00000000000000000099.bin.zst", b"left by a killed run")
    report = validate_backup(backend, "b")
    manifest = "b/manifest.json"
    assert report.problems == [
        f"b/topics/t/partition=1/segment-00000000000000000000.bin.zst: listed in {manifest} but not stored"
    ]
    assert report.warnings == [
        f"{manifest}: offsets [20, 25) of t/0 are in no segment, between "
        "b/topics/t/partition=0/segment-00000000000000000010.bin.zst and "
        "b/topics/t/partition=0/segment-00000000000000000025.bin.zst "
        "(compacted away, or not backed up: the format does not say)",
        f"{manifest}: offsets [10, 15) of t/1 are not in the backup (offset_out_of_range)",
        "b/topics/t/partition=0/segment-00000000000000000099.bin.zst: stored but not in b/manifest.json "
        "(a run stopped between storing and listing it?); restores read only what the manifest lists",
    ]


def test_the_manifest_and_the_segment_must_agree(backend: StorageBackend) -> None:
    recs = records(0, 10)
    manifest = write_backup(backend, "b", {("t", 0): [recs]})
    meta = manifest["topics"][0]["partitions"][0]["segments"][0]
    meta["record_count"], meta["start_timestamp"] = 9, 5
    backend.put("b/manifest.json", json.dumps(manifest).encode())
    source = open_backup(backend, "b")
    key = meta["key"]
    report = validate_backup(backend, "b", deep=True)
    assert report.problems == [
        f"{key} (offsets 0-9): manifest says records 9, its header 10",
        f"{key} (offsets 0-9): manifest says records 9, the records give 10",
        f"{key} (offsets 0-9): manifest says first record's timestamp 5, the segment holds 1700000000000",
    ]
    with pytest.raises(SegmentError, match=r"manifest says records 9, its header 10"):
        next(source.load(entry_of(source, key)).batches(0, 100))


def test_overlapping_segments_and_a_wrong_key_are_problems(backend: StorageBackend) -> None:
    manifest = write_backup(backend, "b", {("t", 0): [records(0, 10), records(5, 10)]})
    assert validate_backup(backend, "b").problems == [
        "b/manifest.json: b/topics/t/partition=0/segment-00000000000000000000.bin.zst overlaps "
        "b/topics/t/partition=0/segment-00000000000000000005.bin.zst"
    ]
    manifest["backup_id"] = "other"
    manifest["topics"][0]["partitions"][0]["partition_id"] = 3
    backend.put("b/manifest.json", json.dumps(manifest).encode())
    problems = validate_backup(backend, "b").problems
    assert problems[0] == "b/manifest.json: names backup 'other', not 'b'"
    assert "is not that partition's segment from offset 0" in problems[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("created_at"), "manifest has no 'created_at'"),
        (lambda m: m["topics"][0].update(name=7), r"topics\[0\].name is 7, not str"),
        (
            lambda m: m["topics"][0]["partitions"][0]["segments"][0].update(record_count="9"),
            r"topics\[0\].partitions\[0\].segments\[0\].record_count is '9', not int",
        ),
        (lambda m: m.update(compression="brotli"), "unknown compression 'brotli'"),
    ],
)
def test_a_malformed_manifest_is_a_format_error_naming_the_field(
    backend: StorageBackend, change: object, message: str
) -> None:
    manifest = write_backup(backend, "b", {("t", 0): [records(0, 3)]})
    change(manifest)  # type: ignore[operator]
    backend.put("b/manifest.json", json.dumps(manifest).encode())
    with pytest.raises(FormatError, match=f"b/manifest.json: .*{message}"):
        open_backup(backend, "b").manifest()


def tool_pair(offset: int, timestamp: int) -> list[tuple[str, bytes | None]]:
    return [
        ("x-original-offset", offset.to_bytes(8, "little")),
        ("x-original-timestamp", timestamp.to_bytes(8, "little")),
    ]


def test_tool_headers_are_left_out_only_when_they_are_the_tools(backend: StorageBackend) -> None:
    base: Record = (7, 1700000000007, 1, b"k", b"v", tool_pair(7, 1)[:1])
    plain: Record = (8, 9, 1, None, None, None)
    wrong_timestamp: Record = (9, 10, 1, None, b"", tool_pair(9, 11))
    swapped: Record = (10, 10, 1, b"", None, tool_pair(10, 10)[::-1])
    recs = [
        with_tool_headers(base),  # a user header of that name first, then the tool's: only the tool's go
        with_tool_headers(plain, cluster="prod"),  # with x-source-cluster
        wrong_timestamp,
        swapped,
    ]
    write_backup(backend, "b", {("t", 0): [recs]})
    source = open_backup(backend, "b")
    assert read_all(source)[("t", 0)] == [base, plain, wrong_timestamp, swapped]
    assert "of 2 records" in source.read_notes()[0]


def test_time_windows_do_not_skip_segments_by_their_stated_times(backend: StorageBackend) -> None:
    """The manifest's times are a segment's first and last record's: a late record may lie outside them."""
    from libkb.config import parse_config
    from libkb.restore.engine import RestoreEngine

    seg1 = records(0, 10)
    seg2 = records(10, 10)
    seg2[5] = (15, 5, 1, b"late", b"old timestamp", None)  # older than seg2's first and last
    write_backup(backend, "b", {("t", 0): [seg1, seg2]})
    config = parse_config(
        {
            "mode": "restore",
            "backup_id": "b",
            "target": {"bootstrap_servers": ["localhost:1"]},
            "storage": {"backend": "memory"},
            "restore": {"time_window_start": 0, "time_window_end": 100},
        }
    )
    plan = RestoreEngine(config, backend=backend).plan().plan
    assert plan is not None and [len(t.segments) for t in plan.tasks] == [2]

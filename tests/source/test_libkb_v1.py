"""The segment source over libkb format v1, on the memory backend: facts, records and checks."""

from __future__ import annotations

import json
import re
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import replace

import pytest

from libkb.errors import FormatError
from libkb.format.models import (
    RunInfo,
    SegmentEntry,
    index_key,
    lease_generation_key,
    manifest_key,
    segment_key,
)
from libkb.format.segment import (
    CODEC_LZ4,
    CODEC_NAMES,
    CODEC_ZSTD,
    Record,
    SegmentError,
    SegmentReader,
    decode_footer,
    encode_segment,
)
from libkb.source import BackupNotFoundError, open_backup, resolve_backup, scan_location
from libkb.source.libkb_v1.backup import LibkbV1Source
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.cli.stored import BASE_TS, CREATED_MS, flip_byte, put_segment, records, write_backup


@pytest.fixture
def backend() -> Iterator[StorageBackend]:
    with create_backend_from_config(MemoryConfig()) as b:
        yield b


def many_blocks(backend: StorageBackend, backup_id: str = "b1", codec: int = CODEC_ZSTD) -> SegmentEntry:
    """orders/0 at [32, 140): 100 records with a gap at 82-89, in blocks of about 10 records."""
    recs = records(32, 50) + records(90, 50)
    data = encode_segment("orders", 0, 32, 140, recs, codec=codec, block_bytes=300)
    key = segment_key(backup_id, "orders", 0, 32)
    backend.put(key, data)
    return SegmentEntry.from_footer(key, 32, decode_footer(data, name=key), len(data), CODEC_NAMES[codec])


# -- finding and opening backups ---------------------------------------------------


def test_scan_finds_every_backup_once_in_id_order(backend: StorageBackend) -> None:
    write_backup(backend, "b2")
    write_backup(backend, "b1", {"solo": 1})
    backend.put("notes/readme.txt", b"not a backup")
    sources = scan_location(backend)
    assert [s.backup_id for s in sources] == ["b1", "b2"]
    assert all(isinstance(s, LibkbV1Source) for s in sources)
    assert sources[0].stored_totals()[0] == 20
    assert sources[1].stored_totals() == open_backup(backend, "b2").stored_totals()


def test_an_unknown_id_names_the_backups_there(backend: StorageBackend) -> None:
    write_backup(backend, "alpha")
    with pytest.raises(BackupNotFoundError, match=r"'beta'.*alpha") as info:
        open_backup(backend, "beta").manifest()
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(BackupNotFoundError):
        open_backup(backend, "beta").check_structure()


def test_latest_is_the_most_recently_created_readable_backup(backend: StorageBackend) -> None:
    for backup_id, created in (("a", 3), ("b", 9), ("c", 5)):
        manifest = write_backup(backend, backup_id)
        manifest.created_ms = created
        backend.put(manifest_key(backup_id), manifest.to_json())
    backend.put(manifest_key("d"), b"unreadable")
    assert resolve_backup(backend, "latest").backup_id == "b"
    assert resolve_backup(backend, "c").backup_id == "c"


def test_latest_of_an_empty_location(backend: StorageBackend) -> None:
    with pytest.raises(BackupNotFoundError, match="latest"):
        resolve_backup(backend, "latest")


# -- facts --------------------------------------------------------------------------


def test_manifest_shows_a_dead_run_as_interrupted_only_when_settled(backend: StorageBackend) -> None:
    manifest = write_backup(backend, "b1")
    manifest.runs.append(RunInfo("run-2", CREATED_MS, None, "running"))
    backend.put(manifest_key("b1"), manifest.to_json())
    source = open_backup(backend, "b1")
    assert source.manifest().status == "running"
    assert source.manifest(settle=True).status == "interrupted"
    lease = {"run_id": "run-2", "host": "h", "pid": 1, "expires_ms": int(time.time() * 1000) + 60_000}
    backend.put(lease_generation_key("b1", 1), json.dumps({**lease, "generation": 1}).encode())
    assert source.manifest(settle=True).status == "running"  # its writer holds the lease


def test_coverage_as_recorded_and_as_a_restore_reads_it(backend: StorageBackend) -> None:
    write_backup(backend, "b1", {"orders": 2}, empty=[("orders", 1)])
    source = open_backup(backend, "b1")
    recorded = source.coverage("orders", 0)
    assert recorded is not None
    assert (recorded.start_offset, recorded.end_offset, recorded.record_count) == (0, 32, 20)
    assert [(s.base_offset, s.end_offset) for s in recorded.segments] == [(0, 10), (10, 32)]
    assert (recorded.segments[0].min_timestamp, recorded.segments[1].max_timestamp) == (BASE_TS, BASE_TS + 28)
    assert source.coverage("orders", 1) is None
    assert source.readable_coverage("orders", 1).segments == []
    unlisted = many_blocks(backend)  # stored by a run killed before its index listed it
    assert source.coverage("orders", 0) == recorded
    readable = source.readable_coverage("orders", 0)
    assert [s.key for s in readable.segments] == [*(s.key for s in recorded.segments), unlisted.key]


def test_groups_snapshot(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    write_backup(backend, "b2", groups=False)
    taken, groups = open_backup(backend, "b1").groups() or (0, [])
    assert taken == CREATED_MS + 5_000
    assert groups[0].offsets == {"orders": {0: 7, 1: 3}}
    assert open_backup(backend, "b2").groups() is None


def test_stored_totals_count_an_unreadable_index_as_nothing(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    backend.put(index_key("b1", "events", 0), b"{broken")
    assert open_backup(backend, "b1").stored_totals()[0] == 40


# -- records ------------------------------------------------------------------------


def all_records(batches: Iterator[list[Record]]) -> list[Record]:
    return [r for batch in batches for r in batch]


def test_batches_are_the_blocks_that_reach_into_the_range(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    entry = many_blocks(backend)
    segment = open_backup(backend, "b1").load(entry)
    assert segment.key == entry.key
    whole = list(segment.batches(0, 1_000))
    assert len(whole) > 5
    assert all_records(iter(whole)) == records(32, 50) + records(90, 50)
    part = list(segment.batches(60, 100))
    assert 1 < len(part) < len(whole)
    offsets = [r[0] for r in all_records(iter(part))]
    assert offsets[0] <= 60 and offsets[-1] >= 99  # whole blocks: the caller trims the edges
    assert set(range(60, 82)) | set(range(90, 100)) <= set(offsets)
    assert list(segment.batches(140, 200)) == []
    assert list(segment.batches(0, 32)) == []


def test_a_corrupt_block_fails_naming_the_segment(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    entry = many_blocks(backend)
    flip_byte(backend, entry.key)
    segment = open_backup(backend, "b1").load(entry)
    with pytest.raises(FormatError, match=entry.key):
        all_records(segment.batches(0, 1_000))


@pytest.mark.parametrize("codec", [CODEC_ZSTD, CODEC_LZ4], ids=["zstd", "lz4"])
def test_corruption_reads_alike_whatever_the_codec(backend: StorageBackend, codec: int) -> None:
    """Restore and validate --deep word a corrupt lz4 segment exactly as a corrupt zstd one."""
    write_backup(backend, "b1")
    entry = many_blocks(backend, codec=codec)
    source = open_backup(backend, "b1")
    good = backend.get(entry.key)
    block = list(SegmentReader(good).blocks())[2]
    payload = block.position + 32

    flip_byte(backend, entry.key, payload + 3)  # bytes damaged in storage
    with pytest.raises(
        SegmentError, match=rf"^{re.escape(entry.key)}: checksum mismatch in the block of offsets "
    ):
        all_records(source.load(entry).batches(0, 1_000))
    assert source.check_segment(entry, deep=True).problems == [
        f"{entry.key}: body checksum mismatch (corrupt bytes): in the block of offsets "
        f"{block.first_offset}-{block.last_offset} (block 2, at byte {block.position})"
    ]

    # A payload that is no frame of its codec, stored with its own checksum (a writer's bug).
    data = bytearray(good)
    data[payload : block.position + block.length] = bytes(block.length - 32)
    struct.pack_into("<I", data, block.position + 28, zlib.crc32(bytes(block.length - 32)))
    backend.put(entry.key, bytes(data))
    with pytest.raises(
        SegmentError, match=rf"^{re.escape(entry.key)}: the block of offsets 42-46: cannot decompress block: "
    ):
        all_records(source.load(entry).batches(0, 1_000))


def set_head(backend: StorageBackend, key: str, block: int, field: str, value: int) -> None:
    """Rewrite one offset in a block head (``first`` or ``last``): nothing checksums it but the body CRC."""
    data = bytearray(backend.get(key))
    position = list(SegmentReader(bytes(data), name=key).blocks())[block].position
    struct.pack_into("<q", data, position + {"first": 12, "last": 20}[field], value)
    backend.put(key, bytes(data))


def test_a_flipped_byte_in_a_block_heads_first_offset_fails_naming_the_segment(
    backend: StorageBackend,
) -> None:
    """Its first offset becomes 2**62 + 37: a reader that trusted it would stop reading the segment there."""
    write_backup(backend, "b1")
    entry = many_blocks(backend)
    position = list(SegmentReader(backend.get(entry.key)).blocks())[1].position
    flip_byte(backend, entry.key, position + 12 + 7)  # the most significant byte of first_offset
    segment = open_backup(backend, "b1").load(entry)
    message = (
        f"{entry.key}: the block at byte {position} states offsets {2**62 + 37}-41 (5 records), which "
        "cannot follow offset 36 in [32, 140) (a corrupt block head)"
    )
    with pytest.raises(SegmentError) as raised:
        all_records(segment.batches(0, 1_000))
    assert str(raised.value) == message
    with pytest.raises(SegmentError, match="corrupt block head"):
        all_records(segment.batches(100, 120))  # whichever blocks the range needs


@pytest.mark.parametrize(
    ("block", "field", "value", "held"),
    [
        (10, "first", 85, "90-94"),  # still after block 9 (77-81) and spanning its 5 records
        (9, "last", 85, "77-81"),
    ],
)
def test_a_block_head_that_still_fits_is_checked_against_the_records(
    backend: StorageBackend, block: int, field: str, value: int, held: str
) -> None:
    write_backup(backend, "b1")
    entry = many_blocks(backend)  # its blocks 9 and 10 are 77-81 and 90-94, around the gap 82-89
    set_head(backend, entry.key, block, field, value)
    segment = open_backup(backend, "b1").load(entry)
    with pytest.raises(
        SegmentError, match=rf"^{entry.key}: the block at byte \d+ states .* but holds {held} \(5\)"
    ):
        all_records(segment.batches(0, 1_000))
    assert len(all_records(segment.batches(32, 60))) == 30  # blocks far from it are read as before


def test_a_block_the_heads_leave_out_of_the_range_is_checked_too(backend: StorageBackend) -> None:
    """Block 0 holds 0-4 and 10-14; its head, made to say 0-9, would drop 10-14 from a read from 10."""
    write_backup(backend, "b1", {"t": 1}, segments=1, groups=False)
    data = encode_segment("t", 0, 0, 30, records(0, 5) + records(10, 5) + records(20, 5), block_bytes=560)
    key = segment_key("b1", "t", 0, 0)
    backend.put(key, data)
    entry = SegmentEntry.from_footer(key, 0, decode_footer(data), len(data), "zstd")
    assert [(b.first_offset, b.last_offset) for b in SegmentReader(data).blocks()] == [(0, 14), (20, 24)]
    segment = open_backup(backend, "b1").load(entry)
    assert [r[0] for r in all_records(segment.batches(10, 30))] == [*range(5), *range(10, 15), *range(20, 25)]
    set_head(backend, key, 0, "last", 9)
    segment = open_backup(backend, "b1").load(entry)
    with pytest.raises(SegmentError, match=r"states offsets 0-9 \(10 records\) but holds 0-14"):
        all_records(segment.batches(10, 30))


def test_a_segment_that_disagrees_with_its_index_entry_fails(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    entry = many_blocks(backend)
    segment = open_backup(backend, "b1").load(replace(entry, record_count=99, end_offset=141))
    with pytest.raises(SegmentError) as raised:
        all_records(segment.batches(0, 1_000))
    assert str(raised.value) == (
        f"{entry.key}: the index says 99 records at offsets 32-139 in [32, 141), "
        "the segment 100 records at offsets 32-139 in [32, 140)"
    )


# -- checks -------------------------------------------------------------------------


def test_check_segment_shallow_compares_sizes_deep_reads_every_record(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    source = open_backup(backend, "b1")
    entry = source.readable_coverage("orders", 0).segments[1]
    assert source.check_segment(entry, deep=False) == ([], 0)
    assert source.check_segment(entry, deep=True) == ([], 10)
    backend.put(entry.key, backend.get(entry.key)[:-3])
    (problem,), _ = source.check_segment(entry, deep=False)
    assert problem.startswith(entry.key) and "the index says" in problem
    backend.delete(entry.key)
    (problem,), _ = source.check_segment(entry, deep=True)
    assert problem == f"{entry.key}: listed in its index but not stored (deleted meanwhile?)"


def test_deep_check_names_a_corrupt_segment(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    source = open_backup(backend, "b1")
    entry = source.readable_coverage("events", 0).segments[0]
    flip_byte(backend, entry.key)
    assert source.check_segment(entry, deep=False).problems == []  # same size
    problems, decoded = source.check_segment(entry, deep=True)
    assert decoded == 0
    assert len(problems) == 1 and problems[0].startswith(entry.key) and "checksum" in problems[0]


def test_deep_check_compares_records_footer_and_index(backend: StorageBackend) -> None:
    write_backup(backend, "b1", {"t": 1}, segments=1, groups=False)
    recs = records(0, 5)
    recs[2], recs[3] = recs[3], recs[2]
    entry = put_segment(backend, "b1", "t", 0, 0, 10, recs)
    claimed = replace(entry, record_count=6, codec="none")
    problems, decoded = open_backup(backend, "b1").check_segment(claimed, deep=True)
    assert decoded == 5
    assert problems == [
        f"{entry.key}: offset 2 follows 3 (offsets must increase)",
        f"{entry.key}: index says records 6, the footer says 5",
        f"{entry.key}: index says codec none, the header zstd",
    ]


def test_structure_lists_the_segments_to_check(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    unlisted = many_blocks(backend)
    backend.delete(segment_key("b1", "events", 0, 10))
    structure = open_backup(backend, "b1").check_structure()
    assert structure.partitions == 3
    assert structure.problems == [
        f"{segment_key('b1', 'events', 0, 10)}: listed in {index_key('b1', 'events', 0)} but not stored"
    ]
    assert any(w.startswith(unlisted.key) and "adopts it" in w for w in structure.warnings)
    keys = [s.key for s in structure.segments]
    assert len(keys) == 6 - 1 + 1 and unlisted.key in keys

"""Backups written straight with libkb.format's encoders: the catalog and CLI read them, no Kafka.

``write_backup`` lays out what the engine would: segments, then each
partition's index, then the manifest and the consumer-group snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from libkb.format.models import (
    GroupOffsets,
    Manifest,
    MissingRange,
    PartitionIndex,
    RunInfo,
    SegmentEntry,
    TopicInfo,
    groups_key,
    groups_to_json,
    index_key,
    manifest_key,
    segment_key,
)
from libkb.format.segment import Record, decode_footer, encode_segment
from libkb.storage import StorageBackend

BASE_TS = 1_700_000_000_000
CREATED_MS = 1_700_000_100_000


def records(start: int, count: int, step: int = 1) -> list[Record]:
    return [
        (o, BASE_TS + o, 0, f"k{o}".encode(), f"value-{o}".encode() * 4, [("h", b"1"), ("n", None)])
        for o in range(start, start + count * step, step)
    ]


def put_segment(
    backend: StorageBackend,
    backup_id: str,
    topic: str,
    partition: int,
    base: int,
    end: int,
    recs: list[Record],
) -> SegmentEntry:
    data = encode_segment(topic, partition, base, end, recs, created_ms=CREATED_MS)
    key = segment_key(backup_id, topic, partition, base)
    backend.put(key, data)
    return SegmentEntry.from_footer(key, base, decode_footer(data, name=key), len(data), "zstd")


def write_backup(
    backend: StorageBackend,
    backup_id: str = "b1",
    topics: Mapping[str, int] | None = None,
    *,
    segments: int = 2,
    per_segment: int = 10,
    empty: Iterable[tuple[str, int]] = (),
    missing: Mapping[tuple[str, int], MissingRange] | None = None,
    groups: bool = True,
) -> Manifest:
    """Each non-empty partition gets ``segments`` segments of ``per_segment`` records.

    Offsets step by 2 in the second segment (as after compaction), so ranges
    hold gaps the validator must accept.
    """
    topics = dict(topics or {"orders": 2, "events": 1})
    empty = set(empty)
    missing = dict(missing or {})
    for topic, count in topics.items():
        for partition in range(count):
            if (topic, partition) in empty:
                continue
            gap = missing.get((topic, partition))
            offset = gap.end if gap else 0
            entries = []
            for s in range(segments):
                step = 2 if s == 1 else 1
                recs = records(offset, per_segment, step)
                end = recs[-1][0] + 1 + (3 if s == segments - 1 else 0)  # trailing markers: end > last + 1
                entries.append(put_segment(backend, backup_id, topic, partition, offset, end, recs))
                offset = end
            index = PartitionIndex(topic, partition, entries, [gap] if gap else [])
            backend.put(index_key(backup_id, topic, partition), index.to_json())
    manifest = Manifest(
        backup_id=backup_id,
        created_ms=CREATED_MS,
        updated_ms=CREATED_MS + 5_000,
        compression="zstd",
        topics={
            t: TopicInfo(n, 3, {"cleanup.policy": "compact"} if t == "orders" else {})
            for t, n in topics.items()
        },
        runs=[RunInfo("run-1", CREATED_MS, CREATED_MS + 5_000, "complete", "snapshot", 42, 4200)],
        source_cluster_id="cluster-x",
        libkb_version="0.1.0",
    )
    backend.put(manifest_key(backup_id), manifest.to_json())
    if groups:
        snapshot = [GroupOffsets("billing", {"orders": {0: 7, 1: 3}})]
        backend.put(groups_key(backup_id), groups_to_json(snapshot, CREATED_MS + 5_000))
    return manifest


def flip_byte(backend: StorageBackend, key: str, position: int | None = None) -> None:
    """Corrupt one byte in place (same size), in the middle of the object by default."""
    data = bytearray(backend.get(key))
    at = len(data) // 2 if position is None else position
    data[at] ^= 0x40
    backend.put(key, bytes(data))

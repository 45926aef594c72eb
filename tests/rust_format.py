"""A writer of the Rust kafka-backup v0.17.4 backup format, for benchmarks and tests.

The tests and the benchmark need Rust-tool backups of any size and shape
without the Rust binary (an 18-minute cargo build). This writer produces the
objects that tool writes in one snapshot run: ``{backup_id}/manifest.json``
(pretty JSON), ``segment-{start:020}.bin{ext}`` segments rotated where it
rotates them (``segment_max_bytes``, ``segment_max_records``; ``KBAK``
header, record area compressed as a whole, CRC-32 and ``BKAE`` footer) and
``consumer-groups-snapshot.json``.

``tests/test_rust_format.py`` checks it against the backups the real
tool wrote (:data:`FIXTURES`): the
uncompressed and zstd segments byte for byte, lz4 segments up to the
compressed block (``lz4_flex`` and liblz4 pick different matches; both
decode the same), and the manifests field for field.

What the tool changes on the way in is the caller's business: give the
records as the tool stores them (see :func:`as_stored`).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lz4.block
import zstandard

from libkb.storage import StorageBackend

#: The Rust tool's own backups with their ground truth (a copy of ../shared/fixtures, see its README.rst).
FIXTURES = Path(__file__).parent / "data" / "rust-0.17.4"
MAGIC = b"KBAK"
FOOTER_MAGIC = b"BKAE"
CODECS = {"none": (0, ""), "zstd": (1, ".zst"), "lz4": (2, ".lz4")}
OFFSET_HEADER = "x-original-offset"
TIMESTAMP_HEADER = "x-original-timestamp"
CLUSTER_HEADER = "x-source-cluster"
SEGMENT_MAX_BYTES = 128 * 1024 * 1024  # the tool's default segment_max_bytes

Header = tuple[str, bytes | None]


@dataclass(slots=True)
class RustRecord:
    """One record as the tool stores it."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[Header] = field(default_factory=list)


def as_stored(
    record: RustRecord, *, include_offset_headers: bool = True, source_cluster_id: str | None = None
) -> RustRecord:
    """What the tool stores for a record a consumer saw.

    Duplicate header keys collapse (the last value at the first key's place),
    null header values become empty, and its own headers go last.
    """
    merged: dict[str, bytes] = {}
    for name, value in record.headers:
        merged[name] = value or b""
    headers: list[Header] = list(merged.items())
    if include_offset_headers:
        headers.append((OFFSET_HEADER, struct.pack("<q", record.offset)))
        headers.append((TIMESTAMP_HEADER, struct.pack("<q", record.timestamp)))
        if source_cluster_id is not None:
            headers.append((CLUSTER_HEADER, source_cluster_id.encode()))
    return RustRecord(record.offset, record.timestamp, record.key, record.value, headers)


def _field(data: bytes | None) -> bytes:
    return struct.pack("<i", -1) if data is None else struct.pack("<i", len(data)) + data


def encode_record(record: RustRecord) -> bytes:
    """The record's bytes in the record area (``BinaryRecord::to_bytes``)."""
    parts = [
        struct.pack("<qq", record.timestamp, record.offset),
        _field(record.key),
        _field(record.value),
        struct.pack("<H", len(record.headers)),
    ]
    for name, value in record.headers:
        raw = name.encode()
        parts.append(struct.pack("<H", len(raw)) + raw + _field(value))
    body = b"".join(parts)
    return struct.pack("<I", len(body)) + body


def compress(area: bytes, compression: str, level: int = 3) -> bytes:
    """The record area as the tool compresses it: a streamed zstd frame, or a size-prefixed lz4 block."""
    if compression == "zstd":
        stream = zstandard.ZstdCompressor(level=level).compressobj()
        return stream.compress(area) + stream.flush()
    if compression == "lz4":
        return bytes(lz4.block.compress(area, store_size=True))
    return area


def encode_segment(records: Sequence[RustRecord], compression: str, level: int = 3) -> tuple[bytes, int]:
    """A whole segment object and its uncompressed record-area size."""
    return _segment(
        [encode_record(r) for r in records], records[0].offset, records[-1].offset, compression, level
    )


def _segment(encoded: list[bytes], start: int, end: int, compression: str, level: int) -> tuple[bytes, int]:
    area = b"".join(encoded)
    head = MAGIC + struct.pack("<BBHQqq", 1, CODECS[compression][0], 0, len(encoded), start, end)
    body = head + compress(area, compression, level)
    return body + struct.pack("<I", zlib.crc32(body)) + FOOTER_MAGIC, len(area)


def segment_key(backup_id: str, topic: str, partition: int, start: int, compression: str) -> str:
    return (
        f"{backup_id}/topics/{topic}/partition={partition}/segment-{start:020d}.bin{CODECS[compression][1]}"
    )


@dataclass(slots=True)
class _Run:
    """The records of the segment being filled, encoded once."""

    first: RustRecord | None = None
    last: RustRecord | None = None
    encoded: list[bytes] = field(default_factory=list)
    size: int = 0

    def add(self, record: RustRecord) -> None:
        self.first = self.first or record
        self.last = record
        data = encode_record(record)
        self.encoded.append(data)
        self.size += len(data)


@dataclass
class RustBackupWriter:
    """Writes one Rust-format backup through a libkb storage backend."""

    backend: StorageBackend
    backup_id: str
    compression: str = "zstd"
    level: int = 3
    segment_max_records: int = 2**63 - 1  # unset, as the tool's default
    segment_max_bytes: int = SEGMENT_MAX_BYTES
    created_at: int = 1_700_000_000_000
    topics: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write_partition(
        self, topic: str, partition: int, records: Iterable[RustRecord], *, partition_count: int | None = None
    ) -> None:
        """Store the records as segments and note them for the manifest."""
        entry = self.topics.setdefault(
            topic, {"name": topic, "original_partition_count": partition_count, "partitions": {}}
        )
        segments = entry["partitions"].setdefault(partition, [])
        run = _Run()
        for record in records:
            run.add(record)
            # The tool rotates after the record that reaches either limit.
            if len(run.encoded) >= self.segment_max_records or run.size >= self.segment_max_bytes:
                segments.append(self._store(topic, partition, run))
                run = _Run()
        if run.encoded:
            segments.append(self._store(topic, partition, run))

    def _store(self, topic: str, partition: int, run: _Run) -> dict[str, Any]:
        assert run.first is not None and run.last is not None
        data, area = _segment(run.encoded, run.first.offset, run.last.offset, self.compression, self.level)
        key = segment_key(self.backup_id, topic, partition, run.first.offset, self.compression)
        self.backend.put(key, data)
        return {
            "key": key,
            "start_offset": run.first.offset,
            "end_offset": run.last.offset,
            "start_timestamp": run.first.timestamp,
            "end_timestamp": run.last.timestamp,
            "record_count": len(run.encoded),
            "uncompressed_size": area,
            "compressed_size": len(data),
        }

    def manifest(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "created_at": self.created_at,
            "source_cluster_id": None,
            "source_brokers": [],
            "compression": self.compression,
            "topics": [
                {
                    "name": t["name"],
                    "original_partition_count": t["original_partition_count"],
                    "partitions": [
                        {"partition_id": p, "segments": sorted(segs, key=lambda s: s["start_offset"])}
                        for p, segs in sorted(t["partitions"].items())
                    ],
                }
                for t in self.topics.values()
            ],
        }

    def write_manifest(self) -> None:
        self.backend.put(f"{self.backup_id}/manifest.json", manifest_json(self.manifest()))

    def write_groups(self, snapshot_time: int, groups: dict[str, dict[str, dict[int, int]]]) -> None:
        """``consumer-groups-snapshot.json``: group -> topic -> partition -> committed offset."""
        doc = {
            "snapshot_time": snapshot_time,
            "groups": [
                {"group_id": g, "offsets": {t: {str(p): o for p, o in ps.items()} for t, ps in offs.items()}}
                for g, offs in groups.items()
            ],
        }
        self.backend.put(f"{self.backup_id}/consumer-groups-snapshot.json", manifest_json(doc))


def manifest_json(doc: dict[str, Any]) -> bytes:
    """JSON as ``serde_json::to_string_pretty`` writes it (two-space indent, no trailing newline)."""
    return json.dumps(doc, indent=2, ensure_ascii=False).encode()

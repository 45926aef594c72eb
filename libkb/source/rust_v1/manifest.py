"""The Rust tool's ``manifest.json`` and ``consumer-groups-snapshot.json``, parsed, as libkb's facts.

The manifest is the backup's index: every segment with its key, first and
last offset (inclusive), first and last record's timestamp, record count and
sizes, per partition; since v0.17 also the offset ranges lost to retention
(``gaps``). It records no version of the tool, no run, no topic config and no
replication factor. Topics and partitions are in no particular order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from libkb.errors import FormatError
from libkb.format.models import GroupOffsets, Manifest, MissingRange, PartitionIndex, SegmentEntry, TopicInfo
from libkb.format.rust_segment import SUFFIXES
from libkb.format.strict import load_object, partition_offsets
from libkb.source.base import GroupsSnapshot

FORMAT_NAME = "kafka-backup (Rust)"


@dataclass(frozen=True, slots=True)
class RustSegmentMeta:
    """One segment as the manifest lists it; ``end_offset`` is the last record's (inclusive)."""

    key: str
    start_offset: int
    end_offset: int
    start_timestamp: int  # the first record's, not the smallest
    end_timestamp: int  # the last record's, not the largest
    record_count: int
    uncompressed_size: int
    compressed_size: int  # the whole object

    def entry(self, compression: str) -> SegmentEntry:
        """As libkb's segment entry: coverage ``[start, end + 1)``, the two stated timestamps as its range.

        The codec is the one the key names: runs of one backup may differ, and
        the manifest keeps the first run's ``compression``.
        """
        return SegmentEntry(
            key=self.key,
            base_offset=self.start_offset,
            end_offset=self.end_offset + 1,
            record_count=self.record_count,
            first_offset=self.start_offset,
            last_offset=self.end_offset,
            min_timestamp=min(self.start_timestamp, self.end_timestamp),
            max_timestamp=max(self.start_timestamp, self.end_timestamp),
            size=self.compressed_size,
            raw_bytes=self.uncompressed_size,
            codec=codec_of_key(self.key, compression),
        )


def codec_of_key(key: str, default: str) -> str:
    """The codec a segment key's suffix names (``.bin.zst``, ``.bin.lz4``, ``.bin``), else ``default``."""
    for codec, suffix in sorted(SUFFIXES.items(), key=lambda item: -len(item[1])):
        if key.endswith(suffix):
            return codec
    return default


@dataclass(slots=True)
class RustPartition:
    partition: int
    segments: list[RustSegmentMeta]  # by start offset
    gaps: list[MissingRange]


@dataclass(slots=True)
class RustTopic:
    name: str
    partition_count: int | None  # ``original_partition_count`` (since v0.12; may be null)
    partitions: dict[int, RustPartition]

    @property
    def partitions_known(self) -> int:
        """The topic's partition count: as recorded, else the highest partition listed + 1."""
        if self.partition_count is not None:
            return self.partition_count
        return max(self.partitions, default=-1) + 1


@dataclass(slots=True)
class RustManifest:
    backup_id: str
    created_at: int
    source_cluster_id: str | None
    compression: str
    topics: dict[str, RustTopic]
    #: Fields only some versions write: ``original_partition_count`` (0.12), ``gaps`` (0.17).
    has_partition_counts: bool = False
    has_gaps: bool = False
    #: Topics or partitions listed twice (the first is kept).
    duplicates: list[str] = field(default_factory=list)
    _by_key: dict[str, RustSegmentMeta] | None = field(default=None, repr=False, compare=False)

    def version(self) -> str:
        """Which versions of the tool write a manifest like this one (it records none)."""
        if self.has_gaps:
            return "0.17 or later"
        if self.has_partition_counts:
            return "0.12 or later"
        return "before 0.12" if self.topics else "0.x"

    def to_manifest(self, updated_ms: int) -> Manifest:
        """libkb's manifest facts: no runs, no configs; the replication factor is the broker's (-1)."""
        return Manifest(
            backup_id=self.backup_id,
            created_ms=self.created_at,
            updated_ms=updated_ms,
            compression=self.compression,
            topics={
                name: TopicInfo(partitions=t.partitions_known, replication_factor=-1)
                for name, t in sorted(self.topics.items())
            },
            source_cluster_id=self.source_cluster_id,
            format_version=0,  # not a libkb format; see the source's provenance()
        )

    def coverage(self, topic: str, partition: int) -> PartitionIndex | None:
        t = self.topics.get(topic)
        part = t.partitions.get(partition) if t is not None else None
        if part is None:
            return None
        return PartitionIndex(
            topic,
            partition,
            [s.entry(self.compression) for s in part.segments],
            list(part.gaps),
            format_version=0,
        )

    def segments(self) -> list[RustSegmentMeta]:
        return [s for t in self.topics.values() for p in t.partitions.values() for s in p.segments]

    def segment(self, key: str) -> RustSegmentMeta | None:
        """The segment listed under ``key`` (the first, if listed twice)."""
        if self._by_key is None:
            by_key: dict[str, RustSegmentMeta] = {}
            for meta in self.segments():
                by_key.setdefault(meta.key, meta)
            self._by_key = by_key
        return self._by_key.get(key)


def looks_like_rust_manifest(data: bytes) -> bool:
    """A JSON object with ``backup_id`` and a list of ``topics``, not libkb's: the Rust tool's manifest."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return (
        isinstance(body, dict)
        and "format" not in body
        and isinstance(body.get("topics"), list)
        and isinstance(body.get("backup_id"), str)
    )


def parse_manifest(data: bytes, name: str) -> RustManifest:
    """The manifest, checked field by field; :class:`FormatError` naming the object and the field."""
    reader = _Reader(name)
    body = reader.json(data)
    compression = reader.get(body, "compression", str, "manifest", default="zstd")
    if compression not in SUFFIXES:
        raise FormatError(f"{name}: unknown compression {compression!r} (the tool writes zstd, lz4 or none)")
    manifest = RustManifest(
        backup_id=reader.get(body, "backup_id", str, "manifest"),
        created_at=reader.get(body, "created_at", int, "manifest"),
        source_cluster_id=reader.get(body, "source_cluster_id", str, "manifest", default=None),
        compression=compression,
        topics={},
    )
    topics = reader.get(body, "topics", list, "manifest")
    manifest.has_partition_counts = bool(topics) and all(
        isinstance(t, dict) and "original_partition_count" in t for t in topics
    )
    for i, raw in enumerate(topics):
        topic = _topic(reader, raw, f"topics[{i}]", manifest)
        if topic.name in manifest.topics:
            manifest.duplicates.append(f"topic {topic.name!r} is listed twice")
            continue
        manifest.topics[topic.name] = topic
    return manifest


def _topic(reader: _Reader, raw: Any, where: str, manifest: RustManifest) -> RustTopic:
    topic = RustTopic(
        name=reader.get(raw, "name", str, where),
        partition_count=reader.get(raw, "original_partition_count", int, where, default=None),
        partitions={},
    )
    for j, praw in enumerate(reader.get(raw, "partitions", list, where)):
        pwhere = f"{where}.partitions[{j}]"
        partition = reader.get(praw, "partition_id", int, pwhere)
        segments = [
            _segment(reader, s, f"{pwhere}.segments[{k}]")
            for k, s in enumerate(reader.get(praw, "segments", list, pwhere))
        ]
        gaps = [
            _gap(reader, g, f"{pwhere}.gaps[{k}]")
            for k, g in enumerate(reader.get(praw, "gaps", list, pwhere, default=[]))
        ]
        manifest.has_gaps = manifest.has_gaps or "gaps" in praw
        if partition in topic.partitions:
            manifest.duplicates.append(f"partition {partition} of topic {topic.name!r} is listed twice")
            continue
        segments.sort(key=lambda s: s.start_offset)
        topic.partitions[partition] = RustPartition(partition, segments, sorted(gaps, key=lambda g: g.start))
    return topic


def _segment(reader: _Reader, raw: Any, where: str) -> RustSegmentMeta:
    values = {
        name: reader.get(raw, name, int, where)
        for name in (
            "start_offset",
            "end_offset",
            "start_timestamp",
            "end_timestamp",
            "record_count",
            "uncompressed_size",
            "compressed_size",
        )
    }
    return RustSegmentMeta(key=reader.get(raw, "key", str, where), **values)


def _gap(reader: _Reader, raw: Any, where: str) -> MissingRange:
    return MissingRange(
        reader.get(raw, "start_offset", int, where),
        reader.get(raw, "end_offset", int, where),
        reader.get(raw, "reason", str, where, default="offset_out_of_range"),
    )


class _Reader:
    """Typed field access that names the object and the field in its errors."""

    _MISSING = object()

    def __init__(self, name: str) -> None:
        self.name = name

    def json(self, data: bytes) -> Mapping[str, Any]:
        return load_object(data, self.name, "kafka-backup (Rust) object")

    def get(self, obj: Any, key: str, kind: type[Any], where: str, default: Any = _MISSING) -> Any:
        if not isinstance(obj, dict):
            raise FormatError(f"{self.name}: {where} is not a JSON object")
        value = obj.get(key, default)
        if value is _Reader._MISSING:
            raise FormatError(f"{self.name}: {where} has no {key!r}")
        if value is None and default is None:
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise FormatError(f"{self.name}: {where}.{key} is {value!r}, not {kind.__name__}")
        return value


def parse_groups(data: bytes, name: str) -> GroupsSnapshot:
    """``consumer-groups-snapshot.json``: ``{snapshot_time, groups: [{group_id, offsets}]}``.

    ``offsets`` maps topic to partition (a string) to committed offset.
    """
    reader = _Reader(name)
    body = reader.json(data)
    taken = reader.get(body, "snapshot_time", int, "snapshot")
    groups = []
    for i, raw in enumerate(reader.get(body, "groups", list, "snapshot")):
        where = f"groups[{i}]"
        offsets = reader.get(raw, "offsets", dict, where)
        parsed = {
            str(t): partition_offsets(parts, name, f"{where}.offsets.{t}") for t, parts in offsets.items()
        }
        groups.append(GroupOffsets(reader.get(raw, "group_id", str, where), parsed))
    return taken, groups

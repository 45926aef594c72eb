"""``describe``: one backup's manifest, each partition's coverage, and its consumer-group snapshot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from libkb.catalog.times import iso_ms
from libkb.format.models import (
    GroupOffsets,
    Manifest,
    MissingRange,
    PartitionIndex,
    PrunedRange,
    parse_stored_topic,
)
from libkb.source import Provenance, open_backup
from libkb.source.parallel import parallel_map
from libkb.storage import StorageBackend


@dataclass(frozen=True, slots=True)
class PartitionDescription:
    """What is stored for one partition; ``start``/``end`` are None when nothing is.

    ``start_offset`` is where what the backup still holds starts; ``pruned``
    says what retention deleted before it.
    """

    topic: str
    partition: int
    indexed: bool
    start_offset: int | None
    end_offset: int | None  # exclusive
    records: int
    segments: int
    stored_bytes: int
    raw_bytes: int
    min_timestamp: int | None
    max_timestamp: int | None
    missing: list[MissingRange] = field(default_factory=list)
    pruned: list[PrunedRange] = field(default_factory=list)
    #: Segments whose records are encrypted (format version 6); told without the key.
    encrypted_segments: int = 0

    @classmethod
    def from_index(cls, index: PartitionIndex | None, topic: str, partition: int) -> PartitionDescription:
        if index is None:
            return cls(topic, partition, False, None, None, 0, 0, 0, 0, None, None)
        stamps = [s for s in index.segments if s.record_count]
        return cls(
            topic=topic,
            partition=partition,
            indexed=True,
            start_offset=index.retained_start,
            end_offset=index.end_offset,
            records=index.record_count,
            segments=len(index.segments),
            stored_bytes=index.size,
            raw_bytes=sum(s.raw_bytes for s in index.segments),
            min_timestamp=min((s.min_timestamp for s in stamps), default=None),
            max_timestamp=max((s.max_timestamp for s in stamps), default=None),
            missing=list(index.missing),
            pruned=list(index.pruned),
            encrypted_segments=sum(1 for s in index.segments if s.encryption),
        )

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["min_time"] = iso_ms(self.min_timestamp)
        body["max_time"] = iso_ms(self.max_timestamp)
        for pruned in body["pruned"]:
            pruned["pruned"] = iso_ms(pruned["pruned_ms"])
            pruned["min_time"] = iso_ms(pruned["min_timestamp"])
            pruned["max_time"] = iso_ms(pruned["max_timestamp"])
        return body


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """The consumer-group offsets recorded at the end of the last run."""

    taken_ms: int
    groups: list[GroupOffsets]

    def to_dict(self) -> dict[str, Any]:
        return {
            "taken_ms": self.taken_ms,
            "taken": iso_ms(self.taken_ms),
            "groups": {
                g.group: {t: {str(p): o for p, o in sorted(parts.items())} for t, parts in g.offsets.items()}
                for g in self.groups
            },
        }


@dataclass(frozen=True, slots=True)
class Incarnation:
    """One incarnation of a topic: the log between its creation and its deletion (format version 5).

    ``stored``: the name it is stored, listed and restored under (``orders``, ``orders@2``).
    """

    number: int
    stored: str
    topic_id: str | None
    partitions: int
    records: int


@dataclass(frozen=True, slots=True)
class BackupDescription:
    manifest: Manifest
    partitions: list[PartitionDescription]
    groups: GroupSnapshot | None
    #: Who wrote it, its format and what that format loses (None: libkb's, not asked).
    provenance: Provenance | None = None

    @property
    def status(self) -> str:
        origin = self.provenance
        return (origin.status if origin is not None else None) or self.manifest.status

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    @property
    def stored_bytes(self) -> int:
        return sum(p.stored_bytes for p in self.partitions)

    @property
    def segments(self) -> int:
        return sum(p.segments for p in self.partitions)

    @property
    def incarnations(self) -> dict[str, list[Incarnation]]:
        """Kafka topic -> its incarnations, oldest first (one, unless it was deleted and re-created)."""
        records: dict[str, int] = {}
        for p in self.partitions:
            records[p.topic] = records.get(p.topic, 0) + p.records
        out: dict[str, list[Incarnation]] = {}
        for topic in sorted({parse_stored_topic(name)[0] for name in self.manifest.topics}):
            out[topic] = [
                Incarnation(
                    parse_stored_topic(name)[1],
                    name,
                    self.manifest.topics[name].topic_id,
                    self.manifest.topics[name].partitions,
                    records.get(name, 0),
                )
                for name in self.manifest.incarnations(topic)
            ]
        return out

    @property
    def encrypted_segments(self) -> int:
        return sum(p.encrypted_segments for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        m, origin = self.manifest, self.provenance
        return {
            "backup_id": m.backup_id,
            "status": self.status,
            "created_ms": m.created_ms,
            "created": iso_ms(m.created_ms),
            "updated_ms": m.updated_ms,
            "updated": iso_ms(m.updated_ms),
            "compression": m.compression,
            "format_version": origin.format_version if origin is not None else m.format_version,
            "libkb_version": m.libkb_version,
            "format": origin.format if origin is not None else None,
            "written_by": origin.writer if origin is not None else None,
            "format_notes": list(origin.notes) if origin is not None else [],
            "source_cluster_id": m.source_cluster_id,
            "records": self.records,
            "segments": self.segments,
            "encrypted_segments": self.encrypted_segments,
            "stored_bytes": self.stored_bytes,
            "topics": {name: asdict(info) for name, info in sorted(m.topics.items())},
            "runs": [asdict(r) for r in m.runs],
            "partitions": [p.to_dict() for p in self.partitions],
            "consumer_groups": self.groups.to_dict() if self.groups else None,
            **self._incarnations_dict(),
        }

    def _incarnations_dict(self) -> dict[str, Any]:
        """``incarnations``: only in a backup holding a topic deleted and re-created."""
        several = {t: [asdict(i) for i in found] for t, found in self.incarnations.items() if len(found) > 1}
        return {"incarnations": several} if several else {}


def describe_backup(backend: StorageBackend, backup_id: str) -> BackupDescription:
    """Manifest, per-partition coverage and the consumer-group snapshot of one backup."""
    source = open_backup(backend, backup_id)
    manifest = source.manifest(settle=True)
    tps = [(t, p) for t, info in sorted(manifest.topics.items()) for p in range(info.partitions)]
    partitions = parallel_map(lambda tp: PartitionDescription.from_index(source.coverage(*tp), *tp), tps)
    groups = source.groups()
    snapshot = GroupSnapshot(*groups) if groups is not None else None
    return BackupDescription(manifest, partitions, snapshot, source.provenance(manifest, peek=True))

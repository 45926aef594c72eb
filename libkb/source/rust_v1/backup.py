"""A backup written by the Rust kafka-backup, as a :class:`~libkb.source.base.BackupSource`.

Recognised by its manifest (``{id}/manifest.json`` holding a list of
``topics``, where libkb's names its format), on any backend. The manifest is
read once and is the index: a restore reads exactly the segments it lists,
and never lists storage. Reading writes nothing.

Records keep the tool's own trailing ``x-original-*`` headers only with
``keep_tool_headers``; how many records carried them is counted per segment,
for the restore's summary.
"""

from __future__ import annotations

import threading

from libkb.errors import FormatError
from libkb.format.models import Manifest, PartitionIndex, SegmentEntry, manifest_key
from libkb.source.base import BackupSource, GroupsSnapshot, Provenance, SegmentCheck, Structure, Wanted
from libkb.source.libkb_v1.listing import not_found
from libkb.source.rust_v1.layout import check_layout
from libkb.source.rust_v1.manifest import (
    FORMAT_NAME,
    RustManifest,
    looks_like_rust_manifest,
    parse_groups,
    parse_manifest,
)
from libkb.source.rust_v1.notes import LOSSES, tool_header_note
from libkb.source.rust_v1.segment import RustSegment, segment_name
from libkb.storage import NotFoundError, StorageBackend

GROUPS_NAME = "consumer-groups-snapshot.json"
STATUS = "unknown"  # the tool records no run status


class RustSource(BackupSource):
    """One backup of the Rust tool; thread-safe."""

    #: The manifest's time ranges are each segment's first and last record's timestamps, not bounds.
    exact_time_bounds = False

    def __init__(self, backend: StorageBackend, backup_id: str) -> None:
        super().__init__(backend, backup_id)
        self._lock = threading.Lock()
        self._parsed: RustManifest | None = None
        self._updated_ms = 0
        self._tool_records: dict[str, int] = {}

    @classmethod
    def claims(cls, backend: StorageBackend, backup_id: str) -> bool:
        try:
            return looks_like_rust_manifest(backend.get(manifest_key(backup_id)))
        except NotFoundError:
            return False

    def rust_manifest(self) -> RustManifest:
        """The tool's manifest, read and parsed once."""
        with self._lock:
            if self._parsed is None:
                key = manifest_key(self.backup_id)
                try:
                    data = self.backend.get(key)
                    self._updated_ms = self.backend.head(key).last_modified or 0
                except NotFoundError:
                    raise not_found(self.backend, self.backup_id) from None
                self._parsed = parse_manifest(data, key)
            return self._parsed

    def manifest(self, *, settle: bool = False) -> Manifest:
        parsed = self.rust_manifest()
        return parsed.to_manifest(self._updated_ms or parsed.created_at)

    def coverage(self, topic: str, partition: int) -> PartitionIndex | None:
        return self.rust_manifest().coverage(topic, partition)

    def readable_coverage(self, topic: str, partition: int) -> PartitionIndex:
        return self.coverage(topic, partition) or PartitionIndex(topic, partition, format_version=0)

    def stored_totals(self) -> tuple[int, int]:
        segments = self.rust_manifest().segments()
        return sum(s.record_count for s in segments), sum(s.compressed_size for s in segments)

    def groups(self) -> GroupsSnapshot | None:
        key = f"{self.backup_id}/{GROUPS_NAME}"
        try:
            return parse_groups(self.backend.get(key), key)
        except NotFoundError:
            return None

    def load(self, segment: SegmentEntry, wanted: Wanted | None = None) -> RustSegment:
        """The whole object: the tool's segments are one compressed unit, with no restart points."""
        return RustSegment(
            segment, self.backend.get(segment.key), strip=not self.keep_tool_headers, counted=self._count
        )

    def _count(self, key: str, tool_records: int) -> None:
        with self._lock:  # the highest count a read of the segment gave: re-reads add nothing
            self._tool_records[key] = max(self._tool_records.get(key, 0), tool_records)

    def check_structure(self) -> Structure:
        manifest = self.rust_manifest()
        keys = list(self.backend.iter_keys(f"{self.backup_id}/"))
        return check_layout(manifest, manifest_key(self.backup_id), self.backup_id, keys)

    def check_segment(self, segment: SegmentEntry, *, deep: bool) -> SegmentCheck:
        meta = self.rust_manifest().segment(segment.key)
        if meta is None:
            return SegmentCheck([f"{segment.key}: not a segment the manifest lists"], 0)
        problems = []
        try:
            size = self.backend.size(segment.key)
            if size != segment.size:
                problems.append(
                    f"{segment_name(segment)}: {size} bytes stored, the manifest says {segment.size}"
                )
            if not deep:
                return SegmentCheck(problems, 0)
            stored = self.load(segment)
        except NotFoundError:
            return SegmentCheck(
                [f"{segment.key}: listed in the manifest but not stored (deleted meanwhile?)"], 0
            )
        try:  # deep: also what reading it finds, which says more than a size
            check = stored.verify(meta)
        except FormatError as exc:
            return SegmentCheck([*problems, str(exc)], 0)
        return SegmentCheck(problems + check.problems, check.records)

    def provenance(self, manifest: Manifest, *, peek: bool = False) -> Provenance:
        parsed, notes = self.rust_manifest(), list(LOSSES)
        if peek and parsed.segments():
            smallest = min(parsed.segments(), key=lambda s: s.compressed_size)
            note = tool_header_note(self.backend, smallest.entry(parsed.compression))
            notes += [note] if note else []
        return Provenance(
            writer=f"{FORMAT_NAME} {parsed.version()} (the tool records no version)",
            format=f"{FORMAT_NAME} segment format 1",
            format_version=None,
            status=STATUS,
            notes=tuple(notes),
        )

    def read_notes(self) -> list[str]:
        with self._lock:
            carried = sum(self._tool_records.values())
        if not carried:
            return []
        if self.keep_tool_headers:
            return [
                f"kept the Rust tool's own x-original-* headers of {carried:,} records "
                "(restore.keep_rust_tool_headers)"
            ]
        return [
            f"left out the Rust tool's own x-original-* headers of {carried:,} records; "
            "restore.keep_rust_tool_headers: true keeps them"
        ]

"""A backup id the Rust tool began and libkb continues: its two parts, read as one backup.

The Rust tool's objects stay as it wrote them (``{id}/manifest.json``,
``{id}/topics/.../segment-*.bin*``); libkb never modifies them. libkb's part
is an ordinary libkb backup stored under ``{id}/libkb/`` (through
:class:`~libkb.storage.nested.NestedBackend`), whose manifest's
``continues`` (format version 3) records, per partition, the offset where the
Rust tool's part ended when libkb took over. A reader takes the Rust tool's
segments below that offset and libkb's from it on (docs/format.rst,
"Adopted backups").
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace

from libkb.errors import ConfigError
from libkb.format.models import Continuation, Manifest, PartitionIndex, SegmentEntry, parse_segment_key
from libkb.source.base import (
    BackupSource,
    GroupsSnapshot,
    Provenance,
    SegmentCheck,
    StoredSegment,
    Structure,
    Wanted,
)
from libkb.source.libkb_v1.backup import LibkbV1Source
from libkb.source.rust_v1.backup import RustSource
from libkb.source.rust_v1.layout import check_layout
from libkb.storage import StorageBackend
from libkb.storage.nested import NestedBackend

#: Where libkb's part of an adopted backup lives, under the backup id.
PART_DIR = "libkb"
RUST_WRITER = "kafka-backup (Rust)"


def libkb_part(backend: StorageBackend, backup_id: str) -> NestedBackend:
    """The view in which libkb's part of an adopted backup has its usual ``{id}/...`` keys."""
    return NestedBackend(backend, f"{backup_id}/", f"{backup_id}/{PART_DIR}/")


def is_adopted(backend: StorageBackend, backup_id: str) -> bool:
    return backend.exists(f"{backup_id}/{PART_DIR}/manifest.json")


class AdoptionRequiredError(ConfigError):
    """A backup job names a backup id the Rust tool wrote, without ``backup.adopt_rust_backup``."""


def backup_target(
    backend: StorageBackend, backup_id: str, adopt: bool
) -> tuple[StorageBackend, Continuation | None]:
    """Where a backup run of ``backup_id`` writes, and the Rust tool's part it continues (on adoption).

    A libkb backup (or a new id) is written as usual. A Rust-tool backup is
    refused unless ``adopt``; adopted, libkb writes its own part beside the
    tool's files, starting each partition where the tool's part ends.
    """
    if not RustSource.claims(backend, backup_id):
        return backend, None
    part = libkb_part(backend, backup_id)
    if is_adopted(backend, backup_id):
        return part, None  # its manifest holds the continuation already
    if not adopt:
        raise AdoptionRequiredError(
            f"backup {backup_id!r} was written by {RUST_WRITER}; libkb writes into another tool's backup "
            "only when told to: set backup.adopt_rust_backup: true to continue it in libkb's format "
            "beside the tool's files (which are never changed), or choose another backup_id",
            key="backup.adopt_rust_backup",
        )
    rust = RustSource(backend, backup_id)
    ends: dict[str, dict[int, int]] = {}
    for topic, info in rust.manifest().topics.items():
        for partition in range(info.partitions):
            index = rust.coverage(topic, partition)
            if index is not None and index.end_offset is not None:
                ends.setdefault(topic, {})[partition] = index.end_offset
    return part, Continuation(RUST_WRITER, int(time.time() * 1000), ends)


class AdoptedSource(BackupSource):
    """The Rust tool's part below each partition's adoption point, libkb's part from it on."""

    exact_time_bounds = False  # the Rust part's segment times are not bounds

    def __init__(self, backend: StorageBackend, backup_id: str) -> None:
        super().__init__(backend, backup_id)
        self.rust = RustSource(backend, backup_id)
        self.own = LibkbV1Source(libkb_part(backend, backup_id), backup_id)

    @classmethod
    def claims(cls, backend: StorageBackend, backup_id: str) -> bool:
        return RustSource.claims(backend, backup_id) and is_adopted(backend, backup_id)

    def _continuation(self) -> Continuation:
        continues = self.own.manifest().continues
        if continues is None:  # a libkb backup stored where an adopted part belongs: trust the Rust part only
            return Continuation(RUST_WRITER, 0)
        return continues

    def manifest(self, *, settle: bool = False) -> Manifest:
        own = self.own.manifest(settle=settle)
        rust = self.rust.manifest()
        topics = {**rust.topics, **own.topics}
        return replace(own, topics=topics, created_ms=min(rust.created_ms, own.created_ms))

    def _merge(
        self, topic: str, partition: int, rust: PartitionIndex | None, own: PartitionIndex | None
    ) -> PartitionIndex | None:
        end = self._continuation().end(topic, partition)
        if rust is not None and end is not None:
            rust = replace(
                rust,
                segments=[s for s in rust.segments if s.end_offset <= end],
                missing=[m for m in rust.missing if m.end <= end],
            )
        if own is None or (rust is not None and end is None):
            return rust if own is None else own
        if rust is None:
            return own
        merged = PartitionIndex(topic, partition, rust.segments + own.segments, rust.missing + own.missing)
        merged.format_version = own.format_version
        return merged

    def coverage(self, topic: str, partition: int) -> PartitionIndex | None:
        return self._merge(
            topic, partition, self.rust.coverage(topic, partition), self.own.coverage(topic, partition)
        )

    def readable_coverage(self, topic: str, partition: int) -> PartitionIndex:
        rust = self.rust.readable_coverage(topic, partition)
        own = self.own.readable_coverage(topic, partition)
        merged = self._merge(topic, partition, rust, own)
        return merged if merged is not None else PartitionIndex(topic, partition)

    def stored_totals(self) -> tuple[int, int]:
        records, size = self.own.stored_totals()
        for topic, info in self.rust.manifest().topics.items():
            for partition in range(info.partitions):
                index = self.coverage(topic, partition)
                if index is not None:
                    ours = [s for s in index.segments if _is_libkb(s)]
                    records += index.record_count - sum(s.record_count for s in ours)
                    size += index.size - sum(s.size for s in ours)
        return records, size

    def groups(self) -> GroupsSnapshot | None:
        return self.own.groups() or self.rust.groups()

    def load(self, segment: SegmentEntry, wanted: Wanted | None = None) -> StoredSegment:
        if _is_libkb(segment):
            self.own.keyring = self.keyring
            return self.own.load(segment, wanted)
        self.rust.keep_tool_headers = self.keep_tool_headers
        return self.rust.load(segment)

    def check_keys(self, segments: Iterable[SegmentEntry], *, strict: bool = True) -> None:
        """libkb's part may be encrypted (the Rust tool's never is)."""
        self.own.keyring = self.keyring
        self.own.check_keys([s for s in segments if _is_libkb(s)], strict=strict)

    def check_structure(self) -> Structure:
        own = self.own.check_structure()
        keys = [k for k in self.backend.iter_keys(f"{self.backup_id}/") if not k.startswith(self._part())]
        rust = check_layout(
            self.rust.rust_manifest(), f"{self.backup_id}/manifest.json", self.backup_id, keys
        )
        found = Structure(
            problems=rust.problems + own.problems,
            warnings=rust.warnings + own.warnings,
            partitions=own.partitions,
            segments=own.segments,
        )
        continuation = self._continuation()
        for segment in rust.segments:
            end = continuation.end(*_topic_partition(segment.key))
            if end is not None and segment.end_offset > end:
                found.warnings.append(
                    f"{segment.key}: written by the Rust tool after libkb took the backup over at offset "
                    f"{end}; libkb's part holds these offsets, so it is not read"
                )
            else:
                found.segments.append(segment)
        found.problems += self._seams(continuation)
        return found

    def _part(self) -> str:
        return f"{self.backup_id}/{PART_DIR}/"

    def _seams(self, continuation: Continuation) -> list[str]:
        """Each partition's two parts must meet: libkb's starts where the Rust tool's ended."""
        problems = []
        for topic, parts in sorted(continuation.ends.items()):
            for partition, end in sorted(parts.items()):
                own = self.own.coverage(topic, partition)
                start = own.start_offset if own is not None else None
                if start is not None and start != end:
                    problems.append(
                        f"{topic}[{partition}]: the Rust tool's part ends at offset {end} but libkb's part "
                        f"starts at {start}"
                    )
        return problems

    def check_segment(self, segment: SegmentEntry, *, deep: bool) -> SegmentCheck:
        if _is_libkb(segment):
            return self.own.check_segment(segment, deep=deep)
        return self.rust.check_segment(segment, deep=deep)

    def provenance(self, manifest: Manifest, *, peek: bool = False) -> Provenance:
        rust = self.rust.provenance(self.rust.manifest(), peek=peek)
        own = self.own.provenance(manifest, peek=peek)
        notes = tuple(f"before libkb took over: {note}" for note in rust.notes)
        return Provenance(
            writer=f"{rust.writer}, continued by {own.writer}",
            format=f"{rust.format}, then {own.format}",
            format_version=own.format_version,
            status=own.status,
            notes=notes + own.notes,
        )

    def read_notes(self) -> list[str]:
        return self.rust.read_notes()


def _topic_partition(key: str) -> tuple[str, int]:
    """Of a segment key ``{id}/topics/{topic}/partition={p}/...`` (Kafka topic names have no '/')."""
    parts = key.split("/")
    return parts[2], int(parts[3].partition("=")[2])


def _is_libkb(segment: SegmentEntry) -> bool:
    return parse_segment_key(segment.key) is not None

"""``list``: every backup at a location, one line each, from one listing and no segment read."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from libkb.catalog.times import iso_ms
from libkb.errors import FormatError
from libkb.source import BackupSource, scan_location
from libkb.source.parallel import parallel_map
from libkb.storage import StorageBackend, StorageError


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """One line of ``kafka-backup list``; ``error`` is set when the manifest is unreadable."""

    backup_id: str
    created_ms: int | None
    updated_ms: int | None
    status: str
    topics: list[str]
    partitions: int
    records: int
    stored_bytes: int
    format_version: int | None  # libkb's; None for another tool's format
    error: str | None = None
    #: Who wrote the backup: "libkb 0.1.0", "kafka-backup (Rust) 0.12 or later ...".
    written_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["created"] = iso_ms(self.created_ms)
        body["updated"] = iso_ms(self.updated_ms)
        return body


def list_backups(backend: StorageBackend) -> list[BackupSummary]:
    """Every backup at the location, sorted by id (one listing, no segment reads)."""
    return parallel_map(_summary, scan_location(backend))


def _summary(source: BackupSource) -> BackupSummary:
    try:
        manifest = source.manifest(settle=True)
    except (FormatError, StorageError) as exc:
        # Listed as unreadable: one bad backup must not hide the others.
        return BackupSummary(source.backup_id, None, None, "unreadable", [], 0, 0, 0, None, str(exc))
    records, stored = source.stored_totals()
    origin = source.provenance(manifest)
    return BackupSummary(
        backup_id=source.backup_id,
        created_ms=manifest.created_ms,
        updated_ms=manifest.updated_ms,
        status=origin.status or manifest.status,
        topics=sorted(manifest.topics),
        partitions=sum(t.partitions for t in manifest.topics.values()),
        records=records,
        stored_bytes=stored,
        format_version=origin.format_version,
        written_by=origin.writer,
    )

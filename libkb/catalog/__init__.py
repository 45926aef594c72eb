"""Read stored backups for people: list them, describe one, validate one. No printing, no writes.

Everything is read through the segment source (:mod:`libkb.source`), so a
backup in any format it reads is listed, described and validated alike:

- :func:`list_backups` lists the location once and reads each manifest and
  partition index; segments are never opened (:mod:`.listing`);
- :func:`describe_backup` reads one manifest, its partitions' coverage and the
  consumer-group snapshot (:mod:`.description`);
- :func:`validate_backup` checks structure from the listing, the indexes and
  one ``head`` per segment; ``deep`` also downloads every segment and decodes
  every record (:mod:`.validation`).
"""

from libkb.catalog.description import BackupDescription, GroupSnapshot, PartitionDescription, describe_backup
from libkb.catalog.listing import BackupSummary, list_backups
from libkb.catalog.times import iso_ms
from libkb.catalog.validation import ValidationReport, validate_backup
from libkb.format.models import Manifest
from libkb.source import BackupNotFoundError, open_backup
from libkb.storage import StorageBackend


def read_manifest(backend: StorageBackend, backup_id: str) -> Manifest:
    """The backup's manifest; an unknown id raises :class:`BackupNotFoundError` listing the ids."""
    return open_backup(backend, backup_id).manifest()


__all__ = [
    "BackupDescription",
    "BackupNotFoundError",
    "BackupSummary",
    "GroupSnapshot",
    "PartitionDescription",
    "ValidationReport",
    "describe_backup",
    "iso_ms",
    "list_backups",
    "read_manifest",
    "validate_backup",
]

"""Read stored backups for people: list them, describe one, validate one. No printing, no writes.

Everything is read through the segment source (:mod:`libkb.source`), so a
backup in any format it reads is listed, described and validated alike:

- :func:`list_backups` lists the location once and reads each manifest and
  partition index; segments are never opened (:mod:`.listing`);
- :func:`describe_backup` reads one manifest, its partitions' coverage and the
  consumer-group snapshot (:mod:`.description`);
- :func:`validate_backup` checks structure from the listing, the indexes and
  one ``head`` per segment; ``deep`` also downloads every segment and decodes
  every record (:mod:`.validation`);
- :func:`backup_status` says whether a run is writing the backup (its lease)
  and how the last run ended (:mod:`.status`).
"""

from libkb.catalog.description import BackupDescription, GroupSnapshot, PartitionDescription, describe_backup
from libkb.catalog.listing import BackupSummary, list_backups
from libkb.catalog.status import BackupStatus, LeaseStatus, backup_status
from libkb.catalog.times import iso_ms
from libkb.catalog.validation import ValidationReport, validate_backup
from libkb.source import BackupNotFoundError

__all__ = [
    "BackupDescription",
    "BackupNotFoundError",
    "BackupStatus",
    "BackupSummary",
    "GroupSnapshot",
    "LeaseStatus",
    "PartitionDescription",
    "ValidationReport",
    "backup_status",
    "describe_backup",
    "iso_ms",
    "list_backups",
    "validate_backup",
]

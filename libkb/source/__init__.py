"""The segment source: how restore, validate, describe and list read a stored backup, whatever its format.

:mod:`.base` is the interface, :mod:`.locate` opens a backup through the
source of its format, :mod:`.libkb_v1` reads libkb's own format.
"""

from libkb.source.base import (
    BackupNotFoundError,
    BackupSource,
    GroupsSnapshot,
    Provenance,
    SegmentCheck,
    StoredSegment,
    Structure,
    Wanted,
)
from libkb.source.locate import open_backup, resolve_backup, scan_location

__all__ = [
    "BackupNotFoundError",
    "BackupSource",
    "GroupsSnapshot",
    "Provenance",
    "SegmentCheck",
    "StoredSegment",
    "Structure",
    "Wanted",
    "open_backup",
    "resolve_backup",
    "scan_location",
]

"""``validate``: a backup's structure, then each segment; ``deep`` reads every byte and record.

The source checks the structure of its format's objects and says which
segments to check; each is checked on a small pool (fewer threads when deep:
each holds a whole segment in memory). Each problem names the object key and
what is wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from libkb.errors import FormatError
from libkb.keys import Keyring
from libkb.source import open_backup
from libkb.source.parallel import READ_WORKERS, parallel_map
from libkb.storage import StorageBackend

_DEEP_WORKERS = 2


@dataclass(slots=True)
class ValidationReport:
    """``problems`` make a backup invalid; ``warnings`` are facts worth knowing (data lost to retention);
    ``notes`` explain what is no fault at all (offsets pruned on purpose)."""

    backup_id: str
    deep: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked_partitions: int = 0
    checked_segments: int = 0
    checked_records: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def validate_backup(
    backend: StorageBackend, backup_id: str, deep: bool = False, keyring: Keyring | None = None
) -> ValidationReport:
    """Check a backup's structure; ``deep`` also verifies every segment byte and record.

    Only ``deep`` reads records, so only it needs ``keyring`` for an encrypted backup: a missing or
    wrong key is an :class:`~libkb.errors.EncryptionKeyError` naming the key id, before any segment is read.
    """
    source = open_backup(backend, backup_id)
    if keyring is not None:
        source.keyring = keyring
    report = ValidationReport(backup_id, deep)
    structure = source.check_structure()
    if deep:
        source.check_keys(structure.segments, strict=False)  # a key missing or wrong raises
    report.problems += structure.problems
    report.warnings += structure.warnings
    report.notes += structure.notes
    report.checked_partitions = structure.partitions
    workers = _DEEP_WORKERS if deep else READ_WORKERS
    for check in parallel_map(
        lambda s: source.check_segment(s, deep=deep), structure.segments, workers=workers
    ):
        report.problems += check.problems
        report.checked_records += check.records
    report.checked_segments = len(structure.segments)
    try:
        source.groups()
    except FormatError as exc:
        report.problems.append(str(exc))
    return report

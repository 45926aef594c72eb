"""What a restore run returns, or raises when it cannot start or finish."""

from __future__ import annotations

from dataclasses import dataclass, field

from libkb.errors import LibkbError
from libkb.restore.groups import TranslatedOffset, UntranslatedOffset
from libkb.restore.mapping import OffsetMapping
from libkb.restore.plan import RestorePlan


class RestoreError(LibkbError):
    """The restore cannot start or could not finish; what was written is resumable."""


@dataclass(slots=True)
class RestoreResult:
    backup_id: str
    restore_id: str
    status: str  # complete | interrupted | planned (dry run)
    records: int = 0
    bytes: int = 0
    partitions: int = 0
    skipped_records: int = 0  # already restored by an earlier, interrupted run
    duration_secs: float = 0.0
    plan: RestorePlan | None = None
    mapping: OffsetMapping | None = None
    group_offsets: list[TranslatedOffset] = field(default_factory=list)
    #: Committed offsets on topics restored by key, which have no exact target offset.
    untranslated: list[UntranslatedOffset] = field(default_factory=list)
    groups_reset: list[str] = field(default_factory=list)
    created_topics: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("complete", "planned")

"""What a restore run returns, or raises when it cannot start or finish."""

from __future__ import annotations

from dataclasses import dataclass, field

from libkb.errors import LibkbError
from libkb.restore.groups import TranslatedOffset, UntranslatedOffset
from libkb.restore.mapping import OffsetMapping
from libkb.restore.plan import RestorePlan


class RestoreError(LibkbError):
    """The restore cannot start or could not finish; what was written is resumable."""


@dataclass(frozen=True, slots=True)
class PurgedPartition:
    """Target offsets ``[low, high)`` of a partition deleted (or, planned, to delete)."""

    topic: str
    partition: int
    low: int
    high: int

    @property
    def records(self) -> int:
        """Offsets deleted: the records, unless compaction or transactions left gaps."""
        return self.high - self.low


@dataclass(slots=True)
class PurgeReport:
    """What ``purge_topics`` did (or, in a dry run, would do)."""

    partitions: list[PurgedPartition] = field(default_factory=list)
    #: Target partitions this restore had begun writing before (earlier runs): never purged.
    kept: list[tuple[str, int]] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    def summary(self) -> str:
        """One line: how much, from how many partitions of which topics."""
        topics = sorted({p.topic for p in self.partitions})
        text = f"{self.records:,} records from {len(self.partitions)} partitions"
        return text + (f" of {', '.join(topics)}" if topics else "")


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
    #: ``purge_topics``: what was deleted first (planned, in a dry run).
    purge: PurgeReport | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("complete", "planned")

"""Where each partition's backup starts and stops. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from libkb.errors import LibkbError
from libkb.format.models import MissingRange
from libkb.kafka.admin import PartitionOffsets

TP = tuple[str, int]


class PlanError(LibkbError):
    """Stored state and the cluster disagree in a way a backup must not paper over."""


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    topic: str
    partition: int
    start: int  # first offset to read
    end: int | None  # exclusive target (snapshot), None in continuous mode
    missing: MissingRange | None = None  # offsets lost to retention since the last run
    #: Why it starts there: ``stored`` (where the backup's coverage ends), ``retention`` (the
    #: stored end was deleted since), ``start_offsets``, ``earliest`` or ``latest``.
    origin: str = ""

    @property
    def done(self) -> bool:
        return self.end is not None and self.start >= self.end


def plan_partitions(
    stored_ends: Mapping[TP, int | None],
    offsets: Mapping[TP, PartitionOffsets],
    *,
    start_offset: str,
    snapshot: bool,
    start_offsets: Mapping[str, Mapping[int, int]] | None = None,
) -> list[PartitionPlan]:
    """Continue each partition where its stored coverage ends.

    A partition never backed up starts at its low watermark (``earliest``) or
    its end (``latest``), or at its offset in ``start_offsets`` (clamped to
    what the partition holds). If retention deleted offsets after the stored end,
    the gap is recorded as a missing range rather than silently skipped. A
    stored end past the log's end means the topic was deleted and recreated:
    refuse, since appending would mix two different logs.
    """
    plans = []
    for tp in sorted(offsets):
        topic, partition = tp
        low, high = offsets[tp].low, offsets[tp].high
        stored = stored_ends.get(tp)
        missing = None
        origin = "stored"
        if stored is None:
            chosen = (start_offsets or {}).get(topic, {}).get(partition)
            if chosen is not None:
                start, origin = min(max(chosen, low), high), "start_offsets"
            else:
                start = low if start_offset == "earliest" else high
                origin = "earliest" if start_offset == "earliest" else "latest"
        elif stored > high:
            raise PlanError(
                f"{topic}[{partition}]: the backup already holds offsets up to {stored} but the "
                f"partition ends at {high}; the topic was probably deleted and recreated. "
                "Use a new backup_id."
            )
        elif stored < low:
            missing = MissingRange(stored, low, "retention")
            start, origin = low, "retention"
        else:
            start = stored
        plans.append(PartitionPlan(topic, partition, start, high if snapshot else None, missing, origin))
    return plans

"""Which segments a retention policy prunes. Pure: partition indexes and a policy in, cuts out.

Only an oldest-first prefix of each partition's segments is ever chosen: the
pruned offsets stay one range at the front, the tiling stays whole, and the
resume position (the index's end) never moves. A partition's segments are
aged by the newest timestamp seen up to them (a running maximum), so that
out-of-order timestamps cannot make a prefix skip a segment:

- ``cutoff_ms``: the longest prefix whose records are all older. A segment
  of records without timestamps (-1) stops it: its age is unknown.
- ``max_total_bytes``: then, over all partitions, the oldest next segment
  goes, one at a time, until the backup's segments fit the cap.
- ``keep_segments``: the newest so many segments of each partition are never
  chosen; when they alone exceed the cap, the plan says the cap is not met.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from libkb.format.models import PartitionIndex, SegmentEntry
from libkb.retention.policy import RetentionPolicy

TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PartitionCut:
    """The oldest segments of one partition that a policy prunes, and what stays."""

    topic: str
    partition: int
    #: The first offset pruned (the partition's retained start when planned).
    start: int
    segments: tuple[SegmentEntry, ...]
    kept_segments: int
    kept_bytes: int
    #: The oldest record timestamp left once the cut is made (-1: none known).
    oldest_kept_ms: int

    @property
    def end(self) -> int:
        """Where what is kept starts (exclusive end of the pruned offsets)."""
        return self.segments[-1].end_offset

    @property
    def records(self) -> int:
        return sum(s.record_count for s in self.segments)

    @property
    def bytes(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def min_timestamp(self) -> int:
        return min(_stamps(self.segments, "min_timestamp"), default=-1)

    @property
    def max_timestamp(self) -> int:
        return max(_stamps(self.segments, "max_timestamp"), default=-1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "start_offset": self.start,
            "end_offset": self.end,
            "min_timestamp": self.min_timestamp,
            "max_timestamp": self.max_timestamp,
            "segments": len(self.segments),
            "records": self.records,
            "bytes": self.bytes,
            "kept_segments": self.kept_segments,
            "kept_bytes": self.kept_bytes,
            "oldest_kept_timestamp": self.oldest_kept_ms,
        }


@dataclass(slots=True)
class RetentionPlan:
    """The cuts of every partition that loses segments, and the backup's size before and after."""

    policy: RetentionPolicy
    cuts: list[PartitionCut] = field(default_factory=list)
    stored_bytes: int = 0
    #: False when the segments ``keep_segments`` protects exceed ``max_total_bytes`` alone.
    cap_met: bool = True

    @property
    def segments(self) -> int:
        return sum(len(c.segments) for c in self.cuts)

    @property
    def records(self) -> int:
        return sum(c.records for c in self.cuts)

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.cuts)


def plan_retention(indexes: Mapping[TP, PartitionIndex], policy: RetentionPolicy) -> RetentionPlan:
    """The cuts ``policy`` makes in these partitions (partitions that lose nothing are left out)."""
    ages = {tp: _ages(index.segments) for tp, index in indexes.items()}
    limits = {tp: max(0, len(index.segments) - policy.keep_segments) for tp, index in indexes.items()}
    counts = {tp: _older(ages[tp][: limits[tp]], indexes[tp].segments, policy.cutoff_ms) for tp in indexes}
    plan = RetentionPlan(policy, stored_bytes=sum(index.size for index in indexes.values()))
    if policy.max_total_bytes is not None:
        plan.cap_met = _cap(indexes, ages, limits, counts, policy.max_total_bytes, plan.stored_bytes)
    for tp in sorted(indexes):
        if counts[tp]:
            plan.cuts.append(_cut(indexes[tp], counts[tp]))
    return plan


def _ages(segments: Sequence[SegmentEntry]) -> list[int]:
    """Each segment's age: the newest timestamp of it and every segment before it (-1: none yet)."""
    ages, newest = [], -1
    for segment in segments:
        newest = max(newest, segment.max_timestamp)
        ages.append(newest)
    return ages


def _older(ages: list[int], segments: Sequence[SegmentEntry], cutoff: int | None) -> int:
    """How many leading segments are older than ``cutoff``: all of their records, that is."""
    if cutoff is None:
        return 0
    count = 0
    for age, segment in zip(ages, segments, strict=False):
        if age >= cutoff or (segment.record_count and segment.max_timestamp < 0):
            break
        count += 1
    return count


def _cap(
    indexes: Mapping[TP, PartitionIndex],
    ages: Mapping[TP, list[int]],
    limits: Mapping[TP, int],
    counts: dict[TP, int],
    cap: int,
    stored: int,
) -> bool:
    """Add the oldest next segments, across partitions, to ``counts`` until the rest fits ``cap``."""
    total = stored - sum(s.size for tp, n in counts.items() for s in indexes[tp].segments[:n])
    heap = [(ages[tp][n], tp) for tp, n in counts.items() if n < limits[tp]]
    heapq.heapify(heap)
    while total > cap and heap:
        _, tp = heapq.heappop(heap)
        total -= indexes[tp].segments[counts[tp]].size
        counts[tp] += 1
        if counts[tp] < limits[tp]:
            heapq.heappush(heap, (ages[tp][counts[tp]], tp))
    return total <= cap


def _cut(index: PartitionIndex, count: int) -> PartitionCut:
    gone, kept = index.segments[:count], index.segments[count:]
    start = index.retained_start
    assert start is not None
    return PartitionCut(
        index.topic,
        index.partition,
        start,
        tuple(gone),
        len(kept),
        sum(s.size for s in kept),
        min(_stamps(kept, "min_timestamp"), default=-1),
    )


def _stamps(segments: Sequence[SegmentEntry], which: str) -> list[int]:
    return [t for s in segments if s.record_count and (t := getattr(s, which)) >= 0]

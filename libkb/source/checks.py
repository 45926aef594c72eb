"""Checks every format's source shares: coverage, and records against what a segment states.

A backup states things about each segment twice or three times (libkb: the
index entry, the segment's footer; another format: its manifest, the
segment's header), and the records are the truth. These functions compare
them and word each disagreement the same way whatever the format.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from libkb.format.models import PartitionIndex, PrunedRange
from libkb.format.segment import Record

#: The statistics a segment's records give, in the order :meth:`RecordScan.stats` returns them.
STAT_NAMES = ("records", "first offset", "last offset", "min timestamp", "max timestamp")


@dataclass(slots=True)
class RecordScan:
    """What a segment's records give; -1 for offsets and timestamps when there are none."""

    count: int = 0
    first: int = -1
    last: int = -1
    min_timestamp: int = -1
    max_timestamp: int = -1
    problems: list[str] = field(default_factory=list)

    def stats(self) -> tuple[int, int, int, int, int]:
        return (self.count, self.first, self.last, self.min_timestamp, self.max_timestamp)


def scan_records(key: str, batches: Iterable[list[Record]], base: int, end: int) -> RecordScan:
    """Walk every record: offsets must increase and lie in ``[base, end)``; gather the stats."""
    scan = RecordScan()
    problems = scan.problems
    count, last, low_ts, high_ts, first = 0, base - 1, None, None, None
    for batch in batches:
        for offset, timestamp, *_ in batch:
            if offset <= last:
                problems.append(f"{key}: offset {offset} follows {last} (offsets must increase)")
            if not base <= offset < end:
                problems.append(f"{key}: offset {offset} lies outside the segment's range [{base}, {end})")
            first = offset if first is None else first
            last = offset
            low_ts = timestamp if low_ts is None else min(low_ts, timestamp)
            high_ts = timestamp if high_ts is None else max(high_ts, timestamp)
            count += 1
    if count:
        assert first is not None and low_ts is not None and high_ts is not None
        scan.count, scan.first, scan.last = count, first, last
        scan.min_timestamp, scan.max_timestamp = low_ts, high_ts
    return scan


def disagreements(
    key: str, names: Sequence[str], stated: tuple[str, Sequence[int]], found: tuple[str, Sequence[int]]
) -> list[str]:
    """A problem for each value two accounts of a segment differ on: ``(who says, values)`` each."""
    (says, said), (gives, got) = stated, found
    return [
        f"{key}: {says} {name} {a}, {gives} {b}"
        for name, a, b in zip(names, said, got, strict=True)
        if a != b
    ]


def coverage_findings(where: str, index: PartitionIndex) -> tuple[list[str], list[str]]:
    """(problems, warnings) of a partition's coverage: holes and overlaps; ranges lost before the backup."""
    problems = [f"{where}: {text}" for text in index.coverage_problems()]
    warnings = [
        f"{where}: offsets [{gap.start}, {gap.end}) of {index.topic}/{index.partition} "
        f"are not in the backup ({gap.reason})"
        for gap in index.missing
    ]
    return problems, warnings


def pruned_notes(where: str, index: PartitionIndex) -> list[str]:
    """One line per pruned range: what retention deleted on purpose, when and why (never a problem)."""
    return [f"{where}: {describe_pruned(index.topic, index.partition, p)}" for p in index.pruned]


def describe_pruned(topic: str, partition: int, pruned: PrunedRange) -> str:
    """``offsets [a, b) of t/p were pruned on ... (why): n records from ... to ...``."""
    held = f"{pruned.records} records in {pruned.segments} segments"
    if pruned.min_timestamp >= 0:
        held += f", timestamps {_iso(pruned.min_timestamp)} to {_iso(pruned.max_timestamp)}"
    return (
        f"offsets [{pruned.start}, {pruned.end}) of {topic}/{partition} were pruned on "
        f"{_iso(pruned.pruned_ms)} ({pruned.reason}): {held}"
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

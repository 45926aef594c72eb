"""The original tool's validation checks, on the target cluster's offsets: counts, ranges, group offsets.

Each check returns a :class:`CheckResult` with the original tool's names
(``MessageCountCheck``, ``OffsetRangeCheck``, ``ConsumerGroupOffsetCheck``)
and outcomes. With a restore's offset mapping (:attr:`Subject.exact`) they
are exact: a partition's records are counted in the target offsets the
restore wrote them to, group offsets are compared with the backup's
snapshot translated through the mapping. Without one, partitions are
compared by name as the original tool does (high minus low watermark), and
what a live cluster changes by itself (retention, consumers moving on) is a
warning rather than a failure.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer

from libkb.config.validation import ValidationConfig
from libkb.kafka.admin import KafkaAdmin, PartitionOffsets
from libkb.restore.groups import translate_groups
from libkb.restore.validation.subject import Expected, Subject

PASSED, FAILED, SKIPPED, WARNING = "PASSED", "FAILED", "SKIPPED", "WARNING"
TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class CheckResult:
    check_name: str
    outcome: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0


@dataclass(slots=True)
class Context:
    """What every check reads: the subject, the target cluster, the settings; watermarks read once."""

    subject: Subject
    admin: KafkaAdmin
    config: ValidationConfig
    report_id: str
    open_consumer: Callable[[], Consumer]
    _ends: dict[TP, PartitionOffsets] | None = None
    _absent: set[TP] = field(default_factory=set)

    def ends(self) -> dict[TP, PartitionOffsets]:
        """Low and high watermarks of every target partition that exists (see :meth:`absent`)."""
        if self._ends is None:
            metadata = self.admin.metadata()
            existing = {
                (name, p)
                for name, topic in metadata.topics.items()
                if topic.error is None
                for p in topic.partitions
            }
            wanted = {e.target for e in self.subject.partitions}
            self._absent = wanted - existing
            self._ends = self.admin.offsets(sorted(wanted & existing), read_committed=False)
        return self._ends

    def absent(self, target: TP) -> bool:
        self.ends()
        return target in self._absent


def held(e: Expected, o: PartitionOffsets) -> int:
    """Records of ``e`` the target still holds: each of its offsets past the target's ends loses one.

    Exact (a restore wrote them contiguously) this is the overlap of the two
    ranges. By name, offsets without a record (compaction, transaction
    markers) are inside the range too, so high minus low (the original tool's
    count) would miscount; this counts what the backup has at the offsets
    the cluster keeps.
    """
    overlap = max(0, min(o.high, e.end) - max(o.low, e.start))
    return max(0, e.records - (e.end - e.start - overlap))


def message_count(ctx: Context) -> CheckResult:
    opts = ctx.config.checks.message_count
    parts = [e for e in ctx.subject.partitions if not opts.topics or e.source_topic in opts.topics]
    if opts.mode == "sample" and parts:
        count = max(1, math.ceil(len(parts) * opts.sample_percentage / 100))
        parts = sorted(random.Random(ctx.report_id).sample(parts, count), key=lambda e: e.target)
    ends, exact = ctx.ends(), ctx.subject.exact
    expected_total = restored_total = 0
    discrepancies: list[dict[str, Any]] = []
    summary = []
    for e in parts:
        expected_total += e.records
        row: dict[str, Any] = {
            "topic": e.target_topic,
            "partition": e.target_partition,
            "expected": e.records,
        }
        if ctx.absent(e.target):
            discrepancies.append({**row, "restored": 0, "error": "not found on the target cluster"})
            continue
        o = ends[e.target]
        restored = held(e, o)
        restored_total += restored
        summary.append(f"{e.target_topic}:{e.target_partition}:{o.low}:{o.high}\n")
        if abs(e.records - restored) > opts.fail_threshold:
            discrepancies.append({**row, "restored": restored, "difference": abs(e.records - restored)})
    topics = len({e.source_topic for e in parts})
    return CheckResult(
        "MessageCountCheck",
        FAILED if discrepancies else PASSED,
        f"{topics} topics, {len(parts)} partitions; {expected_total} messages expected, {restored_total} "
        f"restored; {len(discrepancies)} discrepancies",
        {
            "check": "MessageCountCheck",
            "mode": opts.mode,
            "exact": exact,
            "topics_verified": topics,
            "partitions_verified": len(parts),
            "total_messages_expected": expected_total,
            "total_messages_restored": restored_total,
            "discrepancies": discrepancies,
            "sha256_offset_summary": hashlib.sha256("".join(summary).encode()).hexdigest(),
        },
    )


def offset_range(ctx: Context) -> CheckResult:
    opts = ctx.config.checks.offset_range
    ends, exact = ctx.ends(), ctx.subject.exact
    failures: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for e in ctx.subject.partitions:
        where = {"topic": e.target_topic, "partition": e.target_partition}
        if ctx.absent(e.target):
            failures.append({**where, "issue": "topic_or_partition_not_found"})
            continue
        o = ends[e.target]
        if opts.verify_high_watermark and o.high < e.end:
            failures.append(
                {**where, "issue": "high_watermark_below", "expected_min_hwm": e.end, "actual_hwm": o.high}
            )
        if opts.verify_low_watermark and o.low > e.start:
            # Exact: restored records are gone. By name: a live cluster's retention moved on.
            issue = {
                **where,
                "issue": "low_watermark_above",
                "expected_max_lwm": e.start,
                "actual_lwm": o.low,
            }
            (failures if exact else warnings).append(issue)
    checked = len(ctx.subject.partitions)
    outcome = FAILED if failures else WARNING if warnings else PASSED
    return CheckResult(
        "OffsetRangeCheck",
        outcome,
        f"{checked} partitions checked; {checked - len(failures)} passed; "
        f"{len(failures) + len(warnings)} issues",
        {
            "check": "OffsetRangeCheck",
            "exact": exact,
            "partitions_checked": checked,
            "partitions_passed": checked - len(failures),
            "issues": failures + warnings,
        },
    )


def consumer_groups(ctx: Context) -> CheckResult:
    opts = ctx.config.checks.consumer_group_offsets
    subject = ctx.subject
    if subject.groups is None:
        return CheckResult("ConsumerGroupOffsetCheck", SKIPPED, "the backup has no consumer-group snapshot")
    wanted = None if opts.verify_all_groups or not opts.groups else set(opts.groups)
    expected = _expected_group_offsets(subject, wanted)
    if not expected:
        return CheckResult(
            "ConsumerGroupOffsetCheck",
            SKIPPED,
            "no group of the backup's snapshot has offsets on the restored partitions",
            {"check": "ConsumerGroupOffsetCheck", "groups_checked": 0, "reason": "no_groups_found"},
        )
    committed: dict[tuple[str, str, int], int] = {}
    for g in ctx.admin.group_offsets({topic for _, topic, _ in expected}):
        for topic, parts in g.offsets.items():
            for partition, offset in parts.items():
                committed[(g.group, topic, partition)] = offset
    issues = [
        {"group": grp, "topic": t, "partition": p, "expected": want, "committed": committed.get((grp, t, p))}
        for (grp, t, p), want in sorted(expected.items())
        if committed.get((grp, t, p)) != want
    ]
    groups = len({grp for grp, _, _ in expected})
    outcome = PASSED if not issues else FAILED if subject.exact else WARNING
    how = (
        "translated through the restore's offset mapping" if subject.exact else "as in the backup's snapshot"
    )
    return CheckResult(
        "ConsumerGroupOffsetCheck",
        outcome,
        f"{groups} consumer groups verified; {len(expected)} offsets checked ({how}); {len(issues)} issues",
        {
            "check": "ConsumerGroupOffsetCheck",
            "groups_checked": groups,
            "total_offsets": len(expected),
            "issues": issues,
        },
    )


def _expected_group_offsets(subject: Subject, wanted: set[str] | None) -> dict[tuple[str, str, int], int]:
    """(group, target topic, target partition) -> the offset it must have committed."""
    assert subject.groups is not None
    if subject.mapping is not None:
        return {
            (o.group, o.target_topic, o.target_partition): o.target_offset
            for o in translate_groups(subject.groups, subject.mapping, wanted)
        }
    restored = {e.target for e in subject.partitions}
    return {
        (g.group, topic, partition): offset
        for g in subject.groups
        if wanted is None or g.group in wanted
        for topic, parts in g.offsets.items()
        for partition, offset in parts.items()
        if (topic, partition) in restored
    }

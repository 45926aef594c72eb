"""``RecordContentCheck`` (libkb's): read the restored records back and compare each with the backup's.

The restore's offset mapping says which target offset holds each restored
source offset; the records are read back with :func:`~libkb.restore.verify.read_range`
and compared with :func:`~libkb.restore.verify.differs`, as a resumed restore
checks what an earlier run wrote. Off by default: it reads the whole restore
from storage and from the cluster (``max_records_per_partition`` bounds it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

from libkb.format.segment import Record
from libkb.restore.mapping import PartitionMapping
from libkb.restore.validation.checks import FAILED, PASSED, SKIPPED, CheckResult, Context
from libkb.restore.validation.subject import Expected
from libkb.restore.verify import differs, read_range
from libkb.source import BackupSource, Wanted

NAME = "RecordContentCheck"
_MISMATCHES_PER_PARTITION = 10


def record_content(ctx: Context) -> CheckResult:
    if not ctx.subject.exact:
        return CheckResult(
            NAME, SKIPPED, "needs a stored restore of the backup: its mapping locates the records"
        )
    limit = ctx.config.checks.record_content.max_records_per_partition
    compared, mismatches = 0, []
    ends = ctx.ends()
    with closing(ctx.open_consumer()) as consumer:
        for e in ctx.subject.partitions:
            if e.mapping is None or e.records == 0 or ctx.absent(e.target):
                continue  # an absent partition is OffsetRangeCheck's finding
            o = ends[e.target]
            start, end = max(e.start, o.low), min(e.end, o.high)
            if limit:
                end = min(end, start + limit)
            if start >= end:
                continue
            found, count = _compare(
                ctx.subject.source, e, e.mapping, read_range(consumer, *e.target, start, end), start
            )
            compared += count
            mismatches += found
    return CheckResult(
        NAME,
        FAILED if mismatches else PASSED,
        f"{compared} records read back and compared with the backup; {len(mismatches)} mismatches",
        {"check": NAME, "records_compared": compared, "mismatches": mismatches},
    )


def _compare(
    source: BackupSource, e: Expected, pm: PartitionMapping, messages: Iterator[Any], first: int
) -> tuple[list[dict[str, Any]], int]:
    expected = restored_records(source, pm, first)
    found: list[dict[str, Any]] = []
    compared = 0
    for msg in messages:
        offset = msg.offset()
        where = {"topic": e.target_topic, "partition": e.target_partition, "offset": offset}
        item = next(expected, None)
        if item is None:
            found.append({**where, "issue": "a record past the restored ones"})
            break
        target, record = item
        if target != offset:
            found.append({**where, "issue": f"target offset {target} is missing"})
            break
        # The restore may have added the original-offset headers (include_original_offset_header).
        what = differs(msg, record, False, pm.source_partition) and differs(
            msg, record, True, pm.source_partition
        )
        compared += 1
        if what:
            found.append({**where, "source_offset": record[0], "issue": what})
            if len(found) >= _MISMATCHES_PER_PARTITION:
                break
    return found, compared


def restored_records(source: BackupSource, pm: PartitionMapping, first: int) -> Iterator[tuple[int, Record]]:
    """(target offset, record) of every record the mapping says was restored, from target offset ``first``."""
    if not pm.runs:
        return
    low, high = pm.runs[0][0], pm.runs[-1][0] + pm.runs[-1][2]
    i = 0
    for entry in source.readable_coverage(pm.source_topic, pm.source_partition).segments:
        if entry.end_offset <= low or entry.base_offset >= high or entry.record_count == 0:
            continue
        for batch in source.load(entry, Wanted(low, high)).batches(low, high):
            for record in batch:
                offset = record[0]
                while i < len(pm.runs) and offset >= pm.runs[i][0] + pm.runs[i][2]:
                    i += 1
                if i == len(pm.runs):
                    return
                s, t, _ = pm.runs[i]
                if offset >= s and t + offset - s >= first:
                    yield t + offset - s, record

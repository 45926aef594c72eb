"""Before a re-run trusts what an earlier run wrote past a checkpoint, it reads it back and compares.

A failed delivery can leave a gap: librdkafka's idempotent producer gives up
on a record (``message.timeout.ms``) and still writes the ones after it
(INTRODUCTION.md, "Message timeout considerations"). The target then holds
more than a prefix of the plan, and skipping ``high watermark - start``
records would lose the failed one and write others twice. So a re-run reads
each target partition from its ``verified_end`` (:mod:`.checkpoint`) to its
high watermark and compares every record with the one planned at that
position. All equal: the target holds a prefix, and the resume skips exactly
what it holds. Otherwise the partition cannot be continued in place, and the
restore refuses, naming the partition and the offset, before it writes
anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, KafkaError, Message, TopicPartition

from libkb.format.segment import Record
from libkb.kafka.admin import PartitionOffsets
from libkb.restore import spread
from libkb.restore.partition import as_produced
from libkb.restore.plan import PartitionTask, RestorePlan, SpreadTask, Target
from libkb.restore.result import RestoreError
from libkb.restore.state import RestoreState
from libkb.source import BackupSource

TP = tuple[str, int]

#: A read-back that gets no record for this long while records are due fails.
READ_TIMEOUT_SECS = 60.0


@dataclass(frozen=True, slots=True)
class Unverified:
    """Target offsets ``[start, end)`` of a target partition; restore ``restore_id`` began it at ``base``."""

    target: Target
    restore_id: str
    base: int  # target_start
    start: int  # verified_end
    end: int  # the high watermark now


def unverified(
    state: RestoreState, plan: RestorePlan, ends: Mapping[TP, PartitionOffsets]
) -> list[Unverified]:
    """The partitions whose target holds records past the offset the stored state vouches for."""
    found = []
    for target in plan.targets():
        part = state.partitions.get(target.key)
        high = ends[(target.topic, target.partition)].high
        if part is not None and part.verified_end is not None and high > part.verified_end:
            found.append(Unverified(target, state.restore_id, part.target_start, part.verified_end, high))
    return found


def check_unverified(
    checks: list[Unverified],
    source: BackupSource,
    open_consumer: Callable[[], Consumer],
    *,
    add_headers: bool,
) -> None:
    """Compare each range with the plan; :class:`RestoreError` at the first record that differs."""
    for check in checks:
        with closing(open_consumer()) as consumer:
            _compare(check, source, consumer, add_headers)


def _compare(check: Unverified, source: BackupSource, consumer: Consumer, add_headers: bool) -> None:
    planned = _planned(source, check.target, check.start - check.base)
    for msg in read_back(consumer, check):
        offset = msg.offset()
        assert offset is not None
        item = next(planned, None)
        if item is None:
            raise _refusal(check, offset, "holds a record past the last planned one")
        position, record, source_partition = item
        if check.base + position != offset:
            raise _refusal(check, check.base + position, f"is missing (the next record is at {offset})")
        what = differs(msg, record, add_headers, source_partition)
        if what:
            raise _refusal(
                check, offset, f"holds another record than planned there (source offset {record[0]}: {what})"
            )


def _planned(source: BackupSource, target: Target, first: int) -> Iterator[tuple[int, Record, int]]:
    """A target partition's planned records from position ``first``, with positions and source partitions."""
    task = target.task
    if isinstance(task, SpreadTask):
        return spread.planned_records(source, task, target.partition, first)
    return ((position, r, task.source_partition) for position, r in planned_records(source, task, first))


def planned_records(source: BackupSource, task: PartitionTask, first: int) -> Iterator[tuple[int, Record]]:
    """The task's records in the order they are produced, from position ``first`` on, with their positions.

    Segments wholly before ``first`` count by their record count unread when
    nothing filters them (the restore reads and checks them anyway).
    """
    start, end = task.start_offset, task.end_offset
    low, high = task.time_window
    position = 0
    for entry in task.segments:
        whole = low is None and high is None and start <= entry.first_offset and entry.last_offset < end
        if whole and position + entry.record_count <= first:
            position += entry.record_count
            continue
        for batch in source.load(entry, task.wanted).batches(start, end):
            for record in batch:
                offset, ts = record[0], record[1]
                if (
                    not start <= offset < end
                    or not (low is None or ts >= low)
                    or not (high is None or ts <= high)
                ):
                    continue
                if position >= first:
                    yield position, record
                position += 1


def read_back(consumer: Consumer, check: Unverified) -> Iterator[Message]:
    """The records of ``[check.start, check.end)`` in the target partition, in offset order."""
    return read_range(consumer, check.target.topic, check.target.partition, check.start, check.end)


def read_range(consumer: Consumer, topic: str, partition: int, start: int, end: int) -> Iterator[Message]:
    """The records of ``[start, end)`` in a partition, in offset order (also ``validation run``'s)."""
    consumer.assign([TopicPartition(topic, partition, start)])
    expected, idle = start, time.monotonic()
    while expected < end:
        batch = consumer.consume(500, 1.0)
        if not batch and time.monotonic() - idle > READ_TIMEOUT_SECS:
            raise RestoreError(
                f"{topic}[{partition}]: no record could be read back from offset {expected} in "
                f"{READ_TIMEOUT_SECS:.0f} s (up to {end} are due); re-run to try again"
            )
        for msg in batch:
            idle = time.monotonic()
            err = msg.error()
            if err is not None and err.code() != KafkaError._PARTITION_EOF:
                raise RestoreError(f"{topic}[{partition}]: reading back from offset {expected}: {err.str()}")
            offset = msg.offset()
            if err is not None or offset is None:
                continue
            if offset >= end:
                return
            yield msg
            expected = offset + 1


def differs(msg: Message, record: Record, add_headers: bool, source_partition: int) -> str | None:
    """What of the target record ``msg`` differs from ``record`` as the restore produces it, if anything."""
    key, value, headers, ts = as_produced(record, add_headers, source_partition)
    if msg.key() != key:
        return "the key differs"
    if msg.value() != value:
        return "the value differs"
    if (msg.headers() or None) != (headers or None):
        return "the headers differ"
    ts_type, got = msg.timestamp()
    if ts and ts_type == TIMESTAMP_CREATE_TIME and got != ts:
        return f"its timestamp is {got}, not {ts}"
    return None


def _refusal(check: Unverified, offset: int, what: str) -> RestoreError:
    topic, partition = check.target.topic, check.target.partition
    return RestoreError(
        f"{topic}[{partition}] cannot be resumed: target offset {offset} {what}, so past offset "
        f"{check.start} the partition does not hold the planned records in order (a delivery failed and "
        "later records still landed, or something else wrote to it). Restore into a new topic "
        f"(restore.topic_mapping), or delete {topic} and restore again under a new restore.restore_id"
    )

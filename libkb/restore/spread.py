"""The spread restorer: a topic restored by key into another partition count, in a fixed order.

One thread restores the whole topic. It reads the planned source partitions
one after another (ascending), each in offset order with its segments read
ahead on the reader pool, and sends every record to the partition
:mod:`.routing` picks, through the run's one idempotent producer. So each
target partition receives a fixed sequence: the records of source partition
0 that go to it, then those of source partition 1, and so on, each in source
order. A key written by key lives in one source partition, so its records
keep their order.

Because the sequence is fixed, the resume rules of a one-to-one partition
(:mod:`.state`) hold for each target partition: what an earlier run wrote is
a prefix of it, a re-run passes over ``skips[p]`` records of partition ``p``
(still counting them in the mapping) and produces the rest, and
:mod:`.verify` compares what lies past a checkpoint with
:func:`planned_records`.

One thread, not one per source partition: several threads would interleave
their records in each target partition in an order no re-run can repeat. It
costs little: ``produce()`` holds the GIL, so a process produces about as
fast from one thread as from eight (``bench/RESULTS.rst``), and segments are
still read ahead on the pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from operator import itemgetter

from libkb.format.segment import Record
from libkb.kafka.producer import original_offset_headers
from libkb.restore.mapping import SpreadPartition
from libkb.restore.partition import Poll, Produce, RestoreContext, account, produce_all, read_ahead
from libkb.restore.plan import PartitionTask, SpreadTask
from libkb.restore.routing import router
from libkb.source import BackupSource

_KEY, _VALUE = itemgetter(3), itemgetter(4)

#: Records produced between two looks at the rate limit, the progress and the stop flag.
CHUNK = 1024


def kept(batch: list[Record], task: PartitionTask) -> list[Record]:
    """The records of a batch inside the task's offset range and time window."""
    start, end = task.start_offset, task.end_offset
    low, high = task.time_window
    if low is None and high is None and batch[0][0] >= start and batch[-1][0] < end:
        return batch
    return [
        r
        for r in batch
        if start <= r[0] < end and (low is None or r[1] >= low) and (high is None or r[1] <= high)
    ]


def planned_records(
    source: BackupSource, task: SpreadTask, partition: int, first: int
) -> Iterator[tuple[int, Record, int]]:
    """Target ``partition``'s records in the order they are produced, from position ``first`` on.

    Each with its position and its source partition (for the headers
    ``include_original_offset_header`` adds). Every source segment is read:
    which records of a segment go to ``partition`` is known only from them.
    """
    position = 0
    for src in task.sources:
        route = router(task.strategy, task.partitions, src.source_partition)
        for entry in src.segments:
            for batch in source.load(entry, src.wanted).batches(src.start_offset, src.end_offset):
                records = kept(batch, src) if batch else batch
                for record, p in zip(records, route(records) if records else (), strict=True):
                    if p != partition:
                        continue
                    if position >= first:
                        yield position, record, src.source_partition
                    position += 1


class _Blocks:
    """What one source partition sent to each target partition: records, first and last source offset."""

    __slots__ = ("counts", "first", "last")

    def __init__(self, partitions: int) -> None:
        self.counts = [0] * partitions
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}

    def add(self, partition: int, records: list[Record]) -> None:
        self.counts[partition] += len(records)
        self.first.setdefault(partition, records[0][0])
        self.last[partition] = records[-1][0]


def buckets(records: list[Record], parts: list[int], partitions: int) -> list[list[Record]]:
    """The records of each target partition, in order: one partition's records are produced together.

    librdkafka spends far less CPU on records produced partition by partition
    than on records whose partition changes at every call (40 % less per
    record, measured into 3 partitions).
    """
    out: list[list[Record]] = [[] for _ in range(partitions)]
    add = [bucket.append for bucket in out]
    for record, p in zip(records, parts, strict=True):
        add[p](record)
    return out


class SpreadRestorer:
    """Restores ``task``; ``skips[p]`` records of target partition p an earlier run wrote (not produced)."""

    def __init__(
        self, task: SpreadTask, partitions: list[SpreadPartition], skips: list[int], ctx: RestoreContext
    ) -> None:
        self.task = task
        self.skipped = 0
        self._parts = partitions  # the mapping, one per target partition
        self._skips = skips
        self._ctx = ctx
        self._produce: Produce = ctx.producer.produce
        self._poll: Poll = ctx.poll or ctx.producer.poll
        self._records_metric = ctx.metrics.restore_records.labels(ctx.backup_id)
        self._bytes_metric = ctx.metrics.restore_bytes.labels(ctx.backup_id)
        self._count = self._nbytes = 0  # produced since the last flush

    def run(self) -> None:
        """Restore the topic; returns at its end, or early once the run is stopped."""
        for source in self.task.sources:
            if self._ctx.stop.is_set():
                break
            self._restore_source(source)
        self._ctx.counters.partition_done(self.skipped)

    def _restore_source(self, task: PartitionTask) -> None:
        route = router(self.task.strategy, self.task.partitions, task.source_partition)
        blocks = _Blocks(self.task.partitions)
        stopped = False
        try:
            with closing(read_ahead(self._ctx, task)) as segments:
                for segment in segments:
                    self._ctx.metrics.restore_segments.labels(self._ctx.backup_id).inc()
                    self._ctx.counters.segment_read()
                    for batch in segment.batches(task.start_offset, task.end_offset):
                        records = kept(batch, task) if batch else batch
                        if records and self._send(records, route(records), blocks, task.source_partition):
                            stopped = True
                            break
                    self._flush()
                    if stopped:
                        break
        finally:
            for p, count in enumerate(blocks.counts):
                if count:
                    block = (task.source_partition, count, blocks.first[p], blocks.last[p])
                    self._parts[p].blocks.append(block)

    def _send(self, records: list[Record], parts: list[int], blocks: _Blocks, source_partition: int) -> bool:
        """Produce a block's records, a chunk at a time; True once the run is stopped."""
        for i in range(0, len(records), CHUNK):
            chunk, chunk_parts = (
                (records, parts) if len(records) <= CHUNK else (records[i : i + CHUNK], parts[i : i + CHUNK])
            )
            for p, bucket in enumerate(buckets(chunk, chunk_parts, self.task.partitions)):
                if bucket:
                    blocks.add(p, bucket)
                    self._send_bucket(p, bucket, source_partition)
            self._flush()
            if self._ctx.stop.is_set():
                return True
        return False

    def _send_bucket(self, partition: int, records: list[Record], source_partition: int) -> None:
        """One partition's records of a chunk, less those an earlier run wrote."""
        skip = min(self._skips[partition], len(records))
        if skip:
            self._skips[partition] -= skip
            self.skipped += skip
            records = records[skip:]
            if not records:
                return
        topic = self.task.target_topic
        if self._ctx.add_headers:
            for offset, ts, ts_type, key, value, headers in records:  # as partition.as_produced() does
                headers = [*(headers or []), *original_offset_headers(offset, ts, source_partition)]
                _produce_one(self._produce, self._poll, topic, value, key, partition, ts, ts_type, headers)
        else:
            produce_all(self._produce, self._poll, topic, partition, records)
        self._count += len(records)
        self._nbytes += sum(map(len, filter(None, map(_KEY, records)))) + sum(
            map(len, filter(None, map(_VALUE, records)))
        )

    def _flush(self) -> None:
        account(self._ctx, self._count, self._nbytes, self._records_metric, self._bytes_metric)
        self._count = self._nbytes = 0


def _produce_one(
    produce: Produce,
    poll: Poll,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    partition: int,
    ts: int,
    ts_type: int,
    headers: list[tuple[str, bytes | None]] | None,
) -> None:
    """One record, waiting for room while the local queue is full."""
    ts = ts if ts_type and ts >= 0 else 0
    while True:
        try:
            produce(topic, value, key, partition, None, None, ts, headers)
            return
        except BufferError:
            poll(0.05)  # let deliveries drain

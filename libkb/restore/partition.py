"""The partition restorer: one planned partition's records, in order, into its target partition.

It reads the planned segments through the segment source, one ahead of the
producer (on the reader pool), keeps the records in the task's offset range
and time window, passes over those an earlier run already wrote (resume),
produces the rest, and records the offset mapping as runs.

The hot path is per block, as the source decodes it: a block inside the
range, with consecutive offsets and nothing to filter, skip or add, goes out
in one call to C (:mod:`.direct`; a tight Python loop where it cannot run),
with one mapping run and one sum for its bytes. Anything else (and the
blocks at the range's edges) goes record by record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from operator import itemgetter

from confluent_kafka import Producer
from prometheus_client import Counter

from libkb.format.models import SegmentEntry
from libkb.format.segment import DecodedBlock, Record
from libkb.kafka.producer import original_offset_headers
from libkb.metrics import RunMetrics
from libkb.ratelimit import RateLimiter
from libkb.restore.direct import DirectProducer
from libkb.restore.mapping import PartitionMapping
from libkb.restore.plan import PartitionTask
from libkb.restore.progress import RunCounters
from libkb.source import BackupSource, StoredSegment

_OFFSET, _KEY, _VALUE = itemgetter(0), itemgetter(3), itemgetter(4)

Produce = Callable[..., None]  # Producer.produce, called positionally
Poll = Callable[[float], int]  # Producer.poll
Headers = list[tuple[str, bytes | None]]


def as_produced(
    record: Record, add_headers: bool, source_partition: int
) -> tuple[bytes | None, bytes | None, Headers | None, int]:
    """(key, value, headers, timestamp) as the restorer produces ``record``; timestamp 0: the broker's time.

    The restorer's loops inline the same steps (a call per record costs); the
    read-back check of a resumed restore (:mod:`.verify`) compares with this.
    """
    offset, ts, ts_type, key, value, headers = record
    if add_headers:
        headers = [*(headers or []), *original_offset_headers(offset, ts, source_partition)]
    return key, value, headers, ts if ts_type and ts >= 0 else 0


@dataclass(frozen=True, slots=True)
class RestoreContext:
    """What every partition of one run shares."""

    source: BackupSource
    producer: Producer
    reader_pool: ThreadPoolExecutor
    limiter: RateLimiter
    stop: threading.Event
    counters: RunCounters
    metrics: RunMetrics
    backup_id: str  # the metrics' label
    add_headers: bool  # restore.include_original_offset_header
    #: How a partition waits for room in a full queue (the run's :class:`.producer.Poller`).
    poll: Poll | None = None
    #: Whole blocks produced from C (None: ``producer.produce()`` per record).
    direct: DirectProducer | None = None


def read_ahead(ctx: RestoreContext, task: PartitionTask) -> Generator[StoredSegment, None, None]:
    """The task's segments in order, each read on the pool while the one before is produced.

    Only what may hold the task's records is read: a segment whose offset range or time window
    starts inside it, from a restart point on (format version 8).
    """
    segments = task.segments
    wanted = task.wanted
    read = ctx.metrics.storage_read_bytes.labels(ctx.source.backend.name, ctx.backup_id)

    def fetch(entry: SegmentEntry) -> StoredSegment:
        stored = ctx.source.load(entry, wanted)
        read.inc(stored.read_bytes)
        return stored

    def load(index: int) -> Future[StoredSegment]:
        return ctx.reader_pool.submit(fetch, segments[index])

    pending = load(0) if segments else None
    try:
        for i in range(len(segments)):
            if ctx.stop.is_set():
                return
            assert pending is not None
            segment = pending.result()
            pending = load(i + 1) if i + 1 < len(segments) else None
            yield segment
    finally:
        if pending is not None:
            pending.cancel()


class _Runs:
    """The partition's offset mapping as runs, built as records go out (cheaper than a call per record)."""

    __slots__ = ("length", "next_target", "prev", "runs", "source", "target")

    def __init__(self, mapping: PartitionMapping) -> None:
        self.runs = mapping.runs
        self.source = self.target = self.length = 0
        self.next_target = mapping.target_start
        self.prev = -2

    def add_block(self, first: int, count: int) -> None:
        """``count`` records with consecutive offsets from ``first``."""
        if first != self.prev + 1:
            if self.length:
                self.runs.append((self.source, self.target, self.length))
            self.source, self.target, self.length = first, self.next_target, 0
        self.length += count
        self.next_target += count
        self.prev = first + count - 1

    def close(self) -> None:
        if self.length:
            self.runs.append((self.source, self.target, self.length))


class PartitionRestorer:
    """Restores ``task``; ``skip`` records (an earlier run wrote them) are mapped but not produced."""

    def __init__(
        self, task: PartitionTask, mapping: PartitionMapping, skip: int, ctx: RestoreContext
    ) -> None:
        self.task = task
        self.skip = skip
        self.skipped = 0
        self._ctx = ctx
        self._runs = _Runs(mapping)
        self._produce: Produce = ctx.producer.produce
        self._poll: Poll = ctx.poll or ctx.producer.poll
        self._direct = ctx.direct
        self._topic, self._partition = task.target_topic, task.target_partition
        self._start, self._end = task.start_offset, task.end_offset
        self._records_metric = ctx.metrics.restore_records.labels(ctx.backup_id)
        self._bytes_metric = ctx.metrics.restore_bytes.labels(ctx.backup_id)
        low, high = task.time_window
        self._whole_blocks = not (
            ctx.add_headers or low is not None or high is not None or ctx.limiter.active
        )
        self._count = self._nbytes = 0  # produced since the last flush

    def run(self) -> None:
        """Restore the partition; returns at its end, or early once the run is stopped."""
        stop = self._ctx.stop
        with closing(read_ahead(self._ctx, self.task)) as segments:
            for segment in segments:
                self._ctx.metrics.restore_segments.labels(self._ctx.backup_id).inc()
                self._ctx.counters.segment_read()
                blocks = (
                    segment.decoded(self._start, self._end)
                    if self._direct
                    else (segment.batches(self._start, self._end))
                )
                for block in blocks:
                    if isinstance(block, DecodedBlock):
                        if self._produce_decoded(block):
                            if stop.is_set():
                                break
                            continue
                        block = block.records()
                    if not block:
                        continue
                    if self._is_whole(block):
                        self._produce_block(block)
                        if stop.is_set():
                            break
                    elif self._produce_records(block):
                        break
                self._flush()
        self._runs.close()
        self._ctx.counters.partition_done(self.skipped)

    def _is_whole(self, block: list[Record]) -> bool:
        """Nothing to filter, skip or add, all inside the range, offsets consecutive."""
        first, last, n = block[0][0], block[-1][0], len(block)
        return (
            self._whole_blocks
            and not self.skip
            and first >= self._start
            and last < self._end
            and last - first == n - 1
            and (
                self._direct.consecutive(block)
                if self._direct is not None
                else list(map(_OFFSET, block)) == list(range(first, last + 1))
            )
        )

    def _produce_decoded(self, block: DecodedBlock) -> bool:
        """The hottest path: a whole block produced from its decoded bytes; False if C declined it
        (not inside the range, offsets not consecutive, anything to filter or check in Python)."""
        info = block.info
        if not (
            self._whole_blocks
            and not self.skip
            and info.first_offset >= self._start
            and info.last_offset < self._end
            and self._direct is not None
        ):
            return False
        nbytes = self._direct.produce_decoded(self._topic, self._partition, block, self._poll)
        if nbytes is None:
            return False
        self._runs.add_block(info.first_offset, info.record_count)
        self._nbytes += nbytes
        self._count += info.record_count
        self._flush()
        return True

    def _produce_block(self, block: list[Record]) -> None:
        """The hot path: a whole block, one mapping run, one flush."""
        self._runs.add_block(block[0][0], len(block))
        if self._direct is not None:
            self._nbytes += self._direct.produce_block(self._topic, self._partition, block, self._poll)
        else:
            produce_all(self._produce, self._poll, self._topic, self._partition, block)
            self._nbytes += sum(map(len, filter(None, map(_KEY, block)))) + sum(
                map(len, filter(None, map(_VALUE, block)))
            )
        self._count += len(block)
        self._flush()

    def _produce_records(self, block: list[Record]) -> bool:
        """Record by record: offset range, time window, resume skip, extra headers.

        True when the range's end is reached or the run stops: the rest of the segment is left.
        """
        produce, poll, topic, partition = self._produce, self._poll, self._topic, self._partition
        start, end, (low, high) = self._start, self._end, self.task.time_window
        add_headers, source_partition = self._ctx.add_headers, self.task.source_partition
        m = self._runs
        run_src, run_tgt, run_len, next_tgt, prev = m.source, m.target, m.length, m.next_target, m.prev
        skip, count, nbytes, done = self.skip, self._count, self._nbytes, False
        for offset, ts, ts_type, key, value, headers in block:
            if offset < start:
                continue
            if offset >= end:
                done = True
                break
            if (low is not None and ts < low) or (high is not None and ts > high):
                continue
            if offset != prev + 1:
                if run_len:
                    m.runs.append((run_src, run_tgt, run_len))
                run_src, run_tgt, run_len = offset, next_tgt, 0
            run_len += 1
            next_tgt += 1
            prev = offset
            if skip:
                skip -= 1
                continue
            if add_headers:  # as as_produced() does
                headers = [*(headers or []), *original_offset_headers(offset, ts, source_partition)]
            ts = ts if ts_type and ts >= 0 else 0
            while True:
                try:
                    produce(topic, value, key, partition, None, None, ts, headers)
                    break
                except BufferError:
                    poll(0.05)  # the local queue is full: let deliveries drain
            count += 1
            nbytes += (len(key) if key else 0) + (len(value) if value else 0)
            if count & 0x3FF == 0:
                self._count, self._nbytes, count, nbytes = count, nbytes, 0, 0
                self._flush()
                if self._ctx.stop.is_set():
                    done = True
                    break
        m.source, m.target, m.length, m.next_target, m.prev = run_src, run_tgt, run_len, next_tgt, prev
        self.skipped += self.skip - skip
        self.skip, self._count, self._nbytes = skip, count, nbytes
        return done

    def _flush(self) -> None:
        account(self._ctx, self._count, self._nbytes, self._records_metric, self._bytes_metric)
        self._count = self._nbytes = 0


def account(ctx: RestoreContext, count: int, nbytes: int, records: Counter, nbytes_metric: Counter) -> None:
    """Account for what was produced since the last flush: rate limit, progress, metrics."""
    ctx.limiter.consume(nbytes=nbytes, records=count)
    ctx.counters.add(count, nbytes)
    records.inc(count)
    nbytes_metric.inc(nbytes)


def produce_all(produce: Produce, poll: Poll, topic: str, partition: int, block: list[Record]) -> None:
    """Every record of the block, in order: the tight loop of the hot path."""
    for _, ts, ts_type, key, value, headers in block:
        # Positional: keywords cost ~0.4 µs a call. The two Nones are on_delivery
        # and its alias callback (the producer's default).
        ts = ts if ts_type and ts >= 0 else 0
        try:
            produce(topic, value, key, partition, None, None, ts, headers)
        except BufferError:
            while True:
                poll(0.05)  # the local queue is full: let deliveries drain
                try:
                    produce(topic, value, key, partition, None, None, ts, headers)
                    break
                except BufferError:
                    pass

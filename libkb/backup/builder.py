"""The segment builder: each partition's open block and open segment, and when they close.

Why this module exists: the rules that cut a partition's records into
blocks and segments are the backup's format policy, and they must hold
whatever order the consumer delivers records in. The partition reader packs
records into a partition's open block (:class:`OpenPartition`) and calls
:meth:`SegmentBuilder.seal` when the block is full; everything after that is
decided here:

- a sealed block takes its raw size from the byte budget, then goes to the
  store pipeline for encoding (which gives back all but its stored size),
  and joins the partition's open segment;
- a segment closes (goes to the store pipeline) when it holds
  ``segment_max_bytes`` raw bytes or ``segment_max_records``, when it has
  been open ``segment_max_interval_ms``, at the partition's end, and before
  offsets deleted by retention (recorded as a missing range after it);
- **half-budget rule**: a segment closes once its encoded blocks hold half
  the byte budget (their stored bytes) shared among the segments filling at
  the time, so that a partition's next segment fills while the previous one
  is stored instead of waiting for it, and a restore, which holds a segment
  per partition and reads the next one ahead, holds about the budget too.
  Records that compress well therefore fill segments far past their share
  in raw bytes (up to ``segment_max_bytes``), and each segment starts one
  compression frame, not many;
- **budget full**: the open segment holding the most budget closes early so
  its upload can give memory back; if uploads already hold half the budget,
  or blocks waiting for compression do (which gives most of it back), the
  builder waits for them instead (reporting progress meanwhile: waiting
  for slow storage is the loop working, not stuck). A wait of
  :data:`PAUSE_AFTER_SECS` means storage is down, not slow: the consumer is
  paused (librdkafka stops fetching and drops what it prefetched) until the
  budget has room again, then resumes where the run's reading stopped.

Everything here runs on the consuming thread.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from libkb.backup.budget import ByteBudget, SegmentCharge
from libkb.backup.plan import PartitionPlan
from libkb.backup.store import PartitionLane, StorePipeline
from libkb.config.models import BackupOptions
from libkb.format.models import MissingRange
from libkb.format.segment import Block, BlockEncoder
from libkb.format.transforms import BlockContext
from libkb.metrics import RunMetrics
from libkb.ratelimit import RateLimiter

TP = tuple[str, int]


@dataclass(frozen=True, slots=True)
class SegmentLimits:
    """When blocks seal and segments close (:meth:`SegmentBuilder.close_expired` applies the time)."""

    block_bytes: int
    #: Raw bytes.
    segment_bytes: int
    max_records: int | None
    interval_secs: float
    #: Budget a segment may hold (half the budget, at least a block).
    held_bytes: int = 1 << 62

    @classmethod
    def from_options(cls, opts: BackupOptions) -> SegmentLimits:
        # A segment holds at most half the budget, so the next one can fill while
        # it is stored (a partition's segments are stored one after another).
        held = max(opts.max_bytes_in_flight // 2, opts.block_bytes)
        interval = opts.segment_max_interval_ms / 1000
        return cls(opts.block_bytes, opts.segment_max_bytes, opts.segment_max_records, interval, held)


class OpenPartition:
    """The consuming thread's state of one partition: where it reads, its open block and open segment."""

    __slots__ = (
        "charge",
        "covered_to",
        "done",
        "enc",
        "lane",
        "partition",
        "sealed_last",
        "seg_base",
        "seg_blocks",
        "seg_opened",
        "seg_raw",
        "seg_records",
        "target_end",
        "topic",
    )

    def __init__(
        self,
        plan: PartitionPlan,
        lane: PartitionLane,
        block_bytes: int,
        spare: deque[bytearray] | None,
        budget: ByteBudget,
    ) -> None:
        self.topic = plan.topic
        self.partition = plan.partition
        #: The open block.
        self.enc = BlockEncoder(block_bytes, spare)
        #: Exclusive offset to stop at (snapshot), None in continuous mode.
        self.target_end = plan.end
        self.done = plan.done
        self.seg_base = plan.start
        #: Exclusive end of what the consumer has passed (sealed blocks, and offsets with no record).
        self.covered_to = plan.start
        self.sealed_last = plan.start - 1
        self.seg_blocks: list[Future[Block]] = []
        self.seg_raw = 0
        self.seg_records = 0
        self.seg_opened = time.monotonic()
        self.lane = lane
        #: The budget the open segment holds (a new one for each segment).
        self.charge = SegmentCharge(budget)


log = logging.getLogger("libkb.backup")

#: Seconds of waiting for budget after which the consumer is paused.
PAUSE_AFTER_SECS = 5.0


class Intake(Protocol):
    """Where records come from: paused while storage cannot take what was read."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class SegmentBuilder:
    """Seals blocks and closes segments of every open partition, within the store pipeline's budget."""

    def __init__(
        self,
        pipeline: StorePipeline,
        limits: SegmentLimits,
        *,
        metrics: RunMetrics,
        backup_id: str,
        limiter: RateLimiter,
        heartbeat: Callable[[], None],
        heartbeat_secs: float = 0.5,
    ) -> None:
        self.pipeline = pipeline
        self.limits = limits
        #: Every partition of the run, by (topic, partition); the reader reads the same dict.
        self.partitions: dict[TP, OpenPartition] = {}
        #: Partitions not yet at their end.
        self.active = 0
        #: Open segments holding at least one block: they share the budget.
        self.filling = 0
        #: Records and raw bytes sealed so far.
        self.records = 0
        self.bytes = 0
        #: Records and raw bytes read as last reported to the metrics.
        self._reported = (0, 0)
        self._max_records = limits.max_records
        self._limiter = limiter
        self._heartbeat = heartbeat
        self._heartbeat_secs = heartbeat_secs
        #: Paused when the budget stays full (set by the reader).
        self.intake: Intake | None = None
        self._paused = False
        self._records_counter = metrics.backup_records.labels(backup_id)
        self._bytes_counter = metrics.backup_bytes.labels(backup_id)
        self._gaps_counter = metrics.backup_offset_gaps.labels(backup_id)
        self._raw_counter = metrics.uncompressed_bytes.labels(pipeline.algorithm, backup_id)

    def open(self, plan: PartitionPlan, lane: PartitionLane) -> OpenPartition:
        """Start building the partition ``plan`` describes, storing through ``lane``."""
        st = OpenPartition(plan, lane, self.limits.block_bytes, self.pipeline.spare, self.pipeline.budget)
        self.partitions[(st.topic, st.partition)] = st
        if not st.done:
            self.active += 1
        return st

    def full(self, st: OpenPartition) -> bool:
        """The open segment holds ``segment_max_records`` with the open block."""
        return self._max_records is not None and st.seg_records + st.enc.count >= self._max_records

    def seal(self, st: OpenPartition) -> None:
        """Hand the open block to the store pipeline; it joins the open segment."""
        raw = st.enc.take()
        n = len(raw.data)
        gaps = (raw.last_offset - raw.first_offset + 1 - raw.record_count) + (
            raw.first_offset - st.sealed_last - 1
        )
        if gaps:
            self._gaps_counter.inc(gaps)
        st.sealed_last = raw.last_offset
        # Reserve first: a full budget may close this very segment, which
        # must then end before this block (the block opens the next one).
        self._reserve(n)
        st.covered_to = raw.last_offset + 1
        place = BlockContext(st.topic, st.partition, st.seg_base, len(st.seg_blocks), n)
        st.charge.add(n)
        if not st.seg_blocks:
            self.filling += 1
        st.seg_blocks.append(self.pipeline.encode(raw, place, st.charge))
        st.seg_raw += n
        st.seg_records += raw.record_count
        self._count(raw.record_count, n)
        limits = self.limits
        if (
            st.seg_raw >= limits.segment_bytes
            or st.charge.encoded >= max(limits.block_bytes, limits.held_bytes // self.filling)
            or (self._max_records is not None and st.seg_records >= self._max_records)
        ):
            self.close(st)

    def close(self, st: OpenPartition) -> None:
        """Store the open segment, covering up to ``covered_to``; a new one opens there."""
        end = st.covered_to
        if not st.seg_blocks and end <= st.seg_base:
            st.seg_opened = time.monotonic()
            return
        self.pipeline.store_segment(st.lane, st.seg_base, end, st.seg_blocks, st.charge)
        if st.seg_blocks:
            self.filling -= 1
        st.seg_base = end
        st.seg_blocks = []
        st.charge = SegmentCharge(self.pipeline.budget)
        st.seg_raw = 0
        st.seg_records = 0
        st.seg_opened = time.monotonic()

    def end(self, st: OpenPartition, end: int) -> None:
        """The partition reached ``end``: store everything up to it; nothing more is built for it."""
        if st.enc.count:
            self.seal(st)
        st.covered_to = max(st.covered_to, end)
        self.close(st)
        st.done = True
        self.active -= 1

    def passed(self, st: OpenPartition, offset: int) -> None:
        """The consumer is at ``offset`` with no record before it (transaction markers, aborted records)."""
        if not st.enc.count and offset > st.covered_to:
            st.covered_to = offset

    def skip(self, st: OpenPartition, end: int) -> None:
        """Offsets ``covered_to`` to ``end`` were deleted: store the open segment, then record them missing.

        The open block must be sealed first.
        """
        lost = MissingRange(st.covered_to, end, "retention")
        self.close(st)  # segments first: the missing range goes after them
        self.pipeline.record_missing(st.lane, lost)
        st.seg_base = st.covered_to = end
        st.sealed_last = end - 1

    def close_expired(self, now: float) -> None:
        """Close the segments open for ``segment_max_interval_ms`` (their open blocks are sealed first)."""
        for st in self.partitions.values():
            if not st.done and now - st.seg_opened >= self.limits.interval_secs:
                if st.enc.count:
                    self.seal(st)
                self.close(st)

    def close_all(self) -> None:
        """Store what is open: the run stops, or every partition reached its end."""
        for st in self.partitions.values():
            if not st.done:
                if st.enc.count:
                    self.seal(st)
                self.close(st)

    def _count(self, records: int, nbytes: int) -> None:
        self.records += records
        self.bytes += nbytes
        self._raw_counter.inc(nbytes)
        self._limiter.consume(nbytes=nbytes)

    def read(self) -> tuple[int, int]:
        """Records and raw bytes read so far: sealed, and packed into the open blocks.

        A quiet continuous backup may hold records in open blocks for up to
        ``segment_max_interval_ms``; they count as read from the moment they are.
        """
        records, nbytes = self.records, self.bytes
        for st in self.partitions.values():
            records += st.enc.count
            nbytes += st.enc.size
        return records, nbytes

    def report_read(self) -> tuple[int, int]:
        """Bring ``kafka_backup_records_total`` and ``kafka_backup_bytes_total`` up to :meth:`read`."""
        records, nbytes = self.read()
        last_records, last_bytes = self._reported
        self._records_counter.inc(max(0, records - last_records))
        self._bytes_counter.inc(max(0, nbytes - last_bytes))
        self._reported = (max(records, last_records), max(nbytes, last_bytes))
        return records, nbytes

    def _reserve(self, n: int) -> None:
        """Take ``n`` bytes of budget; while it is full, close the fullest open segment or wait."""
        budget = self.pipeline.budget
        if budget.try_acquire(n):
            return
        try:
            self._wait_for_budget(n)
        finally:
            if self._paused and self.intake is not None:
                self._paused = False
                log.info("the in-flight budget has room again; consumer resumed")
                self.intake.resume()

    def _wait_for_budget(self, n: int) -> None:
        """Close segments or wait until ``n`` bytes fit; pause the intake if that takes long."""
        budget, check = self.pipeline.budget, self.pipeline.check
        started = waited = time.monotonic()
        while not budget.try_acquire(n):
            states = self.partitions.values()
            victim = max(states, key=lambda s: s.charge.held)
            uploading = budget.used - sum(s.charge.held for s in states)
            # Blocks still being encoded give most of their bytes back soon: a segment
            # closed now for them would only be shorter (and start one more frame).
            if victim.seg_blocks and uploading < budget.limit // 2 and budget.unencoded < budget.limit // 2:
                self.close(victim)  # free memory by storing the fullest open segment
            else:
                # Uploads under way (or encodings) hold half the budget or more; they
                # free it block by block as storage takes (or compression shrinks) the blocks.
                budget.wait(0.2)
                now = time.monotonic()
                if now - waited >= self._heartbeat_secs:
                    # Waiting on slow storage (which retries with timeouts) is
                    # the loop working, not stuck: keep liveness fed.
                    waited = now
                    self._heartbeat()
                if not self._paused and self.intake is not None and now - started >= PAUSE_AFTER_SECS:
                    log.warning("the in-flight budget is full and storage does not take it; consumer paused")
                    self.intake.pause()
                    self._paused = True
            check()

"""The partition reader: the consume loop, from Kafka batches into each partition's open block.

Why this module exists: this loop is the backup's hot path, and what the
consumer delivers besides records (ends, events, errors) decides what the
backup may claim to cover. It reads and classifies; the segment builder
(:mod:`libkb.backup.builder`) decides what to do with the blocks.

- A batch holds runs of consecutive records of one partition (one fetch
  response each). Each run is packed by **one call** into the partition's
  open block (C when built, see :mod:`libkb.format.packer`), which stops at
  a full block, another partition, an event or error, or the partition's end
  offset; only those stops come back to Python. Per-record Python work in
  :meth:`PartitionReader.run` costs backup speed directly.
- Batches come from an :class:`~libkb.backup.intake.Intake` (librdkafka's
  messages read in C, no ``Message`` object per record) where it can run,
  else from ``consume()``; both give the same messages in the same order.
- A partition **ends** (snapshot mode) at the offset planned at the start:
  the record before it, or an EOF event at or past it.
- An EOF event before the end means the consumer passed offsets that yield
  no record (transaction markers, aborted transactions): they are covered.
- An offset-reset error means retention deleted offsets before the run read
  them (``auto.offset.reset: error``): what was read is stored, the deleted
  offsets are recorded as a missing range, and reading goes on at the new
  log start.
- Other errors: retriable ones are logged (librdkafka retries), others end
  the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

import libkb.config.fixed_properties as fixed
from libkb.backup.builder import OpenPartition, SegmentBuilder
from libkb.backup.errors import BackupError
from libkb.backup.intake import open_intake
from libkb.config.models import BackupOptions
from libkb.format.packer import STOP_BOUND, STOP_FULL, STOP_UNUSUAL

log = logging.getLogger("libkb.backup")

# consume() batch: 2,000 rather than 10,000 keeps fewer Message objects alive
# across garbage collections (0.7 -> 0.2 s of GC per GiB of 1 KiB records).
_BATCH = 2_000
#: How often the run's housekeeping runs while reading.
HOUSEKEEPING_SECS = 0.5


def consumer_config(options: BackupOptions, backup_id: str) -> dict[str, Any]:
    """The consumer settings a backup needs (on top of the source's connection settings)."""
    config: dict[str, Any] = {
        "group.id": f"libkb-backup-{backup_id}",
        # No commits; a partition's end as an event; an out-of-range position (retention
        # deleted the offsets mid-run) as an error event, recorded, never skipped silently.
        **fixed.BACKUP_CONSUMER,
        "isolation.level": options.isolation_level,
        "queued.max.messages.kbytes": 32768,
        # librdkafka's default (1000 ms) idles the fetcher for a second each
        # time the 32 MiB queue fills, which capped a 1-partition backup at
        # ~55 MB/s on loopback; 10 ms keeps it fed (bench/backup_bench.py).
        "fetch.queue.backoff.ms": 10,
    }
    if fetch := options.fetch_max_bytes:
        config["fetch.max.bytes"] = fetch
        # librdkafka refuses a fetch.max.bytes below message.max.bytes (default
        # 1,000,000; for a consumer only its request size) or above
        # receive.message.max.bytes - 512 (default 100,000,000).
        config["message.max.bytes"] = min(1_000_000, fetch)
        config["receive.message.max.bytes"] = max(100_000_000, fetch + 512)
    return config


class PartitionReader:
    """Reads the builder's partitions from ``consumer`` until each is at its end, or the run stops."""

    def __init__(
        self,
        consumer: Consumer,
        builder: SegmentBuilder,
        *,
        continuous: bool,
        stop: threading.Event,
        timeout: float,
        missing_ranges: list[str],
        poll_secs: float = 0.2,
        skipped: Callable[[int], None] = lambda count: None,
    ) -> None:
        """``timeout``: for watermark requests; ``missing_ranges``: where deleted offsets are reported,
        ``skipped`` is told how many; ``poll_secs``: how long one poll waits when no record is ready
        (``backup.poll_interval_ms``)."""
        self._consumer = consumer
        self._builder = builder
        self.partitions = builder.partitions
        self._continuous = continuous
        self._stop = stop
        self._timeout = timeout
        self._missing_ranges = missing_ranges
        self._skipped = skipped
        self._poll_secs = poll_secs
        self._assignment: list[TopicPartition] = []
        self._one_topic = True
        self._paused: list[TopicPartition] = []
        #: Offsets a snapshot has still to read, as last counted less the messages consumed since.
        self._left = 0
        self._intake = open_intake(consumer)
        #: Partitions assigned again (after an offset reset), routed again until a record comes.
        self._reroute: set[tuple[str, int]] = set()
        builder.intake = self

    def start(self) -> None:
        """Assign every partition not at its end, at the base of its open segment."""
        states = self.partitions.values()
        self._assignment = [
            TopicPartition(st.topic, st.partition, st.seg_base) for st in states if not st.done
        ]
        if self._assignment:
            self._route(self._assignment)
            self._consumer.assign(self._assignment)
        self._one_topic = len({st.topic for st in states}) <= 1

    def add(self, added: list[OpenPartition]) -> None:
        """Read partitions the builder opened since :meth:`start` (continuous mode's new ones)."""
        self._one_topic = len({st.topic for st in self.partitions.values()}) <= 1
        fresh = [TopicPartition(st.topic, st.partition, st.seg_base) for st in added]
        self._route(fresh)
        self._consumer.incremental_assign(fresh)
        self._assignment.extend(fresh)

    def _route(self, partitions: list[TopicPartition]) -> None:
        """Have the intake (if any) take these partitions' messages: before they are assigned."""
        if self._intake is not None:
            for tp in partitions:
                self._intake.route(tp.topic, tp.partition)

    def close(self) -> None:
        """Let go of the messages read in C; before the consumer is closed."""
        if self._intake is not None:
            self._intake.close()

    def pause(self) -> None:
        """Stop fetching the partitions still being read (storage is down; the budget is full).

        librdkafka drops what it prefetched for them; :meth:`resume` fetches
        again from the position after the last record the run was handed.
        """
        self._paused = [
            TopicPartition(st.topic, st.partition) for st in self.partitions.values() if not st.done
        ]
        if self._paused:
            self._consumer.pause(self._paused)

    def resume(self) -> None:
        if self._paused:
            self._consumer.resume(self._paused)
        self._paused = []

    def run(self, tick: Callable[[float], None]) -> None:
        """Read until every partition is at its end (snapshot) or the run stops.

        ``tick(now)`` (the run's housekeeping) is called between batches every
        :data:`HOUSEKEEPING_SECS`, and may :meth:`add` partitions.
        """
        consumer, stop, builder = self._consumer, self._stop, self._builder
        intake, take = self._intake, self._take
        continuous, assignment, poll_secs = self._continuous, self._assignment, self._poll_secs
        last_tick = time.monotonic()
        while builder.active > 0 or (continuous and assignment):
            if stop.is_set():
                break
            # Typed Any: the stubs make offset()/topic() Optional, which a
            # per-record check would pay for at runtime.
            msgs: Any
            if intake is None:
                msgs = consumer.consume(self._want(), poll_secs) if assignment else []
                n = len(msgs)
            else:
                msgs, n = intake, intake.fetch(self._want(), poll_secs) if assignment else 0
            self._left -= n
            take(msgs, n)
            now = time.monotonic()
            if now - last_tick >= HOUSEKEEPING_SECS:
                last_tick = now
                if intake is not None:
                    self._serve_consumer_queue()
                tick(now)

    def _take(self, msgs: Any, n: int) -> None:
        """Pack the runs of a batch (a list of Messages or the intake) into their partitions' blocks."""
        states, stop, builder = self.partitions, self._stop, self._builder
        seal, segment_full, finish, one_by_one = builder.seal, builder.full, self._finish, self._one_by_one
        block_bytes, max_records = builder.limits.block_bytes, builder.limits.max_records
        one_topic, reroute = self._one_topic, self._reroute
        i = 0
        while i < n:
            msg = msgs[i]  # the run's first message (from the intake: a RawMessage made for it)
            if msg.error() is not None:
                i += 1
                if one_by_one(msg):
                    return
                continue
            tp = (msg.topic(), msg.partition())
            st = states[tp]
            if st.done:
                i += 1
                continue
            if reroute:
                reroute.discard(tp)  # its records come: the routing holds
            end = st.target_end
            # Pack no more records than the open segment has room for.
            upto = None if max_records is None else i + max_records - st.seg_records - st.enc.count
            i, reason = st.enc.add_messages(
                msgs,
                i,
                block_bytes,
                None if one_topic else st.topic,
                st.partition,
                -1 if end is None else end,
                upto,
            )
            if end is not None and (reason == STOP_BOUND or st.enc.last_offset + 1 >= end > 0):
                finish(st, end)
            elif reason == STOP_FULL or segment_full(st):
                seal(st)
                if stop.is_set():
                    return  # the rest of the batch is read again by the next run
            elif reason == STOP_UNUSUAL:
                i += 1
                if one_by_one(msgs[i - 1]):
                    return

    def _serve_consumer_queue(self) -> None:
        """Serve the consumer's own queue while the intake reads the records.

        librdkafka's errors, statistics and logs reach confluent-kafka's
        callbacks from there. Every assigned partition is routed to the
        intake, so no record should come this way; one that does is packed
        like the others (all of its partition's records come this way then).
        """
        for topic, partition in self._reroute:
            self._intake.route(topic, partition)  # type: ignore[union-attr]
        strays = self._consumer.consume(_BATCH, 0)
        if strays:
            self._take(strays, len(strays))

    def _want(self) -> int:
        """How many messages to ask ``consume()`` (or the intake) for.

        It waits for a full batch (or its timeout), so near a snapshot's end
        it asks for no more than the offsets left, and the last records come
        back without the wait. Counting them visits every partition, so it is
        done only near the end; until then ``_left`` is the count last made
        less the messages consumed since.
        """
        if self._continuous:
            return _BATCH
        if self._left < 4 * _BATCH:
            self._left = self.remaining()
        return max(1, min(_BATCH, self._left))

    def remaining(self) -> int:
        """Offsets the partitions with a target end (a snapshot) have still to read."""
        left = 0
        for st in self.partitions.values():
            if not st.done and st.target_end is not None:
                position = st.enc.last_offset + 1 if st.enc.count else st.covered_to
                left += max(0, st.target_end - position)
        return left

    def lags(self) -> Iterator[tuple[str, int, int]]:
        """(topic, partition, records from our position to the partition's end as last fetched)."""
        for st in self.partitions.values():
            position = st.enc.last_offset + 1 if st.enc.count else st.covered_to
            if st.done:
                lag = 0
            else:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(st.topic, st.partition), cached=True
                )
                if high is None or high < 0:
                    continue  # nothing fetched yet
                lag = max(0, high - position)
            yield st.topic, st.partition, lag

    # -- what the packer stops at, one message at a time ------------------------------

    def _one_by_one(self, msg: Any) -> bool:
        """An event, an error or a record the packer does not pack; True: stop reading."""
        err = msg.error()
        if err is None:
            return self._record(msg)
        tp = (msg.topic(), msg.partition())
        if err.code() == KafkaError._PARTITION_EOF:
            self._partition_eof(self.partitions[tp], msg.offset())
        elif err.code() == KafkaError._AUTO_OFFSET_RESET and tp in self.partitions:
            self._offsets_deleted(self.partitions[tp], err.str())
        elif err.fatal() or not err.retriable():
            raise BackupError(f"Kafka error on {msg.topic()}[{msg.partition()}]: {err.str()}")
        else:
            log.warning("Kafka: %s", err.str())
        return False

    def _record(self, msg: Any) -> bool:
        st = self.partitions[(msg.topic(), msg.partition())]
        if st.done:
            return False
        off = msg.offset()
        end = st.target_end
        if end is not None and off >= end:
            self._finish(st, end)
            return False
        ts_type, ts = msg.timestamp()
        size = st.enc.add(off, ts, ts_type, msg.key(), msg.value(), msg.headers())
        if end is not None and off + 1 >= end:
            self._finish(st, end)
        elif size >= self._builder.limits.block_bytes or self._builder.full(st):
            self._builder.seal(st)
            return self._stop.is_set()  # the rest of the batch is read again by the next run
        return False

    def _partition_eof(self, st: OpenPartition, offset: int) -> None:
        """The consumer reached the partition's end as it is now, at ``offset``."""
        if st.done:
            return
        if st.target_end is not None and offset >= st.target_end:
            self._finish(st, st.target_end)
        else:
            self._builder.passed(st, offset)

    def _finish(self, st: OpenPartition, end: int) -> None:
        self._builder.end(st, end)
        self._consumer.pause([TopicPartition(st.topic, st.partition)])

    def _offsets_deleted(self, st: OpenPartition, why: str) -> None:
        """The next offset to read is gone (``auto.offset.reset: error``).

        Retention (or ``delete_records``) moved the log start past it while
        the run was reading: store what was read, record the lost offsets
        as a missing range after it, and continue at the new start.
        """
        if st.done:
            return
        if st.enc.count:
            self._builder.seal(st)
        position = st.covered_to
        tp = TopicPartition(st.topic, st.partition)
        low, high = self._consumer.get_watermark_offsets(tp, timeout=self._timeout)
        if position > high:
            raise BackupError(
                f"{st.topic}[{st.partition}]: the backup has read up to offset {position} but the "
                f"partition now ends at {high}; the topic was probably deleted and recreated "
                "(or an unclean leader election lost records). Use a new backup_id."
            )
        if low <= position:  # not deleted after all (e.g. a leader change): read it again
            self._restart_at(st, position)
            return
        end = low if st.target_end is None else min(low, st.target_end)
        self._builder.skip(st, end)
        text = (
            f"{st.topic}[{st.partition}] offsets {position}-{end - 1} were deleted by retention "
            f"while the backup was reading them ({why})"
        )
        self._missing_ranges.append(text)
        self._skipped(end - position)
        log.warning(text)
        if st.target_end is not None and end >= st.target_end:
            self._finish(st, st.target_end)
        else:
            self._restart_at(st, end)

    def _restart_at(self, st: OpenPartition, offset: int) -> None:
        # After an offset-reset error the partition's fetcher is stopped and
        # refuses seek(); assigning it again starts it at ``offset``.
        self._consumer.incremental_unassign([TopicPartition(st.topic, st.partition)])
        again = [TopicPartition(st.topic, st.partition, offset)]
        self._route(again)
        self._consumer.incremental_assign(again)
        if self._intake is not None:
            # The unassign stops the partition's fetcher later, on librdkafka's own thread, and
            # that clears the routing; records fetched meanwhile wait in the partition's queue
            # and move to the intake, in order, when it is routed again.
            self._reroute.add((st.topic, st.partition))

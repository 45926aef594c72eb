"""A consumer over :class:`~tests.fakes.cluster.FakeCluster`, as the backup engine uses one.

It hands out real ``confluent_kafka.Message`` objects (the class can be built
in Python), so the C packer and the pure-Python one read exactly what they
read from a broker. Like librdkafka it returns each partition's records in
runs (one fetch response each; a ``consume`` call returns one round of them)
interleaved across partitions, an
``_PARTITION_EOF`` event each time a partition's end is reached (with
``enable.partition.eof``), and, with ``auto.offset.reset: error``, an
``_AUTO_OFFSET_RESET`` event when the position lies outside the log, after
which the partition fetches nothing until it is assigned again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, Message, TopicPartition

from tests.fakes.cluster import TP, FakeCluster, FakeRecord

OFFSET_INVALID = -1001  # what librdkafka reports for a watermark it has not fetched yet


@dataclass(slots=True)
class ConsumerFaults:
    """What the consumer does wrong, and when."""

    #: Before the record at this offset of the partition, an error event (once).
    error_at: dict[TP, tuple[int, KafkaError]] = field(default_factory=dict)
    #: Records at or past this offset of the partition are not handed out (nor the partition's end).
    hold: dict[TP, int] = field(default_factory=dict)
    #: A run that waits on held records this long is a test bug: consume() raises instead of hanging.
    hold_limit_secs: float = 30.0
    #: (n, action): ``action()`` runs once n records have been handed out, before consume() returns.
    after_records: tuple[int, Callable[[], None]] | None = None
    #: The faults that fired, in order.
    injected: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Position:
    offset: int
    paused: bool = False
    stopped: bool = False  # an offset-reset error stopped its fetcher until it is assigned again
    eof_at: int | None = None  # the end offset its last EOF event was for
    fetched: bool = False


class FakeConsumer:
    """``assign``/``incremental_(un)assign``, ``consume``, ``pause``, watermarks and ``close``."""

    def __init__(
        self, cluster: FakeCluster, config: dict[str, Any], faults: ConsumerFaults, *, run_length: int = 7
    ) -> None:
        self.cluster = cluster
        self.config = config
        self.faults = faults
        self.run_length = run_length  # records of one partition in a row, as one fetch response
        self.assigned: dict[TP, _Position] = {}
        self.records_out = 0
        self.closed = False
        self._held_since: float | None = None

    # -- assignment -------------------------------------------------------

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._check_open()
        self.assigned = {}
        self.incremental_assign(partitions)

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self._check_open()
        for tp in partitions:
            low, high = self.cluster.watermarks(tp.topic, tp.partition)
            offset = {OFFSET_BEGINNING: low, OFFSET_END: high}.get(tp.offset, tp.offset)
            self.assigned[(tp.topic, tp.partition)] = _Position(offset)

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self._check_open()
        for tp in partitions:
            del self.assigned[(tp.topic, tp.partition)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.assigned[(tp.topic, tp.partition)].paused = True

    # -- reading ----------------------------------------------------------

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        self._check_open()
        batch = self._fetch(num_messages)
        if not batch:
            self._check_hold()
            self.cluster.wait(timeout if timeout >= 0 else 1.0)  # as the real one waits for a fetch
            batch = self._fetch(num_messages)
        else:
            self._held_since = None
        if self.faults.after_records is not None and self.records_out >= self.faults.after_records[0]:
            action = self.faults.after_records[1]
            self.faults.after_records = None
            action()
        return batch

    def _fetch(self, limit: int) -> list[Message]:
        """One fetch round: a run of each partition's records (or an event), up to ``limit`` in all."""
        out: list[Message] = []
        for tp, pos in list(self.assigned.items()):
            if len(out) >= limit:
                break
            if not (pos.paused or pos.stopped):
                out += self._run(tp, pos, min(self.run_length, limit - len(out)))
        return out

    def _run(self, tp: TP, pos: _Position, limit: int) -> list[Message]:
        topic, partition = tp
        low, high = self.cluster.watermarks(topic, partition)
        pos.fetched = True
        if not low <= pos.offset <= high:
            return self._out_of_range(tp, pos, low, high)
        held = self.faults.hold.get(tp, high)
        records = self.cluster.read(topic, partition, pos.offset, min(held, high), limit)
        out = []
        error = self.faults.error_at.get(tp)
        if error is not None and error[0] <= (records[-1].offset if records else held):
            records = [r for r in records if r.offset < error[0]]
            del self.faults.error_at[tp]
            self.faults.injected.append(f"error at {topic}[{partition}] offset {error[0]}: {error[1].str()}")
            out = [_event(tp, error[0], error[1])]
        if records:
            pos.offset = records[-1].offset + 1
            self.records_out += len(records)
            out = [_message(topic, partition, r) for r in records] + out
        if not out and held >= high and pos.offset < high:
            pos.offset = high  # nothing but skipped offsets (markers, compacted) up to the end
        if not out and pos.offset == high and pos.eof_at != high:
            pos.eof_at = high
            out = [_event(tp, high, KafkaError(KafkaError._PARTITION_EOF, "Broker: No more messages"))]
        return out

    def _out_of_range(self, tp: TP, pos: _Position, low: int, high: int) -> list[Message]:
        reset = self.config.get("auto.offset.reset", "latest")
        if reset == "error":
            pos.stopped = True
            text = f"{tp[0]} [{tp[1]}]: fetch offset {pos.offset} is out of range [{low}, {high})"
            return [_event(tp, pos.offset, KafkaError(KafkaError._AUTO_OFFSET_RESET, text))]
        pos.offset = low if reset in ("earliest", "smallest", "beginning") else high
        return []

    def _check_hold(self) -> None:
        if not self.faults.hold:
            return
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
        elif now - self._held_since > self.faults.hold_limit_secs:
            raise AssertionError("the run waited on held records far longer than the test expects")

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]:
        self._check_open()
        tp = (partition.topic, partition.partition)
        if cached and not (tp in self.assigned and self.assigned[tp].fetched):
            return OFFSET_INVALID, OFFSET_INVALID
        return self.cluster.watermarks(*tp)

    def close(self) -> None:
        self.closed = True

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("Consumer closed")


def _message(topic: str, partition: int, record: FakeRecord) -> Message:
    return Message(
        topic=topic,
        partition=partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=None if record.headers is None else list(record.headers),
        timestamp=(record.timestamp_type, record.timestamp),
    )


def _event(tp: TP, offset: int, error: KafkaError) -> Message:
    return Message(topic=tp[0], partition=tp[1], offset=offset, error=error)

"""A producer into :class:`~tests.fakes.cluster.FakeCluster`, as the restore engine uses one.

``produce`` queues a record; ``poll`` and ``flush`` deliver what is queued, in
order, by appending it to the cluster, and serve the delivery callbacks
(failures only with ``delivery.report.only.error``). A full queue raises
``BufferError`` as librdkafka's does, so the engine's drain-and-retry path
runs too. Timestamp 0 means "now", as in librdkafka.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from tests.fakes.cluster import TP, FakeCluster, Headers

DeliveryCallback = Callable[[KafkaError | None, Message], None]
#: A record by its target partition and its number (from 1) among the records sent to it.
RecordNumber = tuple[TP, int]


@dataclass(slots=True)
class ProducerFaults:
    """What the producer does wrong, and when."""

    #: This produce() call raises KafkaException instead of queueing the record.
    raise_at: RecordNumber | None = None
    #: This record's delivery fails (``_MSG_TIMED_OUT``): it never reaches the log.
    fail_delivery_at: RecordNumber | None = None
    #: With a failed delivery, the partition's later records fail too (True), or still
    #: land after the gap (False: librdkafka's idempotent producer when a queued record
    #: times out; see "Message timeout considerations" in librdkafka's INTRODUCTION.md).
    fail_rest_of_partition: bool = True
    #: From this record on the partition's leader acknowledges nothing: its records stay
    #: queued (not counted against the queue limit) and flush() gives up with them left.
    stall_from: RecordNumber | None = None
    #: What became of the stalled records once flush() gave up: "lost" (never written)
    #: or "landed" (written by the broker after the client stopped waiting).
    stalled: str = "lost"
    #: (n, action): ``action()`` runs once n records have been queued in all.
    after_records: tuple[int, Callable[[], None]] | None = None
    #: The faults that fired, in order.
    injected: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Queued:
    number: RecordNumber
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    timestamp: int
    on_delivery: DeliveryCallback | None


class FakeProducer:
    """``produce``, ``poll``, ``flush`` and ``len``; thread-safe like the real one."""

    def __init__(
        self, cluster: FakeCluster, config: dict[str, Any], faults: ProducerFaults, *, queue_limit: int = 50
    ) -> None:
        self.cluster = cluster
        self.config = config
        self.faults = faults
        self.queue_limit = queue_limit
        self.produced: dict[TP, int] = {}  # records queued, per partition
        self._queue: list[_Queued] = []
        self._stalled: list[_Queued] = []
        self._failed: set[TP] = set()  # partitions whose later records fail after a failed delivery
        self._lock = threading.RLock()

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        on_delivery: DeliveryCallback | None = None,
        callback: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Headers | None = None,
    ) -> None:
        with self._lock:
            if len(self._queue) >= self.queue_limit:
                raise BufferError("Local: Queue full")
            if not 0 <= partition < len(self.cluster.topics[topic].partitions):
                raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION, "Local: Unknown partition"))
            tp = (topic, partition)
            number = (tp, self.produced.get(tp, 0) + 1)
            if number == self.faults.raise_at:
                self.faults.injected.append(f"produce() of record {number}")
                raise KafkaException(
                    KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")
                )
            self.produced[tp] = number[1]
            self._queue.append(_Queued(number, key, value, headers, timestamp, on_delivery or callback))
            after = self.faults.after_records
            if after is not None and sum(self.produced.values()) >= after[0]:
                self.faults.after_records = None
                after[1]()

    def poll(self, timeout: float | None = None) -> int:
        return self._deliver()

    def flush(self, timeout: float | None = None) -> int:
        with self._lock:
            self._deliver()
            left = len(self._queue) + len(self._stalled)
            if self._stalled:
                self.faults.injected.append(
                    f"flush() gave up with {left} records, then {self.faults.stalled}"
                )
                stalled, self._stalled = self._stalled, []
                if self.faults.stalled == "landed":
                    for item in stalled:
                        self._write(item)
            return left

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._stalled)

    def _deliver(self) -> int:
        """Write every queued record in order, or fail or stall it; returns the callbacks served."""
        served = 0
        with self._lock:
            queue, self._queue = self._queue, []
            for item in queue:
                tp, n = item.number
                stall = self.faults.stall_from
                if stall is not None and stall[0] == tp and n >= stall[1]:
                    self._stalled.append(item)
                elif item.number == self.faults.fail_delivery_at:
                    self.faults.injected.append(f"delivery of record {item.number}")
                    if self.faults.fail_rest_of_partition:
                        self._failed.add(tp)
                    served += self._report(item, _TIMED_OUT)
                elif tp in self._failed:
                    served += self._report(item, _TIMED_OUT)
                else:
                    served += self._write(item)
        return served

    def _write(self, item: _Queued) -> int:
        (topic, partition), _ = item.number
        ts = item.timestamp or None  # 0: the client stamps the current time
        offset = self.cluster.append(topic, partition, item.key, item.value, item.headers, ts)
        return self._report(item, None, offset)

    def _report(self, item: _Queued, error: KafkaError | None, offset: int = -1001) -> int:
        callback = item.on_delivery or self.config.get("on_delivery")
        if callback is None or (error is None and self.config.get("delivery.report.only.error")):
            return 0
        (topic, partition), _ = item.number
        msg = Message(
            topic=topic, partition=partition, offset=offset, key=item.key, value=item.value, error=error
        )
        callback(error, msg)
        return 1


_TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out")

"""An in-memory Kafka cluster: topics, partitions and records, as the fake clients see them.

Each partition is a log of :class:`FakeRecord` with a log start offset (what
retention has deleted sits below it) and an end offset (the high watermark).
Offsets may skip values, as compaction, transaction markers and aborted
records make them: :meth:`FakeCluster.skip` advances the end without a record.
Appends wake consumers waiting for records (:meth:`FakeCluster.wait`).
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import TIMESTAMP_CREATE_TIME

from libkb.format.segment import Record

TP = tuple[str, int]
Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True)
class FakeRecord:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    timestamp: int
    timestamp_type: int = TIMESTAMP_CREATE_TIME

    def stored(self) -> Record:
        """The record in libkb's stored form: what a backup segment holds."""
        return (self.offset, self.timestamp, self.timestamp_type, self.key, self.value, self.headers)


@dataclass(slots=True)
class FakePartition:
    records: list[FakeRecord] = field(default_factory=list)
    log_start: int = 0  # the low watermark
    end: int = 0  # the high watermark: the next offset to be written

    def read(self, offset: int, before: int, limit: int) -> list[FakeRecord]:
        """Up to ``limit`` records from ``offset`` on, below ``before``, in offset order."""
        i = bisect.bisect_left(self.records, offset, key=_offset)
        return [r for r in self.records[i : i + limit] if r.offset < before]


@dataclass(slots=True)
class FakeTopic:
    partitions: list[FakePartition]
    configs: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1
    #: The topic id's two halves (KIP-516); (0, 0): none, as a broker before Kafka 2.8 answers.
    uuid: tuple[int, int] = (0, 0)


class FakeCluster:
    """Topics, committed consumer-group offsets and a cluster id; thread-safe."""

    def __init__(self, cluster_id: str = "fake-cluster") -> None:
        self.cluster_id = cluster_id
        self.topics: dict[str, FakeTopic] = {}
        #: group -> (topic, partition) -> committed offset
        self.groups: dict[str, dict[TP, int]] = {}
        #: groups with active members (a restore must not reset their offsets)
        self.active_groups: set[str] = set()
        #: topic -> the error code the admin's delete_records answers for it (e.g. not authorized)
        self.refused_deletes: dict[str, int] = {}
        self._changed = threading.Condition()

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        configs: dict[str, str] | None = None,
        replication_factor: int = 1,
        *,
        uuid: tuple[int, int] = (0, 0),
    ) -> None:
        with self._changed:
            if name in self.topics:
                raise ValueError(f"topic {name!r} exists")
            self.topics[name] = FakeTopic(
                [FakePartition() for _ in range(partitions)], dict(configs or {}), replication_factor, uuid
            )

    def partition(self, topic: str, partition: int) -> FakePartition:
        return self.topics[topic].partitions[partition]

    def append(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        timestamp: int | None = None,
        timestamp_type: int = TIMESTAMP_CREATE_TIME,
    ) -> int:
        """Write one record at the partition's end; returns its offset.

        Like Kafka, a record produced with no headers (or an empty list) is
        read back with none (``headers()`` is None).
        """
        with self._changed:
            log = self.partition(topic, partition)
            offset = log.end
            ts = int(time.time() * 1000) if timestamp is None else timestamp
            kept = list(headers) if headers else None
            log.records.append(FakeRecord(offset, key, value, kept, ts, timestamp_type))
            log.end += 1
            self._changed.notify_all()
            return offset

    def skip(self, topic: str, partition: int, count: int) -> None:
        """Offsets that hold no record a consumer sees (compacted away, transaction markers)."""
        with self._changed:
            self.partition(topic, partition).end += count
            self._changed.notify_all()

    def delete_records(self, topic: str, partition: int, before: int) -> None:
        """What retention (or ``delete_records``) does: the log now starts at ``before``."""
        with self._changed:
            log = self.partition(topic, partition)
            log.log_start = max(log.log_start, min(before, log.end))
            log.records = log.records[bisect.bisect_left(log.records, log.log_start, key=_offset) :]
            self._changed.notify_all()

    def records(self, topic: str, partition: int) -> list[FakeRecord]:
        with self._changed:
            return list(self.partition(topic, partition).records)

    def read(self, topic: str, partition: int, offset: int, before: int, limit: int) -> list[FakeRecord]:
        with self._changed:
            return self.partition(topic, partition).read(offset, before, limit)

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        with self._changed:
            log = self.partition(topic, partition)
            return log.log_start, log.end

    def commit(self, group: str, topic: str, partition: int, offset: int) -> None:
        with self._changed:
            self.groups.setdefault(group, {})[(topic, partition)] = offset

    def wait(self, timeout: float) -> None:
        """Block until a record is written or the log changes, or ``timeout`` passes."""
        with self._changed:
            self._changed.wait(timeout)


def _offset(record: FakeRecord) -> int:
    return record.offset

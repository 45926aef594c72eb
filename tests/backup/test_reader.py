"""The partition reader: what it makes of the consumer's records, ends, events and errors.

Kafka is the fake cluster of :mod:`tests.fakes` (real ``Message`` objects,
runs of records per partition, EOF and offset-reset events); the builder and
the store pipeline behind the reader are the real ones, on the memory backend.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError

from libkb.backup.builder import SegmentBuilder, SegmentLimits
from libkb.backup.errors import BackupError
from libkb.backup.plan import PartitionPlan
from libkb.backup.reader import PartitionReader, consumer_config
from libkb.backup.store import PartitionLane
from libkb.config.models import BackupOptions
from libkb.format.models import PartitionIndex
from libkb.format.segment import SegmentReader
from libkb.metrics import RunMetrics
from libkb.ratelimit import RateLimiter
from tests.backup.support import BID, Owner, Store, make_pipeline, memory_store
from tests.fakes import ConsumerFaults, FakeCluster, FakeConsumer


class Setup:
    """A reader over a fake consumer, with a real builder and store pipeline on the memory backend."""

    def __init__(
        self, store: Store, *, continuous: bool = False, faults: ConsumerFaults | None = None
    ) -> None:
        self.store = store
        self.cluster = FakeCluster()
        self.consumer = FakeConsumer(
            self.cluster, consumer_config(BackupOptions(), BID), faults or ConsumerFaults()
        )
        self.pipeline = make_pipeline(store, Owner())
        self.builder = SegmentBuilder(
            self.pipeline,
            SegmentLimits.from_options(BackupOptions()),
            metrics=RunMetrics(),
            backup_id=BID,
            limiter=RateLimiter(),
            heartbeat=lambda: None,
        )
        self.stop = threading.Event()
        self.missing: list[str] = []
        self.reader = PartitionReader(
            self.consumer,  # type: ignore[arg-type]
            self.builder,
            continuous=continuous,
            stop=self.stop,
            timeout=1.0,
            missing_ranges=self.missing,
        )

    def topic(self, name: str, records: int, partitions: int = 1) -> None:
        self.cluster.create_topic(name, partitions)
        for i in range(records * partitions):
            self.cluster.append(name, i % partitions, b"k", b"v%d" % i, timestamp=1_700_000_000_000 + i)

    def open(self, topic: str, partition: int, start: int, end: int | None) -> None:
        lane = PartitionLane(topic, partition, PartitionIndex(topic, partition))
        self.builder.open(PartitionPlan(topic, partition, start, end), lane)

    def read(self, tick: Callable[[float], None] | None = None) -> None:
        self.reader.start()
        self.reader.run(tick or (lambda now: None))
        self.builder.close_all()
        self.pipeline.wait()

    def stored(self, topic: str, partition: int) -> list[tuple[int, int, list[int]]]:
        out = []
        for entry in self.store.index(topic, partition).segments:
            got = SegmentReader(self.store.backend.get(entry.key)).records()
            out.append((entry.base_offset, entry.end_offset, [r[0] for r in got]))
        return out


@pytest.fixture
def store() -> Iterator[Store]:
    yield from memory_store()


@pytest.fixture
def setup(store: Store) -> Iterator[Setup]:
    s = Setup(store)
    yield s
    s.pipeline.close()


def test_a_snapshot_partition_ends_at_its_planned_end(setup: Setup) -> None:
    setup.topic("t", 9)
    setup.open("t", 0, 3, 6)
    setup.read()
    assert setup.stored("t", 0) == [(3, 6, [3, 4, 5])]
    assert setup.builder.active == 0 and setup.consumer.assigned[("t", 0)].paused


def test_a_snapshot_never_asks_for_more_records_than_it_has_left(setup: Setup) -> None:
    """consume() waits for a full batch or its timeout: asking past the end would wait out the timeout."""
    setup.topic("t", 3_000, partitions=3)
    for p in range(3):
        setup.open("t", p, 0, 3_000)
    asked: list[tuple[int, int]] = []  # (batch asked for, offsets left before it)
    consume = setup.consumer.consume

    def counting(num_messages: int = 1, timeout: float = -1) -> list[Any]:
        asked.append((num_messages, setup.reader.remaining()))
        return consume(num_messages, timeout)

    setup.consumer.consume = counting  # type: ignore[method-assign]
    setup.read()
    assert all(want <= max(1, left) for want, left in asked), asked
    assert asked[0][0] == 2_000 and asked[-1][0] < 2_000  # full batches until the end nears
    assert [len(records) for _, _, records in setup.stored("t", 0)] == [3_000]


def test_the_end_event_covers_offsets_without_records(setup: Setup) -> None:
    """Records 0-4, then a transaction marker at 5: the end (6) arrives as an EOF event."""
    setup.topic("t", 5)
    setup.cluster.skip("t", 0, 1)
    setup.open("t", 0, 0, 6)
    setup.read()
    assert setup.stored("t", 0) == [(0, 6, [0, 1, 2, 3, 4])]


def test_offsets_deleted_while_reading_are_recorded_missing(store: Store) -> None:
    def retention() -> None:
        setup.cluster.delete_records("t", 0, 20)
        del faults.hold[("t", 0)]

    faults = ConsumerFaults(hold={("t", 0): 5}, after_records=(5, retention))
    setup = Setup(store, faults=faults)
    setup.topic("t", 25)
    setup.open("t", 0, 0, 25)
    setup.read()
    assert setup.stored("t", 0) == [(0, 5, [0, 1, 2, 3, 4]), (20, 25, [20, 21, 22, 23, 24])]
    index = store.index("t", 0)
    assert [(m.start, m.end) for m in index.missing] == [(5, 20)] and index.coverage_problems() == []
    assert len(setup.missing) == 1 and "t[0] offsets 5-19 were deleted by retention" in setup.missing[0]
    setup.pipeline.close()


def test_a_log_that_now_ends_before_what_was_read_fails_the_run(store: Store) -> None:
    def recreated() -> None:
        log = setup.cluster.partition("t", 0)
        log.records, log.end = log.records[:2], 2
        del faults.hold[("t", 0)]

    faults = ConsumerFaults(hold={("t", 0): 5}, after_records=(5, recreated))
    setup = Setup(store, faults=faults)
    setup.topic("t", 25)
    setup.open("t", 0, 0, 25)
    with pytest.raises(BackupError, match="deleted and recreated"):
        setup.read()
    setup.pipeline.close()


def test_retriable_errors_are_logged(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    transport = KafkaError(KafkaError._TRANSPORT, "Broker: transport", retriable=True)
    setup = Setup(store, faults=ConsumerFaults(error_at={("t", 0): (1, transport)}))
    setup.topic("t", 3)
    setup.open("t", 0, 0, 3)
    setup.read()
    assert setup.stored("t", 0) == [(0, 3, [0, 1, 2])] and "Kafka: Broker: transport" in caplog.text
    setup.pipeline.close()


def test_other_errors_fail_the_run(store: Store) -> None:
    denied = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed")
    setup = Setup(store, faults=ConsumerFaults(error_at={("t", 0): (1, denied)}))
    setup.topic("t", 3)
    setup.open("t", 0, 0, 3)
    with pytest.raises(BackupError, match=r"Kafka error on t\[0\]: Broker: Topic authorization failed"):
        setup.read()
    setup.pipeline.close()


def test_records_the_packer_does_not_take_are_packed_one_by_one(setup: Setup) -> None:
    setup.cluster.create_topic("t")
    for value in (b"a", b"b", b"odd", b"c"):
        setup.cluster.append("t", 0, b"k", value)
    # A bytearray value (not what librdkafka hands out): the C packer leaves it to Python.
    log = setup.cluster.partition("t", 0)
    log.records[2] = replace(log.records[2], value=cast(bytes, bytearray(b"odd")))
    setup.open("t", 0, 0, 4)
    setup.read()
    entry = setup.store.index("t", 0).segments[0]
    stored = list(SegmentReader(setup.store.backend.get(entry.key)).records())
    assert [(r[0], r[4]) for r in stored] == [(0, b"a"), (1, b"b"), (2, b"odd"), (3, b"c")]


def test_interleaved_topics_and_partitions_each_get_their_own_records(setup: Setup) -> None:
    setup.topic("t", 20, partitions=2)
    setup.topic("u", 9)
    for topic, partition, end in (("t", 0, 20), ("t", 1, 20), ("u", 0, 9)):
        setup.open(topic, partition, 0, end)
    setup.read()
    assert setup.stored("t", 0) == [(0, 20, list(range(20)))]
    assert setup.stored("t", 1) == [(0, 20, list(range(20)))]
    assert setup.stored("u", 0) == [(0, 9, list(range(9)))]


def test_housekeeping_can_add_partitions_while_reading(store: Store) -> None:
    """Continuous mode: a partition opened by the housekeeping tick is assigned and read."""
    setup = Setup(store, continuous=True)
    setup.topic("t", 2)
    setup.open("t", 0, 0, None)
    ticks: list[float] = []

    def tick(now: float) -> None:
        ticks.append(now)
        if len(ticks) == 1:
            setup.topic("new", 10)
            lane = PartitionLane("new", 0, PartitionIndex("new", 0))
            setup.reader.add([setup.builder.open(PartitionPlan("new", 0, 7, None), lane)])
        else:
            setup.stop.set()

    setup.read(tick)
    assert setup.stored("t", 0) == [(0, 2, [0, 1])]
    assert setup.stored("new", 0) == [(7, 10, [7, 8, 9])]
    setup.pipeline.close()


def test_lag_is_the_distance_to_the_partitions_end(store: Store) -> None:
    setup = Setup(store, continuous=True, faults=ConsumerFaults(hold={("t", 0): 3}))
    setup.topic("t", 10)
    setup.open("t", 0, 0, None)
    setup.reader.start()
    assert list(setup.reader.lags()) == []  # nothing fetched yet
    setup.reader.run(lambda now: setup.stop.set())
    assert list(setup.reader.lags()) == [("t", 0, 7)]  # three records read, in the open block
    setup.builder.close_all()
    setup.pipeline.wait()
    setup.pipeline.close()


def test_the_consumer_never_skips_offsets_silently() -> None:
    config = consumer_config(BackupOptions(fetch_max_bytes=64 * 1024), "bk")
    assert config["auto.offset.reset"] == "error" and config["enable.partition.eof"] is True
    assert config["group.id"] == "libkb-backup-bk" and config["enable.auto.commit"] is False
    assert config["fetch.max.bytes"] == 64 * 1024 and config["message.max.bytes"] == 64 * 1024
    assert "fetch.max.bytes" not in consumer_config(BackupOptions(), "bk")

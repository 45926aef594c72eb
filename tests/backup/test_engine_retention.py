"""``backup.retention``: a backup run prunes its own backup, at a snapshot's end and while continuous.

The cuts go through the run's store queue under the run's lease, so they
never race its segment stores; what the run keeps validates and restores
exactly; a cut storage refuses never fails the run, and the next run finishes
it. Kafka is :class:`tests.fakes.FakeKafka`.
"""

from __future__ import annotations

import threading
import time

import pytest

from integration.kafka_data import BASE_TS
from libkb.metrics import RunMetrics
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import Fault, FaultyBackend
from tests.fakes.jobs import BACKUP_ID, PARTITIONS, TOPIC, backup_config, backup_engine, source_kafka
from tests.prune.support import assert_restores_kept, assert_valid, coverage, stored_segments

WEEK = "backup.retention: max_age 1w, keep_segments 1"


@pytest.fixture
def memory() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


def test_a_snapshot_run_prunes_at_its_end_what_its_retention_says(memory: StorageBackend) -> None:
    kafka = source_kafka()  # records of 2020: all older than a week
    engine = backup_engine(kafka, memory, backup_config(retention={"max_age": "1w", "keep_segments": 1}))
    result = engine.run()
    assert result.status == "complete" and result.records == sum(
        len(kafka.cluster.records(TOPIC, p)) for p in range(PARTITIONS)
    )
    for p, index in coverage(memory).items():
        assert len(index.segments) == 1  # keep_segments
        (pruned,) = index.pruned
        assert pruned.reason == WEEK and pruned.start == index.start_offset
        assert index.end_offset == kafka.cluster.watermarks(TOPIC, p)[1]  # where the next run continues
    assert len(stored_segments(memory)) == PARTITIONS
    cut = sum(i.pruned[0].segments for i in coverage(memory).values())
    assert engine.metrics.pruned_segments.labels(BACKUP_ID)._value.get() == cut
    assert_valid(memory)
    assert_restores_kept(memory, kafka.cluster)


def test_max_total_bytes_keeps_the_newest_segments_within_the_cap(memory: StorageBackend) -> None:
    kafka = source_kafka()
    result = backup_engine(kafka, memory, backup_config(retention={"max_total_bytes": 3000})).run()
    assert result.status == "complete"
    kept = sum(i.size for i in coverage(memory).values())
    assert 0 < kept <= 3000 < result.stored_bytes
    assert_valid(memory)
    assert_restores_kept(memory, kafka.cluster)


def test_a_cut_storage_refuses_never_fails_the_run_and_the_next_run_finishes_it(
    memory: StorageBackend,
) -> None:
    kafka = source_kafka()
    config = backup_config(retention={"max_age": "1w", "keep_segments": 1})
    faulty = FaultyBackend(memory, Fault("delete", ".kbs", times=1_000_000))
    engine = backup_engine(kafka, faulty, config)
    assert engine.run().status == "complete"  # the indexes are cut; the deletes all failed
    assert faulty.injected and len(stored_segments(memory)) > PARTITIONS
    warnings = assert_valid(memory)
    assert sum("the prune was stopped before deleting it" in w for w in warnings) == len(faulty.injected)
    assert_restores_kept(memory, kafka.cluster)

    assert backup_engine(kafka, memory, config).run().records == 0  # nothing new: the run only tidies
    assert len(stored_segments(memory)) == PARTITIONS
    assert assert_valid(memory) == []


def test_a_continuous_run_prunes_while_it_runs_and_keeps_what_restores_exactly(
    memory: StorageBackend,
) -> None:
    kafka = source_kafka()
    config = backup_config(
        continuous=True,
        segment_max_interval_ms=100,
        retention={"max_total_bytes": 4000, "interval": "1s"},
    )
    metrics = RunMetrics()
    engine = backup_engine(kafka, memory, config)
    engine.metrics = metrics
    run = threading.Thread(target=engine.run)
    run.start()
    try:
        for round in range(6):
            for p in range(PARTITIONS):
                for i in range(20):
                    value = f"round-{round}-{i}".encode() * 8
                    kafka.cluster.append(TOPIC, p, b"k", value, None, BASE_TS + 10**7 + round * 1000 + i)
            time.sleep(0.3)
        deadline = time.monotonic() + 30
        while metrics.pruned_segments.labels(BACKUP_ID)._value.get() < 3 * PARTITIONS:
            assert time.monotonic() < deadline, "the continuous run did not prune"
            time.sleep(0.1)
    finally:
        engine.stop()
        run.join(30)
    assert not run.is_alive()
    indexes = coverage(memory)
    assert all(
        i.pruned and i.pruned[0].reason == "backup.retention: max_total_bytes 4000" for i in indexes.values()
    )
    assert_valid(memory)
    assert_restores_kept(memory, kafka.cluster)
    oldest = metrics.oldest_retained.gauge.labels(TOPIC, "0", BACKUP_ID)._value.get()
    assert oldest * 1000 == min(s.min_timestamp for s in indexes[0].segments if s.record_count)

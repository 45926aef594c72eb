"""The backup engine fails cleanly at every step, and a re-run makes the backup exact.

One test body runs per injected failure: the run ends with a libkb error,
what is stored validates (deep), and a second run without the fault stores
every record of the source exactly once. Kafka is :class:`tests.fakes.FakeKafka`,
storage the memory backend behind a :class:`tests.fakes.FaultyBackend`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError

from libkb.backup.lease import LeaseLostError
from libkb.errors import LibkbError
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import ConsumerFaults, Fault, FaultyBackend, break_compression
from tests.fakes.jobs import (
    PARTITIONS,
    TOPIC,
    assert_backup_exact,
    assert_backup_valid,
    backup_config,
    backup_engine,
    run_backup,
    runs,
    source_kafka,
)

SHORT_TTL = 0.3  # seconds: renewal every 0.1 s, given up after 0.24 s of failures


@dataclass(frozen=True)
class Step:
    """Where the first run fails: storage faults, a Kafka fault, or a compression failure."""

    faults: tuple[Fault, ...] = ()
    consumer: Callable[[], ConsumerFaults] | None = None
    compression_call: int | None = None
    lease_ttl_secs: float | None = None
    raises: type[LibkbError] = LibkbError


AUTHORIZATION_LOST = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Broker: Topic authorization failed")


STEPS = {
    "consume": Step(consumer=lambda: ConsumerFaults(error_at={(TOPIC, 1): (60, AUTHORIZATION_LOST)})),
    "compress": Step(compression_call=5),
    "segment-upload": Step((Fault("put_stream", "partition=1/segment-", nth=2),)),
    "segment-upload-mid-stream": Step((Fault("put_stream", "partition=1/segment-", nth=2, after_chunks=2),)),
    "index-write": Step((Fault("put", "partition=1/index.json", nth=2),)),
    "manifest-write-at-start": Step((Fault("put", "/manifest.json", nth=1),)),
    "manifest-write-at-end": Step((Fault("put", "/manifest.json", nth=2),)),
    "lease-acquisition": Step((Fault("put_if_absent", "/lease/"),)),
    "lease-renewal": Step(
        # Renewals fail, and so does taking the next generation once the lease expired.
        (Fault("put", "/lease/", times=1_000_000), Fault("put_if_absent", "/lease/", nth=2, times=1_000_000)),
        consumer=lambda: ConsumerFaults(hold={(TOPIC, 0): 50}),  # the run lasts until it sees the loss
        lease_ttl_secs=SHORT_TTL,
        raises=LeaseLostError,
    ),
    "group-snapshot-write": Step((Fault("put", "/consumer-groups.json"),)),
}


@pytest.fixture
def memory() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


@pytest.mark.parametrize("step", list(STEPS))
def test_a_failed_run_leaves_a_valid_backup_and_a_rerun_makes_it_exact(
    step: str, memory: StorageBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = source_kafka()
    how = STEPS[step]
    faulty = FaultyBackend(memory, *how.faults)
    if how.consumer is not None:
        kafka.consumer_faults = how.consumer()
    failed_compressions = break_compression(monkeypatch, how.compression_call) if how.compression_call else []
    config = backup_config(lease_ttl_secs=how.lease_ttl_secs)

    with pytest.raises(how.raises):
        backup_engine(kafka, faulty, config).run()
    assert faulty.injected or kafka.consumer_faults.injected or failed_compressions, "nothing was injected"
    assert all(c.closed for c in kafka.consumers)
    assert_backup_valid(memory)

    monkeypatch.undo()
    kafka.heal()
    result = run_backup(backup_engine(kafka, memory, config), wait_for_lease=10 if how.lease_ttl_secs else 0)
    assert result.status == "complete"
    assert_backup_exact(memory, kafka.cluster)
    statuses = [r.status for r in runs(memory)]
    assert statuses[-1] == "complete" and set(statuses[:-1]) <= {"failed", "interrupted"}


def test_a_stopped_snapshot_is_interrupted_and_the_next_run_completes_it(memory: StorageBackend) -> None:
    kafka = source_kafka()
    engine = backup_engine(kafka, memory)
    kafka.consumer_faults.after_records = (150, engine.stop)
    total = sum(len(kafka.cluster.records(TOPIC, p)) for p in range(PARTITIONS))
    first = engine.run()
    assert first.status == "interrupted" and not first.ok
    assert 0 < first.records < total
    assert_backup_valid(memory)

    kafka.heal()
    second = backup_engine(kafka, memory).run()
    assert second.status == "complete"
    assert first.records + second.records == total  # nothing read twice
    assert_backup_exact(memory, kafka.cluster)
    assert [r.status for r in runs(memory)] == ["interrupted", "complete"]

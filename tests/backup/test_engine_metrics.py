"""The metrics the original tool's dashboards use, measured by libkb's runs (fake Kafka, memory storage).

Snapshot progress (target and remaining), lag totals, offsets lost to
retention, run durations; and a restore's progress, rate, ETA and bytes read.
"""

from __future__ import annotations

import pytest

from libkb.backup.engine import BackupEngine
from libkb.backup.state import load_index
from libkb.metrics import RunMetrics
from libkb.restore.engine import RestoreEngine
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeKafka
from tests.fakes.jobs import BACKUP_ID, PARTITIONS, TOPIC, backup_config, fill, restore_config, run_backup


@pytest.fixture
def backend() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


def _value(metrics: RunMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def _backup(kafka: FakeKafka, backend: StorageBackend) -> RunMetrics:
    metrics = RunMetrics()
    engine = BackupEngine(
        backup_config(), backend=backend, admin=kafka.admin(), consumer_factory=kafka.consumer_factory,
        metrics=metrics,
    )  # fmt: skip
    assert run_backup(engine).status == "complete"
    return metrics


def test_a_snapshot_run_reports_its_target_its_progress_and_its_duration(backend: StorageBackend) -> None:
    kafka = FakeKafka()
    fill(kafka.cluster)
    marks = [kafka.cluster.watermarks(TOPIC, p) for p in range(PARTITIONS)]
    metrics = _backup(kafka, backend)
    bid = {"backup_id": BACKUP_ID}
    assert _value(metrics, "kafka_backup_snapshot_records_target", **bid) == sum(h - low for low, h in marks)
    assert _value(metrics, "kafka_backup_snapshot_records_remaining", **bid) == 0
    assert _value(metrics, "kafka_backup_lag_records_sum", **bid) == 0
    assert _value(metrics, "kafka_backup_lag_records_max", **bid) == 0
    assert _value(metrics, "kafka_backup_duration_seconds_count", **bid) == 1
    assert _value(metrics, "kafka_backup_offsets_skipped_total", **bid) == 0


def test_offsets_retention_deleted_before_a_run_read_them_are_counted(backend: StorageBackend) -> None:
    kafka = FakeKafka()
    fill(kafka.cluster)
    _backup(kafka, backend)
    end = load_index(backend, BACKUP_ID, TOPIC, 0)[0].end_offset
    assert end is not None
    for i in range(30):  # more records, then retention deletes 25 offsets past the stored end
        kafka.cluster.append(TOPIC, 0, b"k", b"v%d" % i, None, 1_700_000_000_000 + i, 0)
    kafka.cluster.delete_records(TOPIC, 0, end + 25)
    metrics = _backup(kafka, backend)
    assert _value(metrics, "kafka_backup_offsets_skipped_total", backup_id=BACKUP_ID) == 25


def test_a_restore_reports_progress_rate_eta_bytes_read_and_duration(backend: StorageBackend) -> None:
    kafka = FakeKafka()
    fill(kafka.cluster)
    _backup(kafka, backend)
    metrics = RunMetrics()
    engine = RestoreEngine(
        restore_config(), backend=backend, admin=kafka.admin(), producer_factory=kafka.producer_factory,
        consumer_factory=kafka.consumer_factory, metrics=metrics,
    )  # fmt: skip
    result = engine.run()
    assert result.status == "complete"
    labels = {"backup_id": BACKUP_ID, "restore_id": result.restore_id}
    assert _value(metrics, "kafka_restore_progress_percent", **labels) == 100.0
    assert _value(metrics, "kafka_restore_eta_seconds", **labels) == 0.0
    rate = _value(metrics, "kafka_restore_throughput_records_per_sec", **labels)
    assert rate is not None and rate > 0
    indexes = [load_index(backend, BACKUP_ID, TOPIC, p)[0] for p in range(PARTITIONS)]
    stored = sum(s.size for i in indexes for s in i.segments if s.record_count)  # empty ones are not read
    assert (
        _value(metrics, "kafka_backup_storage_read_bytes_total", backend="memory", backup_id=BACKUP_ID)
        == stored
    )
    assert _value(metrics, "kafka_restore_duration_seconds_count", backup_id=BACKUP_ID) == 1

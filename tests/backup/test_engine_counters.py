"""Records read and records stored are counted apart, so a quiet continuous backup shows it is reading.

A continuous backup holds records in an open segment for up to
``segment_max_interval_ms``; the read counters (and ``kafka_backup_records_total``,
which counts records read in the original tool too) move before it closes.
"""

from __future__ import annotations

import threading

from libkb.backup.engine import BackupEngine, BackupProgress
from libkb.metrics import RunMetrics
from libkb.storage import MemoryConfig, create_backend_from_config
from tests.fakes import FakeKafka
from tests.fakes.jobs import BACKUP_ID, PARTITIONS, PER_PARTITION, backup_config, fill

LONG = {"segment_max_interval_ms": 3_600_000, "block_bytes": 16 << 20, "segment_max_records": None}


def _value(metrics: RunMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name, {"backup_id": BACKUP_ID})
    return value or 0.0


def test_continuous_read_counters_move_before_any_segment_is_stored() -> None:
    kafka = FakeKafka()
    fill(kafka.cluster)
    metrics = RunMetrics()
    seen: list[tuple[BackupProgress, float, float]] = []
    engine: BackupEngine

    def progress(p: BackupProgress) -> None:
        if p.records and not seen:
            seen.append(
                (
                    p,
                    _value(metrics, "kafka_backup_records_total"),
                    _value(metrics, "kafka_backup_records_stored_total"),
                )
            )
            engine.stop()

    engine = BackupEngine(
        backup_config(continuous=True, **LONG),
        backend=create_backend_from_config(MemoryConfig()),
        admin=kafka.admin(),
        consumer_factory=kafka.consumer_factory,
        metrics=metrics,
        progress=progress,
    )
    safety = threading.Timer(60, engine.stop)  # without read counters nothing would ever stop it
    safety.start()
    try:
        result = engine.run()
    finally:
        safety.cancel()
    assert result.status == "stopped"
    ((first, read_metric, stored_metric),) = seen
    assert first.records > 0 and first.bytes > 0
    assert first.segments == 0 and first.stored_records == 0 and first.stored_bytes == 0
    assert read_metric == first.records and stored_metric == 0
    # Stopping stores what was open: read and stored agree at the end.
    assert result.stored_records == result.records == _value(metrics, "kafka_backup_records_stored_total")
    assert result.segments == _value(metrics, "kafka_backup_segments_total") > 0


def test_a_snapshot_reports_last_what_its_summary_says() -> None:
    kafka = FakeKafka()
    fill(kafka.cluster)
    reports: list[BackupProgress] = []
    metrics = RunMetrics()
    engine = BackupEngine(
        backup_config(),
        backend=create_backend_from_config(MemoryConfig()),
        admin=kafka.admin(),
        consumer_factory=kafka.consumer_factory,
        metrics=metrics,
        progress=reports.append,
    )
    result = engine.run()
    last = reports[-1]
    assert result.records == PARTITIONS * PER_PARTITION
    assert (last.records, last.stored_records, last.segments, last.stored_bytes) == (
        result.records,
        result.stored_records,
        result.segments,
        result.stored_bytes,
    )
    assert last.partitions_done == last.partitions_total == PARTITIONS
    assert _value(metrics, "kafka_backup_records_total") == result.records

"""Prometheus metrics of the engines, named as the original tool's where they measure the same.

Dashboards built for the original keep working; what it registered but
never set (restore, retries, storage reads) is measured here. A run owns its
:class:`RunMetrics`: the families live in the run's registry (the ops server
serves it), nothing is registered on import, and two engines in one process
never share counters by accident.
"""

from __future__ import annotations

import threading
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from libkb.storage.metrics import StorageMetrics


class GaugeChild(Protocol):
    def set(self, value: float) -> None: ...


class _Dropped:
    """A label set over the limit: its values go nowhere."""

    def set(self, value: float) -> None:
        pass


class CappedGauge:
    """A labelled gauge that takes at most ``limit`` label sets (0: no limit), as the original tool.

    Thousands of partitions would otherwise make thousands of series per
    scrape; the first ``limit`` label sets seen keep being reported.
    """

    def __init__(self, gauge: Gauge, limit: int) -> None:
        self.gauge = gauge
        self.limit = limit
        self._seen: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()

    def labels(self, *values: str) -> GaugeChild:
        if self.limit:
            with self._lock:
                if values not in self._seen:
                    if len(self._seen) >= self.limit:
                        return _Dropped()
                    self._seen.add(values)
        child: GaugeChild = self.gauge.labels(*values)
        return child


#: Buckets of the run-duration histograms: seconds to a day.
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)


class RunMetrics:
    """Every metric one backup or restore run reports, storage included.

    ``max_partition_labels`` caps the per-partition label sets (metrics
    ``max_partition_labels``; 0, the library default, means no cap).
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, max_partition_labels: int = 0) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.storage = StorageMetrics(self.registry)
        self._backup_families(max_partition_labels)
        self._restore_families()

    def _backup_families(self, max_partition_labels: int) -> None:
        reg = self.registry
        self.backup_lag = CappedGauge(
            Gauge(
                "kafka_backup_lag_records",
                "Records between the backup's position and the partition's end",
                ["topic", "partition", "backup_id"],
                registry=reg,
            ),
            max_partition_labels,
        )
        # As the original tool: records and bytes read from Kafka, counted
        # before any segment holding them is stored; *_stored_* count those stored.
        self.backup_records = Counter(
            "kafka_backup_records_total", "Records read from Kafka", ["backup_id"], registry=reg
        )
        self.backup_bytes = Counter(
            "kafka_backup_bytes_total",
            "Record bytes read from Kafka, as encoded in blocks (keys, values, headers, offsets, timestamps)",
            ["backup_id"],
            registry=reg,
        )
        self.backup_records_stored = Counter(
            "kafka_backup_records_stored_total",
            "Records in the segments stored",
            ["backup_id"],
            registry=reg,
        )
        self.backup_bytes_stored = Counter(
            "kafka_backup_bytes_stored_total",
            "Bytes of the segments stored (compressed, with their heads and footers)",
            ["backup_id"],
            registry=reg,
        )
        self.backup_offset_gaps = Counter(
            "kafka_backup_offset_gaps_total",
            "Offsets absent from the log inside backed-up ranges (compaction, transaction markers)",
            ["backup_id"],
            registry=reg,
        )
        self.compressed_bytes = Counter(
            "kafka_backup_compressed_bytes_total",
            "Segment bytes after compression (blocks with their heads, and footers)",
            ["algorithm", "backup_id"],
            registry=reg,
        )
        self.uncompressed_bytes = Counter(
            "kafka_backup_uncompressed_bytes_total",
            "Bytes before compression",
            ["algorithm", "backup_id"],
            registry=reg,
        )
        self.compression_ratio = Gauge(
            "kafka_backup_compression_ratio",
            "Uncompressed / compressed bytes",
            ["algorithm", "backup_id"],
            registry=reg,
        )
        self.storage_write_bytes = Counter(
            "kafka_backup_storage_write_bytes_total",
            "Bytes written to storage",
            ["backend", "backup_id"],
            registry=reg,
        )
        self.segments = Counter("kafka_backup_segments_total", "Segments stored", ["backup_id"], registry=reg)
        self.errors = Counter(
            "kafka_backup_errors_total", "Errors by type", ["backup_id", "error_type"], registry=reg
        )
        self.last_success = Gauge(
            "kafka_backup_last_success_timestamp_seconds",
            "When a run of this backup last finished successfully (Unix time)",
            ["backup_id"],
            registry=reg,
        )
        self.storage_wait = Counter(
            "kafka_backup_storage_wait_seconds",
            "Seconds a backup or restore spent waiting for unreachable storage to come back",
            ["backup_id"],
            registry=reg,
        )
        self._backup_progress_families()
        self._retention_families(max_partition_labels)

    def _backup_progress_families(self) -> None:
        reg = self.registry
        self.backup_lag_sum = Gauge(
            "kafka_backup_lag_records_sum",
            "Records between the backup's positions and the partitions' ends, summed over its partitions",
            ["backup_id"],
            registry=reg,
        )
        self.backup_lag_max = Gauge(
            "kafka_backup_lag_records_max",
            "The largest lag of the backup's partitions, in records",
            ["backup_id"],
            registry=reg,
        )
        self.snapshot_target = Gauge(
            "kafka_backup_snapshot_records_target",
            "Offsets a snapshot run set out to read: to the partitions' ends seen at its start",
            ["backup_id"],
            registry=reg,
        )
        self.snapshot_remaining = Gauge(
            "kafka_backup_snapshot_records_remaining",
            "Offsets a snapshot run has still to read before its target ends",
            ["backup_id"],
            registry=reg,
        )
        self.offsets_skipped = Counter(
            "kafka_backup_offsets_skipped_total",
            "Offsets retention deleted before the backup could read them (recorded as missing ranges)",
            ["backup_id"],
            registry=reg,
        )
        self.backup_duration = Histogram(
            "kafka_backup_duration_seconds",
            "Duration of backup runs",
            ["backup_id"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )

    def _retention_families(self, max_partition_labels: int) -> None:
        reg = self.registry
        self.pruned_segments = Counter(
            "kafka_backup_pruned_segments_total",
            "Segments deleted by retention (backup.retention, kafka-backup prune)",
            ["backup_id"],
            registry=reg,
        )
        self.pruned_bytes = Counter(
            "kafka_backup_pruned_bytes_total",
            "Stored bytes of the segments deleted by retention",
            ["backup_id"],
            registry=reg,
        )
        self.oldest_retained = CappedGauge(
            Gauge(
                "kafka_backup_oldest_retained_timestamp_seconds",
                "Timestamp of the oldest record the backup still holds for the partition (Unix time); "
                "alert when it grows older than the retention should allow",
                ["topic", "partition", "backup_id"],
                registry=reg,
            ),
            max_partition_labels,
        )

    def _restore_families(self) -> None:
        reg = self.registry
        self.restore_records = Counter(
            "kafka_restore_records_total", "Records restored", ["backup_id"], registry=reg
        )
        self.restore_bytes = Counter(
            "kafka_restore_bytes_total",
            "Record bytes restored (keys and values)",
            ["backup_id"],
            registry=reg,
        )
        self.restore_segments = Counter(
            "kafka_restore_segments_read_total", "Segments read by restores", ["backup_id"], registry=reg
        )
        self.restore_errors = Counter(
            "kafka_restore_errors_total", "Restore errors by type", ["backup_id", "error_type"], registry=reg
        )
        self.restore_duration = Histogram(
            "kafka_restore_duration_seconds",
            "Duration of restore runs",
            ["backup_id"],
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.restore_progress = Gauge(
            "kafka_restore_progress_percent",
            "Records restored so far, as a percentage of what the restore plans (0-100)",
            ["backup_id", "restore_id"],
            registry=reg,
        )
        self.restore_eta = Gauge(
            "kafka_restore_eta_seconds",
            "Seconds the restore should still take at its rate so far",
            ["backup_id", "restore_id"],
            registry=reg,
        )
        self.restore_rate = Gauge(
            "kafka_restore_throughput_records_per_sec",
            "Records restored per second so far",
            ["backup_id", "restore_id"],
            registry=reg,
        )
        self.storage_read_bytes = Counter(
            "kafka_backup_storage_read_bytes_total",
            "Segment bytes read from storage",
            ["backend", "backup_id"],
            registry=reg,
        )
        self.restore_last_success = Gauge(
            "kafka_restore_last_success_timestamp_seconds",
            "When a restore of this backup last finished successfully (Unix time)",
            ["backup_id"],
            registry=reg,
        )

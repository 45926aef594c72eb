"""Prometheus metrics of the engines, named as the original tool's where they measure the same.

Dashboards built for the original keep working; what it registered but
never set (restore, retries, storage reads) is measured here. Storage-level
metrics live in :mod:`libkb.storage.metrics`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

BACKUP_LAG = Gauge(
    "kafka_backup_lag_records",
    "Records between the backup's position and the partition's end",
    ["topic", "partition", "backup_id"],
)
BACKUP_RECORDS = Counter("kafka_backup_records_total", "Records backed up", ["backup_id"])
BACKUP_BYTES = Counter(
    "kafka_backup_bytes_total",
    "Record bytes backed up, as encoded in blocks (keys, values, headers, offsets, timestamps)",
    ["backup_id"],
)
BACKUP_OFFSET_GAPS = Counter(
    "kafka_backup_offset_gaps_total",
    "Offsets absent from the log inside backed-up ranges (compaction, transaction markers)",
    ["backup_id"],
)
COMPRESSED_BYTES = Counter(
    "kafka_backup_compressed_bytes_total",
    "Segment bytes after compression (blocks with their heads, and footers)",
    ["algorithm", "backup_id"],
)
UNCOMPRESSED_BYTES = Counter(
    "kafka_backup_uncompressed_bytes_total", "Bytes before compression", ["algorithm", "backup_id"]
)
COMPRESSION_RATIO = Gauge(
    "kafka_backup_compression_ratio", "Uncompressed / compressed bytes", ["algorithm", "backup_id"]
)
STORAGE_WRITE_BYTES = Counter(
    "kafka_backup_storage_write_bytes_total", "Bytes written to storage", ["backend", "backup_id"]
)
SEGMENTS = Counter("kafka_backup_segments_total", "Segments stored", ["backup_id"])
ERRORS = Counter("kafka_backup_errors_total", "Errors by type", ["backup_id", "error_type"])
LAST_SUCCESS = Gauge(
    "kafka_backup_last_success_timestamp_seconds",
    "When a run of this backup last finished successfully (Unix time)",
    ["backup_id"],
)

RESTORE_RECORDS = Counter("kafka_restore_records_total", "Records restored", ["backup_id"])
RESTORE_BYTES = Counter("kafka_restore_bytes_total", "Record bytes restored (keys and values)", ["backup_id"])
RESTORE_SEGMENTS = Counter("kafka_restore_segments_read_total", "Segments read by restores", ["backup_id"])
RESTORE_ERRORS = Counter("kafka_restore_errors_total", "Restore errors by type", ["backup_id", "error_type"])
RESTORE_LAST_SUCCESS = Gauge(
    "kafka_restore_last_success_timestamp_seconds",
    "When a restore of this backup last finished successfully (Unix time)",
    ["backup_id"],
)

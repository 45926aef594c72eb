"""Prometheus metrics of storage operations (names follow the original tool).

``kafka_backup_storage_write_latency_seconds`` keeps the original tool's name
and labels; reads, listings and errors are measured too, which the original
registered but never set.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

_WRITE_OPS = frozenset({"put", "put_if_absent", "put_stream", "copy", "delete"})

WRITE_LATENCY = Histogram(
    "kafka_backup_storage_write_latency_seconds",
    "Latency of storage writes",
    ["backend", "operation"],
)
READ_LATENCY = Histogram(
    "kafka_backup_storage_read_latency_seconds",
    "Latency of storage reads and metadata calls",
    ["backend", "operation"],
)
STORAGE_ERRORS = Counter(
    "kafka_backup_storage_errors_total",
    "Storage operations that failed, by error class",
    ["backend", "operation", "error_type"],
)


@contextmanager
def observe(backend: str, operation: str) -> Iterator[None]:
    """Time one storage operation and count its failure."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        STORAGE_ERRORS.labels(backend, operation, type(exc).__name__).inc()
        raise
    finally:
        histogram = WRITE_LATENCY if operation in _WRITE_OPS else READ_LATENCY
        histogram.labels(backend, operation).observe(time.perf_counter() - started)

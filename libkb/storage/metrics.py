"""Prometheus metrics of storage operations (names follow the original tool).

``kafka_backup_storage_write_latency_seconds`` keeps the original tool's name
and labels; reads, listings, errors and retries are measured too, which the
original registered but never set.

Nothing is registered on import: a :class:`StorageMetrics` registers its
families in the registry it is given (the run's, which the ops server
serves) or in a private one, so two runs in one process, or a library user's
own registry, never collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram

_WRITE_OPS = frozenset({"put", "put_if_absent", "put_stream", "copy", "delete"})


class StorageMetrics:
    """Latency, error and retry metrics of the backends that share this object."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.write_latency = Histogram(
            "kafka_backup_storage_write_latency_seconds",
            "Latency of storage writes",
            ["backend", "operation"],
            registry=self.registry,
        )
        self.read_latency = Histogram(
            "kafka_backup_storage_read_latency_seconds",
            "Latency of storage reads and metadata calls",
            ["backend", "operation"],
            registry=self.registry,
        )
        self.errors = Counter(
            "kafka_backup_storage_errors_total",
            "Storage operations that failed, by error class",
            ["backend", "operation", "error_type"],
            registry=self.registry,
        )
        self.retries = Counter(
            "kafka_backup_storage_retries_total",
            "Storage requests retried after a transient error",
            ["backend"],
            registry=self.registry,
        )

    @contextmanager
    def observe(self, backend: str, operation: str) -> Iterator[None]:
        """Time one storage operation and count its failure."""
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.errors.labels(backend, operation, type(exc).__name__).inc()
            raise
        finally:
            histogram = self.write_latency if operation in _WRITE_OPS else self.read_latency
            histogram.labels(backend, operation).observe(time.perf_counter() - started)

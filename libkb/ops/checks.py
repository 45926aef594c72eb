"""Readiness checks of the two dependencies a backup needs: Kafka and storage.

Each check is cheap and bounded: Kafka answers one metadata request, storage
one ``exists`` on the backup's manifest key. They are built from the same
settings the engine uses, so "ready" means "the engine could work now".
"""

from __future__ import annotations

import dataclasses
import threading

from libkb.config.models import SourceOptions
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin
from libkb.ops.health import Check
from libkb.storage import (
    AzureConfig,
    GcsConfig,
    ResilienceConfig,
    S3Config,
    StorageBackend,
    create_backend_from_config,
)
from libkb.storage.settings import BackendConfig


def kafka_check(source: SourceOptions, timeout_secs: float = 5.0) -> Check:
    """One metadata request with a timeout; a refused login or certificate is named in the error."""
    lock = threading.Lock()
    admins: list[KafkaAdmin] = []

    def check() -> str:
        with lock:
            if not admins:  # created once, reused by every check
                admins.append(KafkaAdmin(make_admin(source), timeout=timeout_secs))
            admin = admins[0]
        metadata = admin.metadata()
        return f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topic(s)"

    return check


def storage_check(backend: StorageBackend, key: str) -> Check:
    """``exists(key)``: reachable and permitted, whether or not the object is there yet."""

    def check() -> str:
        found = backend.exists(key)
        return f"{key} {'present' if found else 'not written yet'}"

    return check


def probe_backend(config: BackendConfig, shared: StorageBackend, timeout_secs: float) -> StorageBackend:
    """A backend for health checks: no retries and a short timeout on cloud storage.

    A check must answer "down" within seconds, not after the engine's retry
    schedule, and its failures must not open the engine's circuit breaker.
    Local backends (and memory, whose data lives in ``shared``) reuse ``shared``.
    """
    if isinstance(config, S3Config | AzureConfig | GcsConfig):
        fast = ResilienceConfig(
            timeout_secs=timeout_secs, max_attempts=1, breaker_failure_threshold=1_000_000
        )
        return create_backend_from_config(dataclasses.replace(config, resilience=fast))
    return shared

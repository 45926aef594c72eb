"""A stopped server: retries, then BackendError; the breaker opens, refuses, and recovers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from integration.services.endpoints import S3Bucket
from integration.storage.configs import FAST, s3_config
from libkb.storage import BackendError, CircuitOpenError, create_backend_from_config
from libkb.storage.metrics import StorageMetrics

# Also run by CI's docker phase: stop/start of a MinIO container.
pytestmark = pytest.mark.docker


def test_stopped_minio_then_breaker_then_recovery(minio_process: Any, minio_bucket: S3Bucket) -> None:
    metrics = StorageMetrics()
    backend = create_backend_from_config(s3_config(minio_bucket), metrics=metrics)
    registry = metrics.registry
    backend.put("k", b"value")
    minio_process.stop()
    retries = registry.get_sample_value("kafka_backup_storage_retries_total", {"backend": "s3"}) or 0.0
    try:
        for _ in range(FAST.breaker_failure_threshold):
            with pytest.raises(BackendError) as info:
                backend.get("k")
            assert info.value.transient
            assert not isinstance(info.value, CircuitOpenError)
            assert "cannot reach the service" in str(info.value)
        after = registry.get_sample_value("kafka_backup_storage_retries_total", {"backend": "s3"})
        # Every failed operation was tried max_attempts times before giving up.
        assert after == retries + FAST.breaker_failure_threshold * (FAST.max_attempts - 1)
        assert backend.resilience.state == "open"  # type: ignore[attr-defined]
        with pytest.raises(CircuitOpenError, match="circuit breaker is open"):
            backend.get("k")
        # Refused without a request: no retry was counted for it.
        assert registry.get_sample_value("kafka_backup_storage_retries_total", {"backend": "s3"}) == after
    finally:
        minio_process.start()
    time.sleep(FAST.breaker_reset_secs + 0.1)
    assert backend.get("k") == b"value"  # the trial call goes through and closes the breaker
    assert backend.resilience.state == "closed"  # type: ignore[attr-defined]
    backend.put("k2", b"after")
    assert backend.get("k2") == b"after"

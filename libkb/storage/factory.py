"""Build a backend from config: the only place backends differ."""

from __future__ import annotations

import os
from typing import Any

from libkb.errors import ConfigError
from libkb.storage.adapter import LibcloudBackend
from libkb.storage.base import StorageBackend
from libkb.storage.legacy import StorageConfig
from libkb.storage.metrics import StorageMetrics
from libkb.storage.secrets import storage_secrets
from libkb.storage.settings import (
    AzureConfig,
    BackendConfig,
    FilesystemConfig,
    GcsConfig,
    MemoryConfig,
    ResilienceConfig,
    S3Config,
    TransferConfig,
    config_from_url,
)

# Local backends fail for reasons retries do not fix (disk full, permissions).
_LOCAL_RESILIENCE = ResilienceConfig(max_attempts=1, breaker_failure_threshold=1_000_000)


def _holding(driver: Any, transfer: TransferConfig) -> Any:
    """Tell the adapter how much a streamed upload may buffer (parts in flight)."""
    driver.libkb_stream_hold = int(
        max(transfer.single_put_threshold, (transfer.max_concurrency + 2) * transfer.part_size)
    )
    return driver


def create_backend_from_config(
    config: BackendConfig, *, metrics: StorageMetrics | None = None, create: bool = True
) -> StorageBackend:
    """A ready backend for any of the five configs (see :mod:`libkb.storage.settings`).

    Its latency, error and retry metrics go to ``metrics`` (a run's), else to a private registry.
    ``create=False`` leaves a missing filesystem directory missing (reading a mistyped path
    must not create it); cloud backends create nothing in either case.
    """
    if isinstance(config, MemoryConfig):
        from libkb.storage.drivers.memory import MemoryStorageDriver

        return LibcloudBackend(
            MemoryStorageDriver(),
            "memory",
            prefix=config.prefix,
            resilience=_LOCAL_RESILIENCE,
            metrics=metrics,
        )
    if isinstance(config, FilesystemConfig):
        from libkb.storage.drivers.filesystem import SafeLocalStorageDriver

        path = os.path.abspath(os.path.expanduser(config.path))
        if os.path.exists(path) and not os.path.isdir(path):
            raise ConfigError(f"{path!r} exists and is not a directory", key="storage.path")
        return LibcloudBackend(
            SafeLocalStorageDriver(path, create=create, direct_io=config.direct_io),
            os.path.basename(path) or "filesystem",
            prefix=config.prefix,
            resilience=_LOCAL_RESILIENCE,
            metrics=metrics,
        )
    if isinstance(config, S3Config):
        from libkb.storage.drivers.s3 import build_s3_driver

        return LibcloudBackend(
            _holding(build_s3_driver(config), config.transfer),
            config.bucket,
            prefix=config.prefix,
            resilience=config.resilience,
            metrics=metrics,
            secrets=storage_secrets(config),
        )
    if isinstance(config, AzureConfig):
        from libkb.storage.drivers.azure import build_azure_driver

        return LibcloudBackend(
            _holding(build_azure_driver(config), config.transfer),
            config.container_name,
            prefix=config.prefix,
            resilience=config.resilience,
            metrics=metrics,
            secrets=storage_secrets(config),
        )
    if isinstance(config, GcsConfig):
        from libkb.storage.drivers.gcs import build_gcs_driver

        return LibcloudBackend(
            _holding(build_gcs_driver(config), config.transfer),
            config.bucket,
            prefix=config.prefix,
            resilience=config.resilience,
            metrics=metrics,
        )
    raise TypeError(f"not a storage config: {type(config).__name__}")


def create_backend(config: StorageConfig) -> StorageBackend:
    """Legacy entry point: a backend from the original tool's flat config."""
    return create_backend_from_config(config.to_backend_config())


def open_backend(url: str, *, metrics: StorageMetrics | None = None, create: bool = True) -> StorageBackend:
    """A backend for a storage URL or plain path (``kafka-backup list --path``); ``create`` as above."""
    return create_backend_from_config(config_from_url(url), metrics=metrics, create=create)

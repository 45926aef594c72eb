"""libkb's storage layer: one :class:`StorageBackend` over Apache Libcloud.

Switching backends is a config change only::

    from libkb.storage import StorageBackendConfig, create_backend_from_config

    backend = create_backend_from_config(StorageBackendConfig.from_url("s3://bucket/prefix"))
    backend.put("backups/manifest.json", b"{}")
"""

from libkb.storage.adapter import LibcloudBackend
from libkb.storage.base import BytesLike, ObjectMetadata, StorageBackend
from libkb.storage.errors import (
    BackendError,
    CircuitOpenError,
    ContainerNotFoundError,
    InvalidPathError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    StorageOutageError,
)
from libkb.storage.factory import create_backend, create_backend_from_config, open_backend
from libkb.storage.legacy import StorageConfig
from libkb.storage.outage import OutageWatch
from libkb.storage.settings import (
    AzureConfig,
    FilesystemConfig,
    GcsConfig,
    MemoryConfig,
    ResilienceConfig,
    S3Config,
    StorageBackendConfig,
    TransferConfig,
)

__all__ = [
    "AzureConfig",
    "BackendError",
    "BytesLike",
    "CircuitOpenError",
    "ContainerNotFoundError",
    "FilesystemConfig",
    "GcsConfig",
    "InvalidPathError",
    "LibcloudBackend",
    "MemoryConfig",
    "NotFoundError",
    "ObjectMetadata",
    "OutageWatch",
    "PermissionDeniedError",
    "ResilienceConfig",
    "S3Config",
    "StorageBackend",
    "StorageBackendConfig",
    "StorageConfig",
    "StorageError",
    "StorageOutageError",
    "TransferConfig",
    "create_backend",
    "create_backend_from_config",
    "open_backend",
]

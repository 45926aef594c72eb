"""Typed, validated storage settings: one frozen dataclass per backend, and
their loading from ``storage:`` mappings and URLs.

These are what driver builders receive. :mod:`libkb.storage.config` checks the
mappings and URLs (marshmallow) into plain values, which are made typed here,
with the defaults documented here. Secret fields are excluded from ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from libkb.storage.config import safe_url, url_to_mapping, validate_storage_mapping

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ResilienceConfig:
    """Timeouts, retries and the circuit breaker of a cloud backend."""

    #: Seconds to wait for a connection or for a response's next bytes.
    timeout_secs: float = 60.0
    #: Attempts per operation (1 = no retry) on transient errors: connection
    #: failures, timeouts, HTTP 5xx, 429/SlowDown.
    max_attempts: int = 5
    #: Exponential backoff with full jitter between these bounds.
    backoff_initial_secs: float = 0.2
    backoff_max_secs: float = 10.0
    #: Consecutive failed operations that open the breaker.
    breaker_failure_threshold: int = 5
    #: Seconds the breaker stays open before letting one trial call through.
    breaker_reset_secs: float = 30.0


@dataclass(frozen=True, slots=True)
class TransferConfig:
    """How big objects move: multipart part size and parallel requests."""

    #: Bytes per multipart part / block / chunk (S3 needs >= 5 MiB).
    part_size: int = 16 * MiB
    #: Parts uploaded (or ranges downloaded) at once; memory used by one
    #: streamed upload is about (max_concurrency + 1) * part_size.
    max_concurrency: int = 4
    #: Objects up to this size go up in a single request.
    single_put_threshold: int = 16 * MiB


class StorageBackendConfig:
    """Base of the five backend configs; tagged by ``backend`` in YAML.

    Load with :meth:`from_dict` (a ``storage:`` block) or :meth:`from_url`.
    Every variant has an optional ``prefix``.
    """

    __slots__ = ()
    backend: ClassVar[str]
    prefix: str | None

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, source: str | None = None) -> BackendConfig:
        """Validate a ``storage:`` mapping into the variant its ``backend`` names."""
        return load_storage_config(mapping, source=source)

    @classmethod
    def from_url(cls, url: str) -> BackendConfig:
        """Parse ``s3://``, ``azure://``, ``gcs://``, ``file://``, ``memory://`` or a plain path."""
        return config_from_url(url)


@dataclass(frozen=True, slots=True)
class S3Config(StorageBackendConfig):
    backend: ClassVar[str] = "s3"
    bucket: str
    region: str | None = None
    endpoint: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    prefix: str | None = None
    path_style: bool = False
    #: None (omitted) means "true iff an explicit endpoint is http://"; resolved
    #: at construction, so the attribute is always a bool afterwards.
    allow_http: bool | None = None
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    #: A PEM file of CA certificates for an https endpoint signed by a private CA
    #: (default: ``AWS_CA_BUNDLE``, else the system's).
    ca_bundle: str | None = None
    #: Server-side encryption of every object: ``AES256`` (SSE-S3), ``aws:kms`` (SSE-KMS,
    #: with ``sse_kms_key_id`` and ``sse_bucket_key_enabled``) or ``sse-c`` (``sse_customer_key``).
    server_side_encryption: str | None = None
    sse_kms_key_id: str | None = None
    sse_bucket_key_enabled: bool | None = None
    #: SSE-C: base64 of a 32-byte key, sent with every object request (refused over http://).
    sse_customer_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.allow_http is None:
            derived = bool(self.endpoint and self.endpoint.lower().startswith("http://"))
            object.__setattr__(self, "allow_http", derived)


@dataclass(frozen=True, slots=True)
class AzureConfig(StorageBackendConfig):
    backend: ClassVar[str] = "azure"
    account_name: str
    container_name: str
    account_key: str | None = field(default=None, repr=False)
    prefix: str | None = None
    #: Blob service URL, e.g. ``http://127.0.0.1:10000/devstoreaccount1`` for
    #: Azurite or ``https://acct.blob.core.usgovcloudapi.net`` for a sovereign cloud.
    endpoint: str | None = None
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    #: Azure AD identity when there is no account key: a service principal
    #: (``client_secret``), workload identity (AKS) or managed identity; by
    #: default DefaultAzureCredential's chain. ``client_id``/``tenant_id`` fall
    #: back to ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``.
    client_id: str | None = None
    tenant_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    use_workload_identity: bool = False
    use_managed_identity: bool = False
    #: A shared access signature (the query string Azure hands out, with or without
    #: ``?``); it comes before an account key, as in the original tool. Without one,
    #: and without an account key, ``AZURE_STORAGE_SAS_TOKEN`` is read.
    sas_token: str | None = field(default=None, repr=False)
    #: An encryption scope of the storage account: every blob libkb writes is encrypted under it.
    encryption_scope: str | None = None


@dataclass(frozen=True, slots=True)
class GcsConfig(StorageBackendConfig):
    backend: ClassVar[str] = "gcs"
    bucket: str
    service_account_path: str | None = None
    prefix: str | None = None
    #: JSON API base URL, e.g. ``http://127.0.0.1:4443`` for fake-gcs-server.
    endpoint: str | None = None
    #: The project new buckets are created in (only bucket creation needs one).
    project_id: str | None = None
    #: A Cloud KMS key (``projects/P/locations/L/keyRings/R/cryptoKeys/K``): every object libkb
    #: writes is encrypted with it (CMEK) instead of the bucket's default.
    kms_key_name: str | None = None
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)


@dataclass(frozen=True, slots=True)
class FilesystemConfig(StorageBackendConfig):
    backend: ClassVar[str] = "filesystem"
    path: str
    prefix: str | None = None
    #: Write segments with ``O_DIRECT`` (past the page cache) where the
    #: filesystem allows it; false always writes through the page cache.
    direct_io: bool = True


@dataclass(frozen=True, slots=True)
class MemoryConfig(StorageBackendConfig):
    backend: ClassVar[str] = "memory"
    prefix: str | None = None


BackendConfig = S3Config | AzureConfig | GcsConfig | FilesystemConfig | MemoryConfig

_TYPES: dict[str, Callable[..., BackendConfig]] = {
    "s3": S3Config,
    "azure": AzureConfig,
    "gcs": GcsConfig,
    "filesystem": FilesystemConfig,
    "memory": MemoryConfig,
}


def load_storage_config(
    mapping: Mapping[str, Any], *, source: str | None = None, path: str = "storage"
) -> BackendConfig:
    """Validate a ``storage:`` mapping into one of the five backend configs.

    ``source`` (the file or URL) and ``path`` (the key above the block) go into
    every :class:`~libkb.errors.ConfigError`.
    """
    checked = validate_storage_mapping(mapping, source=source, path=path)
    values = dict(checked.values)
    for name, typed in (("resilience", ResilienceConfig), ("transfer", TransferConfig)):
        if name in values:
            values[name] = typed(**values[name])
    return _TYPES[checked.backend](**values)


def config_from_url(url: str) -> BackendConfig:
    """Parse a storage URL; query parameters map onto the same keys as YAML."""
    return load_storage_config(url_to_mapping(url), source=safe_url(url), path="url")

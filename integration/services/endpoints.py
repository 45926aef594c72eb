"""Plain, frozen descriptions of how to reach a running service.

Tests receive these instead of service handles so they cannot depend on how
a service was provided (local process, container or external endpoint).
Secrets are kept out of ``repr`` so they never land in pytest output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AzureContainer",
    "AzureEndpoint",
    "Endpoint",
    "GcsBucket",
    "GcsEndpoint",
    "KafkaEndpoint",
    "S3Bucket",
    "S3Endpoint",
]


@dataclass(frozen=True)
class KafkaEndpoint:
    """A Kafka cluster reachable at ``bootstrap_servers`` (``host:port[,...]``)."""

    bootstrap_servers: str


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-compatible service; ``name`` says which implementation it is."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"


@dataclass(frozen=True)
class AzureEndpoint:
    """An Azure Blob service; ``endpoint`` includes the account path segment."""

    endpoint: str
    account_name: str
    account_key: str = field(repr=False)


@dataclass(frozen=True)
class GcsEndpoint:
    """A GCS JSON-API emulator without authentication."""

    endpoint: str
    project: str = "test"


Endpoint = KafkaEndpoint | S3Endpoint | AzureEndpoint | GcsEndpoint


@dataclass(frozen=True)
class S3Bucket:
    """A bucket created for one test on ``service``."""

    service: S3Endpoint
    name: str


@dataclass(frozen=True)
class AzureContainer:
    """A blob container created for one test on ``service``."""

    service: AzureEndpoint
    name: str


@dataclass(frozen=True)
class GcsBucket:
    """A bucket created for one test on ``service``."""

    service: GcsEndpoint
    name: str

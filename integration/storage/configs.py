"""libkb storage configs for the harness services (used by storage, engine and example tests)."""

from __future__ import annotations

from integration.services.endpoints import AzureContainer, GcsBucket, S3Bucket
from libkb.storage import AzureConfig, GcsConfig, ResilienceConfig, S3Config

#: Quick retries so outage tests take seconds, not minutes.
FAST = ResilienceConfig(
    timeout_secs=10,
    max_attempts=3,
    backoff_initial_secs=0.05,
    backoff_max_secs=0.2,
    breaker_failure_threshold=3,
    breaker_reset_secs=2.0,
)


def s3_config(bucket: S3Bucket, prefix: str | None = None, **overrides: object) -> S3Config:
    service = bucket.service
    values: dict[str, object] = {
        "bucket": bucket.name,
        "endpoint": service.endpoint,
        "region": service.region,
        "access_key": service.access_key,
        "secret_key": service.secret_key,
        "path_style": True,
        "allow_http": True,
        "prefix": prefix,
        "resilience": FAST,
    }
    values.update(overrides)
    return S3Config(**values)  # type: ignore[arg-type]


def azure_config(container: AzureContainer, prefix: str | None = None, **overrides: object) -> AzureConfig:
    service = container.service
    values: dict[str, object] = {
        "account_name": service.account_name,
        "container_name": container.name,
        "account_key": service.account_key,
        "endpoint": service.endpoint,
        "prefix": prefix,
        "resilience": FAST,
    }
    values.update(overrides)
    return AzureConfig(**values)  # type: ignore[arg-type]


def gcs_config(bucket: GcsBucket, prefix: str | None = None, **overrides: object) -> GcsConfig:
    values: dict[str, object] = {
        "bucket": bucket.name,
        "endpoint": bucket.service.endpoint,
        "prefix": prefix,
        "resilience": FAST,
    }
    values.update(overrides)
    return GcsConfig(**values)  # type: ignore[arg-type]

"""Google Cloud Storage over the JSON API.

The driver is split by concern; this package exports what the factory and
tests use, so ``libkb.storage.drivers.gcs`` stays the import path.
"""

from libkb.storage.drivers.gcs.driver import (
    GCS_SCOPES,
    RESUMABLE_QUANTUM,
    GcsEndpoint,
    GcsJsonConnection,
    GcsJsonResponse,
    GoogleTokenSource,
    LibkbGcsDriver,
    build_gcs_driver,
    gcs_error,
    resolve_gcs_credentials,
    resolve_gcs_endpoint,
)

__all__ = [
    "GCS_SCOPES",
    "RESUMABLE_QUANTUM",
    "GcsEndpoint",
    "GcsJsonConnection",
    "GcsJsonResponse",
    "GoogleTokenSource",
    "LibkbGcsDriver",
    "build_gcs_driver",
    "gcs_error",
    "resolve_gcs_credentials",
    "resolve_gcs_endpoint",
]

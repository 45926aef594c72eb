"""Azure Blob Storage, on Libcloud's ``AzureBlobsStorageDriver``.

The driver is split by concern; this package exports what the factory and
tests use, so ``libkb.storage.drivers.azure`` stays the import path.
"""

from libkb.storage.drivers.azure.driver import (
    AZURE_API_VERSION,
    TOKEN_REFRESH_MARGIN_SECS,
    AzureEndpoint,
    AzureTokenSource,
    LibkbAzureBearerConnection,
    LibkbAzureBlobsDriver,
    LibkbAzureConnection,
    build_azure_driver,
    resolve_azure_endpoint,
)

__all__ = [
    "AZURE_API_VERSION",
    "TOKEN_REFRESH_MARGIN_SECS",
    "AzureEndpoint",
    "AzureTokenSource",
    "LibkbAzureBearerConnection",
    "LibkbAzureBlobsDriver",
    "LibkbAzureConnection",
    "build_azure_driver",
    "resolve_azure_endpoint",
]

"""Azure Blob Storage, on Libcloud's ``AzureBlobsStorageDriver``.

One module a concern: :mod:`.endpoint`, :mod:`.credentials` (SAS token,
account key or Azure AD tokens), :mod:`.sas` (SAS tokens),
:mod:`.connection` (shared-key, bearer and SAS connections),
:mod:`.errors` (responses to exceptions), :mod:`.blocks` (parallel block
upload), :mod:`.copy` (server-side copy) and :mod:`.driver` (the Libcloud
driver). The helper modules never see the driver: it hands them an
:class:`~.calls.AzureCalls` (send a request, retry a unit of work). This
package exports what the factory and tests use.
"""

from libkb.storage.drivers.azure.connection import (
    AZURE_API_VERSION,
    LibkbAzureBearerConnection,
    LibkbAzureConnection,
    LibkbAzureSasConnection,
)
from libkb.storage.drivers.azure.credentials import TOKEN_REFRESH_MARGIN_SECS, AzureTokenSource
from libkb.storage.drivers.azure.driver import LibkbAzureBlobsDriver, build_azure_driver
from libkb.storage.drivers.azure.endpoint import AzureEndpoint, resolve_azure_endpoint
from libkb.storage.drivers.azure.sas import SasToken, parse_sas_token

__all__ = [
    "AZURE_API_VERSION",
    "TOKEN_REFRESH_MARGIN_SECS",
    "AzureEndpoint",
    "AzureTokenSource",
    "LibkbAzureBearerConnection",
    "LibkbAzureBlobsDriver",
    "LibkbAzureConnection",
    "LibkbAzureSasConnection",
    "SasToken",
    "build_azure_driver",
    "parse_sas_token",
    "resolve_azure_endpoint",
]

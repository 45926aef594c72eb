"""Libcloud connections to the blob service, shared-key, bearer-token or SAS:
newer API version, plain account-prefix paths, timeouts on streams, no
Libcloud retries."""

from __future__ import annotations

import time
from typing import Any

from libcloud.common.azure import AZURE_TIME_FORMAT
from libcloud.common.types import InvalidCredsError
from libcloud.storage.drivers.azure_blobs import AzureBlobsConnection

from libkb.storage.drivers.azure.credentials import AzureTokenSource
from libkb.storage.drivers.azure.errors import LibkbAzureResponse
from libkb.storage.drivers.azure.sas import SasToken
from libkb.storage.drivers.common.downloads import StreamedResponse
from libkb.storage.drivers.common.transport import LibkbHTTPConnection, NoRetry, ReleaseBodyMixin

#: REST version sent as ``x-ms-version``. 2019-12-12 allows blocks up to
#: 4000 MiB and Put Blob up to 5000 MiB; bearer tokens need >= 2017-11-09.
AZURE_API_VERSION = "2019-12-12"


class LibkbAzureConnection(ReleaseBodyMixin, AzureBlobsConnection):  # type: ignore[misc]
    """Shared-key connection: newer API version, plain account-prefix paths,
    timeouts on streams, no Libcloud retries, no debug-logging hook."""

    conn_class = LibkbHTTPConnection
    responseCls = LibkbAzureResponse
    rawResponseCls = StreamedResponse
    retryCls = NoRetry
    API_VERSION = AZURE_API_VERSION
    #: ``storage.encryption_scope``: every blob written is encrypted under this scope.
    encryption_scope: str | None = None

    def request(
        self, action: str, params: Any = None, data: Any = None, headers: Any = None, **kw: Any
    ) -> Any:
        """Add ``x-ms-encryption-scope`` to every write of a blob (Put Blob, Put Block, Put Block List,
        Copy Blob: the PUTs without ``restype``), before the request is signed."""
        method = kw.get("method", "GET")
        if self.encryption_scope and method == "PUT" and "restype" not in dict(params or {}):
            headers = {**(headers or {}), "x-ms-encryption-scope": self.encryption_scope}
        return super().request(action, params=params, data=data, headers=headers, **kw)

    def morph_action_hook(self, action: str) -> str:
        # Libcloud runs paths through urljoin and strips double slashes; blob
        # paths are already quoted, so only the Azurite account prefix is added.
        if self.account_prefix:
            return f"/{self.account_prefix}{action}"
        return str(action)

    def _format_special_header_values(self, headers: dict[str, str], method: str) -> list[str]:
        # Since 2015-02-21 a zero Content-Length is signed as the empty string.
        values: list[str] = super()._format_special_header_values(headers, method)
        if headers.get("content-length") == "0":
            values[2] = ""
        return values

    def __repr__(self) -> str:
        return f"<{type(self).__name__} account={self.user_id} host={self.host}>"


class LibkbAzureBearerConnection(LibkbAzureConnection):
    """Same connection, authorised with an Azure AD bearer token instead of a key."""

    token_source: AzureTokenSource | None = None

    def pre_connect_hook(
        self, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        if self.token_source is None:
            raise InvalidCredsError("no Azure credential configured")
        headers = dict(headers)
        headers["x-ms-date"] = time.strftime(AZURE_TIME_FORMAT, time.gmtime())
        headers["x-ms-version"] = self.API_VERSION
        headers["Authorization"] = self.token_source.authorization()
        headers.pop("Host", None)
        return params, headers


class LibkbAzureSasConnection(LibkbAzureConnection):
    """Same connection, authorised by a SAS token's query parameters (no Authorization header)."""

    sas: SasToken | None = None

    def pre_connect_hook(self, params: Any, headers: dict[str, str]) -> tuple[Any, dict[str, str]]:
        if self.sas is None:
            raise InvalidCredsError("no SAS token configured")
        pairs = list(params.items()) if isinstance(params, dict) else list(params or ())
        headers = dict(headers)
        headers["x-ms-date"] = time.strftime(AZURE_TIME_FORMAT, time.gmtime())
        headers["x-ms-version"] = self.API_VERSION
        headers.pop("Host", None)
        return [*pairs, *self.sas.params], headers

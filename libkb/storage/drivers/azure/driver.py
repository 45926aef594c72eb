"""The Azure Blob Storage driver: Libcloud's ``AzureBlobsStorageDriver`` made fit
for libkb's driver contract (:mod:`libkb.storage.drivers.base`).

- Credentials: a SAS token, an account key or Azure AD bearer tokens
  (:mod:`.credentials`, :mod:`.sas`).
- Endpoint: the blob service URL as given (:mod:`.endpoint`).
- Errors: one HEAD for ``get_object`` that still tells a missing container
  from a missing blob (:mod:`.errors`).
- Uploads: Put Blob for small objects (with ``If-None-Match: *`` for
  create-only), Put Block in parallel + Put Block List for streams
  (:mod:`.blocks`).
- Per-thread connections, timeouts on every request, no Libcloud retries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import quote

import requests
from libcloud.storage.base import Container, Object
from libcloud.storage.drivers.azure_blobs import AzureBlobsStorageDriver
from libcloud.utils.xml import fixxpath

from libkb.errors import ConfigError
from libkb.storage.drivers.azure.blocks import MAX_BLOCK_SIZE, upload_blocks
from libkb.storage.drivers.azure.calls import AzureCalls
from libkb.storage.drivers.azure.connection import (
    LibkbAzureBearerConnection,
    LibkbAzureConnection,
    LibkbAzureSasConnection,
)
from libkb.storage.drivers.azure.copy import copy_blob
from libkb.storage.drivers.azure.credentials import (
    AzureTokenSource,
    TokenCredential,
    resolve_azure_auth,
    resolve_sas_token,
)
from libkb.storage.drivers.azure.endpoint import resolve_azure_endpoint
from libkb.storage.drivers.azure.errors import error_code, response_error, streamed_error
from libkb.storage.drivers.azure.sas import SasToken
from libkb.storage.drivers.base import LibkbDriverMixin
from libkb.storage.drivers.common.downloads import RangedDownloadMixin, ranged_body
from libkb.storage.drivers.common.per_thread import PerThreadConnectionMixin
from libkb.storage.drivers.common.timestamps import http_date_to_ms
from libkb.storage.drivers.common.uploads import small_or_stream
from libkb.storage.settings import AzureConfig, TransferConfig

#: Blobs listed per page (the service maximum).
LIST_PAGE_SIZE = 5000

_EXISTS_CODES = frozenset({"BlobAlreadyExists", "ConditionNotMet"})


class LibkbAzureBlobsDriver(
    PerThreadConnectionMixin,
    RangedDownloadMixin,
    LibkbDriverMixin,
    AzureBlobsStorageDriver,  # type: ignore[misc]
):
    """Libcloud Azure Blobs driver with libkb's contract (see drivers/base.py)."""

    libkb_name = "azure"
    connectionCls = LibkbAzureConnection
    range_header = "x-ms-range"

    def __init__(
        self,
        account_name: str,
        *,
        account_key: str | None = None,
        token_source: AzureTokenSource | None = None,
        sas_token: SasToken | None = None,
        endpoint: str | None = None,
        timeout: float = 60.0,
        transfer: TransferConfig | None = None,
        encryption_scope: str | None = None,
    ) -> None:
        if [account_key, token_source, sas_token].count(None) != 2:
            raise ValueError("give exactly one of account_key, token_source or sas_token")
        self.endpoint = resolve_azure_endpoint(account_name, endpoint)
        self.encryption_scope = encryption_scope
        self.transfer = transfer or TransferConfig()
        if self.transfer.part_size > MAX_BLOCK_SIZE:
            raise ConfigError(
                f"part_size {self.transfer.part_size} is above Azure's block limit {MAX_BLOCK_SIZE}",
                key="storage.transfer.part_size",
            )
        self.timeout = timeout
        self.token_source = token_source
        self.sas_token = sas_token
        secret: bytes | None = None
        if account_key is not None:
            try:
                secret = base64.b64decode(account_key.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError, ValueError):
                raise ConfigError(
                    "the Azure account key is not valid base64 (copy it from the portal's "
                    "'Access keys' page)",
                    key="storage.account_key",
                ) from None
        # What BaseDriver.__init__ would set, without opening a connection now:
        # connections are made per thread on first use.
        self.key = account_name
        self.secret = secret
        self.secure = self.endpoint.secure
        self.api_version = None
        self.region = None
        self._host = self.endpoint.host
        self._tenant_id = None
        self._identity = None
        self._cloud_environment = "default"
        self._auth_type = "libkbBearer" if token_source is not None else None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------

    def _libkb_new_connection(self) -> Any:
        ep = self.endpoint
        conn: Any
        if self.sas_token is not None:
            conn = LibkbAzureSasConnection(
                self.key,
                "",
                ep.secure,
                ep.host,
                ep.port,
                timeout=self.timeout,
                account_prefix=ep.account_prefix,
            )
            conn.sas = self.sas_token
        elif self.token_source is not None:
            conn = LibkbAzureBearerConnection(
                self.key,
                "",
                ep.secure,
                ep.host,
                ep.port,
                timeout=self.timeout,
                account_prefix=ep.account_prefix,
            )
            conn.token_source = self.token_source
        else:
            conn = LibkbAzureConnection(
                self.key,
                self.secret,
                ep.secure,
                ep.host,
                ep.port,
                timeout=self.timeout,
                account_prefix=ep.account_prefix,
            )
        conn.driver = self
        conn.encryption_scope = self.encryption_scope
        conn.connect()
        return conn

    def _ex_connection_class_kwargs(self) -> dict[str, Any]:
        return {"host": self.endpoint.host, "account_prefix": self.endpoint.account_prefix}

    def __repr__(self) -> str:
        auth = "sas" if self.sas_token else "bearer" if self.token_source is not None else "shared-key"
        return f"<LibkbAzureBlobsDriver account={self.key} endpoint={self.endpoint.url} auth={auth}>"

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, self.transfer.max_concurrency),
                    thread_name_prefix="libkb-azure",
                )
            return self._pool

    def _get_object_path(self, container: Container, object_name: str) -> str:
        return f"/{container.name}/{quote(object_name, safe='/')}"

    def _blob_url(self, container: Container, object_name: str) -> str:
        """The blob's URL; with a SAS token, authorised by it (a copy source must be)."""
        url = self.endpoint.url + self._get_object_path(container, object_name)
        return f"{url}?{self.sas_token.query}" if self.sas_token is not None else url

    def libkb_denied_hint(self, container: str | None) -> str | None:
        """What to do when the service refuses this driver's credentials (a SAS token's expiry or
        permissions); None: the adapter's general advice."""
        return self.sas_token.denied_hint(container) if self.sas_token is not None else None

    def _to_object(self, obj: Object, last_modified: str | None) -> Object:
        if obj.hash:
            obj.hash = obj.hash.strip('"')
        obj.extra["etag"] = obj.hash
        obj.extra["mtime_ms"] = http_date_to_ms(last_modified)
        return obj

    def _fail(
        self, resp: Any, container_name: str, object_name: str | None, *, head: bool = False
    ) -> Exception:
        """The exception for a failed response (``head``: a HEAD answer, which has no body)."""
        return response_error(
            resp, driver=self, container_name=container_name, object_name=object_name, head=head
        )

    def _request(self, path: str, **kwargs: Any) -> Any:
        """One request on the calling thread's connection."""
        return self.connection.request(path, **kwargs)

    def _calls(self) -> AzureCalls:
        """What the helper modules need, bound now (the adapter swaps ``libkb_call``)."""
        return AzureCalls(request=self._request, call=self.libkb_call, owner=self)

    # -- metadata ------------------------------------------------------------

    def get_container(self, container_name: str) -> Container:
        """HEAD the container (one request)."""
        resp = self.connection.request(f"/{container_name}", params={"restype": "container"}, method="HEAD")
        if resp.status != 200:
            raise self._fail(resp, container_name, None, head=True)
        return self._response_to_container(container_name, resp)

    def get_object(self, container_name: str, object_name: str) -> Object:
        """One HEAD; a 404 says (in x-ms-error-code) whether the container is missing."""
        container = Container(name=container_name, extra={}, driver=self)
        resp = self.connection.request(self._get_object_path(container, object_name), method="HEAD")
        if resp.status != 200:
            raise self._fail(resp, container_name, object_name, head=True)
        obj = self._response_to_object(object_name, container, resp)
        return self._to_object(obj, resp.headers.get("last-modified"))

    def iterate_container_objects(
        self, container: Container, prefix: str | None = None, ex_prefix: str | None = None
    ) -> Iterator[Object]:
        """Flat (recursive) listing by plain prefix, one page of 5000 at a time."""
        prefix = self._normalize_prefix_argument(prefix, ex_prefix)
        params: dict[str, Any] = {
            "restype": "container",
            "comp": "list",
            "maxresults": LIST_PAGE_SIZE,
        }
        if prefix:
            params["prefix"] = prefix
        path = f"/{container.name}"
        while True:
            resp = self.connection.request(path, params=params)
            if resp.status != 200:
                raise self._fail(resp, container.name, None)
            body = resp.object
            blobs = body.find(fixxpath(xpath="Blobs"))
            for blob in blobs.findall(fixxpath(xpath="Blob")) if blobs is not None else []:
                obj = self._xml_to_object(container, blob)
                props = blob.find(fixxpath(xpath="Properties"))
                yield self._to_object(obj, props.findtext(fixxpath(xpath="Last-Modified")))
            marker = body.findtext(fixxpath(xpath="NextMarker"))
            if not marker:
                return
            params["marker"] = marker

    def delete_object(self, obj: Object) -> bool:
        resp = self.connection.request(self._get_object_path(obj.container, obj.name), method="DELETE")
        if resp.status != 202:
            raise self._fail(resp, obj.container.name, obj.name)
        return True

    # -- downloads -----------------------------------------------------------

    def _download(
        self,
        obj: Object,
        headers: dict[str, str],
        chunk_size: int | None,
        start: int = 0,
        end: int | None = None,
    ) -> Iterator[bytes]:
        resp = self.connection.request(
            self._get_object_path(obj.container, obj.name),
            method="GET",
            headers=headers,
            raw=True,
            stream=True,
        )
        rr: requests.Response = resp.requests_response
        body = ranged_body(rr, int(resp.status), chunk_size, start, end)
        if body is not None:
            return body
        raise streamed_error(resp, driver=self, container_name=obj.container.name, object_name=obj.name)

    # -- writes --------------------------------------------------------------

    def _put_blob(
        self,
        container: Container,
        object_name: str,
        data: bytes,
        extra_headers: dict[str, str] | None = None,
    ) -> Any:
        headers = {
            "x-ms-blob-type": "BlockBlob",
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(data)),
            "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),
        }
        if extra_headers:
            headers.update(extra_headers)
        return self.connection.request(
            self._get_object_path(container, object_name),
            method="PUT",
            data=data,
            headers=headers,
        )

    def ex_put_object(self, container: Container, object_name: str, data: bytes) -> None:
        """Put Blob: one request, atomic; Content-MD5 lets the service verify the bytes."""
        resp = self._put_blob(container, object_name, bytes(data))
        if resp.status != 201:
            raise self._fail(resp, container.name, object_name)

    def ex_put_object_if_absent(self, container: Container, object_name: str, data: bytes) -> bool:
        """Put Blob with ``If-None-Match: *``; 409 BlobAlreadyExists means someone was first."""
        resp = self._put_blob(container, object_name, bytes(data), {"If-None-Match": "*"})
        if resp.status == 201:
            return True
        code = error_code(resp.headers, resp.object)
        if resp.status in (409, 412) and (code in _EXISTS_CODES or code is None):
            return False
        raise self._fail(resp, container.name, object_name)

    def ex_copy_object(self, container: Container, src_name: str, dest_name: str) -> None:
        """Copy Blob within the account; waits while the service reports the copy pending."""
        copy_blob(
            self._calls(),
            container.name,
            src_name,
            dest_name,
            dest_path=self._get_object_path(container, dest_name),
            source_url=self._blob_url(container, src_name),
            timeout=self.timeout,
        )

    def ex_upload_stream(self, container: Container, object_name: str, chunks: Iterable[bytes]) -> None:
        """Small streams: one Put Blob; larger: blocks in parallel, committed at the
        end, so any failure leaves nothing (see :mod:`.blocks`)."""
        data, stream = small_or_stream(chunks, self.transfer.single_put_threshold)
        if data is not None:
            self.libkb_call(partial(self.ex_put_object, container, object_name, data))
            return
        path = self._get_object_path(container, object_name)
        pool = self._executor()
        upload_blocks(self._calls(), container.name, object_name, path, stream, self.transfer, pool)

    def ex_close(self) -> None:
        """Stop the upload threads, close every thread's HTTP session and the credential."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._libkb_close_connections()
        if self.token_source is not None:
            self.token_source.close()


def build_azure_driver(
    cfg: AzureConfig, *, credential: TokenCredential | None = None
) -> LibkbAzureBlobsDriver:
    """The driver for ``cfg``: a SAS token (config, then ``AZURE_STORAGE_SAS_TOKEN``),
    else the account key from config, then ``AZURE_STORAGE_KEY``, then ``credential``
    or DefaultAzureCredential (bearer tokens). A ``credential`` given wins."""
    sas_token = resolve_sas_token(cfg) if credential is None else None
    account_key, token_source = (None, None) if sas_token else resolve_azure_auth(cfg, credential)
    return LibkbAzureBlobsDriver(
        cfg.account_name,
        account_key=account_key,
        token_source=token_source,
        sas_token=sas_token,
        endpoint=cfg.endpoint,
        timeout=cfg.resilience.timeout_secs,
        transfer=cfg.transfer,
        encryption_scope=cfg.encryption_scope,
    )

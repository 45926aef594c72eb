"""Azure Blob Storage driver: Libcloud's ``AzureBlobsStorageDriver`` made fit for libkb.

What it changes, and why:

- Credentials: account key (config, then ``AZURE_STORAGE_KEY``), else any
  azure-identity ``TokenCredential`` (``DefaultAzureCredential`` by default:
  service principal env vars, workload/managed identity, Azure CLI, ...) as an
  ``Authorization: Bearer`` header. Libcloud only knows client-secret AD auth,
  and its ``AuthType.AZURE_AD`` ("azureAD") does not even match the
  ``"azureAd"`` its driver tests for, so the driver's own AD path is bypassed.
- Endpoint: the blob service URL as given (``https://{account}.blob.core.windows.net``
  by default; a path such as ``/devstoreaccount1`` is the Azurite account
  prefix; a bare host is a sovereign cloud or custom domain).
- Errors: one HEAD for ``get_object`` that still tells a missing container
  from a missing blob; 401/403 ``InvalidCredsError``; other failures
  ``BaseHTTPError`` with ``.code`` (Libcloud raises code-less ``LibcloudError``).
- Uploads: Put Blob for small objects (with ``If-None-Match: *`` for
  create-only), Put Block in parallel + Put Block List for streams (uncommitted
  blocks are invisible, so a failed stream leaves nothing behind).
- Per-thread connections, timeouts on every request, no Libcloud retries.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import requests
from libcloud.common.azure import AZURE_TIME_FORMAT, AzureRawResponse, AzureResponse
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.storage.base import Container, Object
from libcloud.storage.drivers.azure_blobs import (
    AzureBlobsConnection,
    AzureBlobsStorageDriver,
)
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError
from libcloud.utils.xml import fixxpath

from libkb.errors import ConfigError
from libkb.storage.drivers.base import LibkbDriverMixin
from libkb.storage.drivers.common.downloads import empty_stream, iter_response
from libkb.storage.drivers.common.errors import clip_text, http_error
from libkb.storage.drivers.common.per_thread import PerThreadConnectionMixin
from libkb.storage.drivers.common.timestamps import http_date_to_ms
from libkb.storage.drivers.common.transport import LibkbHTTPConnection, NoRetry, ReleaseBodyMixin
from libkb.storage.drivers.common.uploads import rechunk, run_parallel
from libkb.storage.settings import AzureConfig, TransferConfig

#: REST version sent as ``x-ms-version``. 2019-12-12 allows blocks up to
#: 4000 MiB and Put Blob up to 5000 MiB; bearer tokens need >= 2017-11-09.
AZURE_API_VERSION = "2019-12-12"

#: OAuth scope for Azure Storage data-plane tokens.
AZURE_STORAGE_SCOPE = "https://storage.azure.com/.default"

#: Refresh a bearer token this many seconds before it expires.
TOKEN_REFRESH_MARGIN_SECS = 300

#: Largest block Put Block accepts at AZURE_API_VERSION; at most 50,000 blocks.
MAX_BLOCK_SIZE = 4000 * 1024 * 1024
MAX_BLOCKS = 50_000

#: Blobs listed per page (the service maximum).
LIST_PAGE_SIZE = 5000

_NOT_FOUND_CONTAINER = "ContainerNotFound"
_EXISTS_CODES = frozenset({"BlobAlreadyExists", "ConditionNotMet"})


class TokenCredential(Protocol):
    """The azure-identity credential protocol (``get_token(*scopes)``)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


# --------------------------------------------------------------------------- errors


def _error_code(headers: dict[str, str], body: Any) -> str | None:
    """Azure's error code: ``x-ms-error-code`` header (also on HEAD), else the XML body."""
    code = headers.get("x-ms-error-code")
    if code:
        return str(code)
    if hasattr(body, "findtext"):
        found = body.findtext(fixxpath(xpath="Code"))
        return str(found) if found else None
    return None


def _error_message(status: int, headers: dict[str, str], body: Any) -> str:
    code = _error_code(headers, body)
    message = ""
    if hasattr(body, "findtext"):
        message = clip_text(body.findtext(fixxpath(xpath="Message")))
    elif isinstance(body, (str, bytes)) and body and not str(body).lstrip().startswith("<"):
        message = clip_text(body)
    if code and message:
        return f"{code}: {message}"
    return code or message or "request failed"


def _parse_xml(text: str | bytes) -> Any:
    from libcloud.utils.py3 import ET

    try:
        return ET.XML(text if isinstance(text, bytes) else text.encode("utf-8"))
    except Exception:
        return text


class _AzureResponse(AzureResponse):  # type: ignore[misc]
    """Accepts 2xx and the statuses the driver decides on (404/409/412/416);
    raises ``InvalidCredsError``/``BaseHTTPError`` with the status otherwise."""

    HANDLED = frozenset({404, 409, 412, 416})

    def success(self) -> bool:
        status = int(self.status)
        return 200 <= status <= 299 or status in self.HANDLED

    def parse_body(self) -> Any:
        if not self.body:
            return self.body
        return _parse_xml(self.body)

    def parse_error(self, msg: str | None = None) -> Any:
        body = _parse_xml(self.body) if self.body else ""
        raise http_error(int(self.status), _error_message(int(self.status), self.headers, body))


class _AzureRawResponse(AzureRawResponse):  # type: ignore[misc]
    """Streamed response that keeps its own ``requests.Response``.

    Libcloud's raw response reads the whole body of any non-200 answer (206
    included) and fetches the response from the shared connection lazily; this
    one leaves status checks to the driver and streams.
    """

    def __init__(self, connection: Any, response: requests.Response | None = None) -> None:
        self.requests_response = response
        super().__init__(connection, response)

    def success(self) -> bool:
        return 200 <= int(self.status) <= 299

    def parse_error(self, msg: str | None = None) -> None:
        return None


def _raise_for(
    status: int,
    headers: dict[str, str],
    body: Any,
    *,
    driver: Any,
    container_name: str,
    object_name: str | None,
) -> None:
    """Raise the Libcloud exception for a failed blob request."""
    if status == 404:
        if _error_code(headers, body) == _NOT_FOUND_CONTAINER or object_name is None:
            raise ContainerDoesNotExistError(
                value=f"container {container_name!r} does not exist",
                driver=driver,
                container_name=container_name,
            )
        raise ObjectDoesNotExistError(
            value=f"blob {object_name!r} does not exist", driver=driver, object_name=object_name
        )
    raise http_error(status, _error_message(status, headers, body), headers)


def _raw_failure(resp: Any, **kw: Any) -> None:
    """Raise for a failed streamed response (reads its small error body)."""
    rr: requests.Response = resp.requests_response
    try:
        body = _parse_xml(rr.content) if rr.content else ""
    finally:
        rr.close()
    _raise_for(int(resp.status), resp.headers, body, **kw)


# --------------------------------------------------------------------------- auth


class AzureTokenSource:
    """Thread-safe bearer-token cache over an azure-identity credential.

    One token serves every thread's connection; it is fetched again
    ``TOKEN_REFRESH_MARGIN_SECS`` before it expires (one fetch at a time).
    Credential failures become ``InvalidCredsError`` (or a requests
    ``ConnectionError`` when the token endpoint cannot be reached) so that no
    azure-core exception reaches the adapter.
    """

    def __init__(
        self,
        credential: TokenCredential,
        *,
        scope: str = AZURE_STORAGE_SCOPE,
        clock: Any = time.time,
        owns_credential: bool = False,
    ) -> None:
        self.credential = credential
        self.scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_on = 0.0
        self.owns_credential = owns_credential

    def authorization(self) -> str:
        with self._lock:
            if self._token is None or self._clock() + TOKEN_REFRESH_MARGIN_SECS >= self._expires_on:
                self._token, self._expires_on = self._fetch()
            return f"Bearer {self._token}"

    def _fetch(self) -> tuple[str, float]:
        try:
            tok = self.credential.get_token(self.scope)
        except Exception as exc:  # azure-core/azure-identity errors
            name = type(exc).__name__
            text = clip_text(str(exc), 500)
            if name in (
                "ServiceRequestError",
                "ServiceResponseError",
                "ServiceRequestTimeoutError",
            ):
                raise requests.ConnectionError(
                    f"could not reach the Azure token endpoint ({name}: {text})"
                ) from None
            raise InvalidCredsError(
                f"could not get an Azure AD token for {self.scope} ({name}: {text}); "
                "set account_key / AZURE_STORAGE_KEY, or configure a service principal "
                "(AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), managed/workload "
                "identity or 'az login'"
            ) from None
        return str(tok.token), float(tok.expires_on)

    def close(self) -> None:
        if self.owns_credential:
            close = getattr(self.credential, "close", None)
            if callable(close):
                close()

    def __repr__(self) -> str:
        return f"<AzureTokenSource {type(self.credential).__name__} scope={self.scope}>"


# --------------------------------------------------------------------------- connections


class LibkbAzureConnection(ReleaseBodyMixin, AzureBlobsConnection):  # type: ignore[misc]
    """Shared-key connection: newer API version, plain account-prefix paths,
    timeouts on streams, no Libcloud retries, no debug-logging hook."""

    conn_class = LibkbHTTPConnection
    responseCls = _AzureResponse
    rawResponseCls = _AzureRawResponse
    retryCls = NoRetry
    API_VERSION = AZURE_API_VERSION

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


# --------------------------------------------------------------------------- endpoint


@dataclass(frozen=True, slots=True)
class AzureEndpoint:
    """Where the blob service is: scheme, host, port and Azurite's account path."""

    secure: bool
    host: str
    port: int
    account_prefix: str | None

    @property
    def url(self) -> str:
        scheme = "https" if self.secure else "http"
        default = 443 if self.secure else 80
        port = "" if self.port == default else f":{self.port}"
        path = f"/{self.account_prefix}" if self.account_prefix else ""
        return f"{scheme}://{self.host}{port}{path}"


def resolve_azure_endpoint(account_name: str, endpoint: str | None) -> AzureEndpoint:
    """The endpoint for ``cfg.endpoint``: None means public Azure, else the URL as given."""
    if not endpoint:
        return AzureEndpoint(True, f"{account_name}.blob.core.windows.net", 443, None)
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"endpoint {endpoint!r} is not an http(s) URL of a blob service "
            "(e.g. https://acct.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1)",
            key="storage.endpoint",
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"endpoint {endpoint!r} must not have a query or fragment (no SAS tokens here)",
            key="storage.endpoint",
        )
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    prefix = parts.path.strip("/") or None
    return AzureEndpoint(secure, parts.hostname, port, prefix)


# --------------------------------------------------------------------------- driver


class LibkbAzureBlobsDriver(PerThreadConnectionMixin, LibkbDriverMixin, AzureBlobsStorageDriver):  # type: ignore[misc]
    """Libcloud Azure Blobs driver with libkb's contract (see drivers/base.py)."""

    libkb_name = "azure"
    connectionCls = LibkbAzureConnection

    def __init__(
        self,
        account_name: str,
        *,
        account_key: str | None = None,
        token_source: AzureTokenSource | None = None,
        endpoint: str | None = None,
        timeout: float = 60.0,
        transfer: TransferConfig | None = None,
    ) -> None:
        if (account_key is None) == (token_source is None):
            raise ValueError("give exactly one of account_key or token_source")
        self.endpoint = resolve_azure_endpoint(account_name, endpoint)
        self.transfer = transfer or TransferConfig()
        if self.transfer.part_size > MAX_BLOCK_SIZE:
            raise ConfigError(
                f"part_size {self.transfer.part_size} is above Azure's block limit "
                f"{MAX_BLOCK_SIZE}",
                key="storage.transfer.part_size",
            )
        self.timeout = timeout
        self.token_source = token_source
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
        if self.token_source is not None:
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
        conn.connect()
        return conn

    def _ex_connection_class_kwargs(self) -> dict[str, Any]:
        return {"host": self.endpoint.host, "account_prefix": self.endpoint.account_prefix}

    def __repr__(self) -> str:
        auth = "bearer" if self.token_source is not None else "shared-key"
        return (
            f"<LibkbAzureBlobsDriver account={self.key} endpoint={self.endpoint.url} auth={auth}>"
        )

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
        return self.endpoint.url + self._get_object_path(container, object_name)

    def _to_object(self, obj: Object, last_modified: str | None) -> Object:
        if obj.hash:
            obj.hash = obj.hash.strip('"')
        obj.extra["etag"] = obj.hash
        obj.extra["mtime_ms"] = http_date_to_ms(last_modified)
        return obj

    # -- metadata ------------------------------------------------------------

    def get_container(self, container_name: str) -> Container:
        """HEAD the container (one request)."""
        resp = self.connection.request(
            f"/{container_name}", params={"restype": "container"}, method="HEAD"
        )
        if resp.status != 200:
            _raise_for(
                resp.status,
                resp.headers,
                "",
                driver=self,
                container_name=container_name,
                object_name=None,
            )
        return self._response_to_container(container_name, resp)

    def get_object(self, container_name: str, object_name: str) -> Object:
        """One HEAD; a 404 says (in x-ms-error-code) whether the container is missing."""
        container = Container(name=container_name, extra={}, driver=self)
        resp = self.connection.request(self._get_object_path(container, object_name), method="HEAD")
        if resp.status != 200:
            _raise_for(
                resp.status,
                resp.headers,
                "",
                driver=self,
                container_name=container_name,
                object_name=object_name,
            )
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
                _raise_for(
                    resp.status,
                    resp.headers,
                    resp.object,
                    driver=self,
                    container_name=container.name,
                    object_name=None,
                )
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
        resp = self.connection.request(
            self._get_object_path(obj.container, obj.name), method="DELETE"
        )
        if resp.status != 202:
            _raise_for(
                resp.status,
                resp.headers,
                resp.object,
                driver=self,
                container_name=obj.container.name,
                object_name=obj.name,
            )
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
        status = int(resp.status)
        rr: requests.Response = resp.requests_response
        if status == 206:
            return iter_response(rr, chunk_size)
        if status == 200:
            # Whole object: either no range was asked for, or the server ignored it.
            limit = None if end is None else max(0, end - start)
            return iter_response(rr, chunk_size, skip=start, limit=limit)
        if status == 416:
            rr.close()
            return empty_stream()
        _raw_failure(resp, driver=self, container_name=obj.container.name, object_name=obj.name)
        raise AssertionError("unreachable")

    def download_object_as_stream(
        self, obj: Object, chunk_size: int | None = None
    ) -> Iterator[bytes]:
        """Open the GET now (errors raise here), stream the body lazily."""
        return self._download(obj, {}, chunk_size)

    def download_object_range_as_stream(
        self,
        obj: Object,
        start_bytes: int,
        end_bytes: int | None = None,
        chunk_size: int | None = None,
    ) -> Iterator[bytes]:
        """Bytes ``start_bytes`` to ``end_bytes`` (exclusive); empty ranges make no request."""
        if start_bytes < 0 or (end_bytes is not None and end_bytes < 0):
            raise ValueError("byte offsets must be >= 0")
        if end_bytes is not None and end_bytes <= start_bytes:
            return empty_stream()
        rng = f"bytes={start_bytes}-" + ("" if end_bytes is None else str(end_bytes - 1))
        return self._download(obj, {"x-ms-range": rng}, chunk_size, start_bytes, end_bytes)

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
            _raise_for(
                resp.status,
                resp.headers,
                resp.object,
                driver=self,
                container_name=container.name,
                object_name=object_name,
            )

    def ex_put_object_if_absent(self, container: Container, object_name: str, data: bytes) -> bool:
        """Put Blob with ``If-None-Match: *``; 409 BlobAlreadyExists means someone was first."""
        resp = self._put_blob(container, object_name, bytes(data), {"If-None-Match": "*"})
        if resp.status == 201:
            return True
        code = _error_code(resp.headers, resp.object)
        if resp.status in (409, 412) and (code in _EXISTS_CODES or code is None):
            return False
        _raise_for(
            resp.status,
            resp.headers,
            resp.object,
            driver=self,
            container_name=container.name,
            object_name=object_name,
        )
        raise AssertionError("unreachable")

    def ex_copy_object(self, container: Container, src_name: str, dest_name: str) -> None:
        """Copy Blob within the account; waits while the service reports the copy pending."""
        dest_path = self._get_object_path(container, dest_name)
        resp = self.connection.request(
            dest_path,
            method="PUT",
            headers={"x-ms-copy-source": self._blob_url(container, src_name)},
        )
        if resp.status not in (200, 201, 202):
            code = _error_code(resp.headers, resp.object)
            if resp.status == 404 and code != _NOT_FOUND_CONTAINER:
                raise ObjectDoesNotExistError(
                    value=f"copy source {src_name!r} does not exist ({code})",
                    driver=self,
                    object_name=src_name,
                )
            _raise_for(
                resp.status,
                resp.headers,
                resp.object,
                driver=self,
                container_name=container.name,
                object_name=src_name,
            )
        state = resp.headers.get("x-ms-copy-status", "success")
        copy_id = resp.headers.get("x-ms-copy-id")
        deadline = time.monotonic() + max(600.0, 20 * self.timeout)
        delay = 0.05
        while state == "pending":
            if time.monotonic() > deadline:
                self._abort_copy(dest_path, copy_id)
                raise LibcloudError(f"copy of {src_name!r} still pending; aborted", driver=self)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            head = self.connection.request(dest_path, method="HEAD")
            if head.status != 200:
                _raise_for(
                    head.status,
                    head.headers,
                    "",
                    driver=self,
                    container_name=container.name,
                    object_name=dest_name,
                )
            state = head.headers.get("x-ms-copy-status", "success")
        if state != "success":
            raise LibcloudError(f"copy of {src_name!r} ended with status {state!r}", driver=self)

    def _abort_copy(self, dest_path: str, copy_id: str | None) -> None:
        if not copy_id:
            return
        with contextlib.suppress(Exception):  # best effort; the timeout is the error
            self.connection.request(
                dest_path,
                method="PUT",
                params={"comp": "copy", "copyid": copy_id},
                headers={"x-ms-copy-action": "abort"},
            )

    def ex_upload_stream(
        self, container: Container, object_name: str, chunks: Iterable[bytes]
    ) -> None:
        """Small streams: one Put Blob. Larger: blocks of ``part_size`` uploaded by
        ``max_concurrency`` threads, then Put Block List. Until the list is
        committed the blocks are invisible, so any failure leaves nothing."""
        threshold = self.transfer.single_put_threshold
        it = iter(chunks)
        head: list[bytes] = []
        size = 0
        for chunk in it:
            if chunk:
                head.append(bytes(chunk))
                size += len(chunk)
            if size > threshold:
                break
        if size <= threshold:
            data = b"".join(head)
            self.libkb_call(lambda: self.ex_put_object(container, object_name, data))
            return

        def all_chunks() -> Iterator[bytes]:
            yield from head
            head.clear()
            yield from it

        path = self._get_object_path(container, object_name)
        tag = uuid.uuid4().hex[:16]
        abort = threading.Event()

        def put_block(index: int, data: bytes) -> str:
            if index >= MAX_BLOCKS:
                raise LibcloudError(
                    f"stream needs more than {MAX_BLOCKS} blocks; raise transfer.part_size",
                    driver=self,
                )
            block_id = base64.b64encode(f"{tag}-{index:06d}".encode("ascii")).decode("ascii")
            md5 = base64.b64encode(hashlib.md5(data).digest()).decode("ascii")

            def attempt() -> None:
                if abort.is_set():
                    raise LibcloudError("upload aborted", driver=self)
                resp = self.connection.request(
                    path,
                    method="PUT",
                    data=data,
                    params={"comp": "block", "blockid": block_id},
                    headers={"Content-Length": str(len(data)), "Content-MD5": md5},
                )
                if resp.status != 201:
                    _raise_for(
                        resp.status,
                        resp.headers,
                        resp.object,
                        driver=self,
                        container_name=container.name,
                        object_name=object_name,
                    )

            self.libkb_call(attempt)
            return block_id

        block_ids = run_parallel(
            self._executor(),
            rechunk(all_chunks(), self.transfer.part_size),
            put_block,
            self.transfer.max_concurrency,
            abort,
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><BlockList>'
            + "".join(f"<Latest>{escape(b)}</Latest>" for b in block_ids)
            + "</BlockList>"
        ).encode("utf-8")

        def commit() -> None:
            resp = self.connection.request(
                path,
                method="PUT",
                data=body,
                params={"comp": "blocklist"},
                headers={
                    "Content-Length": str(len(body)),
                    "Content-Type": "application/xml",
                    "x-ms-blob-content-type": "application/octet-stream",
                },
            )
            if resp.status != 201:
                _raise_for(
                    resp.status,
                    resp.headers,
                    resp.object,
                    driver=self,
                    container_name=container.name,
                    object_name=object_name,
                )

        self.libkb_call(commit)

    def ex_close(self) -> None:
        """Stop the upload threads, close every thread's HTTP session and the credential."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        self._libkb_close_connections()
        if self.token_source is not None:
            self.token_source.close()


# --------------------------------------------------------------------------- builder


def _default_azure_credential() -> TokenCredential:
    """azure-identity's DefaultAzureCredential, or a ConfigError naming the fixes."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise ConfigError(
            "no Azure account key: set account_key in the storage config or the "
            "AZURE_STORAGE_KEY environment variable, or install the 'libkb[azure]' extra "
            "(azure-identity) to use Azure AD credentials (service principal, managed or "
            "workload identity, Azure CLI)",
            key="storage.account_key",
        ) from None
    cred: TokenCredential = DefaultAzureCredential()
    return cred


def build_azure_driver(
    cfg: AzureConfig, *, credential: TokenCredential | None = None
) -> LibkbAzureBlobsDriver:
    """The driver for ``cfg``: account key from config, then ``AZURE_STORAGE_KEY``,
    then ``credential`` or DefaultAzureCredential (bearer tokens)."""
    common: dict[str, Any] = {
        "endpoint": cfg.endpoint,
        "timeout": cfg.resilience.timeout_secs,
        "transfer": cfg.transfer,
    }
    key = cfg.account_key or os.environ.get("AZURE_STORAGE_KEY") or None
    if key and credential is None:
        return LibkbAzureBlobsDriver(cfg.account_name, account_key=key, **common)
    owns = credential is None
    cred = credential if credential is not None else _default_azure_credential()
    source = AzureTokenSource(cred, owns_credential=owns)
    return LibkbAzureBlobsDriver(cfg.account_name, token_source=source, **common)


__all__ = [
    "AZURE_API_VERSION",
    "AzureEndpoint",
    "AzureTokenSource",
    "LibkbAzureBlobsDriver",
    "build_azure_driver",
    "resolve_azure_endpoint",
]

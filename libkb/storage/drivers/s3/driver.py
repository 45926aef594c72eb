"""The S3 driver: libkb's driver contract (:mod:`libkb.storage.drivers.base`) for
S3 and S3-compatible servers, as a Libcloud ``StorageDriver``.

It does not build on Libcloud 3.9.1's ``S3StorageDriver`` because of defects
measured there (DESIGN.md): path-style only, ``?Version=`` added to GETs
(SeaweedFS answers 501), non-AWS regions rejected, ``User-Agent`` signed (moto
rejects it), every non-200 on HEAD reported as "does not exist", sequential
5 MiB multipart uploads, response bodies decoded with a guessed charset, and
no copy/conditional put.

What it keeps from Libcloud: the driver/connection class shapes, ``Container``
and ``Object``, and the exception classes the adapter maps
(``ObjectDoesNotExistError``, ``ContainerDoesNotExistError``,
``InvalidCredsError``, ``BaseHTTPError``/``RateLimitReachedError`` with the HTTP
status in ``.code``, ``LibcloudError``).

- No retries here: Libcloud's retry wrapper and urllib3's are off. The adapter
  retries whole calls; inside long operations (multipart parts, resumed
  downloads) the driver calls ``self.libkb_call`` per repeatable request.
- Secrets never reach ``repr``, logs or exception messages: credentials live in
  a provider object whose ``repr`` hides them, and error messages carry only
  the service's error code and message.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import requests
from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import LibcloudError
from libcloud.storage.base import Container, Object, StorageDriver
from libcloud.storage.types import ObjectDoesNotExistError

from libkb.errors import ConfigError
from libkb.storage.drivers.base import LibkbDriverMixin
from libkb.storage.drivers.common.per_thread import PerThreadConnectionMixin
from libkb.storage.drivers.common.uploads import small_or_stream
from libkb.storage.drivers.s3.addressing import (
    DEFAULT_REGION,
    S3Endpoint,
    resolve_endpoint,
    resolve_region,
)
from libkb.storage.drivers.s3.calls import S3Calls
from libkb.storage.drivers.s3.connection import S3Connection, make_session
from libkb.storage.drivers.s3.copy import copy_object
from libkb.storage.drivers.s3.credentials import CredentialProvider, resolve_credentials
from libkb.storage.drivers.s3.download import body_chunks, open_get
from libkb.storage.drivers.s3.errors import error_from_response
from libkb.storage.drivers.s3.listing import iterate_buckets, iterate_objects
from libkb.storage.drivers.s3.multipart import MAX_SINGLE_PUT, MIN_PART_SIZE, multipart_upload
from libkb.storage.drivers.s3.parsing import etag_unquoted, http_date_to_ms
from libkb.storage.drivers.s3.sse import ServerSideEncryption
from libkb.storage.settings import MiB, ResilienceConfig, S3Config, TransferConfig


def _close_pool(pool: ThreadPoolExecutor | None, session: requests.Session) -> None:
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    session.close()


class S3Driver(PerThreadConnectionMixin, LibkbDriverMixin, StorageDriver):  # type: ignore[misc]
    """Libcloud storage driver for S3 and S3-compatible servers (see module doc)."""

    name = "S3"
    website = "https://aws.amazon.com/s3/"
    hash_type = "md5"
    supports_chunked_encoding = False
    libkb_name = "s3"
    connectionCls = S3Connection

    #: Largest source a single CopyObject may copy (S3's limit); bigger sources
    #: are copied with UploadPartCopy. Instance-overridable for tests.
    max_single_copy_bytes: int = MAX_SINGLE_PUT
    #: Smallest part of a multipart copy (server-side, so large parts are cheap).
    copy_part_size: int = 512 * MiB

    def __init__(
        self,
        *,
        endpoint: S3Endpoint,
        region: str,
        credentials: CredentialProvider,
        path_style: bool = False,
        resilience: ResilienceConfig | None = None,
        transfer: TransferConfig | None = None,
        sign_payload: bool = False,
        ca_bundle: str | None = None,
        sse: ServerSideEncryption | None = None,
    ) -> None:
        # BaseDriver.__init__ is not called: it would keep key/secret as plain
        # attributes and build one shared (thread-unsafe) connection.
        self.key = None
        self.secret = None
        self.secure = endpoint.scheme == "https"
        self.api_version = None
        self.region = region
        self.endpoint = endpoint
        self.path_style = path_style
        self.sign_payload = sign_payload
        self.credential_source = credentials.source
        self._credentials = credentials
        #: Server-side encryption asked of S3 for every object (None: the bucket's default).
        self._sse = sse
        self._resilience = resilience or ResilienceConfig()
        transfer = transfer or TransferConfig()
        if transfer.part_size < MIN_PART_SIZE:
            raise ConfigError(
                f"part_size must be at least {MIN_PART_SIZE} bytes (5 MiB) for S3",
                key="storage.transfer.part_size",
            )
        if transfer.part_size > MAX_SINGLE_PUT:
            raise ConfigError("part_size must be at most 5 GiB", key="storage.transfer.part_size")
        if transfer.max_concurrency < 1:
            raise ConfigError("max_concurrency must be at least 1", key="storage.transfer.max_concurrency")
        self._transfer = transfer
        self._single_put_limit = min(transfer.single_put_threshold, MAX_SINGLE_PUT)
        self._session = make_session(max(16, 4 * transfer.max_concurrency), ca_bundle)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, _close_pool, None, self._session)

    def __repr__(self) -> str:
        style = "path" if self.path_style else "virtual"
        return f"<S3Driver {self.endpoint.url} region={self.region} addressing={style}>"

    # -- plumbing ---------------------------------------------------------

    def _libkb_new_connection(self) -> S3Connection:
        if self._closed:
            raise LibcloudError(value="S3 driver is closed", driver=self)
        conn = S3Connection(
            endpoint=self.endpoint,
            region=self.region,
            credentials=self._credentials,
            path_style=self.path_style,
            session=self._session,
            timeout=self._resilience.timeout_secs,
            sign_payload=self.sign_payload,
        )
        conn.driver = self
        return conn

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._closed:
                raise LibcloudError(value="S3 driver is closed", driver=self)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(2, 2 * self._transfer.max_concurrency),
                    thread_name_prefix="libkb-s3",
                )
                self._finalizer.detach()
                self._finalizer = weakref.finalize(self, _close_pool, self._pool, self._session)
            return self._pool

    def _request(
        self,
        method: str,
        bucket: str,
        key: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        connection: S3Connection = self.connection
        if self._sse is not None:
            extra = self._sse.headers(method, key, kwargs.get("params"), kwargs.get("headers"))
            if extra:
                kwargs["headers"] = {**(kwargs.get("headers") or {}), **extra}
        return connection.s3_request(method, bucket, key, **kwargs)

    def _calls(self) -> S3Calls:
        """What the helper modules need, bound now (tests and the adapter swap
        ``_request`` and ``libkb_call``)."""
        return S3Calls(send=self._request, call=self.libkb_call, head=self.get_object, owner=self)

    def _object_from_headers(self, container: Container, name: str, headers: Mapping[str, str]) -> Object:
        length = headers.get("content-length")
        size = int(length) if length is not None else 0
        raw_etag = headers.get("etag")
        extra: dict[str, Any] = {
            "mtime_ms": http_date_to_ms(headers.get("last-modified")),
            "etag": raw_etag,
            "last_modified": headers.get("last-modified"),
            "content_type": headers.get("content-type"),
        }
        meta = {k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.lower().startswith("x-amz-meta-")}
        return Object(
            name=name,
            size=size,
            hash=etag_unquoted(raw_etag),
            extra=extra,
            meta_data=meta,
            container=container,
            driver=self,
        )

    # -- containers ---------------------------------------------------------

    def get_container(self, container_name: str) -> Container:
        """HEAD the bucket. 404 -> ContainerDoesNotExistError.

        A 403 still returns the container, as Libcloud does: HEAD bucket needs
        s3:ListBucket, which object-only policies lack; real auth failures show
        on the first object call.
        """
        response = self._request("HEAD", container_name)
        if response.status_code == 403:
            response.close()
        elif response.status_code >= 300:
            raise self._calls().fail(
                response, bucket=container_name, key=None, operation="head", missing="bucket"
            )
        return Container(name=container_name, extra={}, driver=self)

    def iterate_containers(self) -> Iterator[Container]:
        """ListBuckets (not used by the adapter; handy for tools and tests)."""
        return iterate_buckets(self._calls())

    def create_container(self, container_name: str) -> Container:
        """Create a bucket (tests, benchmarks); sends the region unless us-east-1."""
        body = None
        if self.region != DEFAULT_REGION:
            body = (
                "<CreateBucketConfiguration><LocationConstraint>"
                f"{xml_escape(self.region)}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        response = self._request("PUT", container_name, data=body)
        if response.status_code != 200:
            raise self._calls().fail(response, bucket=container_name, key=None, operation="create bucket")
        response.close()
        return Container(name=container_name, extra={}, driver=self)

    def delete_container(self, container: Container) -> bool:
        response = self._request("DELETE", container.name)
        if response.status_code not in (200, 204):
            raise self._calls().fail(
                response,
                bucket=container.name,
                key=None,
                operation="delete bucket",
                missing="bucket",
            )
        response.close()
        return True

    # -- objects: metadata, listing, delete ----------------------------------

    def get_object(self, container_name: str, object_name: str) -> Object:
        """One HEAD. On 404 a second HEAD on the bucket tells a missing object from
        a missing bucket (HEAD responses have no error body to say which)."""
        response = self._request("HEAD", container_name, object_name)
        response.close()
        status = response.status_code
        container = Container(name=container_name, extra={}, driver=self)
        if status == 200:
            return self._object_from_headers(container, object_name, response.headers)
        if status == 404:
            self.get_container(container_name)  # raises ContainerDoesNotExistError
            missing = "object"
        else:
            missing = None
        raise error_from_response(
            status,
            response.headers,
            b"",
            driver=self,
            bucket=container_name,
            key=object_name,
            operation="head",
            missing=missing,
        )

    def iterate_container_objects(
        self, container: Container, prefix: str | None = None, ex_prefix: str | None = None
    ) -> Iterator[Object]:
        """Lazily page through ListObjectsV2 (1000 keys per request) under a plain prefix."""
        return iterate_objects(self._calls(), container, prefix if prefix is not None else ex_prefix)

    def delete_object(self, obj: Object) -> bool:
        """DELETE; S3 answers 204 whether or not the key existed."""
        bucket = obj.container.name
        response = self._request("DELETE", bucket, obj.name)
        if response.status_code not in (200, 204):
            raise self._calls().fail(
                response, bucket=bucket, key=obj.name, operation="delete", missing="object"
            )
        response.close()
        return True

    # -- downloads -------------------------------------------------------------

    def download_object_as_stream(self, obj: Object, chunk_size: int | None = None) -> Iterator[bytes]:
        """Stream the object. The GET is sent (and 404 raised) by this call."""
        return self._stream(obj, 0, None, chunk_size)

    def download_object_range_as_stream(
        self,
        obj: Object,
        start_bytes: int,
        end_bytes: int | None = None,
        chunk_size: int | None = None,
    ) -> Iterator[bytes]:
        """Stream ``[start_bytes, end_bytes)``; empty when the range starts past the end."""
        if start_bytes < 0 or (end_bytes is not None and end_bytes < start_bytes):
            raise ValueError(f"invalid byte range {start_bytes}..{end_bytes}")
        if end_bytes is not None and end_bytes == start_bytes:
            return iter(())
        return self._stream(obj, start_bytes, end_bytes, chunk_size)

    def _stream(self, obj: Object, start: int, end: int | None, chunk_size: int | None) -> Iterator[bytes]:
        """Send the GET now; resume a dropped body up to ``max_attempts - 1`` times."""
        calls = self._calls()
        bucket = obj.container.name
        response = open_get(calls, bucket, obj.name, start, end)
        resumes = max(0, self._resilience.max_attempts - 1)
        return body_chunks(calls, response, bucket, obj.name, start, end, chunk_size or MiB, resumes=resumes)

    # -- writes -------------------------------------------------------------------

    def _put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        extra_headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        headers = {"Content-Type": "application/octet-stream"}
        if extra_headers:
            headers.update(extra_headers)
        return self._request("PUT", bucket, key, headers=headers, data=bytes(data))

    def ex_put_object(self, container: Container, object_name: str, data: bytes) -> None:
        """Single PUT with Content-Length; atomic on S3."""
        bucket = container.name
        response = self._put(bucket, object_name, data)
        if response.status_code != 200:
            raise self._calls().fail(response, bucket=bucket, key=object_name, operation="put")
        response.close()

    def ex_put_object_if_absent(self, container: Container, object_name: str, data: bytes) -> bool:
        """PUT with ``If-None-Match: *``. 412 -> False.

        409 ConditionalRequestConflict means a concurrent conditional write to
        the same key is in flight: retry briefly (the other writer then wins
        with 412); if it persists, False when the object now exists, else raise.
        """
        bucket = container.name
        attempts = 5
        for attempt in range(attempts):
            response = self._put(bucket, object_name, data, {"If-None-Match": "*"})
            status = response.status_code
            if status in (200, 412):
                response.close()
                return status == 200
            if status != 409:
                raise self._calls().fail(response, bucket=bucket, key=object_name, operation="put")
            response.close()
            if attempt < attempts - 1:
                time.sleep(0.05 * 2**attempt)
        try:
            self.get_object(bucket, object_name)
        except ObjectDoesNotExistError:
            raise BaseHTTPError(
                409,
                f"S3 put s3://{bucket}/{object_name} failed: HTTP 409 ConditionalRequestConflict persisted",
                {},
            ) from None
        return False

    def ex_copy_object(self, container: Container, src_name: str, dest_name: str) -> None:
        """Server-side copy; ObjectDoesNotExistError if ``src`` is missing (see :mod:`.copy`)."""
        copy_object(
            self._calls(),
            container.name,
            src_name,
            dest_name,
            single_copy_limit=self.max_single_copy_bytes,
            part_size=max(self.copy_part_size, self._transfer.part_size),
            pool=self._executor,
        )

    def ex_upload_stream(self, container: Container, object_name: str, chunks: Iterable[bytes]) -> None:
        """Upload from chunks of any size with bounded memory.

        Up to ``single_put_threshold`` bytes: one PUT. Beyond: a multipart
        upload on the driver's pool (see :mod:`.multipart`). Any error,
        including one raised by ``chunks``, aborts the upload: nothing
        becomes visible.
        """
        data, stream = small_or_stream(chunks, self._single_put_limit)
        if data is not None:
            self.libkb_call(partial(self.ex_put_object, container, object_name, data))
            return
        pool = self._executor()
        multipart_upload(self._calls(), container.name, object_name, stream, self._transfer, pool)

    def upload_object_via_stream(
        self,
        iterator: Iterable[bytes],
        container: Container,
        object_name: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Object:
        """Libcloud API on top of :meth:`ex_upload_stream` (extra/headers ignored)."""
        self.ex_upload_stream(container, object_name, iterator)
        return self.get_object(container.name, object_name)

    # -- lifecycle ------------------------------------------------------------------

    def ex_close(self) -> None:
        """Stop the thread pool and close pooled connections. Idempotent."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._session.close()
        self._finalizer.detach()


def build_s3_driver(
    cfg: S3Config, *, env: Mapping[str, str] | None = None, sign_payload: bool = False
) -> S3Driver:
    """Build the driver from validated settings (container name = ``cfg.bucket``).

    Resolves region, endpoint and credentials now, so a missing credential or
    a forbidden http endpoint fails at startup with a clear message.
    """
    environ = os.environ if env is None else env
    region = resolve_region(cfg.region, environ)
    endpoint = resolve_endpoint(cfg.endpoint, region, allow_http=bool(cfg.allow_http))
    credentials = resolve_credentials(cfg, environ)
    return S3Driver(
        endpoint=endpoint,
        region=region,
        credentials=credentials,
        path_style=cfg.path_style,
        resilience=cfg.resilience,
        transfer=cfg.transfer,
        sign_payload=sign_payload,
        ca_bundle=cfg.ca_bundle or environ.get("AWS_CA_BUNDLE") or None,
        sse=server_side_encryption(cfg),
    )


def server_side_encryption(cfg: S3Config) -> ServerSideEncryption | None:
    """The settings' server-side encryption, or None (the bucket's default applies)."""
    if cfg.server_side_encryption is None:
        return None
    return ServerSideEncryption(
        cfg.server_side_encryption, cfg.sse_kms_key_id, cfg.sse_bucket_key_enabled, cfg.sse_customer_key
    )

"""Google Cloud Storage driver over the GCS JSON API, as a Libcloud ``StorageDriver``.

Libcloud's own Google Storage driver speaks the XML interoperability API,
which fake-gcs-server does not cover (and whose constructor breaks with a
custom host), so this driver talks JSON (``/storage/v1`` and
``/upload/storage/v1``) with Libcloud's ``Connection``/``Response`` classes
and exceptions.

- Names are percent-encoded whole in paths (``/`` included), so any key
  round-trips.
- Auth: a service-account (or any google-auth credentials) file from
  ``service_account_path`` or ``GOOGLE_APPLICATION_CREDENTIALS``, else
  application default credentials (google-auth, the ``gcp`` extra); tokens
  are refreshed by google-auth behind one lock. With an emulator endpoint and
  no credentials configured, no ``Authorization`` is sent.
- Errors: 401/403 ``InvalidCredsError``; 404 ``ObjectDoesNotExistError`` or
  ``ContainerDoesNotExistError``; others ``BaseHTTPError`` with ``.code``.
- Streams: a resumable upload in sequential chunks (a multiple of 256 KiB),
  each chunk retried on its own (resuming from what the service persisted);
  on error the session is cancelled, and nothing is visible until the last
  chunk completes the upload.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import threading
import uuid
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from libcloud.common.base import Connection, JsonResponse, RawResponse
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.storage.base import Container, Object, StorageDriver
from libcloud.storage.types import (
    ContainerAlreadyExistsError,
    ContainerDoesNotExistError,
    ContainerIsNotEmptyError,
    ObjectDoesNotExistError,
)

from libkb.errors import ConfigError
from libkb.storage.drivers.base import LibkbDriverMixin
from libkb.storage.drivers.common.downloads import empty_stream, iter_response
from libkb.storage.drivers.common.errors import clip_text, http_error, redact_url_error
from libkb.storage.drivers.common.per_thread import PerThreadConnectionMixin
from libkb.storage.drivers.common.timestamps import rfc3339_to_ms
from libkb.storage.drivers.common.transport import LibkbHTTPConnection, NoRetry, ReleaseBodyMixin
from libkb.storage.drivers.common.uploads import rechunk
from libkb.storage.settings import GcsConfig, TransferConfig

#: Public JSON API endpoint.
GCS_DEFAULT_ENDPOINT = "https://storage.googleapis.com"

#: OAuth scope for reading and writing objects.
GCS_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)

#: Resumable chunks must be multiples of this (except the last).
RESUMABLE_QUANTUM = 256 * 1024

#: Objects listed per page (the service maximum).
LIST_PAGE_SIZE = 1000

_LIST_FIELDS = "items(name,size,etag,md5Hash,crc32c,generation,updated,timeCreated),nextPageToken"


# --------------------------------------------------------------------------- errors


def _error_message(body: Any, text: str | bytes | None) -> str:
    """The ``error.message`` of a JSON error body, else the body's first line."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return clip_text(str(err["message"]))
        if isinstance(err, str):
            return clip_text(err)
    return clip_text(text)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text) if text else ""
    except ValueError:
        return text


def gcs_error(status: int, body_text: str, headers: dict[str, str] | None = None) -> Exception:
    """The exception for a failed JSON API response (401/403 -> InvalidCredsError)."""
    return http_error(status, _error_message(_json_or_text(body_text), body_text), headers)


class GcsJsonResponse(JsonResponse):  # type: ignore[misc]
    """JSON response that hands 404/412/416/308 back to the driver and raises
    ``InvalidCredsError`` (401/403) or ``BaseHTTPError`` (with ``.code``) otherwise."""

    HANDLED = frozenset({308, 404, 409, 412, 416})

    def success(self) -> bool:
        status = int(self.status)
        return 200 <= status <= 299 or status in self.HANDLED

    def parse_body(self) -> Any:
        return _json_or_text(self.body)

    def parse_error(self) -> Any:
        raise gcs_error(int(self.status), self.body, self.headers)


class GcsRawResponse(RawResponse):  # type: ignore[misc]
    """Streamed response holding its own ``requests.Response``; the driver checks status."""

    def __init__(self, connection: Any, response: requests.Response | None = None) -> None:
        self.requests_response = response
        super().__init__(connection, response)

    def success(self) -> bool:
        return 200 <= int(self.status) <= 299

    def parse_error(self) -> None:
        return None


# --------------------------------------------------------------------------- auth


class GoogleTokenSource:
    """Thread-safe ``Authorization`` headers from google-auth credentials.

    google-auth credentials are not thread-safe; one lock serialises the
    refresh (done when ``credentials.valid`` turns false, i.e. a few minutes
    before expiry). Refresh failures become ``InvalidCredsError`` (or a
    requests ``ConnectionError`` for a network failure) so no google-auth
    exception reaches the adapter.
    """

    def __init__(self, credentials: Any, request: Any = None) -> None:
        self.credentials = credentials
        self._request = request
        self._lock = threading.Lock()

    def _transport(self) -> Any:
        if self._request is None:
            from google.auth.transport.requests import Request

            self._request = Request()
        return self._request

    def headers(self) -> dict[str, str]:
        with self._lock:
            creds = self.credentials
            if not creds.valid:
                self._refresh()
            out: dict[str, str] = {}
            creds.apply(out)
            return out

    def _refresh(self) -> None:
        try:
            self.credentials.refresh(self._transport())
        except Exception as exc:
            name = type(exc).__name__
            text = clip_text(str(exc), 500)
            if name == "TransportError":
                raise requests.ConnectionError(
                    f"could not reach the Google token endpoint ({text})"
                ) from None
            raise InvalidCredsError(
                f"could not refresh Google credentials ({name}: {text}); check "
                "service_account_path / GOOGLE_APPLICATION_CREDENTIALS or "
                "'gcloud auth application-default login'"
            ) from None

    def __repr__(self) -> str:
        return f"<GoogleTokenSource {type(self.credentials).__name__}>"


# --------------------------------------------------------------------------- connection


@dataclass(frozen=True, slots=True)
class GcsEndpoint:
    """JSON API base: scheme, host, port and a path prefix (for proxies/emulators)."""

    secure: bool
    host: str
    port: int
    base_path: str

    @property
    def url(self) -> str:
        scheme = "https" if self.secure else "http"
        default = 443 if self.secure else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{scheme}://{self.host}{port}{self.base_path}"


def resolve_gcs_endpoint(endpoint: str | None) -> GcsEndpoint:
    """``cfg.endpoint`` (e.g. ``http://127.0.0.1:4443``) or the public API."""
    url = endpoint or GCS_DEFAULT_ENDPOINT
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"endpoint {url!r} is not an http(s) URL (e.g. http://127.0.0.1:4443)",
            key="storage.endpoint",
        )
    secure = parts.scheme == "https"
    base = parts.path.rstrip("/")
    for suffix in ("/storage/v1", "/upload/storage/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return GcsEndpoint(secure, parts.hostname, parts.port or (443 if secure else 80), base)


class GcsJsonConnection(ReleaseBodyMixin, Connection):  # type: ignore[misc]
    """Connection to the JSON API: bearer header from a token source (or none),
    exact paths, timeouts on streams, no Libcloud retries."""

    conn_class = LibkbHTTPConnection
    responseCls = GcsJsonResponse
    rawResponseCls = GcsRawResponse
    retryCls = NoRetry

    def __init__(
        self,
        endpoint: GcsEndpoint,
        token_source: GoogleTokenSource | None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(
            secure=endpoint.secure, host=endpoint.host, port=endpoint.port, timeout=timeout
        )
        self.base_path = endpoint.base_path
        self.token_source = token_source

    def morph_action_hook(self, action: str) -> str:
        # Paths are already percent-encoded; Libcloud's urljoin would collapse them.
        return f"{self.base_path}{action}"

    def add_default_headers(self, headers: dict[str, str]) -> dict[str, str]:
        if self.token_source is not None:
            headers.update(self.token_source.headers())
        return headers

    def __repr__(self) -> str:
        return f"<GcsJsonConnection {self.host}:{self.port}{self.base_path}>"


def _q(text: str) -> str:
    """Percent-encode a bucket or object name as one path segment (``/`` too)."""
    return quote(text, safe="")


# --------------------------------------------------------------------------- driver


class LibkbGcsDriver(PerThreadConnectionMixin, LibkbDriverMixin, StorageDriver):  # type: ignore[misc]
    """GCS JSON API driver with libkb's contract (see drivers/base.py)."""

    name = "Google Cloud Storage (JSON API)"
    website = "https://cloud.google.com/storage"
    hash_type = "md5"
    supports_chunked_encoding = False
    libkb_name = "gcs"
    connectionCls = GcsJsonConnection

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token_source: GoogleTokenSource | None = None,
        timeout: float = 60.0,
        transfer: TransferConfig | None = None,
        project: str | None = None,
    ) -> None:
        self.endpoint = resolve_gcs_endpoint(endpoint)
        self.token_source = token_source
        self.timeout = timeout
        self.transfer = transfer or TransferConfig()
        self.project = project
        # What BaseDriver.__init__ sets, without opening a connection now:
        # each thread gets its own connection on first use.
        self.key = None
        self.secret = None
        self.secure = self.endpoint.secure
        self.api_version = None
        self.region = None

    def _libkb_new_connection(self) -> Any:
        conn = GcsJsonConnection(self.endpoint, self.token_source, timeout=self.timeout)
        conn.driver = self
        conn.connect()
        return conn

    def __repr__(self) -> str:
        auth = "anonymous" if self.token_source is None else "oauth2"
        return f"<LibkbGcsDriver endpoint={self.endpoint.url} auth={auth}>"

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def _bucket_path(bucket: str) -> str:
        return f"/storage/v1/b/{_q(bucket)}"

    def _object_path(self, bucket: str, name: str) -> str:
        return f"{self._bucket_path(bucket)}/o/{_q(name)}"

    def _upload_path(self, bucket: str) -> str:
        return f"/upload/storage/v1/b/{_q(bucket)}/o"

    def _to_object(self, container: Container, item: dict[str, Any]) -> Object:
        md5 = item.get("md5Hash")
        md5_hex = None
        if md5:
            with contextlib.suppress(binascii.Error, ValueError):
                md5_hex = base64.b64decode(md5).hex()
        updated = item.get("updated") or item.get("timeCreated")
        extra = {
            "etag": item.get("etag"),
            "md5_hash": md5_hex,
            "crc32c": item.get("crc32c"),
            "generation": item.get("generation"),
            "content_type": item.get("contentType"),
            "last_modified": updated,
            "mtime_ms": rfc3339_to_ms(updated),
        }
        return Object(
            name=item["name"],
            size=int(item.get("size", 0)),
            hash=item.get("etag"),
            extra=extra,
            meta_data=dict(item.get("metadata") or {}),
            container=container,
            driver=self,
        )

    def _container_missing(self, bucket: str) -> Exception:
        err: Exception = ContainerDoesNotExistError(
            value=f"bucket {bucket!r} does not exist", driver=self, container_name=bucket
        )
        return err

    def _not_found(self, bucket: str, name: str, message: str) -> Exception:
        """Tell a missing bucket from a missing object after a 404.

        Real GCS says so in the message ("No such object" / "The specified
        bucket does not exist."); emulators answer a bare "Not Found", so
        then one more request checks the bucket.
        """
        lowered = message.lower()
        if "no such object" in lowered:
            missing_bucket = False
        elif "bucket" in lowered and ("not exist" in lowered or "not found" in lowered):
            missing_bucket = True
        else:
            resp = self.connection.request(self._bucket_path(bucket), params={"fields": "name"})
            missing_bucket = resp.status == 404
        if missing_bucket:
            return self._container_missing(bucket)
        err: Exception = ObjectDoesNotExistError(
            value=f"object {name!r} does not exist", driver=self, object_name=name
        )
        return err

    def _fail(self, resp: Any, bucket: str, name: str | None) -> Exception:
        """The exception for a non-success ``GcsJsonResponse`` the driver got back."""
        message = _error_message(resp.object, resp.body)
        if resp.status == 404:
            if name is None:
                return self._container_missing(bucket)
            return self._not_found(bucket, name, message)
        return http_error(int(resp.status), message, resp.headers)

    # -- containers ------------------------------------------------------------

    def get_container(self, container_name: str) -> Container:
        resp = self.connection.request(self._bucket_path(container_name), params={"fields": "name"})
        if resp.status != 200:
            raise self._fail(resp, container_name, None)
        return Container(name=container_name, extra={}, driver=self)

    def create_container(self, container_name: str) -> Container:
        """Create a bucket (``project`` is needed on real GCS, not on emulators)."""
        params = {"project": self.project} if self.project else {}
        resp = self.connection.request(
            "/storage/v1/b",
            params=params,
            method="POST",
            data=json.dumps({"name": container_name}),
            headers={"Content-Type": "application/json"},
        )
        if resp.status == 409:
            raise ContainerAlreadyExistsError(
                value=f"bucket {container_name!r} exists",
                driver=self,
                container_name=container_name,
            )
        if resp.status not in (200, 201):
            raise self._fail(resp, container_name, None)
        return Container(name=container_name, extra={}, driver=self)

    def delete_container(self, container: Container) -> bool:
        resp = self.connection.request(self._bucket_path(container.name), method="DELETE")
        if resp.status == 409:
            raise ContainerIsNotEmptyError(
                value="bucket is not empty", driver=self, container_name=container.name
            )
        if resp.status not in (200, 204):
            raise self._fail(resp, container.name, None)
        return True

    # -- objects -------------------------------------------------------------

    def get_object(self, container_name: str, object_name: str) -> Object:
        """One GET of the object resource."""
        container = Container(name=container_name, extra={}, driver=self)
        resp = self.connection.request(self._object_path(container_name, object_name))
        if resp.status != 200:
            raise self._fail(resp, container_name, object_name)
        return self._to_object(container, resp.object)

    def iterate_container_objects(
        self, container: Container, prefix: str | None = None, ex_prefix: str | None = None
    ) -> Iterator[Object]:
        """Flat (no delimiter) listing by plain prefix, 1000 per page."""
        prefix = self._normalize_prefix_argument(prefix, ex_prefix)
        params: dict[str, Any] = {"maxResults": LIST_PAGE_SIZE, "fields": _LIST_FIELDS}
        if prefix:
            params["prefix"] = prefix
        path = f"{self._bucket_path(container.name)}/o"
        while True:
            resp = self.connection.request(path, params=params)
            if resp.status != 200:
                raise self._fail(resp, container.name, None)
            body = resp.object if isinstance(resp.object, dict) else {}
            for item in body.get("items") or ():
                yield self._to_object(container, item)
            token = body.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = token

    def delete_object(self, obj: Object) -> bool:
        bucket = obj.container.name
        resp = self.connection.request(self._object_path(bucket, obj.name), method="DELETE")
        if resp.status not in (200, 204):
            raise self._fail(resp, bucket, obj.name)
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
        bucket = obj.container.name
        resp = self.connection.request(
            self._object_path(bucket, obj.name),
            params={"alt": "media"},
            headers=headers,
            raw=True,
            stream=True,
        )
        rr: requests.Response = resp.requests_response
        status = int(resp.status)
        if status == 206:
            return iter_response(rr, chunk_size)
        if status == 200:
            limit = None if end is None else max(0, end - start)
            return iter_response(rr, chunk_size, skip=start, limit=limit)
        if status == 416:
            rr.close()
            return empty_stream()
        try:
            text = rr.text
        finally:
            rr.close()
        message = _error_message(_json_or_text(text), text)
        if status == 404:
            raise self._not_found(bucket, obj.name, message)
        raise http_error(status, message, resp.headers)

    def download_object_as_stream(
        self, obj: Object, chunk_size: int | None = None
    ) -> Iterator[bytes]:
        """Open the media GET now (errors raise here), stream the body lazily."""
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
        return self._download(obj, {"Range": rng}, chunk_size, start_bytes, end_bytes)

    # -- writes --------------------------------------------------------------

    def ex_put_object(self, container: Container, object_name: str, data: bytes) -> None:
        """Simple (media) upload: one request; the object appears whole or not at all."""
        resp = self.connection.request(
            self._upload_path(container.name),
            params={"uploadType": "media", "name": object_name},
            method="POST",
            data=bytes(data),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        if resp.status not in (200, 201):
            raise self._fail(resp, container.name, None)

    def ex_put_object_if_absent(self, container: Container, object_name: str, data: bytes) -> bool:
        """Multipart upload with ``ifGenerationMatch=0``; 412 means the object exists.

        Multipart, not media: fake-gcs-server ignores the precondition on media
        uploads (real GCS honours both).
        """
        boundary = f"libkb-{uuid.uuid4().hex}"
        meta = json.dumps({"name": object_name, "contentType": "application/octet-stream"})
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                meta.encode("utf-8"),
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                bytes(data),
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        resp = self.connection.request(
            self._upload_path(container.name),
            params={"uploadType": "multipart", "ifGenerationMatch": "0"},
            method="POST",
            data=body,
            headers={
                "Content-Type": f"multipart/related; boundary={boundary}",
                "Content-Length": str(len(body)),
            },
        )
        if resp.status in (200, 201):
            return True
        if resp.status == 412:
            return False
        raise self._fail(resp, container.name, None)

    def ex_copy_object(self, container: Container, src_name: str, dest_name: str) -> None:
        """``rewriteTo`` until done (big or cross-location copies take several calls)."""
        bucket = container.name
        path = f"{self._object_path(bucket, src_name)}/rewriteTo/b/{_q(bucket)}/o/{_q(dest_name)}"
        params: dict[str, Any] = {}
        while True:
            resp = self.connection.request(
                path,
                params=params,
                method="POST",
                data="{}",
                headers={"Content-Type": "application/json"},
            )
            if resp.status != 200:
                raise self._fail(resp, bucket, src_name)
            body = resp.object if isinstance(resp.object, dict) else {}
            if body.get("done", True):
                return
            token = body.get("rewriteToken")
            if not token:
                raise LibcloudError("rewrite not done but no rewriteToken returned", driver=self)
            params = {"rewriteToken": token}

    def ex_upload_stream(
        self, container: Container, object_name: str, chunks: Iterable[bytes]
    ) -> None:
        """Small streams: one media upload. Larger: a resumable upload in
        sequential ``part_size`` chunks (rounded up to 256 KiB), holding about
        three chunks; cancelled on any error so no object appears."""
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

        part = -(-max(self.transfer.part_size, 1) // RESUMABLE_QUANTUM) * RESUMABLE_QUANTUM
        session = self.libkb_call(lambda: self._start_resumable(container.name, object_name))
        try:
            pieces = rechunk(all_chunks(), part)
            current = next(pieces)
            offset = 0
            for following in pieces:
                self._send_chunk(session, current, offset, None)
                offset += len(current)
                current = following
            self._send_chunk(session, current, offset, offset + len(current))
        except BaseException:
            self._cancel_resumable(session)
            raise

    # -- resumable uploads -----------------------------------------------------

    def _start_resumable(self, bucket: str, name: str) -> _Session:
        resp = self.connection.request(
            self._upload_path(bucket),
            params={"uploadType": "resumable", "name": name},
            method="POST",
            data=json.dumps({"name": name}),
            headers={
                "Content-Type": "application/json; charset=UTF-8",
                "X-Upload-Content-Type": "application/octet-stream",
            },
        )
        if resp.status not in (200, 201):
            raise self._fail(resp, bucket, None)
        location = resp.headers.get("location")
        if not location:
            raise LibcloudError("resumable upload started without a session URI", driver=self)
        parts = urlsplit(location)
        path = parts.path
        if self.endpoint.base_path and path.startswith(self.endpoint.base_path):
            path = path[len(self.endpoint.base_path) :]
        return _Session(
            bucket=bucket, name=name, action=f"{path}?{parts.query}", secret=parts.query
        )

    def _session_request(self, session: _Session, data: bytes, content_range: str) -> Any:
        """PUT to the session URI; its upload id never appears in an error message."""
        try:
            return self.connection.request(
                session.action,
                method="PUT",
                data=data,
                headers={"Content-Range": content_range, "Content-Length": str(len(data))},
            )
        except requests.RequestException as exc:
            raise redact_url_error(exc, session.secret) from None

    @staticmethod
    def _persisted(resp: Any) -> int:
        """Bytes the service holds, from a 308's ``Range: bytes=0-N`` (none: 0)."""
        rng = resp.headers.get("range")
        if not rng or "-" not in rng:
            return 0
        return int(rng.rsplit("-", 1)[1]) + 1

    def _send_chunk(self, session: _Session, data: bytes, start: int, total: int | None) -> None:
        """Upload ``data`` at ``start``; a retry first asks the service what it has."""
        end = start + len(data)
        size = "*" if total is None else str(total)
        tried = False

        def attempt() -> None:
            nonlocal tried
            offset = start
            if tried:
                resp = self._session_request(session, b"", f"bytes */{size}")
                if resp.status in (200, 201):
                    return  # the previous attempt completed the upload
                if resp.status != 308:
                    raise self._fail(resp, session.bucket, None)
                persisted = self._persisted(resp)
                if persisted < start:
                    raise LibcloudError("resumable upload lost data; start again", driver=self)
                if persisted >= end and total is None:
                    return
                offset = min(persisted, end)
            tried = True
            while True:
                piece = data if offset == start else data[offset - start :]
                # An empty piece only tells the total (finalises the upload).
                rng = f"bytes {offset}-{end - 1}/{size}" if piece else f"bytes */{size}"
                resp = self._session_request(session, piece, rng)
                if resp.status in (200, 201):
                    if total is None:
                        raise LibcloudError("upload completed before its last chunk", driver=self)
                    return
                if resp.status != 308:
                    raise self._fail(resp, session.bucket, None)
                persisted = self._persisted(resp)
                if persisted < offset:
                    raise LibcloudError("resumable upload lost data; start again", driver=self)
                if persisted >= end and total is None:
                    return
                offset = min(persisted, end)

        self.libkb_call(attempt)

    def _cancel_resumable(self, session: _Session) -> None:
        """DELETE the session (best effort: the service answers 499 when it worked)."""
        with contextlib.suppress(Exception):
            self.connection.request(session.action, method="DELETE")

    def ex_close(self) -> None:
        """Close every thread's HTTP session."""
        self._libkb_close_connections()


@dataclass(frozen=True, slots=True)
class _Session:
    bucket: str
    name: str
    action: str
    secret: str

    def __repr__(self) -> str:
        return f"<resumable upload {self.bucket}/{self.name}>"


# --------------------------------------------------------------------------- builder


def _google_auth_missing(what: str) -> ConfigError:
    return ConfigError(
        f"{what} needs google-auth: install the 'libkb[gcp]' extra (or point "
        "storage.endpoint at an emulator, which needs no credentials)",
        key="storage.service_account_path",
    )


def _load_credentials_file(path: str) -> Any:
    """Credentials from a JSON file the operator configured.

    Service-account and authorized-user files are loaded with their own
    classes; other types (external accounts for workload identity federation)
    go through google-auth's generic loader, whose deprecation warning is
    about files from untrusted sources, which a configured path is not.
    """
    with open(path, encoding="utf-8") as fh:
        info = json.load(fh)
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        from google.oauth2 import service_account

        sa = service_account.Credentials
        return sa.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(GCS_SCOPES)
        )
    if kind == "authorized_user":
        from google.oauth2 import credentials as user_credentials

        user = user_credentials.Credentials
        return user.from_authorized_user_info(  # type: ignore[no-untyped-call]
            info, scopes=list(GCS_SCOPES)
        )
    import google.auth

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        creds, _ = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
            path, scopes=list(GCS_SCOPES)
        )
    return creds


def resolve_gcs_credentials(cfg: GcsConfig) -> Any:
    """google-auth credentials for ``cfg``, or None for an emulator without credentials.

    Order: ``service_account_path``, ``GOOGLE_APPLICATION_CREDENTIALS``, then
    (for the real service only) application default credentials.
    """
    path = cfg.service_account_path or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or None
    if path is None and cfg.endpoint:
        return None
    try:
        import google.auth
        import google.auth.exceptions
    except ImportError:
        raise _google_auth_missing(
            "a service account file" if path else "application default credentials"
        ) from None
    if path is not None:
        key = (
            "storage.service_account_path"
            if cfg.service_account_path
            else "GOOGLE_APPLICATION_CREDENTIALS"
        )
        if not os.path.isfile(path):
            raise ConfigError(f"credentials file {path!r} does not exist", key=key)
        try:
            return _load_credentials_file(path)
        except (google.auth.exceptions.GoogleAuthError, ValueError, KeyError, OSError) as exc:
            # The message names the file and the problem, never the key material.
            raise ConfigError(
                f"cannot load credentials from {path!r}: {type(exc).__name__}", key=key
            ) from None
    try:
        creds, _ = google.auth.default(scopes=list(GCS_SCOPES))
    except google.auth.exceptions.DefaultCredentialsError:
        raise ConfigError(
            "no Google credentials: set service_account_path in the storage config or "
            "GOOGLE_APPLICATION_CREDENTIALS, run 'gcloud auth application-default login', "
            "or run on GCE/GKE with a service account",
            key="storage.service_account_path",
        ) from None
    return creds


def build_gcs_driver(cfg: GcsConfig, *, credentials: Any = None) -> LibkbGcsDriver:
    """The driver for ``cfg`` (``credentials``: any google-auth credentials, for tests
    and callers that already hold some)."""
    creds = credentials if credentials is not None else resolve_gcs_credentials(cfg)
    source = GoogleTokenSource(creds) if creds is not None else None
    return LibkbGcsDriver(
        endpoint=cfg.endpoint,
        token_source=source,
        timeout=cfg.resilience.timeout_secs,
        transfer=cfg.transfer,
    )


__all__ = [
    "GcsEndpoint",
    "GcsJsonConnection",
    "GoogleTokenSource",
    "LibkbGcsDriver",
    "build_gcs_driver",
    "gcs_error",
    "resolve_gcs_credentials",
    "resolve_gcs_endpoint",
]

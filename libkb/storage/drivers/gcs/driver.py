"""The GCS driver: the JSON API (``/storage/v1`` and ``/upload/storage/v1``) as
a Libcloud ``StorageDriver`` with libkb's contract
(:mod:`libkb.storage.drivers.base`).

Libcloud's own Google Storage driver speaks the XML interoperability API,
which fake-gcs-server does not cover (and whose constructor breaks with a
custom host), so this driver talks JSON with Libcloud's
``Connection``/``Response`` classes and exceptions.

- Names are percent-encoded whole in paths (``/`` included), so any key
  round-trips.
- Auth: :mod:`.credentials`; with an emulator endpoint and no credentials
  configured, no ``Authorization`` is sent.
- Errors: 401/403 ``InvalidCredsError``; 404 ``ObjectDoesNotExistError`` or
  ``ContainerDoesNotExistError``; others ``BaseHTTPError`` with ``.code``.
- Streams: a resumable upload (:mod:`.resumable`).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import uuid
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any
from urllib.parse import quote

import requests
from libcloud.common.types import LibcloudError
from libcloud.storage.base import Container, Object, StorageDriver
from libcloud.storage.types import (
    ContainerAlreadyExistsError,
    ContainerIsNotEmptyError,
    ObjectDoesNotExistError,
)

from libkb.storage.drivers.base import LibkbDriverMixin
from libkb.storage.drivers.common.downloads import RangedDownloadMixin, ranged_body
from libkb.storage.drivers.common.errors import http_error
from libkb.storage.drivers.common.per_thread import PerThreadConnectionMixin
from libkb.storage.drivers.common.timestamps import rfc3339_to_ms
from libkb.storage.drivers.common.uploads import small_or_stream
from libkb.storage.drivers.gcs.calls import GcsCalls
from libkb.storage.drivers.gcs.connection import GcsJsonConnection
from libkb.storage.drivers.gcs.credentials import GoogleTokenSource, resolve_gcs_credentials
from libkb.storage.drivers.gcs.endpoint import resolve_gcs_endpoint
from libkb.storage.drivers.gcs.errors import bucket_error, container_missing, error_message, json_or_text
from libkb.storage.drivers.gcs.resumable import resumable_upload
from libkb.storage.settings import GcsConfig, TransferConfig

#: Objects listed per page (the service maximum).
LIST_PAGE_SIZE = 1000

_LIST_FIELDS = "items(name,size,etag,md5Hash,crc32c,generation,updated,timeCreated),nextPageToken"


def _q(text: str) -> str:
    """Percent-encode a bucket or object name as one path segment (``/`` too)."""
    return quote(text, safe="")


class LibkbGcsDriver(PerThreadConnectionMixin, RangedDownloadMixin, LibkbDriverMixin, StorageDriver):  # type: ignore[misc]
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
        kms_key_name: str | None = None,
    ) -> None:
        self.endpoint = resolve_gcs_endpoint(endpoint)
        self.kms_key_name = kms_key_name
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
        conn.kms_key_name = self.kms_key_name
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
            return container_missing(bucket, driver=self)
        err: Exception = ObjectDoesNotExistError(
            value=f"object {name!r} does not exist", driver=self, object_name=name
        )
        return err

    def _fail(self, resp: Any, bucket: str, name: str | None) -> Exception:
        """The exception for a non-success ``GcsJsonResponse`` the driver got back."""
        if name is None:
            return bucket_error(resp, bucket, driver=self)
        message = error_message(resp.object, resp.body)
        if resp.status == 404:
            return self._not_found(bucket, name, message)
        return http_error(int(resp.status), message, resp.headers)

    def _request(self, path: str, **kwargs: Any) -> Any:
        """One request on the calling thread's connection."""
        return self.connection.request(path, **kwargs)

    def _calls(self) -> GcsCalls:
        """What :mod:`.resumable` needs, bound now (the adapter swaps ``libkb_call``)."""
        return GcsCalls(request=self._request, call=self.libkb_call, owner=self)

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
        body = ranged_body(rr, status, chunk_size, start, end)
        if body is not None:
            return body
        try:
            text = rr.text
        finally:
            rr.close()
        message = error_message(json_or_text(text), text)
        if status == 404:
            raise self._not_found(bucket, obj.name, message)
        raise http_error(status, message, resp.headers)

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

    def ex_upload_stream(self, container: Container, object_name: str, chunks: Iterable[bytes]) -> None:
        """Small streams: one media upload; larger: a resumable upload, cancelled on
        any error so no object appears (see :mod:`.resumable`)."""
        data, stream = small_or_stream(chunks, self.transfer.single_put_threshold)
        if data is not None:
            self.libkb_call(partial(self.ex_put_object, container, object_name, data))
            return
        resumable_upload(
            self._calls(),
            container.name,
            object_name,
            stream,
            part_size=self.transfer.part_size,
            upload_path=self._upload_path(container.name),
            base_path=self.endpoint.base_path,
        )

    def ex_close(self) -> None:
        """Close every thread's HTTP session."""
        self._libkb_close_connections()


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
        project=cfg.project_id,
        kms_key_name=cfg.kms_key_name,
    )

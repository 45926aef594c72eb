"""Streamed GETs that resume mid-body after a dropped connection."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial

import requests
import urllib3.exceptions
from libcloud.common.types import LibcloudError

from libkb.storage.drivers.common.downloads import byte_range
from libkb.storage.drivers.s3.calls import S3Calls
from libkb.storage.drivers.s3.parsing import etag_unquoted

log = logging.getLogger(__package__)

#: What reading a body raises when the connection drops mid-stream.
_BODY_ERRORS = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.SSLError,
    OSError,
)


def open_get(
    s3: S3Calls,
    bucket: str,
    key: str,
    start: int = 0,
    end: int | None = None,
    if_match: str | None = None,
) -> requests.Response | None:
    """GET (a range of) an object, streaming. None when the range is empty (416)."""
    headers: dict[str, str] = {}
    ranged = start > 0 or end is not None
    if ranged:
        headers["Range"] = byte_range(start, end)
    if if_match:
        headers["If-Match"] = f'"{if_match}"'
    response = s3.send("GET", bucket, key, headers=headers, stream=True)
    status = response.status_code
    if status == 416:
        response.close()
        return None
    if status == 200 or (status == 206 and ranged):
        if status == 200 and start > 0:
            # The server ignored the Range header: never return wrong bytes.
            response.close()
            raise LibcloudError(
                value=f"S3 get s3://{bucket}/{key}: server ignored the Range header",
                driver=s3.owner,
            )
        return response
    raise s3.fail(response, bucket=bucket, key=key, operation="get", missing="object")


def body_chunks(
    s3: S3Calls,
    response: requests.Response | None,
    bucket: str,
    key: str,
    start: int,
    end: int | None,
    chunk_size: int,
    *,
    resumes: int,
) -> Iterator[bytes]:
    """Yield the body, at most up to ``end``.

    On a connection failure mid-stream, resume with a ranged GET pinned to
    the same e-tag (each resume goes through ``s3.call``), at most
    ``resumes`` times per stream.
    """
    if response is None:
        return
    etag = etag_unquoted(response.headers.get("etag"))
    limit = _body_limit(response, start, end)
    position = start
    current = response
    try:
        while limit is None or position < limit:
            amount = chunk_size if limit is None else min(chunk_size, limit - position)
            try:
                chunk = current.raw.read(amount, decode_content=False)
            except _BODY_ERRORS as exc:
                current.close()
                if resumes <= 0 or not etag:
                    raise _as_requests_error(exc) from exc
                resumes -= 1
                reopened = _resume(s3, bucket, key, position, limit, etag, exc)
                if reopened is None:
                    return
                current = reopened
                continue
            if not chunk:
                _check_complete(bucket, key, position, limit)
                return
            position += len(chunk)
            yield chunk
    finally:
        current.close()


def _body_limit(response: requests.Response, start: int, end: int | None) -> int | None:
    """The offset after the last byte to yield (None: read to the end of the body)."""
    length = response.headers.get("content-length")
    limit: int | None = start + int(length) if length is not None else None
    if end is not None:  # a 200 means the server sent the whole object from 0
        limit = end if limit is None else min(limit, end)
    return limit


def _resume(
    s3: S3Calls, bucket: str, key: str, position: int, limit: int | None, etag: str, exc: BaseException
) -> requests.Response | None:
    """A ranged GET from ``position``, pinned to ``etag`` so a replaced object fails."""
    log.info(
        "resuming download of s3://%s/%s at byte %d after %s",
        bucket,
        key,
        position,
        type(exc).__name__,
    )
    reopened: requests.Response | None = s3.call(partial(open_get, s3, bucket, key, position, limit, etag))
    return reopened


def _check_complete(bucket: str, key: str, position: int, limit: int | None) -> None:
    """A body that ends early is an error, never a short object."""
    if limit is not None and position < limit:
        raise requests.exceptions.ChunkedEncodingError(
            f"S3 get s3://{bucket}/{key}: body ended at byte {position} of {limit}"
        )


def _as_requests_error(exc: BaseException) -> requests.RequestException:
    """Map a urllib3/socket error raised while reading a body as requests does."""
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return requests.exceptions.ConnectionError(exc)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return requests.exceptions.ChunkedEncodingError(exc)
    return requests.exceptions.ConnectionError(exc)

"""Streamed downloads with bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from libcloud.common.base import RawResponse
from libcloud.storage.base import Object

#: Chunk size for downloads when the caller gives none: big enough that the
#: per-chunk Python overhead is negligible.
DEFAULT_DOWNLOAD_CHUNK = 1024 * 1024


def iter_response(
    response: requests.Response,
    chunk_size: int | None,
    *,
    skip: int = 0,
    limit: int | None = None,
) -> Iterator[bytes]:
    """Yield a streamed body in big chunks, optionally dropping the first ``skip``
    bytes and stopping after ``limit`` bytes (for servers that answer a range
    request with the whole object). Closes the response when done or abandoned.
    """
    size = chunk_size or DEFAULT_DOWNLOAD_CHUNK
    try:
        for chunk in response.iter_content(size):
            if not chunk:
                continue
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk = chunk[skip:]
                skip = 0
            if limit is not None:
                if len(chunk) >= limit:
                    if limit:
                        yield chunk[:limit]
                    return
                limit -= len(chunk)
            yield chunk
    finally:
        response.close()


def empty_stream() -> Iterator[bytes]:
    """An iterator with no chunks (empty ranges)."""
    return iter(())


def byte_range(start: int, end: int | None) -> str:
    """The ``Range`` value for ``[start, end)`` (``end`` exclusive, as in Libcloud)."""
    return f"bytes={start}-" + ("" if end is None else str(end - 1))


def ranged_body(
    response: requests.Response,
    status: int,
    chunk_size: int | None,
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes] | None:
    """The body of a streamed GET of ``[start, end)``, by status.

    206 is the range as asked; 200 is the whole object (no range was asked,
    or the server ignored it), so it is cut to the range; 416 is an empty
    range. None for any other status: the caller raises.
    """
    if status == 206:
        return iter_response(response, chunk_size)
    if status == 200:
        limit = None if end is None else max(0, end - start)
        return iter_response(response, chunk_size, skip=start, limit=limit)
    if status == 416:
        response.close()
        return empty_stream()
    return None


class StreamedResponse(RawResponse):  # type: ignore[misc]
    """Libcloud raw response that keeps its own ``requests.Response`` and streams.

    Libcloud's reads the whole body of any non-200 answer (206 included) and
    fetches the response from the shared connection lazily; this one leaves
    status checks to the driver.
    """

    def __init__(self, connection: Any, response: requests.Response | None = None) -> None:
        self.requests_response = response
        super().__init__(connection, response)

    def success(self) -> bool:
        return 200 <= int(self.status) <= 299

    def parse_error(self, msg: str | None = None) -> None:
        return None


class RangedDownloadMixin:
    """The contract's two download methods over one ``_download`` (Azure, GCS):
    the GET is sent by the call, and empty ranges send none."""

    #: Request header carrying the range (Azure: ``x-ms-range``).
    range_header = "Range"

    def _download(
        self,
        obj: Object,
        headers: dict[str, str],
        chunk_size: int | None,
        start: int = 0,
        end: int | None = None,
    ) -> Iterator[bytes]:
        raise NotImplementedError

    def download_object_as_stream(self, obj: Object, chunk_size: int | None = None) -> Iterator[bytes]:
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
        headers = {self.range_header: byte_range(start_bytes, end_bytes)}
        return self._download(obj, headers, chunk_size, start_bytes, end_bytes)

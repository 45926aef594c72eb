"""Streamed downloads with bounded memory."""

from __future__ import annotations

from collections.abc import Iterator

import requests

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

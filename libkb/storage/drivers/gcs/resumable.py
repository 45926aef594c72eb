"""Streamed uploads as a resumable upload in sequential chunks (a multiple of
256 KiB), each chunk retried on its own (resuming from what the service
persisted); on error the session is cancelled, and nothing is visible until
the last chunk completes the upload."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from libcloud.common.types import LibcloudError

from libkb.storage.drivers.common.errors import redact_url_error
from libkb.storage.drivers.common.uploads import rechunk
from libkb.storage.drivers.gcs.calls import GcsCalls

#: Resumable chunks must be multiples of this (except the last).
RESUMABLE_QUANTUM = 256 * 1024


@dataclass(frozen=True, slots=True)
class ResumableSession:
    """One resumable upload; ``secret`` (the upload id) never reaches a message or ``repr``."""

    bucket: str
    name: str
    action: str
    secret: str

    def __repr__(self) -> str:
        return f"<resumable upload {self.bucket}/{self.name}>"


def resumable_upload(
    gcs: GcsCalls,
    bucket: str,
    name: str,
    stream: Iterator[bytes],
    *,
    part_size: int,
    upload_path: str,
    base_path: str,
) -> None:
    """Upload ``stream`` as a resumable upload started at ``upload_path``, in
    sequential ``part_size`` chunks (rounded up to 256 KiB), holding about
    three chunks; cancelled on any error so no object appears.

    ``base_path`` (the endpoint's path prefix) is cut from the session URI
    the service returns, since the connection adds it again.
    """
    part = -(-max(part_size, 1) // RESUMABLE_QUANTUM) * RESUMABLE_QUANTUM
    session = gcs.call(lambda: _start(gcs, bucket, name, upload_path, base_path))
    try:
        pieces = rechunk(stream, part)
        current = next(pieces)
        offset = 0
        for following in pieces:
            _send_chunk(gcs, session, current, offset, None)
            offset += len(current)
            current = following
        _send_chunk(gcs, session, current, offset, offset + len(current))
    except BaseException:
        _cancel(gcs, session)
        raise


def _start(gcs: GcsCalls, bucket: str, name: str, upload_path: str, base_path: str) -> ResumableSession:
    resp = gcs.request(
        upload_path,
        params={"uploadType": "resumable", "name": name},
        method="POST",
        data=json.dumps({"name": name}),
        headers={
            "Content-Type": "application/json; charset=UTF-8",
            "X-Upload-Content-Type": "application/octet-stream",
        },
    )
    if resp.status not in (200, 201):
        raise gcs.fail(resp, bucket)
    location = resp.headers.get("location")
    if not location:
        raise LibcloudError("resumable upload started without a session URI", driver=gcs.owner)
    parts = urlsplit(location)
    path = parts.path
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    return ResumableSession(bucket=bucket, name=name, action=f"{path}?{parts.query}", secret=parts.query)


def _session_request(gcs: GcsCalls, session: ResumableSession, data: bytes, content_range: str) -> Any:
    """PUT to the session URI; its upload id never appears in an error message."""
    try:
        return gcs.request(
            session.action,
            method="PUT",
            data=data,
            headers={"Content-Range": content_range, "Content-Length": str(len(data))},
        )
    except requests.RequestException as exc:
        raise redact_url_error(exc, session.secret) from None


def _persisted(resp: Any) -> int:
    """Bytes the service holds, from a 308's ``Range: bytes=0-N`` (none: 0)."""
    rng = resp.headers.get("range")
    if not rng or "-" not in rng:
        return 0
    return int(rng.rsplit("-", 1)[1]) + 1


def _send_chunk(gcs: GcsCalls, session: ResumableSession, data: bytes, start: int, total: int | None) -> None:
    """Upload ``data`` at ``start``; a retry first asks the service what it has."""
    end = start + len(data)
    size = "*" if total is None else str(total)
    tried = False

    def attempt() -> None:
        nonlocal tried
        offset = start
        if tried:
            resp = _session_request(gcs, session, b"", f"bytes */{size}")
            if resp.status in (200, 201):
                return  # the previous attempt completed the upload
            if resp.status != 308:
                raise gcs.fail(resp, session.bucket)
            persisted = _persisted(resp)
            if persisted < start:
                raise LibcloudError("resumable upload lost data; start again", driver=gcs.owner)
            if persisted >= end and total is None:
                return
            offset = min(persisted, end)
        tried = True
        while True:
            piece = data if offset == start else data[offset - start :]
            # An empty piece only tells the total (finalises the upload).
            rng = f"bytes {offset}-{end - 1}/{size}" if piece else f"bytes */{size}"
            resp = _session_request(gcs, session, piece, rng)
            if resp.status in (200, 201):
                if total is None:
                    raise LibcloudError("upload completed before its last chunk", driver=gcs.owner)
                return
            if resp.status != 308:
                raise gcs.fail(resp, session.bucket)
            persisted = _persisted(resp)
            if persisted < offset:
                raise LibcloudError("resumable upload lost data; start again", driver=gcs.owner)
            if persisted >= end and total is None:
                return
            offset = min(persisted, end)

    gcs.call(attempt)


def _cancel(gcs: GcsCalls, session: ResumableSession) -> None:
    """DELETE the session (best effort: the service answers 499 when it worked)."""
    with contextlib.suppress(Exception):
        gcs.request(session.action, method="DELETE")

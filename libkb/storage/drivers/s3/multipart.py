"""Multipart upload: initiate, parts in parallel with bounded memory, then
complete; any failure aborts, so nothing becomes visible."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_futures
from functools import partial
from xml.sax.saxutils import escape as xml_escape

from libcloud.common.types import LibcloudError
from libcloud.storage.types import ObjectDoesNotExistError

from libkb.storage.drivers.common.uploads import rechunk, run_parallel
from libkb.storage.drivers.s3.calls import S3Calls
from libkb.storage.drivers.s3.errors import checked_body
from libkb.storage.drivers.s3.parsing import xml_ns, xml_root
from libkb.storage.errors import BackendError
from libkb.storage.settings import MiB, TransferConfig

log = logging.getLogger(__package__)

GiB = 1024 * MiB
#: S3 limits: parts per upload, smallest non-final part, largest single PUT/copy.
MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * MiB
MAX_SINGLE_PUT = 5 * GiB


def complete_multipart_xml(etags: list[str]) -> bytes:
    """Body of CompleteMultipartUpload; part numbers are the 1-based positions."""
    parts = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{xml_escape(etag)}</ETag></Part>"
        for n, etag in enumerate(etags, start=1)
    )
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()


def plan_parts(size: int, part_size: int) -> list[tuple[int, int]]:
    """``(start, end_exclusive)`` ranges covering ``size`` bytes in ``part_size`` steps."""
    return [(start, min(start + part_size, size)) for start in range(0, size, part_size)]


def multipart_upload(
    s3: S3Calls, bucket: str, key: str, stream: Iterator[bytes], transfer: TransferConfig, pool: Executor
) -> None:
    """Upload ``stream`` in ``part_size`` parts, ``max_concurrency`` in flight on ``pool``.

    The producer blocks when all are busy, so about ``(max_concurrency + 1) *
    part_size`` bytes are held. Any error, including one raised by
    ``stream``, aborts the upload: nothing becomes visible.
    """
    upload_id: str = s3.call(lambda: initiate(s3, bucket, key))

    def upload(index: int, data: bytes) -> str:
        etag: str = s3.call(partial(upload_part, s3, bucket, key, upload_id, index + 1, data))
        return etag

    try:
        parts = _parts(stream, transfer.part_size, key)
        # A part is cut before it waits for a slot, so one is ready when a slot frees.
        slots = transfer.max_concurrency
        etags = run_parallel(pool, parts, upload, slots, threading.Event(), read_ahead=True)
        complete(s3, bucket, key, upload_id, etags)
    except BaseException as exc:
        abort_after_failure(s3, bucket, key, upload_id, exc)
        raise


def _parts(stream: Iterator[bytes], part_size: int, key: str) -> Iterator[bytes]:
    """``stream`` in ``part_size`` parts, refusing more than S3 takes."""
    for number, part in enumerate(rechunk(stream, part_size), start=1):
        if number > MAX_PARTS:
            raise BackendError(
                f"the stream is larger than {MAX_PARTS} parts of {part_size} bytes",
                backend="s3",
                key=key,
                hint="raise storage.transfer.part_size",
            )
        yield part


def initiate(s3: S3Calls, bucket: str, key: str) -> str:
    response = s3.send(
        "POST",
        bucket,
        key,
        params={"uploads": ""},
        headers={"Content-Type": "application/octet-stream"},
    )
    if response.status_code != 200:
        raise s3.fail(response, bucket=bucket, key=key, operation="initiate upload")
    root = xml_root(response.content)
    response.close()
    upload_id = root.findtext(xml_ns(root) + "UploadId") if root is not None else None
    if not upload_id:
        raise LibcloudError(value="S3 initiate upload: no UploadId in response", driver=s3.owner)
    return upload_id


def upload_part(s3: S3Calls, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> str:
    params = {"partNumber": str(number), "uploadId": upload_id}
    response = s3.send("PUT", bucket, key, params=params, data=data)
    if response.status_code != 200:
        raise s3.fail(response, bucket=bucket, key=key, operation="upload part")
    response.close()
    etag = response.headers.get("etag")
    if not etag:
        raise LibcloudError(value=f"S3 upload part {number}: no ETag", driver=s3.owner)
    return etag


def complete(s3: S3Calls, bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
    body = complete_multipart_xml(etags)
    attempt = 0

    def complete_once() -> None:
        nonlocal attempt
        attempt += 1
        response = s3.send(
            "POST",
            bucket,
            key,
            params={"uploadId": upload_id},
            headers={"Content-Type": "application/xml"},
            data=body,
        )
        if response.status_code == 404 and attempt > 1 and _completed(s3, bucket, key, len(etags)):
            # An earlier attempt completed but its answer was lost.
            response.close()
            return
        if response.status_code != 200:
            raise s3.fail(response, bucket=bucket, key=key, operation="complete upload")
        checked_body(response, driver=s3.owner, bucket=bucket, key=key, operation="complete upload")

    s3.call(complete_once)


def _completed(s3: S3Calls, bucket: str, key: str, parts: int) -> bool:
    try:
        obj = s3.head(bucket, key)
    except ObjectDoesNotExistError:
        return False
    return bool(obj.hash and obj.hash.endswith(f"-{parts}"))


def abort(s3: S3Calls, bucket: str, key: str, upload_id: str) -> None:
    response = s3.send("DELETE", bucket, key, params={"uploadId": upload_id})
    if response.status_code not in (200, 204, 404):
        raise s3.fail(response, bucket=bucket, key=key, operation="abort upload")
    response.close()


def abort_after_failure(
    s3: S3Calls,
    bucket: str,
    key: str,
    upload_id: str,
    exc: BaseException,
    futures: Iterable[Future[str]] = (),
) -> None:
    """Cancel queued parts, wait for running ones (a part finishing after the
    abort would resurrect the upload), then abort; keep the original error."""
    futures = list(futures)
    for future in futures:
        future.cancel()
    wait_futures(futures)
    try:
        s3.call(lambda: abort(s3, bucket, key, upload_id))
    except Exception as abort_exc:
        log.warning(
            "could not abort multipart upload of s3://%s/%s (%s); a lifecycle rule "
            "for incomplete uploads will clean it up",
            bucket,
            key,
            type(abort_exc).__name__,
        )
        exc.add_note(f"aborting the multipart upload also failed: {abort_exc}")

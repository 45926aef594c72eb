"""Multipart upload: initiate, parts in parallel with bounded memory, then
complete; any failure aborts, so nothing becomes visible."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from functools import partial
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape as xml_escape

from libcloud.common.types import LibcloudError
from libcloud.storage.base import Container
from libcloud.storage.types import ObjectDoesNotExistError

from libkb.storage.drivers.common.uploads import rechunk, run_parallel, small_or_stream
from libkb.storage.drivers.s3.errors import checked_body
from libkb.storage.drivers.s3.parsing import xml_ns, xml_root
from libkb.storage.errors import BackendError
from libkb.storage.settings import MiB

if TYPE_CHECKING:
    from libkb.storage.drivers.s3.driver import S3Driver

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


def upload_stream(driver: S3Driver, container: Container, object_name: str, chunks: Iterable[bytes]) -> None:
    """Upload from chunks of any size with bounded memory.

    Up to ``single_put_threshold`` bytes: one PUT. Beyond: multipart with
    ``part_size`` parts, ``max_concurrency`` in flight on the driver's pool;
    the producer blocks when they are all busy, so about
    ``(max_concurrency + 1) * part_size`` bytes are held. Any error,
    including one raised by ``chunks``, aborts the upload: nothing becomes
    visible.
    """
    data, stream = small_or_stream(chunks, driver._single_put_limit)
    if data is not None:
        driver.libkb_call(partial(driver.ex_put_object, container, object_name, data))
        return
    _multipart_upload(driver, container.name, object_name, stream)


def _multipart_upload(driver: S3Driver, bucket: str, key: str, stream: Iterator[bytes]) -> None:
    transfer = driver._transfer
    pool = driver._executor()
    upload_id: str = driver.libkb_call(lambda: initiate(driver, bucket, key))

    def upload(index: int, data: bytes) -> str:
        etag: str = driver.libkb_call(partial(upload_part, driver, bucket, key, upload_id, index + 1, data))
        return etag

    try:
        parts = _parts(stream, transfer.part_size, key)
        # A part is cut before it waits for a slot, so one is ready when a slot frees.
        slots = transfer.max_concurrency
        etags = run_parallel(pool, parts, upload, slots, threading.Event(), read_ahead=True)
        complete(driver, bucket, key, upload_id, etags)
    except BaseException as exc:
        abort_after_failure(driver, bucket, key, upload_id, exc)
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


def initiate(driver: S3Driver, bucket: str, key: str) -> str:
    response = driver._request(
        "POST",
        bucket,
        key,
        params={"uploads": ""},
        headers={"Content-Type": "application/octet-stream"},
    )
    if response.status_code != 200:
        raise driver._fail(response, bucket=bucket, key=key, operation="initiate upload")
    root = xml_root(response.content)
    response.close()
    upload_id = root.findtext(xml_ns(root) + "UploadId") if root is not None else None
    if not upload_id:
        raise LibcloudError(value="S3 initiate upload: no UploadId in response", driver=driver)
    return upload_id


def upload_part(driver: S3Driver, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> str:
    params = {"partNumber": str(number), "uploadId": upload_id}
    response = driver._request("PUT", bucket, key, params=params, data=data)
    if response.status_code != 200:
        raise driver._fail(response, bucket=bucket, key=key, operation="upload part")
    response.close()
    etag = response.headers.get("etag")
    if not etag:
        raise LibcloudError(value=f"S3 upload part {number}: no ETag", driver=driver)
    return etag


def complete(driver: S3Driver, bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
    body = complete_multipart_xml(etags)
    attempt = 0

    def complete_once() -> None:
        nonlocal attempt
        attempt += 1
        response = driver._request(
            "POST",
            bucket,
            key,
            params={"uploadId": upload_id},
            headers={"Content-Type": "application/xml"},
            data=body,
        )
        if response.status_code == 404 and attempt > 1 and _completed(driver, bucket, key, len(etags)):
            # An earlier attempt completed but its answer was lost.
            response.close()
            return
        if response.status_code != 200:
            raise driver._fail(response, bucket=bucket, key=key, operation="complete upload")
        checked_body(response, driver=driver, bucket=bucket, key=key, operation="complete upload")

    driver.libkb_call(complete_once)


def _completed(driver: S3Driver, bucket: str, key: str, parts: int) -> bool:
    try:
        obj = driver.get_object(bucket, key)
    except ObjectDoesNotExistError:
        return False
    return bool(obj.hash and obj.hash.endswith(f"-{parts}"))


def abort(driver: S3Driver, bucket: str, key: str, upload_id: str) -> None:
    response = driver._request("DELETE", bucket, key, params={"uploadId": upload_id})
    if response.status_code not in (200, 204, 404):
        raise driver._fail(response, bucket=bucket, key=key, operation="abort upload")
    response.close()


def abort_after_failure(
    driver: S3Driver,
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
        driver.libkb_call(lambda: abort(driver, bucket, key, upload_id))
    except Exception as abort_exc:
        log.warning(
            "could not abort multipart upload of s3://%s/%s (%s); a lifecycle rule "
            "for incomplete uploads will clean it up",
            bucket,
            key,
            type(abort_exc).__name__,
        )
        exc.add_note(f"aborting the multipart upload also failed: {abort_exc}")

"""Server-side copy: CopyObject, or parallel UploadPartCopy beyond 5 GiB."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from functools import partial

from libcloud.common.types import LibcloudError
from libcloud.storage.base import Object
from libcloud.storage.types import ObjectDoesNotExistError

from libkb.storage.drivers.s3.addressing import copy_source
from libkb.storage.drivers.s3.calls import S3Calls
from libkb.storage.drivers.s3.errors import checked_body
from libkb.storage.drivers.s3.multipart import MAX_PARTS, abort_after_failure, complete, initiate, plan_parts
from libkb.storage.drivers.s3.parsing import xml_ns, xml_root


def copy_object(
    s3: S3Calls,
    bucket: str,
    src_name: str,
    dest_name: str,
    *,
    single_copy_limit: int,
    part_size: int,
    pool: Callable[[], Executor],
) -> None:
    """Server-side copy; ObjectDoesNotExistError if ``src`` is missing.

    Sources over ``single_copy_limit`` bytes are copied with parallel
    UploadPartCopy requests (parts of at least ``part_size`` bytes, on
    ``pool()``) pinned to the source's e-tag, so a concurrently replaced
    source fails the copy instead of mixing versions.
    """
    try:
        src = s3.head(bucket, src_name)
    except ObjectDoesNotExistError:
        raise ObjectDoesNotExistError(
            value=f"S3 copy: the source s3://{bucket}/{src_name} does not exist",
            driver=s3.owner,
            object_name=src_name,
        ) from None
    if src_name == dest_name:
        return
    if src.size > single_copy_limit:
        _multipart_copy(s3, bucket, src, dest_name, part_size, pool)
        return
    headers = {"x-amz-copy-source": copy_source(bucket, src_name)}
    if src.hash:
        headers["x-amz-copy-source-if-match"] = f'"{src.hash}"'
    response = s3.send("PUT", bucket, dest_name, headers=headers)
    if response.status_code != 200:
        if response.status_code == 404:
            raise s3.fail(response, bucket=bucket, key=src_name, operation="copy")
        raise s3.fail(response, bucket=bucket, key=dest_name, operation="copy")
    checked_body(response, driver=s3.owner, bucket=bucket, key=dest_name, operation="copy")


def _multipart_copy(
    s3: S3Calls, bucket: str, src: Object, dest_name: str, part_size: int, pool: Callable[[], Executor]
) -> None:
    part = max(part_size, -(-src.size // MAX_PARTS))
    ranges = plan_parts(src.size, part)
    source = copy_source(bucket, src.name)
    upload_id = s3.call(lambda: initiate(s3, bucket, dest_name))
    executor = pool()
    futures: list[Future[str]] = []
    try:
        for number, (start, end) in enumerate(ranges, start=1):
            headers = {
                "x-amz-copy-source": source,
                "x-amz-copy-source-range": f"bytes={start}-{end - 1}",
            }
            if src.hash:
                headers["x-amz-copy-source-if-match"] = f'"{src.hash}"'
            work = partial(_copy_part, s3, bucket, dest_name, upload_id, number, headers)
            futures.append(executor.submit(s3.call, work))
        etags = [f.result() for f in futures]
        complete(s3, bucket, dest_name, upload_id, etags)
    except BaseException as exc:
        abort_after_failure(s3, bucket, dest_name, upload_id, exc, futures)
        raise


def _copy_part(
    s3: S3Calls, bucket: str, key: str, upload_id: str, number: int, headers: dict[str, str]
) -> str:
    params = {"partNumber": str(number), "uploadId": upload_id}
    response = s3.send("PUT", bucket, key, params=params, headers=headers)
    if response.status_code != 200:
        raise s3.fail(response, bucket=bucket, key=key, operation="copy part")
    body = checked_body(response, driver=s3.owner, bucket=bucket, key=key, operation="copy")
    root = xml_root(body)
    etag = root.findtext(xml_ns(root) + "ETag") if root is not None else None
    if not etag:
        raise LibcloudError(value=f"S3 copy part {number}: no ETag in response", driver=s3.owner)
    return etag

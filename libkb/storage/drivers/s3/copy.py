"""Server-side copy: CopyObject, or parallel UploadPartCopy beyond 5 GiB."""

from __future__ import annotations

from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING

from libcloud.common.types import LibcloudError
from libcloud.storage.base import Container, Object
from libcloud.storage.types import ObjectDoesNotExistError

from libkb.storage.drivers.s3.addressing import copy_source
from libkb.storage.drivers.s3.errors import checked_body
from libkb.storage.drivers.s3.multipart import MAX_PARTS, abort_after_failure, complete, initiate, plan_parts
from libkb.storage.drivers.s3.parsing import xml_ns, xml_root

if TYPE_CHECKING:
    from libkb.storage.drivers.s3.driver import S3Driver


def copy_object(driver: S3Driver, container: Container, src_name: str, dest_name: str) -> None:
    """Server-side copy; ObjectDoesNotExistError if ``src`` is missing.

    Sources over 5 GiB are copied with parallel UploadPartCopy requests
    pinned to the source's e-tag, so a concurrently replaced source fails
    the copy instead of mixing versions.
    """
    bucket = container.name
    try:
        src = driver.get_object(bucket, src_name)
    except ObjectDoesNotExistError:
        raise ObjectDoesNotExistError(
            value=f"S3 copy: the source s3://{bucket}/{src_name} does not exist",
            driver=driver,
            object_name=src_name,
        ) from None
    if src_name == dest_name:
        return
    if src.size > driver.max_single_copy_bytes:
        _multipart_copy(driver, bucket, src, dest_name)
        return
    headers = {"x-amz-copy-source": copy_source(bucket, src_name)}
    if src.hash:
        headers["x-amz-copy-source-if-match"] = f'"{src.hash}"'
    response = driver._request("PUT", bucket, dest_name, headers=headers)
    if response.status_code != 200:
        if response.status_code == 404:
            raise driver._fail(response, bucket=bucket, key=src_name, operation="copy")
        raise driver._fail(response, bucket=bucket, key=dest_name, operation="copy")
    checked_body(response, driver=driver, bucket=bucket, key=dest_name, operation="copy")


def _multipart_copy(driver: S3Driver, bucket: str, src: Object, dest_name: str) -> None:
    part = max(driver.copy_part_size, driver._transfer.part_size, -(-src.size // MAX_PARTS))
    ranges = plan_parts(src.size, part)
    source = copy_source(bucket, src.name)
    upload_id = driver.libkb_call(lambda: initiate(driver, bucket, dest_name))
    pool = driver._executor()
    futures: list[Future[str]] = []
    try:
        for number, (start, end) in enumerate(ranges, start=1):
            headers = {
                "x-amz-copy-source": source,
                "x-amz-copy-source-range": f"bytes={start}-{end - 1}",
            }
            if src.hash:
                headers["x-amz-copy-source-if-match"] = f'"{src.hash}"'
            futures.append(
                pool.submit(
                    driver.libkb_call,
                    partial(_copy_part, driver, bucket, dest_name, upload_id, number, headers),
                )
            )
        etags = [f.result() for f in futures]
        complete(driver, bucket, dest_name, upload_id, etags)
    except BaseException as exc:
        abort_after_failure(driver, bucket, dest_name, upload_id, exc, futures)
        raise


def _copy_part(
    driver: S3Driver, bucket: str, key: str, upload_id: str, number: int, headers: dict[str, str]
) -> str:
    params = {"partNumber": str(number), "uploadId": upload_id}
    response = driver._request("PUT", bucket, key, params=params, headers=headers)
    if response.status_code != 200:
        raise driver._fail(response, bucket=bucket, key=key, operation="copy part")
    body = checked_body(response, driver=driver, bucket=bucket, key=key, operation="copy")
    root = xml_root(body)
    etag = root.findtext(xml_ns(root) + "ETag") if root is not None else None
    if not etag:
        raise LibcloudError(value=f"S3 copy part {number}: no ETag in response", driver=driver)
    return etag

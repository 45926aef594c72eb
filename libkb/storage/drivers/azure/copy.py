"""Copy Blob within the account, waiting while the service reports it pending."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from libcloud.common.types import LibcloudError
from libcloud.storage.base import Container
from libcloud.storage.types import ObjectDoesNotExistError

from libkb.storage.drivers.azure.errors import NOT_FOUND_CONTAINER, error_code

if TYPE_CHECKING:
    from libkb.storage.drivers.azure.driver import LibkbAzureBlobsDriver


def copy_blob(driver: LibkbAzureBlobsDriver, container: Container, src_name: str, dest_name: str) -> None:
    """Copy Blob within the account; waits while the service reports the copy pending."""
    dest_path = driver._get_object_path(container, dest_name)
    resp = driver.connection.request(
        dest_path,
        method="PUT",
        headers={"x-ms-copy-source": driver._blob_url(container, src_name)},
    )
    if resp.status not in (200, 201, 202):
        code = error_code(resp.headers, resp.object)
        if resp.status == 404 and code != NOT_FOUND_CONTAINER:
            raise ObjectDoesNotExistError(
                value=f"copy source {src_name!r} does not exist ({code})",
                driver=driver,
                object_name=src_name,
            )
        raise driver._fail(resp, container.name, src_name)
    state = resp.headers.get("x-ms-copy-status", "success")
    copy_id = resp.headers.get("x-ms-copy-id")
    deadline = time.monotonic() + max(600.0, 20 * driver.timeout)
    delay = 0.05
    while state == "pending":
        if time.monotonic() > deadline:
            _abort_copy(driver, dest_path, copy_id)
            raise LibcloudError(f"copy of {src_name!r} still pending; aborted", driver=driver)
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
        head = driver.connection.request(dest_path, method="HEAD")
        if head.status != 200:
            raise driver._fail(head, container.name, dest_name, head=True)
        state = head.headers.get("x-ms-copy-status", "success")
    if state != "success":
        raise LibcloudError(f"copy of {src_name!r} ended with status {state!r}", driver=driver)


def _abort_copy(driver: LibkbAzureBlobsDriver, dest_path: str, copy_id: str | None) -> None:
    if not copy_id:
        return
    with contextlib.suppress(Exception):  # best effort; the timeout is the error
        driver.connection.request(
            dest_path,
            method="PUT",
            params={"comp": "copy", "copyid": copy_id},
            headers={"x-ms-copy-action": "abort"},
        )

"""Copy Blob within the account, waiting while the service reports it pending."""

from __future__ import annotations

import contextlib
import time

from libcloud.common.types import LibcloudError
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError

from libkb.storage.drivers.azure.calls import AzureCalls
from libkb.storage.drivers.azure.errors import NOT_FOUND_CONTAINER, error_code


def copy_blob(
    azure: AzureCalls,
    container_name: str,
    src_name: str,
    dest_name: str,
    *,
    dest_path: str,
    source_url: str,
    timeout: float,
) -> None:
    """Copy Blob of ``source_url`` to ``dest_path``; waits while the service reports
    the copy pending (at most ``max(600, 20 * timeout)`` seconds, then aborts it)."""
    resp = azure.request(dest_path, method="PUT", headers={"x-ms-copy-source": source_url})
    if resp.status not in (200, 201, 202):
        code = error_code(resp.headers, resp.object)
        if resp.status == 404 and code != NOT_FOUND_CONTAINER:
            _container_exists(azure, container_name)
            raise ObjectDoesNotExistError(
                value=f"copy source {src_name!r} does not exist ({code})",
                driver=azure.owner,
                object_name=src_name,
            )
        raise azure.fail(resp, container_name, src_name)
    state = resp.headers.get("x-ms-copy-status", "success")
    copy_id = resp.headers.get("x-ms-copy-id")
    deadline = time.monotonic() + max(600.0, 20 * timeout)
    delay = 0.05
    while state == "pending":
        if time.monotonic() > deadline:
            _abort_copy(azure, dest_path, copy_id)
            raise LibcloudError(f"copy of {src_name!r} still pending; aborted", driver=azure.owner)
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
        head = azure.request(dest_path, method="HEAD")
        if head.status != 200:
            raise azure.fail(head, container_name, dest_name, head=True)
        state = head.headers.get("x-ms-copy-status", "success")
    if state != "success":
        raise LibcloudError(f"copy of {src_name!r} ended with status {state!r}", driver=azure.owner)


def _container_exists(azure: AzureCalls, container_name: str) -> None:
    """Raise ContainerDoesNotExistError if the container is missing.

    A copy into a missing container is refused for its source first (the
    answer names the blob, e.g. ``CannotVerifyCopySource`` with a SAS), which
    would hide the cause: one HEAD of the container tells.
    """
    try:
        head = azure.request(f"/{container_name}", params={"restype": "container"}, method="HEAD")
    except (
        Exception
    ):  # e.g. a container SAS may not read the container's properties: the blob's answer stands
        return
    if head.status == 404:
        raise ContainerDoesNotExistError(
            value=f"container {container_name!r} does not exist",
            driver=azure.owner,
            container_name=container_name,
        )


def _abort_copy(azure: AzureCalls, dest_path: str, copy_id: str | None) -> None:
    if not copy_id:
        return
    with contextlib.suppress(Exception):  # best effort; the timeout is the error
        azure.request(
            dest_path,
            method="PUT",
            params={"comp": "copy", "copyid": copy_id},
            headers={"x-ms-copy-action": "abort"},
        )

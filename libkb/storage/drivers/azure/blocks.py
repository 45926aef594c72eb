"""Streamed uploads as block blobs: Put Block in parallel, then Put Block List.
Uncommitted blocks are invisible, so a failed stream leaves nothing behind."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from libcloud.common.types import LibcloudError
from libcloud.storage.base import Container

from libkb.storage.drivers.common.uploads import rechunk, run_parallel, small_or_stream

if TYPE_CHECKING:
    from libkb.storage.drivers.azure.driver import LibkbAzureBlobsDriver

#: Largest block Put Block accepts at AZURE_API_VERSION; at most 50,000 blocks.
MAX_BLOCK_SIZE = 4000 * 1024 * 1024
MAX_BLOCKS = 50_000


def upload_stream(
    driver: LibkbAzureBlobsDriver, container: Container, object_name: str, chunks: Iterable[bytes]
) -> None:
    """Small streams: one Put Blob. Larger: blocks of ``part_size`` uploaded by
    ``max_concurrency`` threads, then Put Block List. Until the list is
    committed the blocks are invisible, so any failure leaves nothing."""
    data, stream = small_or_stream(chunks, driver.transfer.single_put_threshold)
    if data is not None:
        driver.libkb_call(partial(driver.ex_put_object, container, object_name, data))
        return

    path = driver._get_object_path(container, object_name)
    tag = uuid.uuid4().hex[:16]
    abort = threading.Event()

    def put_block(index: int, data: bytes) -> str:
        if index >= MAX_BLOCKS:
            raise LibcloudError(
                f"stream needs more than {MAX_BLOCKS} blocks; raise transfer.part_size",
                driver=driver,
            )
        block_id = base64.b64encode(f"{tag}-{index:06d}".encode("ascii")).decode("ascii")
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode("ascii")

        def attempt() -> None:
            if abort.is_set():
                raise LibcloudError("upload aborted", driver=driver)
            resp = driver.connection.request(
                path,
                method="PUT",
                data=data,
                params={"comp": "block", "blockid": block_id},
                headers={"Content-Length": str(len(data)), "Content-MD5": md5},
            )
            if resp.status != 201:
                raise driver._fail(resp, container.name, object_name)

        driver.libkb_call(attempt)
        return block_id

    block_ids = run_parallel(
        driver._executor(),
        rechunk(stream, driver.transfer.part_size),
        put_block,
        driver.transfer.max_concurrency,
        abort,
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?><BlockList>'
        + "".join(f"<Latest>{escape(b)}</Latest>" for b in block_ids)
        + "</BlockList>"
    ).encode("utf-8")

    def commit() -> None:
        resp = driver.connection.request(
            path,
            method="PUT",
            data=body,
            params={"comp": "blocklist"},
            headers={
                "Content-Length": str(len(body)),
                "Content-Type": "application/xml",
                "x-ms-blob-content-type": "application/octet-stream",
            },
        )
        if resp.status != 201:
            raise driver._fail(resp, container.name, object_name)

    driver.libkb_call(commit)

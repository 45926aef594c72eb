"""Streamed uploads as block blobs: Put Block in parallel, then Put Block List.
Uncommitted blocks are invisible, so a failed stream leaves nothing behind."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Executor
from xml.sax.saxutils import escape

from libcloud.common.types import LibcloudError

from libkb.storage.drivers.azure.calls import AzureCalls
from libkb.storage.drivers.common.uploads import rechunk, run_parallel
from libkb.storage.settings import TransferConfig

#: Largest block Put Block accepts at AZURE_API_VERSION; at most 50,000 blocks.
MAX_BLOCK_SIZE = 4000 * 1024 * 1024
MAX_BLOCKS = 50_000


def upload_blocks(
    azure: AzureCalls,
    container_name: str,
    object_name: str,
    path: str,
    stream: Iterator[bytes],
    transfer: TransferConfig,
    pool: Executor,
) -> None:
    """Upload ``stream`` to the blob at ``path`` as blocks of ``part_size``, put by
    ``max_concurrency`` threads of ``pool``, then commit them with Put Block List.

    Until the list is committed the blocks are invisible, so any failure
    leaves nothing.
    """
    tag = uuid.uuid4().hex[:16]
    abort = threading.Event()

    def put_block(index: int, data: bytes) -> str:
        block_id = _block_id(tag, index, azure.owner)
        headers = {"Content-Length": str(len(data)), "Content-MD5": _md5(data)}

        def attempt() -> None:
            if abort.is_set():  # no new attempt once another block has failed
                raise LibcloudError("upload aborted", driver=azure.owner)
            params = {"comp": "block", "blockid": block_id}
            resp = azure.request(path, method="PUT", data=data, params=params, headers=headers)
            if resp.status != 201:
                raise azure.fail(resp, container_name, object_name)

        azure.call(attempt)
        return block_id

    blocks = rechunk(stream, transfer.part_size)
    block_ids = run_parallel(pool, blocks, put_block, transfer.max_concurrency, abort)
    body = block_list_xml(block_ids)
    azure.call(lambda: _commit(azure, container_name, object_name, path, body))


def block_list_xml(block_ids: list[str]) -> bytes:
    """The body of Put Block List: every block, latest version, in order."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><BlockList>'
        + "".join(f"<Latest>{escape(b)}</Latest>" for b in block_ids)
        + "</BlockList>"
    ).encode("utf-8")


def _block_id(tag: str, index: int, owner: object) -> str:
    """Block ids of one upload share a random tag and have the same length, as Azure requires."""
    if index >= MAX_BLOCKS:
        raise LibcloudError(
            f"stream needs more than {MAX_BLOCKS} blocks; raise transfer.part_size",
            driver=owner,
        )
    return base64.b64encode(f"{tag}-{index:06d}".encode("ascii")).decode("ascii")


def _md5(data: bytes) -> str:
    """``Content-MD5``: the service checks the block arrived intact."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _commit(azure: AzureCalls, container_name: str, object_name: str, path: str, body: bytes) -> None:
    """Put Block List: the blob appears, whole, now."""
    resp = azure.request(
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
        raise azure.fail(resp, container_name, object_name)

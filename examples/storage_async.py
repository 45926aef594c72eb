r"""libkb storage from asyncio: the storage guide's usage example, in Python.

Usage:
    python examples/storage_async.py [URL]

URL (default: $LIBKB_STORAGE_URL, else memory://) is any storage URL or path, as for
storage_url.py; credentials come from the environment. For example:
    AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin python examples/storage_async.py \
        "s3://kafka-backups/prod-cluster?endpoint=http://127.0.0.1:9000"

AsyncStorageBackend has the same methods as coroutines; each runs the (thread-safe,
synchronous) backend in a worker thread, so the event loop never blocks on storage I/O.
Only keys under libkb-example/ are written, and all of them are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator

from libkb.errors import LibkbError
from libkb.storage import StorageBackendConfig, create_backend_from_config
from libkb.storage.aio import AsyncStorageBackend

BASE = "libkb-example/backups"
MiB = 1024 * 1024


async def segments(count: int) -> AsyncIterator[bytes]:
    """An async producer for put_stream (a Kafka consumer, a compressor, ...)."""
    for i in range(count):
        await asyncio.sleep(0)
        yield bytes([i]) * MiB


async def run(url: str) -> None:
    config = StorageBackendConfig.from_url(url)
    async with AsyncStorageBackend(create_backend_from_config(config)) as backend:
        manifest = f"{BASE}/manifest.json"

        # Write data
        await backend.put(manifest, b"{}")
        # Read data
        data = await backend.get(manifest)
        print(f"get {manifest}: {data!r}")
        # Check existence
        if await backend.exists(manifest):
            print("Manifest exists!")
        meta = await backend.head(manifest)
        print(f"head {manifest}: size={meta.size} e_tag={meta.e_tag}")
        await backend.copy(manifest, f"{BASE}/manifest.bak")
        print(f"copy {manifest} -> {BASE}/manifest.bak")

        # Several operations at once.
        await asyncio.gather(*(backend.put(f"{BASE}/offsets/{p}.json", b"{}") for p in range(3)))
        print(f"put {BASE}/offsets/0..2.json concurrently")

        # Streams: an async iterable in, async chunks out.
        segment = f"{BASE}/segments/000.bin"
        await backend.put_stream(segment, segments(3))
        total = 0
        async for chunk in backend.get_stream(segment):
            total += len(chunk)
        print(f"put_stream/get_stream {segment}: {total} bytes")

        # List objects
        keys = await backend.list(f"{BASE}/")
        print(f"list {BASE}/: {keys}")
        await asyncio.gather(*(backend.delete(key) for key in keys))
        print(f"deleted {len(keys)} objects; exists {manifest}: {await backend.exists(manifest)}")
    print("done")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", nargs="?", default=os.environ.get("LIBKB_STORAGE_URL", "memory://"))
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args.url))
    except LibkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

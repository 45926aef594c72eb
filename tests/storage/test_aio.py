"""The asyncio twin runs the same operations off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from libkb.storage import MemoryConfig, NotFoundError, create_backend_from_config
from libkb.storage.aio import AsyncStorageBackend


def test_async_round_trip() -> None:
    async def main() -> None:
        async with AsyncStorageBackend(create_backend_from_config(MemoryConfig())) as store:
            await store.put("backups/manifest.json", b"{}")
            assert await store.get("backups/manifest.json") == b"{}"
            assert await store.exists("backups/manifest.json")
            assert await store.list("backups/") == ["backups/manifest.json"]
            assert (await store.head("backups/manifest.json")).size == 2
            assert await store.size("backups/manifest.json") == 2
            await store.copy("backups/manifest.json", "copy")
            assert await store.put_if_absent("copy", b"x") is False
            assert await store.get_range("copy", 0, 1) == b"{"
            assert [k async for k in store.iter_keys()] == ["backups/manifest.json", "copy"]
            await store.delete("copy")
            with pytest.raises(NotFoundError):
                await store.get("copy")

    asyncio.run(main())


def test_async_streams() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(50):
            yield bytes([i]) * 1000
            await asyncio.sleep(0)

    async def failing() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("producer failed")

    async def main() -> None:
        store = AsyncStorageBackend(create_backend_from_config(MemoryConfig()), stream_buffer=2)
        await store.put_stream("s", chunks())
        got = b"".join([c async for c in store.get_stream("s", chunk_size=4096)])
        assert got == b"".join(bytes([i]) * 1000 for i in range(50))
        await store.put_stream("sync", [b"a", b"b"])
        assert await store.get("sync") == b"ab"
        with pytest.raises(RuntimeError, match="producer failed"):
            await store.put_stream("bad", failing())
        assert not await store.exists("bad")

    asyncio.run(main())

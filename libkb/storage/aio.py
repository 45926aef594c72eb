"""An asyncio twin of :class:`~libkb.storage.base.StorageBackend`.

The same method names as coroutines; each call runs the synchronous backend
in a worker thread, so the event loop never blocks on storage I/O.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

from libkb.storage.base import DEFAULT_CHUNK_SIZE, BytesLike, ObjectMetadata, StorageBackend

_DONE = object()


class AsyncStorageBackend:
    """Wraps a backend; ``await backend.put(key, data)`` and so on."""

    def __init__(self, backend: StorageBackend, *, stream_buffer: int = 4) -> None:
        self.backend = backend
        self._buffer = stream_buffer

    def __repr__(self) -> str:
        return f"AsyncStorageBackend({self.backend!r})"

    async def put(self, key: str, data: BytesLike) -> None:
        await asyncio.to_thread(self.backend.put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.backend.get, key)

    async def list(self, prefix: str = "") -> list[str]:
        return await asyncio.to_thread(self.backend.list, prefix)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.backend.exists, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.backend.delete, key)

    async def size(self, key: str) -> int:
        return await asyncio.to_thread(self.backend.size, key)

    async def head(self, key: str) -> ObjectMetadata:
        return await asyncio.to_thread(self.backend.head, key)

    async def copy(self, src: str, dest: str) -> None:
        await asyncio.to_thread(self.backend.copy, src, dest)

    async def put_if_absent(self, key: str, data: BytesLike) -> bool:
        return await asyncio.to_thread(self.backend.put_if_absent, key, data)

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        return await asyncio.to_thread(self.backend.get_range, key, start, end)

    async def iter_keys(self, prefix: str = "") -> AsyncIterator[str]:
        iterator = await asyncio.to_thread(self.backend.iter_keys, prefix)
        async for key in _drain(iterator):
            yield key

    async def get_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> AsyncIterator[bytes]:
        iterator = await asyncio.to_thread(self.backend.get_stream, key, chunk_size)
        async for chunk in _drain(iterator):
            yield chunk

    async def put_stream(self, key: str, chunks: AsyncIterable[BytesLike] | Iterable[BytesLike]) -> None:
        """Upload from a sync or async iterable; at most ``stream_buffer`` chunks wait in memory."""
        if not isinstance(chunks, AsyncIterable):
            await asyncio.to_thread(self.backend.put_stream, key, chunks)
            return
        handoff: queue.Queue[Any] = queue.Queue(maxsize=self._buffer)
        failure: list[BaseException] = []

        def pull() -> Iterator[bytes]:
            while True:
                item = handoff.get()
                if item is _DONE:
                    if failure:
                        raise failure[0]
                    return
                yield item

        upload = asyncio.ensure_future(asyncio.to_thread(self.backend.put_stream, key, pull()))

        async def offer(item: Any) -> bool:
            """Hand one item to the uploader; False once the upload has ended (failed)."""
            while not upload.done():
                try:
                    await asyncio.to_thread(handoff.put, item, True, 0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            async for chunk in chunks:
                if not await offer(chunk):
                    break  # the upload failed; its error is raised below
        except BaseException as exc:
            failure.append(exc)
            raise
        finally:
            await offer(_DONE)
            try:
                await upload
            except BaseException:
                if not failure:
                    raise

    async def close(self) -> None:
        await asyncio.to_thread(self.backend.close)

    async def __aenter__(self) -> AsyncStorageBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def _drain(iterator: Iterator[Any]) -> AsyncIterator[Any]:
    while True:
        item = await asyncio.to_thread(next, iterator, _DONE)
        if item is _DONE:
            return
        yield item

"""A view of a backend in which one key prefix is stored under another.

libkb's part of an adopted backup (docs/format.rst, "Adopted backups") lives
under ``{id}/libkb/`` because the Rust tool already owns ``{id}/manifest.json``
and ``{id}/topics/``. With this view every libkb component (the backup
engine, the lease, the indexes, the reader, retention) keeps using its usual
``{id}/...`` keys and needs no notion of adoption.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from libkb.storage.base import DEFAULT_CHUNK_SIZE, BytesLike, ObjectMetadata, StorageBackend
from libkb.storage.outage import OutageWatch


class NestedBackend(StorageBackend):
    """Keys starting with ``outer`` are stored as ``inner`` + the rest; other keys pass through.

    ``inner`` must start with ``outer`` (a subtree of it): the stored keys under
    ``outer`` that are not under ``inner`` are hidden from this view. It does
    not own ``backend``: closing the view leaves it open.
    """

    def __init__(self, backend: StorageBackend, outer: str, inner: str) -> None:
        if not inner.startswith(outer) or inner == outer:
            raise ValueError(f"inner prefix {inner!r} must extend outer prefix {outer!r}")
        self.backend = backend
        self.outer = outer
        self.inner = inner
        self.name = backend.name

    def __repr__(self) -> str:
        return f"NestedBackend({self.backend!r}, {self.outer!r} -> {self.inner!r})"

    def _key(self, key: str) -> str:
        return self.inner + key[len(self.outer) :] if key.startswith(self.outer) else key

    @property
    def stream_hold_bytes(self) -> int:
        return self.backend.stream_hold_bytes

    def ride_outages(self, watch: OutageWatch | None) -> None:
        self.backend.ride_outages(watch)

    def put(self, key: str, data: BytesLike) -> None:
        self.backend.put(self._key(key), data)

    def get(self, key: str) -> bytes:
        return self.backend.get(self._key(key))

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        if prefix.startswith(self.outer):
            for key in self.backend.iter_keys(self._key(prefix)):
                yield self.outer + key[len(self.inner) :]
            return
        for key in self.backend.iter_keys(prefix):
            if not key.startswith(self.outer):
                yield key
            elif key.startswith(self.inner):
                yield self.outer + key[len(self.inner) :]

    def head(self, key: str) -> ObjectMetadata:
        return self.backend.head(self._key(key))

    def exists(self, key: str) -> bool:
        return self.backend.exists(self._key(key))

    def delete(self, key: str) -> None:
        self.backend.delete(self._key(key))

    def copy(self, src: str, dest: str) -> None:
        self.backend.copy(self._key(src), self._key(dest))

    def put_stream(self, key: str, chunks: Iterable[BytesLike]) -> None:
        self.backend.put_stream(self._key(key), chunks)

    def get_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        return self.backend.get_stream(self._key(key), chunk_size)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        return self.backend.get_range(self._key(key), start, end)

    def put_if_absent(self, key: str, data: BytesLike) -> bool:
        return self.backend.put_if_absent(self._key(key), data)

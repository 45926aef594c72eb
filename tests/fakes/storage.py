"""Storage that fails on purpose, and a codec that does: the faults the engines must survive."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import zstandard

from libkb.format import zstdctx
from libkb.storage import BackendError, BytesLike, ObjectMetadata, StorageBackend
from libkb.storage.base import DEFAULT_CHUNK_SIZE


class DelegatingBackend(StorageBackend):
    """Passes every call to ``inner``, after :meth:`before` (a hook for subclasses) has seen it.

    ``op`` is the method's name (``list`` for ``iter_keys``); ``put_stream``'s
    chunks also pass through :meth:`stream`. Closing it leaves ``inner`` open.
    """

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def stream_hold_bytes(self) -> int:
        return self.inner.stream_hold_bytes

    def before(self, op: str, key: str) -> None:
        """Called before each operation on ``key`` (a prefix for ``list``)."""

    def stream(self, key: str, chunks: Iterable[BytesLike]) -> Iterable[BytesLike]:
        """The chunks ``put_stream`` hands to ``inner``."""
        return chunks

    def put(self, key: str, data: BytesLike) -> None:
        self.before("put", key)
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        self.before("get", key)
        return self.inner.get(key)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        self.before("list", prefix)
        return self.inner.iter_keys(prefix)

    def head(self, key: str) -> ObjectMetadata:
        self.before("head", key)
        return self.inner.head(key)

    def delete(self, key: str) -> None:
        self.before("delete", key)
        self.inner.delete(key)

    def copy(self, src: str, dest: str) -> None:
        self.before("copy", dest)
        self.inner.copy(src, dest)

    def put_stream(self, key: str, chunks: Iterable[BytesLike]) -> None:
        self.before("put_stream", key)
        self.inner.put_stream(key, self.stream(key, chunks))

    def get_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        self.before("get_stream", key)
        return self.inner.get_stream(key, chunk_size)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        self.before("get_range", key)
        return self.inner.get_range(key, start, end)

    def put_if_absent(self, key: str, data: BytesLike) -> bool:
        self.before("put_if_absent", key)
        return self.inner.put_if_absent(key, data)


class CountingBackend(DelegatingBackend):
    """Counts the bytes each read returns, per key (``get``, ``get_range`` and ``get_stream``).

    ``reads[key]`` lists ``(op, bytes)`` per call, in order; :meth:`read` sums them.
    """

    def __init__(self, inner: StorageBackend) -> None:
        super().__init__(inner)
        self.reads: dict[str, list[tuple[str, int]]] = {}
        self._lock = threading.Lock()

    def _count(self, op: str, key: str, n: int) -> None:
        with self._lock:
            self.reads.setdefault(key, []).append((op, n))

    def read(self, key: str) -> int:
        """Bytes read of ``key`` so far."""
        with self._lock:
            return sum(n for _, n in self.reads.get(key, []))

    def get(self, key: str) -> bytes:
        data = super().get(key)
        self._count("get", key, len(data))
        return data

    def get_range(self, key: str, start: int, end: int) -> bytes:
        data = super().get_range(key, start, end)
        self._count("get_range", key, len(data))
        return data

    def get_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        for chunk in super().get_stream(key, chunk_size):
            self._count("get_stream", key, len(chunk))
            yield chunk


@dataclass(frozen=True, slots=True)
class Fault:
    """Fail calls of ``op`` on keys containing ``key``: the ``nth`` such call and ``times - 1`` after it."""

    op: str
    key: str = ""
    nth: int = 1
    times: int = 1
    #: ``put_stream`` only: the upload takes this many chunks, then the connection breaks.
    after_chunks: int | None = None


class FaultyBackend(DelegatingBackend):
    """Raises :class:`~libkb.storage.BackendError` where its faults say; ``injected`` lists each one."""

    def __init__(self, inner: StorageBackend, *faults: Fault) -> None:
        super().__init__(inner)
        self.faults = faults
        self.injected: list[str] = []
        self._seen = [0] * len(faults)  # matching calls so far, per fault
        self._breaks: dict[str, int] = {}  # put_stream keys to break mid-stream, after so many chunks
        self._lock = threading.Lock()

    def before(self, op: str, key: str) -> None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault.op != op or fault.key not in key:
                    continue
                self._seen[i] += 1
                if not fault.nth <= self._seen[i] < fault.nth + fault.times:
                    continue
                if fault.after_chunks is not None:
                    self._breaks[key] = fault.after_chunks
                    continue
                self.injected.append(f"{op} {key}")
                raise _injected(op, key)

    def stream(self, key: str, chunks: Iterable[BytesLike]) -> Iterable[BytesLike]:
        with self._lock:
            after = self._breaks.pop(key, None)
        return chunks if after is None else self._breaking(key, chunks, after)

    def _breaking(self, key: str, chunks: Iterable[BytesLike], after: int) -> Iterator[BytesLike]:
        for n, chunk in enumerate(chunks):
            if n == after:
                with self._lock:
                    self.injected.append(f"put_stream {key} after {after} chunks")
                raise _injected("put_stream", key)
            yield chunk


class ProcessKilled(BaseException):
    """A ``kill -9`` of the process, felt at a storage call: no ``except Exception`` catches it."""


class KillingBackend(DelegatingBackend):
    """Counts storage calls (``calls`` names each); at call ``kill_at`` the process is killed.

    The killed call does not reach storage, and neither does any call after
    it, from any thread: a killed process writes nothing more, not even what
    its ``finally`` blocks try (releasing a lease). A kill before call ``n``
    is the instant between calls ``n - 1`` and ``n``.
    """

    def __init__(self, inner: StorageBackend, kill_at: int | None = None) -> None:
        super().__init__(inner)
        self.kill_at = kill_at
        self.calls: list[str] = []
        self.killed = False
        self._lock = threading.Lock()

    def before(self, op: str, key: str) -> None:
        with self._lock:
            if self.killed:
                raise ProcessKilled(f"{op} {key} after the kill")
            self.calls.append(f"{op} {key}")
            if len(self.calls) == self.kill_at:
                self.killed = True
                raise ProcessKilled(f"killed before call {self.kill_at}: {op} {key}")


def _injected(op: str, key: str) -> BackendError:
    return BackendError(f"injected failure of {op}", backend="faulty", key=key)


def break_compression(monkeypatch: pytest.MonkeyPatch, nth: int) -> list[int]:
    """Make the ``nth`` zstd block compression from now on raise ``zstandard.ZstdError``.

    The patch point: libkb compresses every block in
    ``libkb.format.transforms.ZstdCompression.encode``, which builds
    ``zstandard.ZstdCompressor(level=...)`` from the module at each call, or
    (zstd-stream) through a ``StreamEncoder``'s compressors, built per segment
    by :func:`libkb.format.zstdctx.compressor` (a sample's ``compress`` and
    each block's ``compressobj().compress`` are calls), and nothing else in
    libkb builds a compressor. With zstdctx told that the cffi backend is
    missing, it builds them from the module's class too; replacing that one class hits
    every block compression whichever engine module (or thread) asks for it,
    and leaves decompression alone. Returns the failures (call numbers) so far.
    """
    real = zstandard.ZstdCompressor
    calls = itertools.count(1)  # next() on it is atomic: compression runs on several threads
    failed: list[int] = []

    def check() -> None:
        call = next(calls)
        if call == nth:
            failed.append(call)
            raise zstandard.ZstdError("injected compression failure")

    class FailingStream:
        """A zstd-stream context (``compressobj``): each block's ``compress`` is a call."""

        def __init__(self, obj: Any) -> None:
            self._obj = obj

        def compress(self, data: Any) -> bytes:
            check()
            return bytes(self._obj.compress(data))

        def flush(self, mode: int = zstandard.COMPRESSOBJ_FLUSH_FINISH) -> bytes:
            return bytes(self._obj.flush(mode))

    class Failing:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._real = real(*args, **kwargs)

        def compress(self, data: Any) -> bytes:
            check()
            return bytes(self._real.compress(data))

        def compressobj(self) -> FailingStream:
            return FailingStream(self._real.compressobj())

    monkeypatch.setattr(zstandard, "ZstdCompressor", Failing)
    monkeypatch.setattr(zstdctx, "_cffi", lambda: None)
    return failed

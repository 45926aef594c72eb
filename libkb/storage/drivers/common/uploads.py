"""Bounded-memory uploads: small streams whole, large ones in exact-size parts
uploaded a bounded number at a time."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any, TypeVar

T = TypeVar("T")


def small_or_stream(chunks: Iterable[bytes], limit: int) -> tuple[bytes | None, Iterator[bytes]]:
    """Read ``chunks`` until more than ``limit`` bytes have come.

    ``(payload, empty)`` when the whole stream fits, for one request; else
    ``(None, stream)``: what was read, then the rest, each chunk let go once
    passed on. Mutable chunks are copied: the producer may reuse its buffer.
    """
    it = iter(chunks)
    head: deque[bytes] = deque()
    size = 0
    for chunk in it:
        piece = _owned(chunk)
        if piece:
            head.append(piece)
            size += len(piece)
        if size > limit:
            break
    if size <= limit:
        return b"".join(head), iter(())

    def stream() -> Iterator[bytes]:
        while head:
            yield head.popleft()
        yield from it

    return None, stream()


def _owned(chunk: bytes | bytearray | memoryview) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise _not_bytes(chunk)


def _byte_view(chunk: bytes | bytearray | memoryview) -> memoryview:
    """A flat byte view of any bytes-like chunk (non-contiguous ones are copied)."""
    try:
        view = memoryview(chunk)
    except TypeError:
        raise _not_bytes(chunk) from None
    return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())


def _not_bytes(chunk: object) -> TypeError:
    return TypeError(f"upload chunks must be bytes-like, not {type(chunk).__name__}")


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup byte chunks into pieces of exactly ``size`` bytes (the last may be shorter).

    Holds at most ``size`` bytes plus the caller's current chunk.
    """
    if size <= 0:
        raise ValueError("chunk size must be positive")
    buf = bytearray()
    for chunk in chunks:
        view = _byte_view(chunk)
        n = len(view)
        pos = 0
        if buf:
            take = min(size - len(buf), n)
            buf += view[:take]
            pos = take
            if len(buf) == size:
                yield bytes(buf)
                buf = bytearray()
        while n - pos >= size:
            if pos == 0 and n == size and isinstance(chunk, bytes):
                yield chunk
            else:
                yield bytes(view[pos : pos + size])
            pos += size
        if pos < n:
            buf += view[pos:]
    if buf:
        yield bytes(buf)


def run_parallel(
    executor: Executor,
    items: Iterable[T],
    work: Callable[[int, T], Any],
    max_in_flight: int,
    abort: threading.Event,
    *,
    read_ahead: bool = False,
) -> list[Any]:
    """Run ``work(index, item)`` for each item with at most ``max_in_flight`` running.

    Items are pulled from ``items`` only when a slot is free, so memory stays
    bounded; with ``read_ahead`` the next item is pulled first and waits for
    the slot, so it is ready when one frees (one more item in memory). No
    item is submitted after work has failed: on the first failure (in a
    worker or in ``items`` itself) ``abort`` is set, queued work is
    cancelled, running work is awaited, and the error is raised. Returns the
    results in item order.
    """
    pending: set[Future[Any]] = set()
    index_of: dict[Future[Any], int] = {}
    results: dict[int, Any] = {}

    def collect(done: Iterable[Future[Any]]) -> None:
        for fut in done:
            pending.discard(fut)
            results[index_of.pop(fut)] = fut.result()

    def free_slot() -> None:
        collect([fut for fut in pending if fut.done()])  # raises if one failed
        while len(pending) >= max(1, max_in_flight):
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            collect(done)

    try:
        source = iter(items)
        index = 0
        while True:
            if not read_ahead:
                free_slot()
            try:
                item = next(source)
            except StopIteration:
                break
            if read_ahead:
                free_slot()
            fut = executor.submit(work, index, item)
            index_of[fut] = index
            pending.add(fut)
            index += 1
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            collect(done)
    except BaseException:
        abort.set()
        for fut in pending:
            fut.cancel()
        wait(pending)
        raise
    return [results[i] for i in range(len(results))]

"""Bounded-memory uploads: exact-size parts, uploaded a bounded number at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any, TypeVar

T = TypeVar("T")


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup byte chunks into pieces of exactly ``size`` bytes (the last may be shorter).

    Holds at most ``size`` bytes plus the caller's current chunk.
    """
    if size <= 0:
        raise ValueError("chunk size must be positive")
    buf = bytearray()
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
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
) -> list[Any]:
    """Run ``work(index, item)`` for each item with at most ``max_in_flight`` running.

    Items are pulled from ``items`` only when a slot is free, so memory stays
    bounded. On the first failure (in a worker or in ``items`` itself) ``abort``
    is set, queued work is cancelled, running work is awaited, and the error
    is raised. Returns the results in item order.
    """
    pending: set[Future[Any]] = set()
    index_of: dict[Future[Any], int] = {}
    results: dict[int, Any] = {}

    def collect(done: Iterable[Future[Any]]) -> None:
        for fut in done:
            pending.discard(fut)
            results[index_of.pop(fut)] = fut.result()

    try:
        source = iter(items)
        index = 0
        while True:
            # Wait for a free slot *before* pulling the next item, so at most
            # max_in_flight items (plus the one being assembled) are in memory.
            while len(pending) >= max(1, max_in_flight):
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
            try:
                item = next(source)
            except StopIteration:
                break
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

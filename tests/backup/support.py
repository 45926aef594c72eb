"""Broker-free helpers for testing the backup engine's parts.

A memory store that logs, holds and fails writes; an ownership that can be
lost; raw blocks of records.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from libkb.backup.lease import LeaseLostError
from libkb.backup.store import StorePipeline
from libkb.format.models import PartitionIndex, index_key
from libkb.format.segment import CODEC_NONE, BlockEncoder, RawBlock, codec_chain
from libkb.format.transforms import TransformChain
from libkb.metrics import RunMetrics
from libkb.storage import BytesLike, MemoryConfig, StorageBackend, StorageError, create_backend_from_config

BID = "bk"


class Store:
    """A memory backend whose writes are logged in order, and can be held or failed per key."""

    def __init__(self, backend: StorageBackend) -> None:
        self.backend = backend
        #: ("segment", key, b"") once a streamed upload completed; ("put", key, data) for each put.
        self.log: list[tuple[str, str, bytes]] = []
        self.started: dict[str, threading.Event] = {}
        self.gates: dict[str, threading.Event] = {}
        self.failing: set[str] = set()
        self._lock = threading.Lock()
        self._put, self._put_stream = backend.put, backend.put_stream
        backend.put = self.put  # type: ignore[method-assign]
        backend.put_stream = self.put_stream  # type: ignore[method-assign]

    def started_event(self, key: str) -> threading.Event:
        with self._lock:
            return self.started.setdefault(key, threading.Event())

    def hold(self, key: str) -> threading.Event:
        """Hold the upload of ``key`` (before it reads any chunk) until the returned event is set."""
        gate = self.gates[key] = threading.Event()
        return gate

    def put(self, key: str, data: BytesLike) -> None:
        self._put(key, data)
        with self._lock:
            self.log.append(("put", key, bytes(data)))

    def put_stream(self, key: str, chunks: Iterable[BytesLike]) -> None:
        self.started_event(key).set()
        gate = self.gates.get(key)
        if gate is not None:
            assert gate.wait(30), f"{key} was held for too long"
        if key in self.failing:
            for _ in chunks:  # the driver read the segment, then storage failed
                pass
            raise StorageError(f"storage refused {key}", backend="test", key=key)
        self._put_stream(key, chunks)
        with self._lock:
            self.log.append(("segment", key, b""))

    def writes(self) -> list[str]:
        with self._lock:
            return [key for _, key, _ in self.log]

    def index(self, topic: str, partition: int) -> PartitionIndex:
        return PartitionIndex.from_json(self.backend.get(index_key(BID, topic, partition)))

    def index_writes(self, topic: str, partition: int) -> list[PartitionIndex]:
        key = index_key(BID, topic, partition)
        with self._lock:
            return [PartitionIndex.from_json(data) for op, k, data in self.log if op == "put" and k == key]


class Owner:
    """A :class:`~libkb.backup.ownership.PartitionOwnership` that owns everything until :meth:`lose`."""

    def __init__(self) -> None:
        self.fences: list[tuple[str, int] | str] = []
        self._lost = False

    def acquire(self) -> None:
        pass

    def check(self, topic: str, partition: int, what: str) -> int:
        if self._lost:
            raise LeaseLostError(f"lost the lease on backup {BID!r}; {what}")
        self.fences.append((topic, partition))
        return 1

    def check_backup(self, what: str) -> int:
        if self._lost:
            raise LeaseLostError(f"lost the lease on backup {BID!r}; {what}")
        self.fences.append("backup")
        return 1

    def lost(self) -> bool:
        return self._lost

    def fence(self) -> None:
        if self._lost:
            raise LeaseLostError(f"lost the lease on backup {BID!r}")

    def lose(self) -> None:
        self._lost = True

    def release(self) -> None:
        pass


def memory_store() -> Iterator[Store]:
    """For a fixture: a :class:`Store` over a fresh memory backend."""
    with create_backend_from_config(MemoryConfig()) as backend:
        yield Store(backend)


def make_pipeline(
    store: Store,
    owner: Owner,
    *,
    budget: int = 1 << 20,
    chain: TransformChain | None = None,
    threads: int = 4,
) -> StorePipeline:
    return StorePipeline(
        store.backend,
        BID,
        owner,
        chain if chain is not None else codec_chain(CODEC_NONE),
        compression_threads=2,
        upload_threads=threads,
        max_bytes_in_flight=budget,
        metrics=RunMetrics(),
    )


def raw_block(first: int, count: int = 1, size: int = 100) -> RawBlock:
    """``count`` records from offset ``first``, each with a ``size``-byte value."""
    enc = BlockEncoder(1 << 16)
    for offset in range(first, first + count):
        enc.add(offset, 1_700_000_000_000 + offset, 1, b"k", b"v" * size, None)
    return enc.take()

"""The one storage interface every backend implements.

Methods are synchronous and thread-safe; :mod:`libkb.storage.aio` wraps them
for asyncio. Keys are relative to the backend's configured prefix and obey
:mod:`libkb.storage.keys`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from libkb.storage.outage import OutageWatch

DEFAULT_CHUNK_SIZE = 1024 * 1024

#: What ``put``, ``put_if_absent`` and ``put_stream`` chunks accept (stored as a copy).
BytesLike = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class ObjectMetadata:
    """What ``head`` returns. ``e_tag`` may be None on filesystem and memory."""

    size: int
    last_modified: int  # epoch milliseconds
    e_tag: str | None = None


class StorageBackend(ABC):
    """Put, get, list, exists, delete, size, head, copy, plus streaming.

    Missing keys raise :class:`~libkb.storage.errors.NotFoundError` from
    ``get``, ``size``, ``head``, ``delete``, ``copy``, ``get_stream`` and
    ``get_range``; ``put`` and ``put_stream`` overwrite. A failed write never
    leaves a partial object behind.
    """

    #: Short backend name used in messages and metrics ("s3", "filesystem", ...).
    name: str = "storage"

    @property
    def stream_hold_bytes(self) -> int:
        """Bytes a ``put_stream`` may still hold after taking them from its iterable.

        Writers that bound their memory (the backup engine) count a chunk as
        stored only once this many later bytes have been taken: drivers batch
        writes and buffer multipart parts. 0: stored when taken.
        """
        return 0

    def ride_outages(self, watch: OutageWatch | None) -> None:  # noqa: B027 - optional hook
        """Try failing operations again until ``watch``'s deadline (None: stop riding).

        Backends with a retry layer implement it; others fail as they always do.
        """

    @abstractmethod
    def put(self, key: str, data: BytesLike) -> None:
        """Write ``data`` at ``key``, replacing any object there."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Read the whole object."""

    @abstractmethod
    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Lazily yield keys starting with ``prefix`` (a plain string prefix).

        In the service's listing order: UTF-8 byte order on S3, Azure, GCS,
        filesystem and memory; some S3-compatible servers (SeaweedFS) list
        directory by directory. :meth:`list` always sorts.
        """

    def list(self, prefix: str = "") -> list[str]:
        """All keys starting with ``prefix``, sorted by their UTF-8 bytes."""
        return sorted(self.iter_keys(prefix), key=lambda k: k.encode("utf-8"))

    @abstractmethod
    def head(self, key: str) -> ObjectMetadata:
        """Size, last-modified time (epoch ms) and e-tag of an object."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""
        from libkb.storage.errors import ContainerNotFoundError, NotFoundError

        try:
            self.head(key)
        except ContainerNotFoundError:
            raise  # a setup problem, not an absent key
        except NotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        """Size of the object in bytes."""
        return self.head(key).size

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing key raises NotFoundError."""

    @abstractmethod
    def copy(self, src: str, dest: str) -> None:
        """Copy ``src`` to ``dest`` (server-side where the service can)."""

    @abstractmethod
    def put_stream(self, key: str, chunks: Iterable[BytesLike]) -> None:
        """Write an object from byte chunks; on any error nothing is stored."""

    @abstractmethod
    def get_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Read an object as chunks; NotFoundError is raised by this call, not by iteration."""

    @abstractmethod
    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` (inclusive) to ``end`` (exclusive), clipped to the object's size."""

    @abstractmethod
    def put_if_absent(self, key: str, data: BytesLike) -> bool:
        """Create the object only if no object is at ``key``; True if this call created it."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and thread pools."""

    def __enter__(self) -> StorageBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

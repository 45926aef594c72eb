"""A Libcloud storage driver that keeps objects in memory.

Libcloud's ``DummyStorageDriver`` stores no bytes, so tests and the engines'
dry runs need this one. Thread-safe; each instance owns its own store.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from libcloud.storage.base import Container, Object, StorageDriver
from libcloud.storage.types import (
    ContainerAlreadyExistsError,
    ContainerDoesNotExistError,
    ObjectDoesNotExistError,
)

from libkb.storage.drivers.base import LibkbDriverMixin


@dataclass(frozen=True, slots=True)
class _Blob:
    data: bytes
    mtime_ms: int


class MemoryStorageDriver(LibkbDriverMixin, StorageDriver):  # type: ignore[misc]
    """Containers of named byte strings, guarded by one lock."""

    name = "libkb memory"
    website = ""
    type = "libkb-memory"
    libkb_name = "memory"

    def __init__(self, containers: Iterable[str] = ("memory",)) -> None:
        # StorageDriver.__init__ builds an HTTP connection we never use.
        self._lock = threading.Lock()
        self._containers: dict[str, dict[str, _Blob]] = {name: {} for name in containers}
        self._sorted: dict[str, list[str]] = {name: [] for name in containers}

    def __repr__(self) -> str:
        return f"MemoryStorageDriver(containers={sorted(self._containers)!r})"

    # -- containers -------------------------------------------------------

    def _store(self, name: str) -> dict[str, _Blob]:
        try:
            return self._containers[name]
        except KeyError:
            raise ContainerDoesNotExistError(value=None, driver=self, container_name=name) from None

    def create_container(self, container_name: str) -> Container:
        with self._lock:
            if container_name in self._containers:
                raise ContainerAlreadyExistsError(value=None, driver=self, container_name=container_name)
            self._containers[container_name] = {}
            self._sorted[container_name] = []
        return Container(name=container_name, extra={}, driver=self)

    def get_container(self, container_name: str) -> Container:
        with self._lock:
            self._store(container_name)
        return Container(name=container_name, extra={}, driver=self)

    def iterate_containers(self) -> Iterator[Container]:
        with self._lock:
            names = list(self._containers)
        return iter(Container(name=n, extra={}, driver=self) for n in names)

    # -- objects ----------------------------------------------------------

    def _blob(self, container_name: str, object_name: str) -> _Blob:
        with self._lock:
            blob = self._store(container_name).get(object_name)
        if blob is None:
            raise ObjectDoesNotExistError(value=None, driver=self, object_name=object_name)
        return blob

    def _set(self, container_name: str, object_name: str, data: bytes, *, create_only: bool) -> bool:
        blob = _Blob(data, time.time_ns() // 1_000_000)
        with self._lock:
            store = self._store(container_name)
            if object_name in store:
                if create_only:
                    return False
            else:
                bisect.insort(self._sorted[container_name], object_name, key=_utf8)
            store[object_name] = blob
        return True

    def get_object(self, container_name: str, object_name: str) -> Object:
        blob = self._blob(container_name, object_name)
        return Object(
            name=object_name,
            size=len(blob.data),
            hash=None,
            extra={"mtime_ms": blob.mtime_ms},
            meta_data={},
            container=Container(name=container_name, extra={}, driver=self),
            driver=self,
        )

    def iterate_container_objects(
        self, container: Container, prefix: str | None = None, ex_prefix: str | None = None
    ) -> Iterator[Object]:
        prefix = prefix or ex_prefix or ""
        with self._lock:
            self._store(container.name)
            names = self._sorted[container.name]
            start = bisect.bisect_left(names, _utf8(prefix), key=_utf8)
            selected = []
            for name in names[start:]:
                if not name.startswith(prefix):
                    break
                selected.append(name)
        for name in selected:
            try:
                yield self.get_object(container.name, name)
            except ObjectDoesNotExistError:
                continue  # deleted while listing

    def download_object_as_stream(self, obj: Object, chunk_size: int | None = None) -> Iterator[bytes]:
        data = self._blob(obj.container.name, obj.name).data
        return _chunks(data, chunk_size or len(data) or 1)

    def download_object_range_as_stream(
        self,
        obj: Object,
        start_bytes: int,
        end_bytes: int | None = None,
        chunk_size: int | None = None,
    ) -> Iterator[bytes]:
        data = self._blob(obj.container.name, obj.name).data[start_bytes:end_bytes]
        return _chunks(data, chunk_size or len(data) or 1)

    def delete_object(self, obj: Object) -> bool:
        with self._lock:
            store = self._store(obj.container.name)
            if store.pop(obj.name, None) is None:
                raise ObjectDoesNotExistError(value=None, driver=self, object_name=obj.name)
            names = self._sorted[obj.container.name]
            del names[bisect.bisect_left(names, _utf8(obj.name), key=_utf8)]
        return True

    # -- libkb extensions -------------------------------------------------

    def ex_put_object(self, container: Container, object_name: str, data: bytes) -> None:
        self._set(container.name, object_name, bytes(data), create_only=False)

    def ex_put_object_if_absent(self, container: Container, object_name: str, data: bytes) -> bool:
        return self._set(container.name, object_name, bytes(data), create_only=True)

    def ex_copy_object(self, container: Container, src_name: str, dest_name: str) -> None:
        data = self._blob(container.name, src_name).data
        self._set(container.name, dest_name, data, create_only=False)

    def ex_upload_stream(self, container: Container, object_name: str, chunks: Iterable[bytes]) -> None:
        self._store_exists(container.name)
        buffer = bytearray()
        for chunk in chunks:  # an error here leaves the old object untouched
            buffer += chunk
        self._set(container.name, object_name, bytes(buffer), create_only=False)

    def _store_exists(self, name: str) -> None:
        with self._lock:
            self._store(name)


def _utf8(name: str) -> bytes:
    return name.encode("utf-8")


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for offset in range(0, len(data), size):
        yield bytes(view[offset : offset + size])

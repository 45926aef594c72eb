"""One :class:`StorageBackend` over any libkb Libcloud driver.

Backends differ only in the driver they are built with (see
:mod:`libkb.storage.factory`). Everything else lives here once: key checks,
the configured prefix, error mapping, retries and the circuit breaker,
resumable streaming reads and listings, and delete's not-found semantics.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from libcloud.storage.base import Container, Object

from libkb.errors import LibkbError
from libkb.storage.base import DEFAULT_CHUNK_SIZE, BytesLike, ObjectMetadata, StorageBackend
from libkb.storage.errormap import map_error
from libkb.storage.errors import BackendError, InvalidPathError, StorageError
from libkb.storage.keys import (
    full_name,
    normalize_base_prefix,
    relative_name,
    utf8_sort_key,
    validate_key,
    validate_list_prefix,
)
from libkb.storage.metrics import StorageMetrics
from libkb.storage.outage import OutageWatch
from libkb.storage.resilience import Resilience
from libkb.storage.settings import ResilienceConfig

T = TypeVar("T")


class LibcloudBackend(StorageBackend):
    """The storage interface over a Libcloud driver, a container and a prefix."""

    def __init__(
        self,
        driver: Any,
        container_name: str,
        *,
        prefix: str | None = None,
        resilience: ResilienceConfig | None = None,
        secrets: Iterable[str] = (),
        name: str | None = None,
        metrics: StorageMetrics | None = None,
    ) -> None:
        self.name = name or str(getattr(driver, "libkb_name", "storage"))
        #: Where this backend's latency, error and retry metrics go (a private registry by default).
        self.metrics = metrics if metrics is not None else StorageMetrics()
        self._driver = driver
        self._container_name = container_name
        self._container = Container(name=container_name, extra={}, driver=driver)
        self._prefix = normalize_base_prefix(prefix, backend=self.name)
        self._secrets = tuple(s for s in secrets if s)
        self._resilience = Resilience(
            resilience or ResilienceConfig(), self.name, self.metrics.retries.labels(self.name).inc
        )
        driver.libkb_call = self._part_call

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(backend={self.name!r}, "
            f"container={self._container_name!r}, prefix={self._prefix!r})"
        )

    # -- plumbing ---------------------------------------------------------

    @property
    def prefix(self) -> str:
        """The normalized base prefix ('' when none)."""
        return self._prefix

    @property
    def resilience(self) -> Resilience:
        return self._resilience

    def ride_outages(self, watch: OutageWatch | None) -> None:
        self._resilience.outage = watch

    @property
    def stream_hold_bytes(self) -> int:
        return int(getattr(self._driver, "libkb_stream_hold", 0))

    def _map(self, exc: BaseException, key: str | None) -> StorageError:
        # A third-party driver need not have the mixin's hook.
        hint = getattr(self._driver, "libkb_denied_hint", None)
        backend = self.name
        if not key and self._container_name:
            # A listing of the whole container has no key to name ('': ...): name the container.
            key, backend = None, f"{self.name} container {self._container_name!r}"
        return map_error(
            exc,
            backend=backend,
            key=key,
            container=self._container_name,
            secrets=self._secrets,
            denied_hint=hint(self._container_name) if callable(hint) else None,
        )

    def _guard(self, fn: Callable[[], T], key: str | None) -> Callable[[], T]:
        """Wrap a driver call so it raises only libkb errors."""

        def run() -> T:
            try:
                return fn()
            except (LibkbError, _CallerError):
                raise  # libkb's own: storage errors, and the run's fence (a lost lease) during a retry
            except Exception as exc:
                raise self._map(exc, key) from None

        return run

    def _call(self, op: str, key: str | None, fn: Callable[[], T], *, retry: bool = True) -> T:
        with self.metrics.observe(self.name, op):
            return self._resilience.call(self._guard(fn, key), retry=retry, key=key)

    def _part_call(self, fn: Callable[[], Any]) -> Any:
        return self._resilience.retry(self._guard(fn, None))

    def _name(self, key: str) -> str:
        validate_key(key, backend=self.name, prefix=self._prefix)
        return full_name(self._prefix, key)

    def _bare(self, name: str) -> Object:
        return Object(
            name=name,
            size=None,
            hash=None,
            extra={},
            meta_data={},
            container=self._container,
            driver=self._driver,
        )

    # -- the interface ----------------------------------------------------

    def put(self, key: str, data: BytesLike) -> None:
        name = self._name(key)
        payload = _as_bytes(data, key)
        self._call("put", key, lambda: self._driver.ex_put_object(self._container, name, payload))

    def put_if_absent(self, key: str, data: BytesLike) -> bool:
        name = self._name(key)
        payload = _as_bytes(data, key)
        created = self._call(
            "put_if_absent",
            key,
            lambda: self._driver.ex_put_object_if_absent(self._container, name, payload),
        )
        return bool(created)

    def put_stream(self, key: str, chunks: Iterable[BytesLike]) -> None:
        name = self._name(key)
        source = _SourceChunks(chunks)
        # The iterable can be read once, so the whole upload is not retried;
        # the driver retries each part through ``libkb_call``.
        try:
            self._call(
                "put_stream",
                key,
                lambda: self._driver.ex_upload_stream(self._container, name, source),
                retry=False,
            )
        except (StorageError, _CallerError):
            if source.error is not None:
                raise source.error from None  # the caller's own iterator failed
            raise

    def get(self, key: str) -> bytes:
        name = self._name(key)
        data: bytes = self._call("get", key, lambda: self._driver.ex_read_object(self._bare(name)))
        return data

    def get_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        name = self._name(key)
        first = self._call(
            "get_stream",
            key,
            lambda: _primed(self._driver.download_object_as_stream(self._bare(name), chunk_size=chunk_size)),
        )
        return self._resuming_stream(key, name, first, chunk_size)

    def _resuming_stream(
        self, key: str, name: str, stream: Iterator[bytes], chunk_size: int
    ) -> Iterator[bytes]:
        """Yield the object's bytes; after a transient failure, go on with a range read."""
        delivered = 0
        attempts = 0
        while True:
            try:
                for chunk in stream:
                    delivered += len(chunk)
                    attempts = 0
                    yield chunk
                return
            except Exception as exc:
                error = self._map(exc, key)
                attempts += 1
                if not (isinstance(error, BackendError) and error.transient) or attempts >= max(
                    1, self._resilience.config.max_attempts
                ):
                    raise error from None
                stream = self._call(
                    "get_stream",
                    key,
                    lambda offset=delivered: _primed(  # type: ignore[misc]
                        self._driver.download_object_range_as_stream(
                            self._bare(name), offset, None, chunk_size=chunk_size
                        )
                    ),
                )

    def get_range(self, key: str, start: int, end: int) -> bytes:
        name = self._name(key)
        if start < 0 or end < start:
            raise InvalidPathError(
                f"bad byte range [{start}, {end}): need 0 <= start <= end",
                backend=self.name,
                key=key,
            )
        if start == end:
            self.head(key)  # still report a missing object
            return b""

        def read() -> bytes:
            try:
                data: bytes = self._driver.ex_read_object(self._bare(name), start, end)
                return data
            except Exception as exc:
                if getattr(exc, "code", None) == 416 or getattr(exc, "http_code", None) == 416:
                    return b""
                raise

        return self._call("get_range", key, read)

    def head(self, key: str) -> ObjectMetadata:
        name = self._name(key)
        obj = self._call("head", key, lambda: self._driver.get_object(self._container_name, name))
        return ObjectMetadata(
            size=int(obj.size),
            last_modified=int(obj.extra["mtime_ms"]),
            e_tag=obj.hash or None,
        )

    def delete(self, key: str) -> None:
        name = self._name(key)
        # S3 and others answer a delete of a missing key with success; the
        # interface promises NotFoundError, so look first.
        obj = self._call("head", key, lambda: self._driver.get_object(self._container_name, name))
        self._call("delete", key, lambda: self._driver.delete_object(obj))

    def copy(self, src: str, dest: str) -> None:
        src_name = self._name(src)
        dest_name = self._name(dest)
        self._call(
            "copy",
            src,
            lambda: self._driver.ex_copy_object(self._container, src_name, dest_name),
        )

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        validate_list_prefix(prefix, backend=self.name)
        search = f"{self._prefix}/{prefix}" if self._prefix else prefix
        return self._resuming_listing(prefix, search)

    def _resuming_listing(self, prefix: str, search: str) -> Iterator[str]:
        """List lazily; after a transient failure, list again and skip what was yielded.

        Most services list in UTF-8 order, so "skip names up to the last one" is
        exact even if objects come and go meanwhile. Some (SeaweedFS) list
        directory by directory; once a listing is seen out of order, resuming
        skips by count instead, which relies on the service repeating its order.
        """
        last: bytes | None = None
        yielded = 0
        ordered = True
        attempts = 0
        while True:
            resumed = yielded > 0
            to_skip = yielded
            try:
                objects = self._call(
                    "list",
                    prefix,
                    lambda: _primed(self._driver.iterate_container_objects(self._container, prefix=search)),
                )
                for obj in objects:
                    name: str = obj.name
                    if not name.startswith(search) or name.endswith("/"):
                        continue  # directory markers and out-of-prefix names
                    order = utf8_sort_key(name)
                    if resumed:
                        if ordered:
                            if last is not None and order <= last:
                                continue
                        elif to_skip > 0:
                            to_skip -= 1
                            continue
                    if last is not None and order < last:
                        ordered = False
                    last = order
                    yielded += 1
                    attempts = 0
                    yield relative_name(self._prefix, name)
                return
            except Exception as exc:
                error = self._map(exc, prefix)
                attempts += 1
                if not (isinstance(error, BackendError) and error.transient) or attempts >= max(
                    1, self._resilience.config.max_attempts
                ):
                    raise error from None
                time.sleep(min(self._resilience.config.backoff_max_secs, 0.1 * attempts))

    def close(self) -> None:
        closer = getattr(self._driver, "ex_close", None)
        if closer is not None:
            closer()


class _CallerError(Exception):
    """Carries an exception raised by the caller's chunk iterator through the driver."""


class _SourceChunks:
    """The caller's chunks, remembering an error the caller's iterator raised.

    The upload is aborted either way; the caller then gets its own exception
    back rather than a storage error.
    """

    def __init__(self, chunks: Iterable[BytesLike]) -> None:
        self._it = iter(chunks)
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self._it)
        except StopIteration:
            raise
        except BaseException as exc:
            self.error = exc
            raise _CallerError() from exc
        if not isinstance(chunk, bytes | bytearray | memoryview):
            self.error = TypeError(f"put_stream chunks must be bytes, not {type(chunk).__name__}")
            raise _CallerError() from self.error
        return bytes(chunk) if not isinstance(chunk, bytes) else chunk


def _primed(items: Iterable[T]) -> Iterator[T]:
    """``items`` with the first one fetched now: a lazy driver's first request is made here,
    inside the operation's retries and outage wait, rather than by the caller's iteration."""
    it = iter(items)
    for first in it:
        return itertools.chain((first,), it)
    return iter(())


def _as_bytes(data: object, key: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"put({key!r}, ...) takes bytes, not {type(data).__name__}")

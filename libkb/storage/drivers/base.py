"""The contract between :class:`~libkb.storage.adapter.LibcloudBackend` and its drivers.

Every libkb driver is a Libcloud ``StorageDriver`` subclass that also mixes in
:class:`LibkbDriverMixin`. The adapter calls only these Libcloud methods:

- ``get_container(name)``
- ``get_object(container_name, object_name)``: one metadata request. A missing
  object raises ``ObjectDoesNotExistError``, a missing container
  ``ContainerDoesNotExistError``, 401/403 ``InvalidCredsError``, any other
  failure ``BaseHTTPError``/``LibcloudError`` carrying the HTTP status in
  ``.code`` when there is one (never "does not exist" for a 403 or 5xx). The
  returned ``Object`` has ``size``, ``hash`` (e-tag or None) and
  ``extra["mtime_ms"]`` (int, epoch milliseconds).
- ``iterate_container_objects(container, prefix=...)``: plain string-prefix,
  recursive, lazy.
- ``download_object_as_stream(obj, chunk_size=...)`` and
  ``download_object_range_as_stream(obj, start_bytes, end_bytes, chunk_size=...)``
  (``end_bytes`` exclusive, as in Libcloud).
- ``delete_object(obj)``

The adapter may pass a *bare* ``Object`` (``size``/``hash`` None, empty
``extra``) to the download and delete methods so a read costs one request:
those methods must not need more than ``obj.name`` and ``obj.container``, and
must make their request when called (a missing object raises
``ObjectDoesNotExistError`` from the call, not from the first ``next()``).
A range starting at or past the end of the object may raise an error with
``.code == 416``; the adapter turns that into ``b""``.

plus the ``ex_`` methods below, which Libcloud lacks (``ex_read_object`` has a
default made of the download methods). Drivers raise Libcloud,
requests or OS exceptions (or libkb storage errors); the adapter maps them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from libkb.storage.base import DEFAULT_CHUNK_SIZE

T = TypeVar("T")


def _call_once(fn: Callable[[], T]) -> T:
    return fn()


class LibkbDriverMixin:
    """Operations libkb needs that Libcloud's StorageDriver does not have."""

    #: Backend name for messages and metrics.
    libkb_name: str = "storage"

    #: Wraps one retryable request (e.g. a multipart part upload). The adapter
    #: replaces it with its retry/breaker policy; drivers call it for each unit
    #: of work that can be repeated safely.
    libkb_call: Callable[[Callable[[], Any]], Any] = staticmethod(_call_once)

    def libkb_denied_hint(self, container: str | None) -> str | None:
        """What to do when the service refuses the credentials, if the driver knows better than the
        adapter's general advice (e.g. that a SAS token expired). Never holds a secret."""
        return None

    def ex_read_object(self, obj: Any, start: int = 0, end: int | None = None) -> bytes:
        """The object's bytes from ``start`` to ``end`` (exclusive; None: its end), as the download
        methods give them and with their errors. A driver that can read them into one buffer
        overrides it (the filesystem: one read, not a join of chunks, which copied every byte again
        into fresh memory: 54 % of a restore's page faults, bench/README.rst, session 12)."""
        if start == 0 and end is None:
            chunks = self.download_object_as_stream(obj, chunk_size=DEFAULT_CHUNK_SIZE)  # type: ignore[attr-defined]
        else:
            chunks = self.download_object_range_as_stream(  # type: ignore[attr-defined]
                obj, start, end, chunk_size=DEFAULT_CHUNK_SIZE
            )
        return b"".join(chunks)

    def ex_put_object(self, container: Any, object_name: str, data: bytes) -> None:
        """Store ``data`` in one request; atomic (readers see old or new, never partial)."""
        raise NotImplementedError

    def ex_put_object_if_absent(self, container: Any, object_name: str, data: bytes) -> bool:
        """Create-only write; False (and nothing written) if the object exists."""
        raise NotImplementedError

    def ex_copy_object(self, container: Any, src_name: str, dest_name: str) -> None:
        """Server-side copy within the container; ObjectDoesNotExistError if ``src`` is missing."""
        raise NotImplementedError

    def ex_upload_stream(self, container: Any, object_name: str, chunks: Iterable[bytes]) -> None:
        """Upload from chunks with bounded memory; aborted and invisible on any error."""
        raise NotImplementedError

    def upload_object_via_stream(
        self,
        iterator: Iterable[bytes],
        container: Any,
        object_name: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Libcloud's streamed upload, routed through ``ex_upload_stream``.

        So a caller using the driver directly gets the same atomic (never
        partially written) and, on the cloud, parallel upload as the adapter.
        """
        self.ex_upload_stream(container, object_name, iterator)
        return self.get_object(container.name, object_name)  # type: ignore[attr-defined]

    def ex_close(self) -> None:
        """Release thread pools and sessions."""

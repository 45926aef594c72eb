"""Storage opened by read-only commands: nothing is created, a missing location is named.

``list``, ``describe``, ``validate``, ``show-offset-mapping`` and
``validate-restore`` only read: a mistyped path must be an error, never an
empty directory left behind (``create=False``, as ``status`` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from libkb.errors import LibkbError
from libkb.storage import (
    ContainerNotFoundError,
    StorageBackend,
    create_backend_from_config,
    open_backend,
)
from libkb.storage.settings import BackendConfig


class LocationNotFoundError(LibkbError, FileNotFoundError):
    """The storage location a read-only command was given does not exist (nothing was created)."""

    def __str__(self) -> str:
        return str(self.args[0])


@contextmanager
def reading(location: str | BackendConfig, name: str | None = None) -> Iterator[StorageBackend]:
    """The backend at ``location`` (a URL or path, or a storage config), for reading only.

    ``name`` is how an error names the location (default: the URL as typed).
    """
    if isinstance(location, str):
        backend, where = open_backend(location, create=False), name or location
    else:
        backend, where = create_backend_from_config(location, create=False), name or "the configured storage"
    with backend:
        try:
            yield backend
        except ContainerNotFoundError:
            raise LocationNotFoundError(
                f"nothing is stored at {where}: it does not exist (check the path, bucket or container name)"
            ) from None

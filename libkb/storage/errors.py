"""Storage errors. The whole tree is drawn in :mod:`libkb.errors`.

Messages name the backend and the key and say what to do; they never carry
credentials. The adapter maps every Libcloud, requests and socket exception
onto these classes, so nothing third-party escapes ``libkb.storage``.
"""

from __future__ import annotations

from libkb.errors import LibkbError


class StorageError(LibkbError):
    """Base of all storage errors."""

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.backend = backend
        self.key = key
        self.hint = hint
        parts = []
        if backend:
            parts.append(f"[{backend}]")
        if key is not None:
            parts.append(f"{key!r}:")
        parts.append(message)
        text = " ".join(parts)
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class NotFoundError(StorageError, FileNotFoundError):
    """The object (or the bucket/container) does not exist."""


class ContainerNotFoundError(NotFoundError):
    """The bucket or container itself does not exist (a setup problem, not a missing key)."""


class PermissionDeniedError(StorageError, PermissionError):
    """Credentials are missing, wrong, or lack the permission for the operation."""


class InvalidPathError(StorageError, ValueError):
    """The key breaks libkb's key rules; raised before any I/O."""


class BackendError(StorageError):
    """The service or the disk failed (connection, API or I/O error)."""

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        key: str | None = None,
        hint: str | None = None,
        transient: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message, backend=backend, key=key, hint=hint)
        self.transient = transient
        self.status = status


class CircuitOpenError(BackendError):
    """The circuit breaker is open: calls are refused until it half-opens."""


class StorageOutageError(BackendError, TimeoutError):
    """Storage stayed unreachable past the run's outage deadline (see :mod:`libkb.storage.outage`)."""


__all__ = [
    "BackendError",
    "CircuitOpenError",
    "ContainerNotFoundError",
    "InvalidPathError",
    "NotFoundError",
    "PermissionDeniedError",
    "StorageError",
    "StorageOutageError",
]

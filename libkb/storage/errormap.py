"""Map every third-party exception onto the libkb storage error tree.

One function, :func:`map_error`, used by the adapter around every driver call,
so no Libcloud, requests, socket or OS exception escapes ``libkb.storage``.
Messages are scrubbed of credentials before they are kept.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Iterable

import requests
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.types import InvalidCredsError, LibcloudError, ProviderError
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError

from libkb.storage.errors import (
    BackendError,
    ContainerNotFoundError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)

_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}

# Query parameters and headers that carry credentials in URLs and messages.
_SECRET_PATTERNS = [
    re.compile(
        r"(?i)((?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|"
        r"access_token|token|sv|se|sp|skoid|sktid)=)[^&\s'\"]+"
    ),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]+"),
    re.compile(r"(?i)(sharedkey\s+[^:\s]+:)[A-Za-z0-9+/=]+"),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secret values and credential-looking URL/header parts."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


def _status_of(exc: BaseException) -> int | None:
    for attr in ("code", "http_code", "status", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _describe(exc: BaseException, secrets: Iterable[str]) -> str:
    if isinstance(exc, BaseHTTPError):
        text = f"HTTP {exc.code}: {exc.message}"
    elif isinstance(exc, LibcloudError):
        text = str(exc.value)
    else:
        text = str(exc) or type(exc).__name__
    text = redact(text, secrets)
    if len(text) > 500:
        text = text[:500] + "..."
    return f"{type(exc).__name__}: {text}"


def map_error(
    exc: BaseException,
    *,
    backend: str,
    key: str | None,
    container: str | None = None,
    secrets: Iterable[str] = (),
    denied_hint: str | None = None,
) -> StorageError:
    """Return the libkb error for ``exc`` (which the caller raises ``from None``).

    What is missing or forbidden is known from the exception's type, then
    from its HTTP status; what is left is a transport, I/O or other failure.
    ``denied_hint`` replaces the general advice on refused credentials (the
    driver knows more, e.g. that a SAS token expired).
    """
    if isinstance(exc, StorageError):
        return exc
    detail = _describe(exc, tuple(secrets))
    mapped = _from_type(exc, detail, backend, key, container, denied_hint)
    if mapped is None:
        mapped = _from_status(exc, detail, backend, key, denied_hint)
    if mapped is None:
        mapped = _from_failure(exc, detail, backend, key)
    return mapped


def _denied(detail: str, backend: str, key: str | None, hint: str | None) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"access denied ({detail})",
        backend=backend,
        key=key,
        hint=hint or "check the credentials and that they allow this operation on the bucket",
    )


def _from_type(
    exc: BaseException,
    detail: str,
    backend: str,
    key: str | None,
    container: str | None,
    denied_hint: str | None,
) -> StorageError | None:
    """Missing containers and objects, and refused credentials, by exception type."""
    if isinstance(exc, ContainerDoesNotExistError):
        return ContainerNotFoundError(
            f"the bucket/container {container!r} does not exist",
            backend=backend,
            key=key,
            hint="create it first or fix the bucket/container name in the storage config",
        )
    if isinstance(exc, ObjectDoesNotExistError | FileNotFoundError):
        return NotFoundError("no such object", backend=backend, key=key)
    if isinstance(exc, InvalidCredsError | PermissionError):
        return _denied(detail, backend, key, denied_hint)
    return None


def _from_status(
    exc: BaseException, detail: str, backend: str, key: str | None, denied_hint: str | None
) -> StorageError | None:
    """Any exception carrying an HTTP status: 401/403 denied, 404 missing, else a
    service failure, transient for 408, 429 and 5xx."""
    status = _status_of(exc)
    if isinstance(exc, RateLimitReachedError):
        status = 429
    if status is None:
        return None
    if status in (401, 403):
        return _denied(detail, backend, key, denied_hint)
    if status == 404:
        return NotFoundError("no such object", backend=backend, key=key)
    transient = status in _TRANSIENT_STATUS
    return BackendError(
        f"the service failed ({detail})",
        backend=backend,
        key=key,
        transient=transient,
        status=status,
        hint="retried and still failing; check the service" if transient else None,
    )


def _from_failure(exc: BaseException, detail: str, backend: str, key: str | None) -> BackendError:
    """Transport failures (transient), I/O errors, and anything else."""
    if isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | requests.exceptions.ChunkedEncodingError
        | ConnectionError
        | TimeoutError
        | socket.timeout
        | socket.gaierror
        | ssl.SSLError,
    ):
        return BackendError(
            f"cannot reach the service ({detail})",
            backend=backend,
            key=key,
            transient=True,
            hint="check the endpoint and network; the operation was retried",
        )
    if isinstance(exc, OSError):
        transient = exc.errno in (errno.EAGAIN, errno.EINTR, errno.EBUSY)
        return BackendError(f"I/O error ({detail})", backend=backend, key=key, transient=transient)
    if isinstance(exc, ProviderError):
        return BackendError(f"the service failed ({detail})", backend=backend, key=key)
    return BackendError(f"unexpected error ({detail})", backend=backend, key=key)

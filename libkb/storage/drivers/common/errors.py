"""HTTP failures as the exceptions the adapter maps (Libcloud's, with ``.code``).

No message built here carries a credential.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from libcloud.common.exceptions import exception_from_message
from libcloud.common.types import InvalidCredsError

#: Longest service error text kept in an exception message.
MAX_ERROR_TEXT = 300


def clip_text(text: str | bytes | None, limit: int = MAX_ERROR_TEXT) -> str:
    """First line of a service message, shortened, for exception texts."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def rate_limit_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Headers (lower-case names) whose ``retry-after`` Libcloud can read.

    Libcloud's ``RateLimitReachedError`` does ``float(retry-after)``, which
    raises ``ValueError`` for the HTTP-date form servers may send (RFC 9110);
    that date becomes the seconds from now, anything unreadable is dropped.
    """
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    value = lowered.get("retry-after")
    if value is None:
        return lowered
    try:
        float(value)
        return lowered
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        del lowered["retry-after"]
        return lowered
    lowered["retry-after"] = str(max(0, round(when - time.time())))
    return lowered


def http_error(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    driver: Any = None,
) -> Exception:
    """The exception for a failed HTTP response.

    401/403 become ``InvalidCredsError`` (with ``.code``/``.http_code`` set to
    the real status); everything else ``BaseHTTPError`` carrying ``.code``
    (``RateLimitReachedError`` for 429), so the adapter can tell transient
    (429/5xx) from permanent failures.
    """
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status in (401, 403):
        return invalid_creds_error(text, status, driver=driver)
    exc: Exception = exception_from_message(code=status, message=text, headers=rate_limit_headers(headers))
    if status == 429:
        exc.message = text  # type: ignore[attr-defined]
        exc.args = (text,)
    return exc


def invalid_creds_error(text: str, status: int, *, driver: Any = None) -> Exception:
    """``InvalidCredsError`` with the real status (401 or 403) in ``.code`` and
    ``.http_code``, which Libcloud's leaves unset."""
    err: Exception = InvalidCredsError(text, driver=driver)
    err.http_code = status  # type: ignore[attr-defined]
    err.code = status  # type: ignore[attr-defined]
    return err


def redact_url_error(exc: requests.RequestException, secret: str) -> requests.RequestException:
    """The same requests exception type with ``secret`` (e.g. an upload session id)
    removed from its message, for exceptions whose text includes the request URL."""
    text = str(exc).replace(secret, "<redacted>") if secret else str(exc)
    return type(exc)(text)

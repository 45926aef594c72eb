"""Service timestamps to epoch milliseconds (the contract's ``mtime_ms``)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def http_date_to_ms(value: str | None) -> int | None:
    """RFC 1123 HTTP date (``Last-Modified``) to epoch milliseconds."""
    if not value:
        return None
    dt = parsedate_to_datetime(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def rfc3339_to_ms(value: str | None) -> int | None:
    """RFC 3339 timestamp (``2024-01-02T03:04:05.123456789Z``) to epoch milliseconds."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # datetime takes at most 6 fractional digits; servers may send 9.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        tz = rest[len(digits) :]
        text = f"{head}.{(digits + '000000')[:6]}{tz}"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)

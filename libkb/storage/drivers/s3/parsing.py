"""Tolerant readers for S3's XML bodies, e-tags and dates."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from xml.etree import ElementTree


def xml_root(body: bytes) -> ElementTree.Element | None:
    """The parsed XML body, or None when it is empty or not XML."""
    if not body or not body.lstrip().startswith(b"<"):
        return None
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None


def xml_ns(root: ElementTree.Element) -> str:
    """The ``{namespace}`` prefix of the root tag (S3 and compatibles differ)."""
    tag = root.tag
    return tag[: tag.index("}") + 1] if tag.startswith("{") else ""


def local_name(tag: str) -> str:
    """A tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def etag_unquoted(value: str | None) -> str | None:
    """The e-tag without quotes (and without a weak ``W/`` prefix), or None."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def http_date_to_ms(value: str | None) -> int:
    """RFC 7231 date (``Last-Modified``) to epoch milliseconds; 0 if absent/invalid."""
    if not value:
        return 0
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


def iso_to_ms(value: str | None) -> int:
    """ISO-8601 (listing ``LastModified``, e.g. ``2024-05-01T12:34:56.789Z``) to epoch ms."""
    if not value:
        return 0
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return 0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000

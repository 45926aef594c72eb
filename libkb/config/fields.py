"""Building blocks of the job-file schemas: the strict base, and fields the original tool's files need."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load


class Strict(Schema):
    """Unknown keys are errors; a key set to ``null`` takes its default, as if it were absent.

    The original tool's files write ``topic_mapping:`` with nothing after it
    (YAML null) to mean "none"; every optional key reads null that way.
    """

    class Meta:
        unknown = RAISE

    @pre_load
    def drop_nulls(self, data: Any, **_: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None}
        return data


class ServerList(fields.Field):  # type: ignore[type-arg]  # generic only in marshmallow 4
    """A list of host:port strings, or one comma-separated string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[str]:
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",")]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            items = [v.strip() for v in value]
        else:
            raise ValidationError("must be a list of host:port strings or one comma-separated string")
        items = [v for v in items if v]
        if not items:
            raise ValidationError("must name at least one host:port")
        for item in items:
            host, _, port = item.rpartition(":")
            if not host or not port.isdigit():
                raise ValidationError(f"{item!r} is not host:port")
        return items


class Timestamp(fields.Field):  # type: ignore[type-arg]  # generic only in marshmallow 4
    """Epoch milliseconds, or an ISO-8601 date-time (a naive one is taken as UTC)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | None:
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def parse_time(value: Any) -> int:
    """Epoch milliseconds from epoch milliseconds or an ISO-8601 / RFC 3339 date-time (naive: UTC).

    ValueError, saying what is accepted, for anything else.
    """
    if isinstance(value, bool):
        raise ValueError("must be epoch milliseconds or an ISO-8601 date-time")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"{value!r} is neither epoch milliseconds nor ISO-8601 (e.g. 2024-05-01T12:00:00Z)"
            ) from None
    else:
        raise ValueError("must be epoch milliseconds or an ISO-8601 date-time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


_DURATION_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(value: Any) -> int:
    """Milliseconds of a human duration: ``30d``, ``12h``, ``1w2d``, ``90s`` (units s, m, h, d, w).

    ValueError, saying how to write one, for anything else (a bare number has no unit).
    """
    text = value.strip().lower() if isinstance(value, str) else None
    if not text or _DURATION.sub("", text):
        raise ValueError(f"{value!r} is not a duration; write a number and a unit (s, m, h, d, w), e.g. 30d")
    total = sum(int(n) * _DURATION_UNITS_MS[unit] for n, unit in _DURATION.findall(text))
    if total <= 0:
        raise ValueError(f"{value!r} is not a duration longer than zero")
    return total


class Duration(fields.Field):  # type: ignore[type-arg]  # generic only in marshmallow 4
    """A human duration (``30d``, ``12h``) as milliseconds."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Pattern(fields.String):
    """A topic glob, or ``~`` and a regular expression (checked here, so a bad one names its key)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if not text:
            raise ValidationError("an empty pattern matches no topic")
        if text.startswith("~"):
            try:
                re.compile(text[1:])
            except re.error as exc:
                raise ValidationError(f"{text!r} is not a regular expression: {exc}") from None
        return text


def partition_number(key: Any) -> int:
    try:
        number = int(key)
    except (TypeError, ValueError):
        raise ValidationError(f"{key!r} is not a partition number") from None
    if number < 0:
        raise ValidationError(f"{key!r} is not a partition number")
    return number


def offset_map(value: Any, what: str) -> dict[str, dict[int, int]]:
    """``{topic: {partition: offset}}`` with non-negative integers, or a ValidationError naming ``what``."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"{what}: give {{topic: {{partition: offset}}}}")
    out: dict[str, dict[int, int]] = {}
    for topic, parts in value.items():
        if not isinstance(parts, Mapping):
            raise ValidationError(f"{what}: {topic}: give {{partition: offset}}")
        for part, offset in parts.items():
            if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise ValidationError(f"{what}: {topic}.{part}: {offset!r} is not an offset")
            out.setdefault(str(topic), {})[partition_number(part)] = offset
    return out

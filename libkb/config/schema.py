"""The job config file (``kafka-backup backup --config FILE``), validated with marshmallow.

Key names are the original tool's where it has the same setting (users bring
their YAML files); what libkb adds has new keys. Defaults are documented on
the dataclasses in :mod:`libkb.config.models`. The original tool's keys for
mechanisms libkb replaces are accepted here (so their values are checked) and
dropped; :mod:`libkb.config.rust` says what libkb does instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, pre_load, validate

from libkb.config.cluster import ConnectionSchema, SecuritySchema, SourceSchema, TopicsSchema
from libkb.config.fields import Duration, Strict, offset_map
from libkb.config.models import (
    HOUR_MS,
    TOPIC_RECREATED_CHOICES,
    BackupOptions,
    LoggingOptions,
    MetricsOptions,
    RetentionOptions,
)
from libkb.config.restore_schema import RestoreSchema

__all__ = [
    "BackupSchema",
    "ConnectionSchema",
    "LoggingSchema",
    "MetricsSchema",
    "OffsetStorageSchema",
    "RestoreSchema",
    "RetentionSchema",
    "SecuritySchema",
    "SourceSchema",
    "TopicsSchema",
]

_MiB = 1024 * 1024


class StartOffset(fields.Field):  # type: ignore[type-arg]  # generic only in marshmallow 4
    """``earliest``, ``latest``, or the original tool's ``!specific {topic: {partition: offset}}``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and value in ("earliest", "latest"):
            return value
        if isinstance(value, Mapping) and list(value) == ["specific"]:
            return {"specific": offset_map(value["specific"], "specific")}
        raise ValidationError(
            "must be earliest, latest, or !specific {topic: {partition: offset}}", "start_offset"
        )


class RetentionSchema(Strict):
    """``backup.retention``: ``max_age`` and ``max_total_bytes`` choose, ``keep_segments`` protects."""

    max_age = Duration()
    max_total_bytes = fields.Integer(validate=validate.Range(min=1))
    keep_segments = fields.Integer(validate=validate.Range(min=0))
    interval = Duration()

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RetentionOptions:
        if "max_age" not in data and "max_total_bytes" not in data:
            raise ValidationError(
                "give max_age (e.g. 30d) or max_total_bytes: without one, retention would prune nothing",
                "max_age",
            )
        if "interval" in data and data["interval"] < 1000:
            raise ValidationError("must be at least 1s", "interval")
        return RetentionOptions(
            max_age_ms=data.get("max_age"),
            max_total_bytes=data.get("max_total_bytes"),
            keep_segments=data.get("keep_segments", 0),
            interval_ms=data.get("interval", HOUR_MS),
        )


class BackupSchema(Strict):
    segment_max_bytes = fields.Integer(validate=validate.Range(min=1024))
    segment_max_interval_ms = fields.Integer(validate=validate.Range(min=100))
    segment_max_age_secs = fields.Float(validate=validate.Range(min=0.1))
    segment_max_records = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    compression = fields.String(validate=validate.OneOf(["zstd", "lz4", "none"]))
    compression_level = fields.Integer(validate=validate.Range(min=-7, max=22))
    zstd_mode = fields.String(validate=validate.OneOf(["stream", "block"]))
    zstd_restart_blocks = fields.Integer(validate=validate.Range(min=1, max=1_000_000))
    start_offset = StartOffset()
    continuous = fields.Boolean()
    stop_at_current_offsets = fields.Boolean()
    include_internal_topics = fields.Boolean()
    internal_topics = fields.List(fields.String(validate=validate.Length(min=1)))
    consumer_group_snapshot = fields.Boolean()
    adopt_rust_backup = fields.Boolean()
    on_topic_recreated = fields.String(validate=validate.OneOf(TOPIC_RECREATED_CHOICES))
    max_concurrent_partitions = fields.Integer(validate=validate.Range(min=1, max=256))
    fetch_max_bytes = fields.Integer(allow_none=True, validate=validate.Range(min=1024))
    poll_interval_ms = fields.Integer(validate=validate.Range(min=0))
    rate_limit_bytes_per_sec = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    isolation_level = fields.String(validate=validate.OneOf(["read_committed", "read_uncommitted"]))
    block_bytes = fields.Integer(validate=validate.Range(min=1024, max=64 * _MiB))
    max_bytes_in_flight = fields.Integer(validate=validate.Range(min=_MiB))
    compression_threads = fields.Integer(validate=validate.Range(min=1, max=64))
    lease_ttl_secs = fields.Float(validate=validate.Range(min=5))
    topic_refresh_secs = fields.Float(validate=validate.Range(min=1))
    storage_outage_timeout_secs = fields.Float(validate=validate.Range(min=0))
    retention = fields.Nested(RetentionSchema)
    # The original tool's keys for mechanisms libkb replaces (warned about by libkb.config.rust).
    checkpoint_interval_secs = fields.Integer(validate=validate.Range(min=0))
    sync_interval_secs = fields.Integer(validate=validate.Range(min=0))
    include_offset_headers = fields.Boolean()
    source_cluster_id = fields.String()

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> BackupOptions:
        for replaced in ("checkpoint_interval_secs", "sync_interval_secs"):
            data.pop(replaced, None)
        for replaced in ("include_offset_headers", "source_cluster_id"):
            data.pop(replaced, None)
        age = data.pop("segment_max_age_secs", None)
        if age is not None:
            interval = data.setdefault("segment_max_interval_ms", round(age * 1000))
            if interval != round(age * 1000):
                raise ValidationError(
                    "says the same as segment_max_interval_ms, in seconds; give one of them",
                    "segment_max_age_secs",
                )
        if not data.get("continuous", False):
            # A run that is not continuous ends: at the offsets present at its start (the original
            # tool's one-shot mode, stop_at_current_offsets: false, chased a moving end; warned about).
            data["stop_at_current_offsets"] = True
        start = data.get("start_offset")
        if isinstance(start, dict):
            data["start_offset"] = "earliest"  # partitions the map does not name, as in the original
            data["start_offsets"] = start["specific"]
        if "internal_topics" in data:
            data["internal_topics"] = tuple(data["internal_topics"])
        return BackupOptions(**data)


class MetricsSchema(Strict):
    enabled = fields.Boolean(load_default=True)  # a metrics block turns them on unless it says not
    port = fields.Integer(validate=validate.Range(min=0, max=65535))
    bind_address = fields.String()
    path = fields.String(validate=validate.Regexp(r"^/", error="must start with '/'"))
    keep_alive_seconds = fields.Float(validate=validate.Range(min=0))
    max_partition_labels = fields.Integer(validate=validate.Range(min=0))
    pushgateway_url = fields.Url(schemes={"http", "https"}, require_tld=False)
    push_interval_seconds = fields.Float(validate=validate.Range(min=0))
    update_interval_ms = fields.Integer(validate=validate.Range(min=0))  # replaced: warned about

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> MetricsOptions:
        data.pop("update_interval_ms", None)
        return MetricsOptions(**data)


_LEVELS = {"trace": "trace", "debug": "debug", "info": "info", "warn": "warning", "warning": "warning"}
_LEVELS |= {"error": "error", "critical": "critical"}
#: The original tool's log formats (tracing's): everything but json is a line of text.
_FORMATS = {"text": "text", "json": "json", "full": "text", "compact": "text", "pretty": "text"}


class LoggingSchema(Strict):
    level = fields.String(validate=validate.OneOf(sorted(_LEVELS)))
    format = fields.String(validate=validate.OneOf(sorted(_FORMATS)))

    @pre_load
    def lower(self, data: Any, **_: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v.lower() if isinstance(v, str) else v for k, v in data.items()}
        return data

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> LoggingOptions:
        level = _LEVELS[data["level"]] if "level" in data else None
        return LoggingOptions(level=level, format=_FORMATS[data.get("format", "text")])


class OffsetStorageSchema(Strict):
    """The original tool's local offset database: checked, then replaced (warned about)."""

    backend = fields.String(validate=validate.OneOf(["sqlite", "memory"]))
    db_path = fields.String()
    s3_key = fields.String()
    sync_interval_secs = fields.Integer(validate=validate.Range(min=0))

"""The job config file (``kafka-backup backup --config FILE``), validated with marshmallow.

Key names are the original tool's where it has the same setting (users bring
their YAML files); what libkb adds has new keys. Defaults are documented on
the dataclasses in :mod:`libkb.config.models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validate

from libkb.config.models import (
    BackupOptions,
    KafkaSecurity,
    MetricsOptions,
    RestoreOptions,
    SourceOptions,
    TopicSelection,
)

_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")


class Strict(Schema):
    class Meta:
        unknown = RAISE


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


class SecuritySchema(Strict):
    security_protocol = fields.String(load_default="PLAINTEXT", validate=validate.OneOf(_PROTOCOLS))
    sasl_mechanism = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(_MECHANISMS))
    sasl_username = fields.String(allow_none=True, load_default=None)
    sasl_password = fields.String(allow_none=True, load_default=None)
    ssl_ca_location = fields.String(allow_none=True, load_default=None)
    ssl_certificate_location = fields.String(allow_none=True, load_default=None)
    ssl_key_location = fields.String(allow_none=True, load_default=None)
    ssl_key_password = fields.String(allow_none=True, load_default=None)
    ssl_endpoint_identification_algorithm = fields.String(
        allow_none=True, load_default=None, validate=validate.OneOf(["https", "none"])
    )

    @pre_load
    def upper(self, data: Any, **_: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            for key in ("security_protocol", "sasl_mechanism"):
                if isinstance(data.get(key), str):
                    data[key] = data[key].upper()
        return data

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> KafkaSecurity:
        sasl = data["security_protocol"].startswith("SASL")
        if sasl and not data.get("sasl_mechanism"):
            raise ValidationError("required when security_protocol is SASL_*", "sasl_mechanism")
        if data.get("sasl_mechanism") in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and sasl:
            for key in ("sasl_username", "sasl_password"):
                if not data.get(key):
                    raise ValidationError(f"required for SASL {data['sasl_mechanism']}", key)
        return KafkaSecurity(**data)


class TopicsSchema(Strict):
    include = fields.List(fields.String(validate=validate.Length(min=1)), load_default=["*"])
    # ``exclude`` is also a marshmallow Schema attribute; keep the field apart from it.
    exclude_ = fields.List(
        fields.String(validate=validate.Length(min=1)), load_default=[], data_key="exclude"
    )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> TopicSelection:
        return TopicSelection(include=tuple(data["include"]), exclude=tuple(data["exclude_"]))


class SourceSchema(Strict):
    bootstrap_servers = ServerList(required=True)
    topics = fields.Nested(TopicsSchema, load_default=None)
    security = fields.Nested(SecuritySchema, load_default=None)
    #: Extra librdkafka properties, passed through as given (new in libkb).
    client_config = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> SourceOptions:
        return SourceOptions(
            bootstrap_servers=tuple(data["bootstrap_servers"]),
            topics=data["topics"] or TopicSelection(),
            security=data["security"] or KafkaSecurity(),
            client_config=dict(data["client_config"]),
        )


_MiB = 1024 * 1024


class BackupSchema(Strict):
    segment_max_bytes = fields.Integer(validate=validate.Range(min=1024))
    segment_max_interval_ms = fields.Integer(validate=validate.Range(min=100))
    segment_max_records = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    compression = fields.String(validate=validate.OneOf(["zstd", "none"]))
    compression_level = fields.Integer(validate=validate.Range(min=-7, max=22))
    start_offset = fields.String(validate=validate.OneOf(["earliest", "latest"]))
    continuous = fields.Boolean()
    stop_at_current_offsets = fields.Boolean()
    include_internal_topics = fields.Boolean()
    consumer_group_snapshot = fields.Boolean()
    max_concurrent_partitions = fields.Integer(validate=validate.Range(min=1, max=256))
    fetch_max_bytes = fields.Integer(allow_none=True, validate=validate.Range(min=1024))
    rate_limit_bytes_per_sec = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    isolation_level = fields.String(validate=validate.OneOf(["read_committed", "read_uncommitted"]))
    block_bytes = fields.Integer(validate=validate.Range(min=1024, max=64 * _MiB))
    max_bytes_in_flight = fields.Integer(validate=validate.Range(min=_MiB))
    compression_threads = fields.Integer(validate=validate.Range(min=1, max=64))
    lease_ttl_secs = fields.Float(validate=validate.Range(min=5))
    topic_refresh_secs = fields.Float(validate=validate.Range(min=1))

    @pre_load
    def lz4(self, data: Any, **_: Any) -> Any:
        if isinstance(data, Mapping) and str(data.get("compression", "")).lower() == "lz4":
            raise ValidationError(
                "lz4 is not supported by libkb; use zstd (faster at level 1, smaller at 3) or none",
                "compression",
            )
        return data

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> BackupOptions:
        return BackupOptions(**data)


class Timestamp(fields.Field):  # type: ignore[type-arg]  # generic only in marshmallow 4
    """Epoch milliseconds, or an ISO-8601 date-time (a naive one is taken as UTC)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool):
            raise ValidationError("must be epoch milliseconds or an ISO-8601 date-time")
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
                raise ValidationError(
                    f"{value!r} is neither epoch milliseconds nor ISO-8601 (e.g. 2024-05-01T12:00:00Z)"
                ) from None
        else:
            raise ValidationError("must be epoch milliseconds or an ISO-8601 date-time")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)


def _partition(key: Any) -> int:
    try:
        number = int(key)
    except (TypeError, ValueError):
        raise ValidationError(f"{key!r} is not a partition number") from None
    if number < 0:
        raise ValidationError(f"{key!r} is not a partition number")
    return number


class RestoreSchema(Strict):
    time_window_start = Timestamp(allow_none=True)
    time_window_end = Timestamp(allow_none=True)
    offset_ranges = fields.Dict(keys=fields.String(), values=fields.Dict())
    source_partitions = fields.Dict(keys=fields.String(), values=fields.List(fields.Integer()))
    topic_mapping = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.Length(min=1)))
    partition_mapping = fields.Dict(keys=fields.Raw(), values=fields.Raw())
    dry_run = fields.Boolean()
    rate_limit_records_per_sec = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    rate_limit_bytes_per_sec = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    max_concurrent_partitions = fields.Integer(validate=validate.Range(min=1, max=256))
    produce_batch_size = fields.Integer(validate=validate.Range(min=1024))
    produce_acks = fields.String(validate=validate.OneOf(["all", "-1"]))
    produce_timeout_ms = fields.Integer(validate=validate.Range(min=1000))
    consumer_groups = fields.List(fields.String(), allow_none=True)
    reset_consumer_offsets = fields.Boolean()
    create_topics = fields.Boolean()
    default_replication_factor = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    allow_restore_to_source = fields.Boolean()
    include_original_offset_header = fields.Boolean()
    restore_id = fields.String(
        allow_none=True, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    )

    @pre_load
    def acks(self, data: Any, **_: Any) -> Any:
        if isinstance(data, Mapping) and "produce_acks" in data:
            data = dict(data)
            data["produce_acks"] = str(data["produce_acks"]).lower()
            if data["produce_acks"] in ("1", "0"):
                raise ValidationError(
                    "must be all: restores use an idempotent producer so records are neither "
                    "lost nor duplicated",
                    "produce_acks",
                )
        return data

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RestoreOptions:
        start, end = data.get("time_window_start"), data.get("time_window_end")
        if start is not None and end is not None and start > end:
            raise ValidationError("time_window_start is after time_window_end", "time_window_start")
        ranges: dict[str, dict[int, tuple[int, int]]] = {}
        for topic, parts in data.pop("offset_ranges", {}).items():
            for part, bounds in parts.items():
                if (
                    not isinstance(bounds, list | tuple)
                    or len(bounds) != 2
                    or not all(isinstance(b, int) and b >= 0 for b in bounds)
                    or bounds[0] > bounds[1]
                ):
                    raise ValidationError(
                        f"{topic}.{part}: give [start, end) source offsets, e.g. [100, 200]",
                        "offset_ranges",
                    )
                ranges.setdefault(topic, {})[_partition(part)] = (bounds[0], bounds[1])
        mapping: dict[str, dict[int, int]] = {}
        raw_mapping = data.pop("partition_mapping", {})
        for key, value in raw_mapping.items():
            if isinstance(value, Mapping):  # per topic: {topic: {src: dst}}
                mapping[str(key)] = {_partition(s): _partition(d) for s, d in value.items()}
            else:  # the original tool's form: {src: dst} for every topic
                mapping.setdefault("*", {})[_partition(key)] = _partition(value)
        groups = data.pop("consumer_groups", None)
        sources = {t: tuple(ps) for t, ps in data.pop("source_partitions", {}).items()}
        return RestoreOptions(
            offset_ranges=ranges,
            partition_mapping=mapping,
            consumer_groups=tuple(groups) if groups is not None else None,
            source_partitions=sources,
            **data,
        )


class MetricsSchema(Strict):
    enabled = fields.Boolean()
    port = fields.Integer(validate=validate.Range(min=0, max=65535))
    bind_address = fields.String()
    path = fields.String(validate=validate.Regexp(r"^/", error="must start with '/'"))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> MetricsOptions:
        return MetricsOptions(**data)

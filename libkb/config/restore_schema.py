"""The ``restore`` section. The original tool's keys keep their meaning; see docs/migrating.rst."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, pre_load, validate

from libkb.config.fields import Strict, Timestamp, partition_number
from libkb.config.models import REPARTITION_STRATEGIES, RestoreOptions, TopicRepartitioning
from libkb.suggest import unknown_key_message

#: librdkafka's ``batch.num.messages`` range.
MAX_BATCH_RECORDS = 1_000_000
#: The original tool's ``consumer_group_strategy`` values; libkb's exact translation replaces them.
GROUP_STRATEGIES = ("skip", "header-based", "timestamp-based", "cluster-scan", "manual")


def _replication_factor(value: int) -> bool:
    if value == -1 or value >= 1:
        return True
    raise ValidationError("must be at least 1, or -1 for the broker's default")


def _batch_records(value: int) -> bool:
    if 1 <= value <= MAX_BATCH_RECORDS:
        return True
    raise ValidationError(
        f"counts records per produce batch, 1 to {MAX_BATCH_RECORDS} (as in the original tool); "
        "for a limit in bytes use produce_batch_bytes"
    )


class Repartition(fields.Field):  # type: ignore[type-arg]  # generic only in marshmallow 4
    """``true`` (always), ``false`` (never) or ``auto``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if value is True or value == "always":
            return "always"
        if value is False or value == "never":
            return "never"
        if value == "auto":
            return "auto"
        raise ValidationError(
            "must be auto (restore by key into a target topic that exists with another partition "
            "count), true (every topic) or false (never)"
        )


class RepartitioningSchema(Strict):
    """One entry of the original tool's ``repartitioning`` map."""

    strategy = fields.String(validate=validate.OneOf(REPARTITION_STRATEGIES))
    target_partitions = fields.Integer(validate=validate.Range(min=1, max=1_000_000))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> TopicRepartitioning:
        return TopicRepartitioning(**data)


class RestoreSchema(Strict):
    time_window_start = Timestamp(allow_none=True)
    time_window_end = Timestamp(allow_none=True)
    offset_ranges = fields.Dict(keys=fields.String(), values=fields.Dict())
    source_partitions = fields.Dict(keys=fields.String(), values=fields.List(fields.Integer()))
    topic_mapping = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.Length(min=1)))
    partition_mapping = fields.Dict(keys=fields.Raw(), values=fields.Raw(allow_none=True))
    dry_run = fields.Boolean()
    rate_limit_records_per_sec = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    rate_limit_bytes_per_sec = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    max_concurrent_partitions = fields.Integer(validate=validate.Range(min=1, max=256))
    produce_batch_size = fields.Integer(validate=_batch_records)
    produce_batch_bytes = fields.Integer(validate=validate.Range(min=1024, max=2**31 - 1))
    produce_acks = fields.String(validate=validate.OneOf(["all", "-1"]))
    produce_timeout_ms = fields.Integer(validate=validate.Range(min=1, max=900_000))
    delivery_timeout_ms = fields.Integer(validate=validate.Range(min=1000, max=2**31 - 1))
    consumer_groups = fields.List(fields.String(), allow_none=True)
    reset_consumer_offsets = fields.Boolean()
    auto_consumer_groups = fields.Boolean()
    create_topics = fields.Boolean()
    default_replication_factor = fields.Integer(allow_none=True, validate=_replication_factor)
    allow_restore_to_source = fields.Boolean()
    include_original_offset_header = fields.Boolean()
    keep_rust_tool_headers = fields.Boolean()
    restore_id = fields.String(
        allow_none=True, validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    )
    offset_report = fields.String(validate=validate.Length(min=1))
    repartition = Repartition()
    #: target topic -> its entry (the original tool's key, keyed by target topic as there).
    repartitioning = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1)), values=fields.Raw(allow_none=True)
    )
    # The original tool's keys for mechanisms libkb replaces (warned about by libkb.config.rust).
    consumer_group_strategy = fields.String(validate=validate.OneOf(GROUP_STRATEGIES))
    checkpoint_state = fields.String()
    checkpoint_interval_secs = fields.Integer(validate=validate.Range(min=0))
    purge_topics = fields.Boolean()
    incarnations = fields.Dict(keys=fields.String(validate=validate.Length(min=1)), values=fields.Raw())
    storage_outage_timeout_secs = fields.Float(validate=validate.Range(min=0))

    @pre_load
    def original_forms(self, data: Any, **_: Any) -> Any:
        """The original tool's spellings: acks as a number, source partitions as one list."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if data.get("produce_acks") is not None:
            acks = str(data["produce_acks"]).lower()
            # 1 and 0 ask for less than libkb's idempotent acks=all producer gives (warned about).
            data["produce_acks"] = "all" if acks in ("1", "0") else acks
        if isinstance(data.get("source_partitions"), list):
            data["source_partitions"] = {"*": data["source_partitions"]}
        return data

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RestoreOptions:
        start, end = data.get("time_window_start"), data.get("time_window_end")
        if start is not None and end is not None and start > end:
            raise ValidationError("time_window_start is after time_window_end", "time_window_start")
        _check_repartition(data)
        _check_incarnations(data.get("incarnations", {}))
        for replaced in ("consumer_group_strategy", "checkpoint_state", "checkpoint_interval_secs"):
            data.pop(replaced, None)
        if data.pop("auto_consumer_groups", False):
            data["reset_consumer_offsets"] = True  # the groups and offsets of the backup's snapshot
        groups = data.pop("consumer_groups", None)
        return RestoreOptions(
            offset_ranges=_offset_ranges(data.pop("offset_ranges", {})),
            partition_mapping=_partition_mapping(data.pop("partition_mapping", {})),
            consumer_groups=tuple(groups) if groups is not None else None,
            source_partitions={
                t: tuple(partition_number(p) for p in ps)
                for t, ps in data.pop("source_partitions", {}).items()
            },
            **data,
        )


def _check_repartition(data: dict[str, Any]) -> None:
    """Each ``repartitioning`` entry validated, errors named by their full key path."""
    entries = {}
    for topic, entry in data.get("repartitioning", {}).items():
        entry = {} if entry is None else entry  # null: the defaults, as for every key
        if not isinstance(entry, Mapping):
            raise ValidationError(
                "give {strategy: murmur2|automatic, target_partitions: N}", f"repartitioning.{topic}"
            )
        try:
            entries[topic] = RepartitioningSchema().load(dict(entry))
        except ValidationError as exc:
            assert isinstance(exc.messages, dict)
            key, messages = next(iter(exc.messages.items()))
            message = messages[0] if isinstance(messages, list) else str(messages)
            if message == "Unknown field.":
                message = unknown_key_message(key, RepartitioningSchema().fields)
            raise ValidationError(message, f"repartitioning.{topic}.{key}") from None
    data["repartitioning"] = entries
    if entries and data.get("repartition") == "never":
        raise ValidationError(
            "false contradicts repartitioning, which names topics to restore by key; remove one of them",
            "repartition",
        )


def _check_incarnations(raw: Mapping[str, Any]) -> None:
    for topic, chosen in raw.items():
        if chosen != "latest" and (isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1):
            raise ValidationError(
                f"give an incarnation number (1 is the first) or latest, not {chosen!r}",
                f"incarnations.{topic}",
            )


def _offset_ranges(raw: Mapping[str, Any]) -> dict[str, dict[int, tuple[int, int]]]:
    ranges: dict[str, dict[int, tuple[int, int]]] = {}
    for topic, parts in raw.items():
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
            ranges.setdefault(topic, {})[partition_number(part)] = (bounds[0], bounds[1])
    return ranges


def _partition_mapping(raw: Mapping[Any, Any]) -> dict[str, dict[int, int]]:
    mapping: dict[str, dict[int, int]] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping):  # per topic: {topic: {src: dst}}
            mapping[str(key)] = {partition_number(s): partition_number(d) for s, d in value.items()}
        else:  # the original tool's form: {src: dst} for every topic
            mapping.setdefault("*", {})[partition_number(key)] = partition_number(value)
    return mapping

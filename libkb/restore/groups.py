"""Translate consumer-group offsets through a restore's offset mapping, and apply them.

A committed source offset ``c`` maps to the target offset of the first restored
record at or after ``c`` (or the end of the restored partition): a consumer
resumes on the target exactly at the first record it had not yet consumed.
Groups with active members are refused: their commits would race ours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from libkb.errors import LibkbError
from libkb.format.models import GroupOffsets
from libkb.kafka.admin import until_ready
from libkb.restore.mapping import OffsetMapping


class GroupOffsetError(LibkbError):
    """Consumer-group offsets could not be applied."""


@dataclass(frozen=True, slots=True)
class TranslatedOffset:
    group: str
    source_topic: str
    source_partition: int
    source_offset: int
    target_topic: str
    target_partition: int
    target_offset: int


def translate_groups(
    groups: Iterable[GroupOffsets], mapping: OffsetMapping, wanted: Iterable[str] | None = None
) -> list[TranslatedOffset]:
    """Every committed offset of the wanted groups on a restored partition, translated."""
    names = set(wanted) if wanted is not None else None
    out = []
    for group in groups:
        if names is not None and group.group not in names:
            continue
        for topic, partitions in sorted(group.offsets.items()):
            for partition, offset in sorted(partitions.items()):
                part = mapping.find(topic, partition)
                if part is None:
                    continue
                out.append(
                    TranslatedOffset(
                        group.group,
                        topic,
                        partition,
                        offset,
                        part.target_topic,
                        part.target_partition,
                        part.translate(offset),
                    )
                )
    return out


def apply_offsets(admin: AdminClient, offsets: list[TranslatedOffset], *, timeout: float = 30.0) -> list[str]:
    """Commit the translated offsets on the target cluster; returns the groups changed."""
    by_group: dict[str, list[TranslatedOffset]] = {}
    for item in offsets:
        by_group.setdefault(item.group, []).append(item)
    if not by_group:
        return []
    for group in sorted(by_group):

        def describe(group: str = group) -> int:
            future = admin.describe_consumer_groups([group], request_timeout=timeout)[group]
            return len(future.result(timeout=timeout).members)

        try:
            members = until_ready(describe, timeout)
        except KafkaException as exc:
            raise GroupOffsetError(
                f"cannot check consumer group {group!r} on the target cluster for active members: "
                f"{exc.args[0].str() if exc.args else exc}; its offsets were not changed"
            ) from exc
        if members:
            raise GroupOffsetError(
                f"consumer group {group!r} has {members} active member(s) on the target cluster; "
                "stop its consumers, then run kafka-backup offset-reset execute"
            )
    for group, items in sorted(by_group.items()):
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(i.target_topic, i.target_partition, i.target_offset) for i in items]
        )

        def alter(request: ConsumerGroupTopicPartitions = request) -> None:
            for future in admin.alter_consumer_group_offsets([request], request_timeout=timeout).values():
                future.result(timeout=timeout)

        until_ready(alter, timeout)
    return sorted(by_group)

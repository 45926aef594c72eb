"""Translate consumer-group offsets through a restore's offset mapping, and apply them.

A committed source offset ``c`` maps to the target offset of the first restored
record at or after ``c`` (or the end of the restored partition): a consumer
resumes on the target exactly at the first record it had not yet consumed.
Groups with active members are refused: their commits would race ours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from libkb.format.models import GroupOffsets
from libkb.kafka.groups import GroupAdmin, GroupOffsetError, commit_failure
from libkb.kafka.types import CommittedOffset
from libkb.restore.mapping import OffsetMapping

__all__ = ["GroupOffsetError", "TranslatedOffset", "apply_offsets", "translate_groups"]


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
    """Commit the translated offsets on the target cluster; returns the groups changed.

    Every group is checked for active members before any is changed; a
    partition Kafka refuses fails the call, naming it and Kafka's answer.
    """
    by_group: dict[str, dict[tuple[str, int], CommittedOffset]] = {}
    for item in offsets:
        target = (item.target_topic, item.target_partition)
        by_group.setdefault(item.group, {})[target] = CommittedOffset(item.target_offset)
    if not by_group:
        return []
    groups = GroupAdmin(admin, timeout=timeout)
    groups.refuse_active(by_group, "kafka-backup offset-reset execute")
    for group, wanted in sorted(by_group.items()):
        failed = groups.commit(group, wanted)
        if failed:
            raise GroupOffsetError(commit_failure(group, failed))
    return sorted(by_group)

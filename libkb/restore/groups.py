"""Translate consumer-group offsets through a restore's offset mapping, and apply them.

A committed source offset ``c`` maps to the target offset of the first restored
record at or after ``c`` (or the end of the restored partition): a consumer
resumes on the target exactly at the first record it had not yet consumed.
Groups with active members are refused: their commits would race ours.

A topic restored by key into another partition count has no such offset: a
target partition holds the records of several source partitions one block
after another, so a group that had read part of each has read no prefix of
it. Its committed offsets are reported as not translated, partition by
partition, and a restore asked to apply them refuses before it writes
anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from libkb.format.models import GroupOffsets
from libkb.kafka.errors import kafka_boundary
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


def _committed(
    groups: Iterable[GroupOffsets], wanted: Iterable[str] | None
) -> Iterator[tuple[str, str, int, int]]:
    """(group, topic, partition, committed offset) of the wanted groups, in topic and partition order."""
    names = set(wanted) if wanted is not None else None
    for group in groups:
        if names is not None and group.group not in names:
            continue
        for topic, partitions in sorted(group.offsets.items()):
            for partition, offset in sorted(partitions.items()):
                yield group.group, topic, partition, offset


@kafka_boundary
def translate_groups(
    groups: Iterable[GroupOffsets], mapping: OffsetMapping, wanted: Iterable[str] | None = None
) -> list[TranslatedOffset]:
    """Every committed offset of the wanted groups on a restored partition, translated."""
    out = []
    for group, topic, partition, offset in _committed(groups, wanted):
        part = mapping.find(topic, partition)
        if part is not None:
            out.append(
                TranslatedOffset(
                    group, topic, partition, offset, part.target_topic, part.target_partition,
                    part.translate(offset),
                )
            )  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class UntranslatedOffset:
    """A committed offset on a source partition restored by key: no target offset resumes it exactly."""

    group: str
    source_topic: str
    source_partition: int
    source_offset: int
    target_topic: str
    target_partitions: int


def untranslated_offsets(
    groups: Iterable[GroupOffsets], mapping: OffsetMapping, wanted: Iterable[str] | None = None
) -> list[UntranslatedOffset]:
    """Every committed offset of the wanted groups on a topic the restore wrote by key."""
    out = []
    for group, topic, partition, offset in _committed(groups, wanted):
        spread = mapping.spread_into(topic)
        if spread:
            out.append(
                UntranslatedOffset(group, topic, partition, offset, spread[0].target_topic, len(spread))
            )
    return out


def untranslated_notes(offsets: list[UntranslatedOffset]) -> list[str]:
    """One line per group and topic, naming each partition and its committed offset."""
    by_topic: dict[tuple[str, str], list[UntranslatedOffset]] = {}
    for o in offsets:
        by_topic.setdefault((o.group, o.source_topic), []).append(o)
    return [
        f"group {group!r}: offsets on {topic} not translated ("
        + ", ".join(f"[{o.source_partition}] at {o.source_offset}" for o in items)
        + f"): the topic was restored by key into {items[0].target_partitions} partitions of "
        f"{items[0].target_topic!r}, where each partition holds records of several source partitions, "
        "so no offset there resumes the group exactly"
        for (group, topic), items in sorted(by_topic.items())
    ]


def refuse_by_key(
    groups: Iterable[GroupOffsets], spread: dict[str, tuple[str, int]], wanted: Iterable[str] | None
) -> None:
    """Before a restore writes: refuse to apply offsets of groups that read a topic restored by key.

    ``spread``: source topic -> (target topic, partition count) of the topics restored by key.
    """
    names = set(wanted) if wanted is not None else None
    for group in groups:
        if names is not None and group.group not in names:
            continue
        for topic in sorted(set(group.offsets) & set(spread)):
            target, count = spread[topic]
            partitions = ", ".join(f"{topic}[{p}]" for p in sorted(group.offsets[topic]))
            raise GroupOffsetError(
                f"consumer group {group.group!r} has committed offsets on {partitions}, which this restore "
                f"writes by key into {count} partitions of {target!r}; each of them holds records of "
                "several source partitions, so no offset there resumes the group exactly. Leave the group "
                "out (restore.consumer_groups) or set reset_consumer_offsets: false, and position it on "
                "the target yourself (e.g. kafka-consumer-groups.sh --reset-offsets --to-datetime)"
            )


@kafka_boundary
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

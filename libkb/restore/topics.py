"""Target topics: exist with enough partitions, or are created; old records must survive.

A restore writes records with their original (old) timestamps. A target topic
whose ``retention.ms`` is shorter than their age deletes them right away, and
one whose ``message.timestamp.before.max.ms`` is shorter rejects them. Both
are checked before anything is produced: an existing topic with such a
setting is a clear error; a topic the restore creates gets settings that keep
the records, and the change is reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in stubs
    AdminClient,
    ConfigResource,
    NewTopic,
)

from libkb.errors import LibkbError
from libkb.format.models import TopicInfo

log = logging.getLogger("libkb.restore")
_FOREVER = "-1"
_LONG_MAX = "9223372036854775807"
_MARGIN_MS = 24 * 3600 * 1000


class TargetTopicError(LibkbError):
    """A target topic cannot take the restored records as they are."""


@dataclass(slots=True)
class TopicPreparation:
    created: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def prepare_target_topics(
    admin: AdminClient,
    needed: dict[str, int],
    sources: dict[str, TopicInfo],
    oldest_ms: dict[str, int],
    *,
    create: bool,
    replication_factor: int | None,
    timeout: float = 30.0,
    exact: AbstractSet[str] = frozenset(),
) -> TopicPreparation:
    """Check (or create) each target topic; ``oldest_ms`` is the oldest record bound for it.

    The topics in ``exact`` are restored by key: they need exactly the
    partition count in ``needed``, the one the records were routed by.
    """
    result = TopicPreparation()
    metadata = admin.list_topics(timeout=timeout)
    brokers = max(1, len(metadata.brokers))
    existing = {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}
    to_create = []
    for topic, partitions in sorted(needed.items()):
        info = sources[topic]
        if topic in existing:
            _check_partitions(topic, existing[topic], partitions, by_key=topic in exact)
            continue
        if not create:
            raise TargetTopicError(
                f"target topic {topic!r} does not exist; create it or set restore.create_topics: true"
            )
        configs, notes = _keeping_configs(topic, info.configs, oldest_ms.get(topic))
        result.notes += notes
        rf = replication_factor or min(info.replication_factor, brokers)
        num_partitions = partitions if topic in exact else max(partitions, info.partitions)
        to_create.append(
            NewTopic(topic, num_partitions=num_partitions, replication_factor=rf, config=configs)
        )
    if to_create:
        result.created += _create(admin, to_create, timeout)
    check = [t for t in needed if t not in result.created]
    result.notes.extend(_check_existing(admin, check, oldest_ms, timeout))
    return result


def _check_partitions(topic: str, has: int, needs: int, *, by_key: bool) -> None:
    if by_key and has != needs:
        raise TargetTopicError(
            f"target topic {topic!r} has {has} partitions, but the restore was planned to route its records "
            f"by key into {needs}; run it again (the topic changed meanwhile), or set "
            f"restore.repartitioning.{topic}.target_partitions to {has}"
        )
    if has < needs:
        raise TargetTopicError(
            f"target topic {topic!r} has {has} partitions but the restore needs {needs}; add partitions, "
            "choose restore.partition_mapping, restore by key (restore.repartition: true), or restore "
            "into a new topic"
        )


def _keeping_configs(
    topic: str, backed_up: dict[str, str], oldest: int | None
) -> tuple[dict[str, str], list[str]]:
    """The backed-up configs of a topic to create, changed where they would lose its oldest records."""
    configs, notes = dict(backed_up), []
    age = int(time.time() * 1000) - oldest + _MARGIN_MS if oldest is not None else None
    retention = int(configs.get("retention.ms", "604800000"))
    if age is not None and retention >= 0 and retention < age:
        configs["retention.ms"] = _FOREVER
        notes.append(
            f"created {topic!r} with retention.ms=-1 (the backup had {retention}): its oldest "
            "restored record is older than that and would be deleted at once"
        )
    before = configs.get("message.timestamp.before.max.ms")
    if age is not None and before is not None and int(before) < age:
        configs["message.timestamp.before.max.ms"] = _LONG_MAX
        notes.append(
            f"created {topic!r} without the backup's message.timestamp.before.max.ms={before}: "
            "the broker would reject the restored records' old timestamps"
        )
    return configs, notes


def _create(admin: AdminClient, topics: list[NewTopic], timeout: float) -> list[str]:
    """Create the topics and wait until each partition has a leader; their names."""
    created = []
    for topic, future in admin.create_topics(topics, request_timeout=timeout).items():
        future.result(timeout=timeout)
        created.append(topic)
        log.info("created target topic %s", topic)
    _wait_for_leaders(admin, created, timeout)
    return created


def _check_existing(
    admin: AdminClient, topics: list[str], oldest_ms: dict[str, int], timeout: float
) -> list[str]:
    notes: list[str] = []
    if not topics:
        return notes
    now = int(time.time() * 1000)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics]
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        entries = future.result(timeout=timeout)
        topic = resource.name
        oldest = oldest_ms.get(topic)
        if oldest is None:
            continue
        age = now - oldest
        retention = int(entries["retention.ms"].value) if "retention.ms" in entries else -1
        if 0 <= retention < age + _MARGIN_MS:
            raise TargetTopicError(
                f"target topic {topic!r} has retention.ms={retention}, but the oldest restored record is "
                f"{age // 1000} s old: Kafka would delete it right after the restore. Set retention.ms to "
                f"at least {age + _MARGIN_MS} (or -1) on the topic first"
            )
        before_entry = entries.get("message.timestamp.before.max.ms")
        if before_entry is not None and before_entry.value is not None and int(before_entry.value) < age:
            raise TargetTopicError(
                f"target topic {topic!r} has message.timestamp.before.max.ms={before_entry.value}: the "
                f"broker would reject records {age // 1000} s old. Raise it (e.g. to {_LONG_MAX}) first"
            )
        ts_type = entries.get("message.timestamp.type")
        if ts_type is not None and ts_type.value == "LogAppendTime":
            notes.append(
                f"target topic {topic!r} uses LogAppendTime: the broker stamps restored records with the "
                "time of the restore, not their original timestamps"
            )
    return notes


def _wait_for_leaders(admin: AdminClient, topics: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=timeout)
        if all(
            t in metadata.topics
            and metadata.topics[t].error is None
            and all(p.leader >= 0 for p in metadata.topics[t].partitions.values())
            for t in topics
        ):
            return
        time.sleep(0.2)
    raise TargetTopicError(f"created topics {topics} got no partition leaders within {timeout:g} s")

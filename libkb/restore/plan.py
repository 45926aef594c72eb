"""What a restore will read and where it will write. Pure: manifest + indexes + options in, plan out.

``validate-restore`` prints this plan; the engine executes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from libkb.config.models import RestoreOptions, TopicSelection
from libkb.errors import ConfigError
from libkb.format.models import Manifest, PartitionIndex, PrunedRange, SegmentEntry, parse_stored_topic
from libkb.restore.repartition import by_key_into
from libkb.restore.state import key_of, spread_key
from libkb.source import Wanted
from libkb.source.checks import describe_pruned

TP = tuple[str, int]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PartitionTask:
    """One source partition restored into one target partition."""

    source_topic: str
    source_partition: int
    target_topic: str
    target_partition: int
    start_offset: int  # first source offset to restore
    end_offset: int  # exclusive
    segments: tuple[SegmentEntry, ...]
    time_window: tuple[int | None, int | None]

    @property
    def max_records(self) -> int:
        """Records in the selected segments: exact without filters, an upper bound with them."""
        return sum(s.record_count for s in self.segments)

    @property
    def wanted(self) -> Wanted:
        """What the task keeps of each segment (a source may read less of one than the whole)."""
        return Wanted(self.start_offset, self.end_offset, *self.time_window)

    @property
    def stored_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def exact(self) -> bool:
        start, end = self.time_window
        return (
            start is None
            and end is None
            and all(
                self.start_offset <= s.base_offset and s.end_offset <= self.end_offset for s in self.segments
            )
        )


@dataclass(frozen=True, slots=True)
class SpreadTask:
    """A topic restored by key into another partition count (:mod:`.spread`).

    One thread restores it: the source partitions in ascending order, each in
    offset order, every record into the partition :mod:`.routing` picks. So a
    target partition receives the records of source partition 0 that go to it,
    then those of 1, and so on: a fixed sequence, which a re-run resumes as it
    resumes a one-to-one task. ``sources`` are the source partitions' tasks
    (their ``target_partition`` is -1).
    """

    source_topic: str
    target_topic: str
    partitions: int  # the target topic's partition count
    strategy: str  # "murmur2" or "automatic" (TopicRepartitioning.strategy)
    sources: tuple[PartitionTask, ...]

    @property
    def max_records(self) -> int:
        return sum(t.max_records for t in self.sources)

    @property
    def stored_bytes(self) -> int:
        return sum(t.stored_bytes for t in self.sources)

    @property
    def exact(self) -> bool:
        return all(t.exact for t in self.sources)


@dataclass(frozen=True, slots=True)
class Target:
    """A target partition the restore writes, and the key its progress is stored under (:mod:`.state`)."""

    key: str
    topic: str
    partition: int
    task: PartitionTask | SpreadTask


@dataclass(frozen=True, slots=True)
class TargetPartition:
    """A target partition, and the key of its state (:mod:`.state`)."""

    key: str
    topic: str
    partition: int


@dataclass(slots=True)
class RestorePlan:
    backup_id: str
    tasks: list[PartitionTask] = field(default_factory=list)
    #: The topics restored by key into another partition count.
    spread: list[SpreadTask] = field(default_factory=list)
    #: target topic -> partitions it needs (highest target partition + 1; a spread topic's exact count)
    target_partitions: dict[str, int] = field(default_factory=dict)
    #: target topic -> its source topic (for creating it with the backed-up settings)
    target_sources: dict[str, str] = field(default_factory=dict)
    skipped_topics: list[str] = field(default_factory=list)
    #: Where selected backed-up partitions with nothing to restore (empty, or outside
    #: ``offset_ranges``) map to, keyed by their source partition: the restore writes nothing
    #: there, and ``purge_topics`` empties them too, so they end holding what the backup holds.
    idle: list[TargetPartition] = field(default_factory=list)
    #: What the restore cannot give: records asked for that retention pruned from the backup.
    notes: list[str] = field(default_factory=list)

    @property
    def max_records(self) -> int:
        return sum(t.max_records for t in self.tasks) + sum(s.max_records for s in self.spread)

    def targets(self) -> list[Target]:
        """Every target partition written, one-to-one tasks first (in plan order), then spread ones."""
        out = [
            Target(key_of(t.source_topic, t.source_partition), t.target_topic, t.target_partition, t)
            for t in self.tasks
        ]
        for s in self.spread:
            out += [Target(spread_key(s.source_topic, p), s.target_topic, p, s) for p in range(s.partitions)]
        return out


def plan_restore(
    manifest: Manifest,
    indexes: Mapping[TP, PartitionIndex],
    options: RestoreOptions,
    selection: TopicSelection,
    target_counts: Mapping[str, int] | None = None,
    *,
    exact_time_bounds: bool = True,
) -> RestorePlan:
    """Choose topics, partitions, offset ranges and segments; refuse contradictory options.

    ``target_counts``: the partition counts of the target topics that exist
    (None: not known, as in a dry run), which decide ``repartition: auto``.
    ``exact_time_bounds``: the segments' time ranges bound their records' timestamps,
    so a segment outside the time window is left out; otherwise only offsets choose.
    """
    plan = RestorePlan(manifest.backup_id)
    _check_options_name_backed_up_topics(manifest, options)
    chosen = chosen_incarnations(manifest, options)
    for topic in sorted(manifest.topics, key=parse_stored_topic):
        name = parse_stored_topic(topic)[0]
        target_topic = per_topic(options.topic_mapping, topic) or name
        if topic not in chosen or not selection.matches_any(topic, name, target_topic):
            plan.skipped_topics.append(topic)
            continue
        if target_topic in plan.target_sources:
            raise _same_target(manifest, plan.target_sources[target_topic], topic, target_topic)
        tasks = _source_tasks(manifest, indexes, options, topic, target_topic, exact_time_bounds, plan.notes)
        existing = None if target_counts is None else target_counts.get(target_topic)
        by_key = by_key_into(topic, target_topic, manifest.topics[topic].partitions, existing, options)
        if by_key is None:
            _add_one_to_one(plan, topic, tasks)
            plan.idle += _idle(manifest, options, topic, target_topic, tasks)
        elif tasks:
            sources = tuple(replace(t, target_partition=-1) for t in tasks)
            plan.spread.append(SpreadTask(topic, target_topic, by_key[0], by_key[1], sources))
            plan.target_partitions[target_topic] = by_key[0]
        if tasks:
            plan.target_sources[target_topic] = topic
    return plan


def _source_tasks(
    manifest: Manifest,
    indexes: Mapping[TP, PartitionIndex],
    options: RestoreOptions,
    topic: str,
    target_topic: str,
    exact_time_bounds: bool,
    notes: list[str],
) -> list[PartitionTask]:
    """The topic's source partitions with something to restore, each into its mapped partition;
    what retention pruned of what was asked for goes to ``notes``."""
    window = (options.time_window_start, options.time_window_end)
    prune: tuple[int | None, int | None] = window if exact_time_bounds else (None, None)
    mapping = per_topic(options.partition_mapping, topic, options.partition_mapping.get("*")) or {}
    chosen = per_topic(options.source_partitions, topic, options.source_partitions.get("*"))
    tasks = []
    for partition in range(manifest.topics[topic].partitions):
        if chosen is not None and partition not in chosen:
            continue
        index = indexes.get((topic, partition))
        if index is None:
            continue
        notes += _pruned_notes(index, options, window)
        if not index.segments:
            continue
        start, end = index.retained_start or 0, index.end_offset or 0
        bounds = (per_topic(options.offset_ranges, topic) or {}).get(partition)
        if bounds is not None:
            start, end = max(start, bounds[0]), min(end, bounds[1])
        if start >= end:
            continue
        segments = tuple(s for s in index.segments if _wanted(s, start, end, prune))
        target_partition = mapping.get(partition, partition)
        tasks.append(
            PartitionTask(topic, partition, target_topic, target_partition, start, end, segments, window)
        )
    return tasks


def _idle(
    manifest: Manifest, options: RestoreOptions, topic: str, target_topic: str, tasks: list[PartitionTask]
) -> list[TargetPartition]:
    """The selected source partitions of a one-to-one topic without a task, where they map to."""
    mapping = per_topic(options.partition_mapping, topic, options.partition_mapping.get("*")) or {}
    chosen = per_topic(options.source_partitions, topic, options.source_partitions.get("*"))
    busy = {t.source_partition for t in tasks}
    return [
        TargetPartition(key_of(topic, p), target_topic, mapping.get(p, p))
        for p in range(manifest.topics[topic].partitions)
        if p not in busy and (chosen is None or p in chosen)
    ]


def _add_one_to_one(plan: RestorePlan, topic: str, tasks: list[PartitionTask]) -> None:
    targets: dict[int, int] = {}
    for task in tasks:
        if task.target_partition in targets:
            raise ConfigError(
                f"source partitions {targets[task.target_partition]} and {task.source_partition} of "
                f"{topic!r} both map to target partition {task.target_partition}; a target partition "
                "takes one source partition so its order and offset translation stay exact",
                key="restore.partition_mapping",
            )
        targets[task.target_partition] = task.source_partition
        plan.tasks.append(task)
        plan.target_partitions[task.target_topic] = max(
            plan.target_partitions.get(task.target_topic, 0), task.target_partition + 1
        )


def _pruned_notes(
    index: PartitionIndex, options: RestoreOptions, window: tuple[int | None, int | None]
) -> list[str]:
    """What the restore asked for (offsets and time window) that is no longer in the backup."""
    bounds = (per_topic(options.offset_ranges, index.topic) or {}).get(index.partition)
    retained = index.retained_start
    notes = []
    for cut in index.pruned:
        if bounds is not None and (bounds[1] <= cut.start or bounds[0] >= cut.end):
            continue
        if not _in_window(cut, window):
            continue
        notes.append(
            f"{index.topic}[{index.partition}]: not restored, no longer in the backup: "
            f"{describe_pruned(index.topic, index.partition, cut)}; what the backup holds starts at "
            f"offset {retained}"
        )
    return notes


def _in_window(cut: PrunedRange, window: tuple[int | None, int | None]) -> bool:
    """Whether the pruned records may hold some in the window (all may, when their times are unknown)."""
    low, high = window
    if cut.records == 0:
        return False
    if cut.min_timestamp < 0:
        return True
    return not (
        (low is not None and cut.max_timestamp < low) or (high is not None and cut.min_timestamp > high)
    )


def _wanted(segment: SegmentEntry, start: int, end: int, window: tuple[int | None, int | None]) -> bool:
    if segment.record_count == 0 or segment.end_offset <= start or segment.base_offset >= end:
        return False
    low, high = window
    if low is not None and segment.max_timestamp < low:
        return False
    return not (high is not None and segment.min_timestamp > high)


def _check_options_name_backed_up_topics(manifest: Manifest, options: RestoreOptions) -> None:
    for key, topics in (
        ("restore.topic_mapping", options.topic_mapping),
        ("restore.offset_ranges", options.offset_ranges),
        ("restore.source_partitions", {t: 0 for t in options.source_partitions if t != "*"}),
        ("restore.partition_mapping", {t: 0 for t in options.partition_mapping if t != "*"}),
    ):
        for topic in topics:
            if topic not in manifest.topics and not manifest.incarnations(topic):
                known = ", ".join(sorted(manifest.topics)) or "none"
                raise ConfigError(
                    f"{topic!r} is not a topic of backup {manifest.backup_id!r} (its topics: {known})",
                    key=key,
                )
    targets = {per_topic(options.topic_mapping, t) or parse_stored_topic(t)[0] for t in manifest.topics}
    for topic in options.repartitioning:
        if topic not in targets:
            raise ConfigError(
                f"{topic!r} is not a target topic of this restore (they are: {', '.join(sorted(targets))}); "
                "its keys are target topic names, after topic_mapping",
                key="restore.repartitioning",
            )


# -- topic incarnations (a topic deleted and re-created, backed up apart) ----------------


def per_topic(options: Mapping[str, T], stored: str, default: T | None = None) -> T | None:
    """A per-topic option for a stored topic: by its stored name (``orders@2``), else its Kafka name.

    So ``orders`` in a restore key applies to every incarnation of it that no key names by its
    stored name (with ``restore.incarnations``, to the one restored).
    """
    if stored in options:
        return options[stored]
    return options.get(parse_stored_topic(stored)[0], default)


def chosen_incarnations(manifest: Manifest, options: RestoreOptions) -> set[str]:
    """The stored topics a restore may take: every incarnation, but where ``restore.incarnations``
    picks one of a topic, that one alone."""
    kafka_names = {parse_stored_topic(t)[0] for t in manifest.topics}
    for topic in options.incarnations:
        if topic != "*" and topic not in kafka_names:
            known = ", ".join(sorted(kafka_names)) or "none"
            raise ConfigError(
                f"{topic!r} is not a topic of backup {manifest.backup_id!r} (its topics: {known})",
                key="restore.incarnations",
            )
    chosen = set()
    for topic in kafka_names:
        names = manifest.incarnations(topic)
        pick = options.incarnations.get(topic, options.incarnations.get("*"))
        if pick is None:
            chosen.update(names)
        elif pick == "latest":
            chosen.add(names[-1])
        else:
            numbers = {parse_stored_topic(n)[1]: n for n in names}
            if pick not in numbers:
                raise ConfigError(
                    f"backup {manifest.backup_id!r} holds incarnation(s) {_numbers(numbers)} of topic "
                    f"{topic!r}, not {pick}",
                    key=f"restore.incarnations.{topic if topic in options.incarnations else '*'}",
                )
            chosen.add(numbers[int(pick)])
    return chosen


def _same_target(manifest: Manifest, first: str, second: str, target: str) -> ConfigError:
    topic = parse_stored_topic(first)[0]
    if topic != parse_stored_topic(second)[0]:
        return ConfigError(
            f"topics {first!r} and {second!r} both map to {target!r}", key="restore.topic_mapping"
        )
    names = manifest.incarnations(topic)
    ids = ", ".join(
        f"{parse_stored_topic(n)[1]} (topic id {manifest.topics[n].topic_id or 'unknown'})" for n in names
    )
    return ConfigError(
        f"backup {manifest.backup_id!r} holds {len(names)} incarnations of topic {topic!r}, deleted and "
        f"re-created between runs: {ids}; restore one: set restore.incarnations: "
        f"{{{topic}: latest}} (or a number), or map each to its own topic with restore.topic_mapping "
        f"(e.g. {names[0]}: {topic}-old, {names[-1]}: {topic})",
        key="restore.incarnations",
    )


def _numbers(numbers: Mapping[int, str]) -> str:
    return ", ".join(str(n) for n in sorted(numbers))

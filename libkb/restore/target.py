"""Checks of the target cluster before anything is written to it.

A restore must not write a topic back into itself on the cluster it was
backed up from (unless asked to), and every target topic must exist with
enough partitions and keep records as old as the oldest one bound for it
(:mod:`.topics`).
"""

from __future__ import annotations

from libkb.config.models import RestoreOptions
from libkb.format.models import Manifest, parse_stored_topic
from libkb.kafka.admin import KafkaAdmin
from libkb.restore.plan import RestorePlan
from libkb.restore.result import RestoreError
from libkb.restore.topics import TopicPreparation, prepare_target_topics


def guard_source_cluster(
    manifest: Manifest, plan: RestorePlan, cluster_id: str | None, *, allowed: bool
) -> None:
    """Refuse to restore a topic into itself on its own cluster, unless ``allowed``."""
    if allowed or cluster_id is None or manifest.source_cluster_id != cluster_id:
        return
    same = sorted(
        source for target, source in plan.target_sources.items() if target == parse_stored_topic(source)[0]
    )
    if same:
        raise RestoreError(
            f"the target cluster is the backup's source cluster and topic(s) {', '.join(same)} would be "
            "restored into themselves; map them to new names with restore.topic_mapping, or set "
            "restore.allow_restore_to_source: true if that is really intended"
        )


def prepare_topics(
    admin: KafkaAdmin, manifest: Manifest, plan: RestorePlan, options: RestoreOptions
) -> TopicPreparation:
    """Check (or create) the target topics for the oldest record each will receive."""
    sources = {target: manifest.topics[source] for target, source in plan.target_sources.items()}
    return prepare_target_topics(
        admin.admin,
        plan.target_partitions,
        sources,
        oldest_timestamps(plan, options.time_window_start),
        create=options.create_topics,
        replication_factor=options.default_replication_factor,
        exact={s.target_topic for s in plan.spread},
    )


def oldest_timestamps(plan: RestorePlan, window_start: int | None) -> dict[str, int]:
    """Per target topic, the oldest timestamp of the planned segments (not before the window)."""
    oldest: dict[str, int] = {}
    for task in [*plan.tasks, *(t for s in plan.spread for t in s.sources)]:
        for segment in task.segments:
            low = segment.min_timestamp
            if low >= 0 and (task.target_topic not in oldest or low < oldest[task.target_topic]):
                oldest[task.target_topic] = low
    if window_start is not None:
        oldest = {t: max(v, window_start) for t, v in oldest.items()}
    return oldest

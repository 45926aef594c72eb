"""Resume bookkeeping: where each target partition started, what a re-run skips, how a run ends.

Before the first record, the restore stores each target partition's high
watermark as its start (:mod:`.state`). It produces a partition's records in
order with an idempotent producer, so after a crash (even ``kill -9``) the
target holds a prefix of the planned records, ``high watermark - start`` of
them: a re-run of the same restore reads those again (their offsets belong in
the mapping) but does not produce them. What lies past a partition's
``verified_end`` is compared with the plan first (:mod:`.verify`). At the end
the target's ends are compared with the mapping, and the state and the
mapping are stored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from libkb.kafka.admin import PartitionOffsets
from libkb.restore.mapping import OffsetMapping, PartitionMapping, SpreadPartition
from libkb.restore.plan import RestorePlan, SpreadTask
from libkb.restore.result import RestoreError
from libkb.restore.state import PartitionState, RestoreState, mapping_key, state_key
from libkb.storage import NotFoundError, StorageBackend

TP = tuple[str, int]


def load_state(
    backend: StorageBackend, backup_id: str, restore_id: str, cluster_id: str | None
) -> RestoreState:
    """The stored state of this restore, or a new one; refuses a restore begun on another cluster."""
    key = state_key(backup_id, restore_id)
    try:
        state = RestoreState.from_json(backend.get(key), name=key)
    except NotFoundError:
        return RestoreState(backup_id, restore_id, int(time.time() * 1000), cluster_id)
    if state.target_cluster_id and cluster_id and state.target_cluster_id != cluster_id:
        raise RestoreError(
            f"restore {restore_id} was started on cluster {state.target_cluster_id}, not {cluster_id}; "
            "set restore.restore_id to start a new restore"
        )
    return state


def check_target_ids(state: RestoreState, ids: Mapping[str, str | None]) -> None:
    """Refuse a target topic deleted and re-created since this restore wrote to it; note new ones.

    Offsets alone miss it once the new topic has grown past what the restore
    had written. ``ids``: the target topics' ids now (None: a broker without ids).
    """
    for topic, now in sorted(ids.items()):
        then = state.target_topic_ids.get(topic)
        if then is not None and now is not None and then != now:
            raise RestoreError(
                f"target topic {topic!r} was deleted and re-created since restore {state.restore_id} "
                f"wrote to it (topic id {then} then, {now} now): what it wrote there is gone. "
                "Set restore.restore_id to start a new restore"
            )
        if then is None and now is not None:
            state.target_topic_ids[topic] = now


def record_starts(
    backend: StorageBackend, state: RestoreState, plan: RestorePlan, ends: Mapping[TP, PartitionOffsets]
) -> dict[str, int]:
    """Store where each new target partition starts, before the first record; returns the skips.

    ``ends`` are the target partitions' offsets now, and what lay past a
    partition's ``verified_end`` has been compared with the plan
    (:func:`.verify.check_unverified`), so all of it is trusted now: the skip
    of a target partition (by its key, :meth:`.plan.RestorePlan.targets`) is
    how many of its planned records an earlier run wrote.
    """
    skips: dict[str, int] = {}
    for target in plan.targets():
        high = ends[(target.topic, target.partition)].high
        part = state.partitions.get(target.key)
        if part is None:
            part = state.partitions[target.key] = PartitionState(target.topic, target.partition, high)
        written = max(part.target_start, part.verified_end or 0)
        if high < written:
            raise RestoreError(
                f"{target.topic}[{target.partition}] ends at offset {high}, before offset "
                f"{written} that restore {state.restore_id} had written it up to: the topic was deleted "
                "or truncated. Set restore.restore_id to start a new restore"
            )
        skips[target.key] = high - part.target_start
        part.verified_end = high  # what lay past the old verified_end was compared (.verify)
    state.status = "running"
    backend.put(state_key(state.backup_id, state.restore_id), state.to_json())
    return skips


def new_mapping(state: RestoreState, plan: RestorePlan) -> OffsetMapping:
    """An empty offset mapping: one partition per task, then per spread target partition (plan order)."""
    mapping = OffsetMapping(state.backup_id, state.restore_id)
    for target in plan.targets():
        start, task = state.partitions[target.key].target_start, target.task
        if isinstance(task, SpreadTask):
            mapping.spread.append(
                SpreadPartition(task.source_topic, task.target_topic, target.partition, start)
            )
        else:
            mapping.partitions.append(
                PartitionMapping(
                    task.source_topic, task.source_partition, target.topic, target.partition, start
                )
            )
    return mapping


def confirm(
    state: RestoreState, mapping: OffsetMapping, ends: Mapping[TP, PartitionOffsets], *, interrupted: bool
) -> list[str]:
    """Record each partition's count; unless interrupted, the target must end where the mapping does."""
    failures = []
    written: list[PartitionMapping | SpreadPartition] = [*mapping.partitions, *mapping.spread]
    for pm in written:
        part = state.partitions[pm.key]
        part.records = pm.count
        part.done = not interrupted
        high = ends[(pm.target_topic, pm.target_partition)].high
        if not interrupted and high != pm.target_end:
            failures.append(
                f"{pm.target_topic}[{pm.target_partition}] ends at {high}, expected {pm.target_end}: "
                "something else wrote to the target partition during the restore"
            )
    return failures


def store(backend: StorageBackend, state: RestoreState, mapping: OffsetMapping) -> None:
    """The mapping, then the state that says how far it goes."""
    backend.put(mapping_key(state.backup_id, state.restore_id), mapping.to_json())
    backend.put(state_key(state.backup_id, state.restore_id), state.to_json())

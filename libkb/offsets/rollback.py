"""Snapshot groups' offsets, change them with a way back, roll back to a snapshot, verify against one.

Every change goes the same way: refuse if any group has active members
(nothing changed), snapshot the groups' offsets as they are and store the
snapshot, tell the caller (who prints the command that undoes the change),
then change. So every change can be undone with ``offset-rollback rollback``,
and a rollback can itself be undone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from libkb.kafka.errors import kafka_boundary
from libkb.kafka.groups import GroupAdmin, GroupOffsetError, commit_failure
from libkb.offsets.bulk import BulkReport, Commits, reset_in_parallel
from libkb.offsets.compare import GroupRollback, Verification, compare, plan_rollback
from libkb.offsets.snapshot import GroupsOffsets, OffsetSnapshot, new_snapshot_id
from libkb.offsets.store import SnapshotStore
from libkb.source.parallel import parallel_map


@dataclass(frozen=True, slots=True)
class Cluster:
    """The cluster the groups live on, as a snapshot records it."""

    admin: GroupAdmin
    bootstrap_servers: list[str]
    cluster_id: str | None


@kafka_boundary
def read_offsets(groups: GroupAdmin, names: Iterable[str]) -> GroupsOffsets:
    """Each group's committed offsets now (empty for a group without any)."""
    ordered = sorted(set(names))
    return dict(zip(ordered, parallel_map(groups.committed, ordered), strict=True))


@kafka_boundary
def take_snapshot(
    cluster: Cluster,
    store: SnapshotStore,
    names: Iterable[str],
    *,
    description: str | None = None,
    restore_id: str | None = None,
) -> OffsetSnapshot:
    """Read the groups' offsets and store them as a new snapshot of the store's backup."""
    created = int(time.time() * 1000)
    snapshot = OffsetSnapshot(
        snapshot_id=new_snapshot_id(created),
        backup_id=store.backup_id,
        created_ms=created,
        groups=read_offsets(cluster.admin, names),
        bootstrap_servers=list(cluster.bootstrap_servers),
        cluster_id=cluster.cluster_id,
        description=description,
        restore_id=restore_id,
    )
    store.save(snapshot)
    return snapshot


@kafka_boundary
def reset_with_snapshot(
    cluster: Cluster,
    store: SnapshotStore,
    commits: Commits,
    *,
    command: str,
    on_snapshot: Callable[[OffsetSnapshot], None],
    description: str,
    restore_id: str | None = None,
    max_concurrent: int = 50,
    max_retries: int = 3,
) -> tuple[OffsetSnapshot, BulkReport]:
    """Set the groups' offsets, after refusing active groups and storing the snapshot that undoes it."""
    cluster.admin.refuse_active(commits, command)
    snapshot = take_snapshot(cluster, store, commits, description=description, restore_id=restore_id)
    on_snapshot(snapshot)
    report = reset_in_parallel(cluster.admin, commits, max_concurrent=max_concurrent, max_retries=max_retries)
    return snapshot, report


@dataclass(slots=True)
class RollbackResult:
    """How a rollback went; fields as the original tool's ``offset-rollback rollback`` report."""

    snapshot_id: str
    status: str = "success"  # success | partial_success | failed
    groups_rolled_back: int = 0
    groups_failed: int = 0
    offsets_restored: int = 0
    #: Already as in the snapshot.
    groups_unchanged: list[str] = field(default_factory=list)
    #: Deleted first, as they held offsets the snapshot has none for; then its offsets (if any) committed.
    groups_deleted: list[str] = field(default_factory=list)
    #: Those offsets, as ``group:topic:partition``.
    offsets_removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration_ms: float = 0.0


@kafka_boundary
def rollback(
    cluster: Cluster,
    store: SnapshotStore,
    snapshot: OffsetSnapshot,
    *,
    command: str,
    on_snapshot: Callable[[OffsetSnapshot], None] = lambda _: None,
) -> tuple[OffsetSnapshot, RollbackResult]:
    """Put the snapshot's groups back exactly as it holds them; returns the snapshot that undoes this.

    ``on_snapshot`` gets that snapshot once it is stored, before any group changes.
    """
    started = time.monotonic()
    names = sorted(snapshot.groups)
    cluster.admin.refuse_active(names, command)
    undo = take_snapshot(
        cluster,
        store,
        names,
        description=f"before rollback to {snapshot.snapshot_id}",
        restore_id=snapshot.restore_id,
    )
    on_snapshot(undo)
    result = RollbackResult(snapshot.snapshot_id)
    steps = {s.group: s for s in plan_rollback(snapshot, undo.groups)}
    result.groups_unchanged = [g for g in names if g not in steps]
    result.groups_rolled_back = len(result.groups_unchanged)
    for group in sorted(steps):
        _apply(cluster.admin, steps[group], result)
    result.status = _status(result.groups_failed, len(names))
    result.duration_ms = (time.monotonic() - started) * 1000
    return undo, result


@kafka_boundary
def verify(admin: GroupAdmin, snapshot: OffsetSnapshot) -> Verification:
    """Compare the groups' offsets now with the snapshot's."""
    return compare(snapshot, read_offsets(admin, snapshot.groups))


def _apply(admin: GroupAdmin, step: GroupRollback, result: RollbackResult) -> None:
    try:
        if step.delete_first:
            admin.delete(step.group)
            result.groups_deleted.append(step.group)
            result.offsets_removed += [f"{step.group}:{t}:{p}" for t, p in step.removed]
        failed = admin.commit(step.group, step.commit)
    except GroupOffsetError as exc:
        result.groups_failed += 1
        result.errors.append(str(exc))
        return
    result.offsets_restored += len(step.commit) - len(failed)
    if failed:
        result.groups_failed += 1
        result.errors.append(commit_failure(step.group, failed))
    else:
        result.groups_rolled_back += 1


def _status(failed: int, total: int) -> str:
    if not failed:
        return "success"
    return "failed" if failed == total else "partial_success"

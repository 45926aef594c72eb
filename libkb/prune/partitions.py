"""``kafka-backup prune --backup-id ID``: cut the oldest segments of one backup's partitions.

A plan reads the backup as a restore would and writes nothing. An execution
is a writer of the backup like a backup run: it takes the backup's lease
(so it never races a run, and a run never starts while it prunes), adopts or
removes what an interrupted run or prune left (``load_index``), plans on
those indexes, then makes each partition's cut, index first
(:mod:`libkb.retention.apply`), and releases the lease.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from libkb.backup.lease import LeaseHeldError, lease_is_live
from libkb.backup.ownership import LeaseOwnership
from libkb.backup.state import load_index
from libkb.errors import FormatError, LibkbError
from libkb.format.models import PartitionIndex, index_key, lease_key
from libkb.format.strict import load_object
from libkb.metrics import RunMetrics
from libkb.retention import RetentionPlan, RetentionPolicy, apply_cut, plan_retention
from libkb.retention.apply import IndexWriter
from libkb.source import open_backup
from libkb.source.libkb_v1.backup import LibkbV1Source
from libkb.storage import StorageBackend, StorageError

TP = tuple[str, int]

#: The lease a prune holds: renewed every 20 s; a prune that dies blocks the backup for 2 minutes at most.
LEASE_TTL_SECS = 60.0


class PruneRefusedError(LibkbError, PermissionError):
    """A prune cannot run now (a backup run holds the lease), or not on this backup."""


@dataclass(slots=True)
class PruneReport:
    """What a prune of one backup would do (a plan) or did (``executed``)."""

    backup_id: str
    executed: bool
    plan: RetentionPlan
    partitions: int = 0
    #: Plan only: the run holding the backup's lease now; ``--execute`` would be refused.
    writer: str | None = None
    #: Pruned segments storage refused to delete: leftovers the next prune or backup run deletes.
    undeleted: list[str] = field(default_factory=list)
    #: What the user should know: unfinished restores of the backup that a cut changes.
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        policy = self.plan.policy
        return {
            "backup_id": self.backup_id,
            "executed": self.executed,
            "policy": {
                "cutoff_ms": policy.cutoff_ms,
                "max_total_bytes": policy.max_total_bytes,
                "keep_segments": policy.keep_segments,
                "reason": policy.reason,
            },
            "partitions_examined": self.partitions,
            "partitions": [cut.to_dict() for cut in self.plan.cuts],
            "totals": {
                "segments": self.plan.segments,
                "records": self.plan.records,
                "bytes": self.plan.bytes,
                "stored_bytes_before": self.plan.stored_bytes,
                "stored_bytes_after": self.plan.stored_bytes - self.plan.bytes,
            },
            "max_total_bytes_met": self.plan.cap_met,
            "writer": self.writer,
            "undeleted": self.undeleted,
            "notes": self.notes,
        }


def plan_prune(backend: StorageBackend, backup_id: str, policy: RetentionPolicy) -> PruneReport:
    """What ``policy`` would prune now; nothing is written."""
    source = _source(backend, backup_id)
    indexes = {tp: source.readable_coverage(*tp) for tp in _partitions(source)}
    report = PruneReport(backup_id, False, plan_retention(indexes, policy), len(indexes))
    if lease_is_live(backend, lease_key(backup_id)):
        report.writer = "a run holds the backup's lease now; --execute would be refused until it ends"
    report.notes = _unfinished_restores(backend, backup_id) if report.plan.cuts else []
    return report


def execute_prune(
    backend: StorageBackend,
    backup_id: str,
    policy: RetentionPolicy,
    *,
    metrics: RunMetrics | None = None,
    lease_ttl_secs: float = LEASE_TTL_SECS,
) -> PruneReport:
    """Prune under the backup's lease; :class:`PruneRefusedError` when a run holds it."""
    source = _source(backend, backup_id)
    tps = _partitions(source)
    run_id = f"prune-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    ownership = LeaseOwnership(backend, backup_id, run_id, lease_ttl_secs)
    try:
        ownership.acquire()
    except LeaseHeldError as exc:
        raise PruneRefusedError(
            f"cannot prune now: {exc.holder}. A prune takes the backup's lease, as a backup run does, so "
            "that it never races one: run it when the backup is not running. A continuous backup prunes "
            "itself with backup.retention; a run that died leaves a lease that expires by itself"
        ) from None
    try:
        return _prune_owned(backend, backup_id, policy, tps, ownership, metrics or RunMetrics())
    finally:
        ownership.release()


def _prune_owned(
    backend: StorageBackend,
    backup_id: str,
    policy: RetentionPolicy,
    tps: list[TP],
    ownership: LeaseOwnership,
    metrics: RunMetrics,
) -> PruneReport:
    indexes: dict[TP, PartitionIndex] = {}
    for topic, partition in tps:
        index, changed = load_index(backend, backup_id, topic, partition)  # leftovers of a stopped prune go
        indexes[(topic, partition)] = index
        if changed:
            _writer(backend, backup_id, index, ownership)(lambda _: None)
    report = PruneReport(backup_id, True, plan_retention(indexes, policy), len(indexes))
    report.notes = _unfinished_restores(backend, backup_id) if report.plan.cuts else []
    now = int(time.time() * 1000)
    for cut in report.plan.cuts:
        index = indexes[(cut.topic, cut.partition)]
        result = apply_cut(
            backend,
            cut,
            _writer(backend, backup_id, index, ownership),
            when_ms=now,
            reason=policy.reason,
            metrics=metrics,
            backup_id=backup_id,
        )
        report.undeleted += result.undeleted
    return report


def _writer(
    backend: StorageBackend, backup_id: str, index: PartitionIndex, ownership: LeaseOwnership
) -> IndexWriter:
    """Stores ``index`` with a change, fenced by the lease."""

    def write(change: Callable[[PartitionIndex], None]) -> None:
        ownership.check(index.topic, index.partition, "the pruned index is not written")
        change(index)
        backend.put(index_key(backup_id, index.topic, index.partition), index.to_json())

    return write


def _unfinished_restores(backend: StorageBackend, backup_id: str) -> list[str]:
    """A note for each restore of the backup that has not completed (its state says so).

    Resuming one under its fixed ``restore.restore_id`` after a cut would count
    its progress in a plan that lost records at the front; a restore with a
    derived id starts afresh, since its id follows the plan.
    """
    notes = []
    for key in backend.iter_keys(f"{backup_id}/restores/"):
        if not key.endswith("/state.json"):
            continue
        try:
            status = load_object(backend.get(key), key).get("status")
        except (StorageError, FormatError):
            continue
        if status != "complete":
            restore_id = key.split("/")[2]
            notes.append(
                f"restore {restore_id} of this backup is {status}; the records this prune removes "
                "cannot finish it: run it again from the start (a new restore.restore_id, into new or "
                "emptied target topics)"
            )
    return notes


def _source(backend: StorageBackend, backup_id: str) -> LibkbV1Source:
    source = open_backup(backend, backup_id)
    if not isinstance(source, LibkbV1Source):
        raise PruneRefusedError(f"backup {backup_id!r} is not in libkb's format; prune only prunes libkb's")
    return source


def _partitions(source: LibkbV1Source) -> list[TP]:
    manifest = source.manifest()
    return [(t, p) for t, info in sorted(manifest.topics.items()) for p in range(info.partitions)]

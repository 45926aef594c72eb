"""``kafka-backup prune --all-backups``: delete whole backup ids whose newest data is old.

A backup's age is the time of its newest data: the later of its newest
record's timestamp and its manifest's last update (when a run last wrote it),
so that a backup taken today of old records is not old. The newest
``keep_last`` backups are always kept; a backup whose lease is live (a run is
writing it) is skipped with a warning.

Deleting one is safe to stop at any instant: under the backup's lease, the
manifest goes first (from then on no reader sees the backup: it exists only
while its manifest does), then every other object, then the lease objects,
ours last. A deletion stopped half way leaves objects under the id and its
lease, but no manifest: the next ``prune --all-backups`` finds such an id
(its lease proves libkb wrote there) and finishes it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from libkb.backup.lease import LeaseHeldError, lease_is_live
from libkb.backup.ownership import LeaseOwnership
from libkb.errors import FormatError
from libkb.format.models import Manifest, PartitionIndex, lease_key, manifest_key, parse_lease_key
from libkb.prune.partitions import LEASE_TTL_SECS
from libkb.source.parallel import parallel_map
from libkb.storage import NotFoundError, StorageBackend, StorageError

DELETE, KEEP, SKIP, FAILED = "delete", "keep", "skip", "failed"
_DELETE_WORKERS = 8


@dataclass(slots=True)
class BackupVerdict:
    """What a prune across backups does with one backup id, and why."""

    backup_id: str
    action: str  # delete | keep | skip | failed (a deletion that storage stopped)
    why: str
    #: The time of its newest data (epoch ms); None for the leftovers of a stopped deletion.
    newest_ms: int | None = None
    #: The manifest's ``updated_ms`` when planned: a backup written since is not deleted.
    updated_ms: int | None = None
    stored_bytes: int = 0


@dataclass(slots=True)
class BackupsReport:
    executed: bool
    cutoff_ms: int | None
    keep_last: int | None
    verdicts: list[BackupVerdict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "executed": self.executed,
            "cutoff_ms": self.cutoff_ms,
            "keep_last": self.keep_last,
            "backups": [asdict(v) for v in self.verdicts],
            "deleted": [v.backup_id for v in self.verdicts if v.action == DELETE and self.executed],
        }


@dataclass(slots=True)
class _Listed:
    manifests: set[str] = field(default_factory=set)
    leased: set[str] = field(default_factory=set)
    indexes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def plan_backups(backend: StorageBackend, *, cutoff_ms: int | None, keep_last: int | None) -> BackupsReport:
    """Which backup ids go, which stay and why; nothing is written."""
    if cutoff_ms is None and keep_last is None:
        raise ValueError("give cutoff_ms or keep_last")
    listed = _list(backend)
    report = BackupsReport(False, cutoff_ms, keep_last)
    live = {b for b in listed.leased if lease_is_live(backend, lease_key(b))}
    for orphan in sorted(listed.leased - listed.manifests):
        if orphan in live:
            report.verdicts.append(BackupVerdict(orphan, SKIP, "a run holds its lease (it is starting)"))
        else:
            report.verdicts.append(
                BackupVerdict(orphan, DELETE, "a deletion of it was stopped; finishing it")
            )
    readable: list[BackupVerdict] = []
    for verdict in parallel_map(lambda b: _age(backend, b, listed.indexes[b]), sorted(listed.manifests)):
        (readable if verdict.newest_ms is not None else report.verdicts).append(verdict)
    readable.sort(key=lambda v: (v.newest_ms or 0, v.backup_id), reverse=True)
    for rank, verdict in enumerate(readable):
        if keep_last is not None and rank < keep_last:
            verdict.action, verdict.why = KEEP, f"one of the newest {keep_last}"
        elif cutoff_ms is not None and (verdict.newest_ms or 0) >= cutoff_ms:
            verdict.action, verdict.why = KEEP, "its newest data is newer than the cutoff"
        elif verdict.backup_id in live:
            verdict.action, verdict.why = SKIP, "a run holds its lease (it is being written); not deleted"
        else:
            verdict.action, verdict.why = (
                DELETE,
                "its newest data is older"
                + ("" if cutoff_ms is not None else f" than the newest {keep_last}"),
            )
        report.verdicts.append(verdict)
    report.verdicts.sort(key=lambda v: v.backup_id)
    return report


def delete_backups(backend: StorageBackend, *, cutoff_ms: int | None, keep_last: int | None) -> BackupsReport:
    """Plan, then delete each backup the plan says goes (one at a time, each under its lease)."""
    report = plan_backups(backend, cutoff_ms=cutoff_ms, keep_last=keep_last)
    report.executed = True
    for verdict in report.verdicts:
        if verdict.action == DELETE:
            _delete(backend, verdict)
    return report


def _list(backend: StorageBackend) -> _Listed:
    """One listing of the location: backups (manifests), ids with lease objects, index keys.

    ``libkb.source``'s listing finds only backups with a manifest; a stopped
    deletion leaves an id without one, so this listing looks for leases too.
    """
    listed = _Listed()
    for key in backend.iter_keys(""):
        head, sep, rest = key.partition("/")
        if not sep:
            continue
        if rest == "manifest.json":
            listed.manifests.add(head)
        elif (lease := parse_lease_key(key)) is not None and lease[0] == head:
            listed.leased.add(head)
        elif rest.startswith("topics/") and rest.endswith("/index.json"):
            listed.indexes[head].append(key)
    return listed


def _age(backend: StorageBackend, backup_id: str, index_keys: list[str]) -> BackupVerdict:
    """The backup's newest data and size (from its manifest and indexes); a skip if they do not read."""
    try:
        manifest = Manifest.from_json(backend.get(manifest_key(backup_id)), name=manifest_key(backup_id))
        indexes = [PartitionIndex.from_json(backend.get(k), name=k) for k in index_keys]
    except (FormatError, StorageError) as exc:
        return BackupVerdict(backup_id, SKIP, f"it cannot be read ({exc}); not deleted")
    newest = max([manifest.updated_ms] + [s.max_timestamp for i in indexes for s in i.segments])
    size = sum(i.size for i in indexes)
    return BackupVerdict(backup_id, KEEP, "", newest, manifest.updated_ms, size)


def _delete(backend: StorageBackend, verdict: BackupVerdict) -> None:
    """Delete one backup id under its lease: manifest, then everything else, then the lease."""
    backup_id = verdict.backup_id
    run_id = f"prune-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    ownership = LeaseOwnership(backend, backup_id, run_id, LEASE_TTL_SECS)
    try:
        ownership.acquire()
    except LeaseHeldError as exc:
        verdict.action, verdict.why = SKIP, f"not deleted: {exc.holder}"
        return
    dropped = False
    try:
        if verdict.updated_ms is not None and _updated_ms(backend, backup_id) != verdict.updated_ms:
            verdict.action, verdict.why = SKIP, "a run wrote it since it was planned; not deleted"
            return
        ownership.check_backup("the backup is not deleted")
        with contextlib.suppress(NotFoundError):
            backend.delete(manifest_key(backup_id))
        keys = [k for k in backend.iter_keys(f"{backup_id}/") if parse_lease_key(k) is None]
        with ThreadPoolExecutor(_DELETE_WORKERS, "libkb-prune") as pool:
            list(pool.map(lambda key: _delete_key(backend, key), keys))
        ownership.lease.drop()
        dropped = True
    except StorageError as exc:
        why = f"deletion stopped ({exc}); the next prune --all-backups finishes it"
        verdict.action, verdict.why = FAILED, why
    finally:
        if not dropped:
            ownership.release()  # the next prune need not wait for the lease to expire


def _updated_ms(backend: StorageBackend, backup_id: str) -> int | None:
    try:
        return Manifest.from_json(backend.get(manifest_key(backup_id))).updated_ms
    except (NotFoundError, FormatError):
        return None


def _delete_key(backend: StorageBackend, key: str) -> None:
    with contextlib.suppress(NotFoundError):
        backend.delete(key)

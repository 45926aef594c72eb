"""``status --path --backup-id``: is a backup being written, by whom, and how did its last run end.

Gathered from what the backup stores, and nothing else: its lease (who
holds it, until when, when it was last renewed) and its manifest's runs, plus
the stored totals of its partition indexes. Reading never writes: a lease is
not taken, a dead run is not recorded, and a mistyped filesystem path stays
nonexistent (the caller opens the backend with ``create=False``).

A run is **running** while it holds a valid lease and the manifest shows it
running. Its process can die without recording its end (``kill -9``, a lost
node); the lease then expires and the run shows as ``interrupted``, as
``list`` and ``describe`` show it. Until the lease expires the run still
counts as running, but a renewal that is overdue is pointed out.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from libkb.backup.lease import LeaseInfo, lease_is_live, lease_objects, read_lease
from libkb.catalog.times import iso_ms
from libkb.format.models import Manifest, RunInfo, lease_key
from libkb.source import BackupNotFoundError, open_backup
from libkb.storage import ContainerNotFoundError, NotFoundError, StorageBackend

RUNNING, STARTING = "running", "starting"


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    """The backup's current lease generation, as stored."""

    key: str
    generation: int
    run_id: str
    host: str
    pid: int
    expires_ms: int
    released: bool
    #: Unreleased and unexpired now: its run may write to the backup.
    valid: bool
    #: When the lease object was last written (the storage's clock); None if unknown.
    renewed_ms: int | None

    @property
    def renewal_overdue(self) -> bool:
        """A valid lease whose holder missed a renewal (due every third of its time to live).

        The time to live is read off the lease itself (expiry minus the time it
        was written), so this needs no configuration; it hints that the holder
        died, which only the expiry makes certain.
        """
        if not self.valid or self.renewed_ms is None:
            return False
        ttl = self.expires_ms - self.renewed_ms
        return ttl > 0 and _now_ms() - self.renewed_ms > ttl * 2 / 3 + 1000

    @property
    def takeover_ms(self) -> int | None:
        """When another run may take this lease over: one TTL (read off the lease) after it expires.

        None when released (at once) or when the TTL cannot be read off it. A run
        refuses a lease until its expiry plus the run's own TTL (:mod:`libkb.backup.lease`).
        """
        if self.released or self.renewed_ms is None or self.expires_ms <= self.renewed_ms:
            return None
        return 2 * self.expires_ms - self.renewed_ms

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["expires"] = iso_ms(self.expires_ms)
        body["renewed"] = iso_ms(self.renewed_ms)
        body["renewal_overdue"] = self.renewal_overdue
        return body


@dataclass(frozen=True, slots=True)
class BackupStatus:
    """What ``status`` shows of a stored backup; ``state`` is one of the ``RunInfo`` statuses,
    ``starting`` (a run holds the lease but has not recorded itself yet) or ``empty`` (no run)."""

    backup_id: str
    location: str
    checked_ms: int
    state: str
    lease: LeaseStatus | None
    last_run: RunInfo | None
    runs: int
    topics: list[str]
    partitions: int
    records: int
    stored_bytes: int
    updated_ms: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state in (RUNNING, STARTING)

    def to_dict(self) -> dict[str, Any]:
        last = None
        if self.last_run is not None:
            last = asdict(self.last_run)
            last["started"] = iso_ms(self.last_run.started_ms)
            last["finished"] = iso_ms(self.last_run.finished_ms)
        return {
            "backup_id": self.backup_id,
            "location": self.location,
            "checked": iso_ms(self.checked_ms),
            "state": self.state,
            "running": self.running,
            "lease": self.lease.to_dict() if self.lease else None,
            "last_run": last,
            "runs": self.runs,
            "topics": self.topics,
            "partitions": self.partitions,
            "records": self.records,
            "stored_bytes": self.stored_bytes,
            "updated": iso_ms(self.updated_ms),
            "notes": self.notes,
        }


def backup_status(backend: StorageBackend, backup_id: str, location: str | None = None) -> BackupStatus:
    """The status of ``backup_id``; :class:`BackupNotFoundError` when nothing of it is stored."""
    where = location or backend.name
    try:
        lease = lease_status(backend, backup_id)
        source = open_backup(backend, backup_id)
        try:
            manifest: Manifest | None = source.manifest()
        except BackupNotFoundError:
            if lease is None:
                raise
            manifest = None  # a first run took the lease and has not written its manifest yet
        records, stored = source.stored_totals() if manifest is not None else (0, 0)
    except ContainerNotFoundError:
        missing = BackupNotFoundError(backup_id, [], where)
        missing.args = (f"no backup {backup_id!r} at {where}: nothing is stored there (it does not exist)",)
        raise missing from None
    except BackupNotFoundError as exc:
        raise BackupNotFoundError(backup_id, exc.existing, where) from None
    last = manifest.runs[-1] if manifest and manifest.runs else None
    state, notes = _state(last, lease)
    topics = manifest.topics if manifest else {}
    return BackupStatus(
        backup_id=backup_id,
        location=where,
        checked_ms=_now_ms(),
        state=state,
        lease=lease,
        last_run=last,
        runs=len(manifest.runs) if manifest else 0,
        topics=sorted(topics),
        partitions=sum(t.partitions for t in topics.values()),
        records=records,
        stored_bytes=stored,
        updated_ms=manifest.updated_ms if manifest else None,
        notes=notes,
    )


def lease_status(backend: StorageBackend, backup_id: str) -> LeaseStatus | None:
    """The backup's current lease generation as stored (read only); None if it has no lease."""
    objects = lease_objects(backend, lease_key(backup_id))
    if not objects:
        return None
    generation, key = objects[-1]
    info = read_lease(backend, key)
    if info is None:
        info = LeaseInfo("unreadable", "?", 0, 0, generation)
    try:
        renewed: int | None = backend.head(key).last_modified
    except NotFoundError:
        renewed = None  # taken over and cleaned up since the listing
    valid = lease_is_live(backend, lease_key(backup_id))
    return LeaseStatus(
        key, generation, info.run_id, info.host, info.pid, info.expires_ms, info.released, valid, renewed
    )


def _takeover(lease: LeaseStatus) -> str:
    at = lease.takeover_ms
    if at is None:
        return ""
    if at <= _now_ms():
        return " and another run may take it over now"
    return f" (another run may take it over from {iso_ms(at)}, one TTL later)"


def _state(last: RunInfo | None, lease: LeaseStatus | None) -> tuple[str, list[str]]:
    """The backup's state from its last recorded run and its lease, with what a reader should know."""
    notes = []
    if lease is not None and lease.valid:
        if lease.renewal_overdue:
            notes.append(
                f"the lease was last renewed at {iso_ms(lease.renewed_ms)} and is overdue: its run may have "
                f"died; it counts as interrupted once the lease expires at {iso_ms(lease.expires_ms)}"
            )
        if last is not None and last.status == RUNNING and last.run_id == lease.run_id:
            return RUNNING, notes
        notes.append(f"run {lease.run_id} holds the lease and has not recorded itself in the manifest yet")
        return STARTING, notes
    if last is None:
        return "empty", notes
    if last.status == RUNNING:
        if lease is None:
            why = "no lease is stored"
        elif lease.released:
            why = "its lease was released"
        else:
            why = f"its lease expired at {iso_ms(lease.expires_ms)}{_takeover(lease)}"
        notes.append(
            f"run {last.run_id} did not record its end and {why}: it was interrupted "
            "(the next run of this backup resumes it)"
        )
        return "interrupted", notes
    return last.status, notes


def _now_ms() -> int:
    return int(time.time() * 1000)

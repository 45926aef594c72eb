"""Offset snapshots kept next to a backup, in any storage backend.

The key is ``{id}/offset-snapshots/{snapshot_id}.json``:
one whole object per snapshot, created with a create-only write, so a
snapshot is never half-written and never replaces another. The prefix is
one no other object of libkb's format or of the original tool uses under a
backup id (docs/format.rst, "Offset snapshots").
"""

from __future__ import annotations

import logging

from libkb.errors import FormatError, LibkbError
from libkb.offsets.snapshot import OffsetSnapshot, check_snapshot_id
from libkb.source import open_backup
from libkb.source.parallel import parallel_map
from libkb.storage import NotFoundError, StorageBackend
from libkb.suggest import closest

log = logging.getLogger("libkb.offsets")

SNAPSHOTS_DIR = "offset-snapshots"


def snapshots_prefix(backup_id: str) -> str:
    return f"{backup_id}/{SNAPSHOTS_DIR}/"


def snapshot_key(backup_id: str, snapshot_id: str) -> str:
    return f"{snapshots_prefix(backup_id)}{snapshot_id}.json"


class SnapshotNotFoundError(LibkbError, FileNotFoundError):
    """No offset snapshot with the requested id is stored with the backup."""

    def __str__(self) -> str:  # FileNotFoundError would format "[Errno ...]"
        return str(self.args[0])


class SnapshotStore:
    """The offset snapshots of one backup."""

    def __init__(self, backend: StorageBackend, backup_id: str) -> None:
        self.backend = backend
        self.backup_id = backup_id

    def require_backup(self) -> None:
        """Raise ``BackupNotFoundError`` (naming the backups there) unless the backup exists."""
        open_backup(self.backend, self.backup_id).manifest()

    def ids(self) -> list[str]:
        """The stored snapshot ids, oldest first."""
        prefix = snapshots_prefix(self.backup_id)
        ids = []
        for key in self.backend.iter_keys(prefix):
            name = key[len(prefix) :]
            if "/" not in name and name.endswith(".json"):
                ids.append(name[: -len(".json")])
        return sorted(ids)

    def save(self, snapshot: OffsetSnapshot) -> str:
        """Store a new snapshot; returns its key."""
        if snapshot.backup_id != self.backup_id:
            raise ValueError(f"snapshot of backup {snapshot.backup_id!r} given to {self.backup_id!r}")
        key = snapshot_key(self.backup_id, check_snapshot_id(snapshot.snapshot_id))
        if not self.backend.put_if_absent(key, snapshot.to_json()):
            raise LibkbError(f"{key}: a snapshot with this id is already stored; nothing was written")
        return key

    def load(self, snapshot_id: str) -> OffsetSnapshot:
        key = snapshot_key(self.backup_id, check_snapshot_id(snapshot_id))
        try:
            data = self.backend.get(key)
        except NotFoundError:
            raise self._not_found(snapshot_id) from None
        return OffsetSnapshot.from_json(data, name=key)

    def list(self) -> list[OffsetSnapshot]:
        """Every readable snapshot, newest first; an unreadable one is logged and left out."""

        def read(snapshot_id: str) -> OffsetSnapshot | None:
            try:
                return self.load(snapshot_id)
            except (FormatError, SnapshotNotFoundError) as exc:  # corrupt, or deleted meanwhile
                log.warning("skipping offset snapshot %s: %s", snapshot_id, exc)
                return None

        found = [s for s in parallel_map(read, self.ids()) if s is not None]
        return sorted(found, key=lambda s: (s.created_ms, s.snapshot_id), reverse=True)

    def delete(self, snapshot_id: str) -> str:
        """Delete one snapshot; returns its key."""
        key = snapshot_key(self.backup_id, check_snapshot_id(snapshot_id))
        if not self.backend.exists(key):
            raise self._not_found(snapshot_id)
        self.backend.delete(key)
        return key

    def _not_found(self, snapshot_id: str) -> SnapshotNotFoundError:
        ids = self.ids()
        match = closest(snapshot_id, ids)
        if match is not None:
            hint = f"did you mean {match!r}?"
        elif ids:
            hint = f"{len(ids)} stored, newest {ids[-1]}; 'kafka-backup offset-rollback list' shows them"
        else:
            hint = "it has none"
        return SnapshotNotFoundError(
            f"no offset snapshot {snapshot_id!r} of backup {self.backup_id!r} ({hint})"
        )

"""One listing of a storage location: its libkb backups, their partition indexes and leases.

A backup is a top-level prefix holding ``manifest.json``. Listing the whole
location once, rather than once per backup, keeps ``list`` at one listing
however many backups there are; what it saw is handed to each backup's source
so that it does not list again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from libkb.format.models import parse_lease_key
from libkb.source.base import BackupNotFoundError
from libkb.storage import StorageBackend

MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.json"


@dataclass(frozen=True, slots=True)
class ListedBackup:
    """What the listing showed of one backup."""

    backup_id: str
    index_keys: list[str] = field(default_factory=list)
    leased: bool = False  # a lease object exists (its run may be alive)


def is_index_key(backup_id: str, key: str) -> bool:
    """``{id}/topics/.../index.json``: a partition index of the backup (or something posing as one)."""
    return key.startswith(f"{backup_id}/topics/") and key.endswith("/" + INDEX_NAME)


def scan(backend: StorageBackend) -> list[ListedBackup]:
    """Every backup at the location, sorted by id, from one listing."""
    manifests: set[str] = set()
    leased: set[str] = set()
    indexes: dict[str, list[str]] = defaultdict(list)
    for key in backend.iter_keys(""):
        head, sep, rest = key.partition("/")
        if not sep:
            continue
        if rest == MANIFEST_NAME:
            manifests.add(head)
        elif (lease := parse_lease_key(key)) is not None and lease[0] == head:
            leased.add(head)  # {id}/lease/{generation}.json or an earlier build's {id}/lease.json
        elif rest.startswith("topics/") and rest.endswith("/" + INDEX_NAME):
            indexes[head].append(key)
    return [ListedBackup(b, indexes.get(b, []), b in leased) for b in sorted(manifests)]


def not_found(backend: StorageBackend, backup_id: str) -> BackupNotFoundError:
    """The error for an unknown id, naming the backups that do exist."""
    return BackupNotFoundError(backup_id, [b.backup_id for b in scan(backend)], location_name(backend))


def location_name(backend: StorageBackend) -> str:
    prefix = getattr(backend, "prefix", "")
    return f"{backend.name} storage" + (f" under {prefix!r}" if prefix else "")

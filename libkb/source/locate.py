"""Find the backups at a storage location, and open each through the source that reads its format.

Readers (restore, validate, describe, list) call only these functions and the
:class:`~libkb.source.base.BackupSource` they return, so they never depend on
a format. libkb's own format is the default: what no other format claims is
read as libkb's format (any version from 1 on).

Another on-disk format plugs in as a ``BackupSource`` subclass added to
:data:`OTHER_FORMATS`: its ``claims()`` recognises the layout under ``{id}/``,
and :func:`scan_location` offers it each backup the listing found. The Rust
kafka-backup's backups are the first (:mod:`.rust_v1`): they have a
``{id}/manifest.json`` too, with a list of topics and no libkb format name.
A backup the listing shows with libkb's partition indexes or lease is
libkb's without asking.
"""

from __future__ import annotations

from libkb.errors import FormatError
from libkb.source.adopted import AdoptedSource
from libkb.source.base import BackupNotFoundError, BackupSource
from libkb.source.libkb_v1.backup import LibkbV1Source
from libkb.source.libkb_v1.listing import ListedBackup, scan
from libkb.source.parallel import parallel_map
from libkb.source.rust_v1.backup import RustSource
from libkb.storage import StorageBackend, StorageError

#: Sources of formats other than libkb's own, asked in order whether a backup is theirs.
#: An adopted Rust backup is also a Rust backup: ask for the adopted layout first.
OTHER_FORMATS: tuple[type[BackupSource], ...] = (AdoptedSource, RustSource)


def open_backup(backend: StorageBackend, backup_id: str) -> BackupSource:
    """The backup stored as ``backup_id``, read through its format (nothing is read yet for libkb's)."""
    return _open(backend, backup_id, None)


def scan_location(backend: StorageBackend) -> list[BackupSource]:
    """Every backup at the location, sorted by id, from one listing."""
    return parallel_map(lambda listed: _open(backend, listed.backup_id, listed), scan(backend))


def _open(backend: StorageBackend, backup_id: str, listed: ListedBackup | None) -> BackupSource:
    if listed is None or not (listed.index_keys or listed.leased):
        for source in OTHER_FORMATS:
            if source.claims(backend, backup_id):
                return source(backend, backup_id)
    return LibkbV1Source(backend, backup_id, listed)


def resolve_backup(backend: StorageBackend, backup_id: str) -> BackupSource:
    """The backup ``backup_id``; ``latest`` is the most recently created one whose manifest reads."""
    if backup_id != "latest":
        return open_backup(backend, backup_id)
    sources = scan_location(backend)
    created = parallel_map(_created_ms, sources)
    readable = [(ms, s) for ms, s in zip(created, sources, strict=True) if ms is not None]
    if not readable:
        raise BackupNotFoundError("latest", [], f"{backend.name} storage")
    newest = max(readable, key=lambda pair: pair[0])[1]
    return open_backup(backend, newest.backup_id)


def _created_ms(source: BackupSource) -> int | None:
    try:
        return source.manifest().created_ms
    except (FormatError, StorageError):
        return None

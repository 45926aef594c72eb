"""Snapshots in a storage backend: one whole object each, never overwritten, found by id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from libkb.errors import LibkbError
from libkb.format.models import parse_lease_key, parse_segment_key
from libkb.kafka.types import CommittedOffset
from libkb.offsets import OffsetSnapshot, SnapshotNotFoundError, SnapshotStore, snapshot_key
from libkb.source import BackupNotFoundError, open_backup
from libkb.storage import FilesystemConfig, MemoryConfig, StorageBackend, create_backend_from_config
from tests.cli.stored import write_backup


@pytest.fixture(params=["filesystem", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    config = FilesystemConfig(str(tmp_path / "store")) if request.param == "filesystem" else MemoryConfig()
    with create_backend_from_config(config) as b:
        yield b


def snap(ms: int, suffix: str = "0000000a", backup_id: str = "b1") -> OffsetSnapshot:
    return OffsetSnapshot(
        f"snap-{ms:013d}-{suffix}", backup_id, ms, {"g": {("t", 0): CommittedOffset(ms % 100)}}
    )


def test_save_list_load_delete(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    store = SnapshotStore(backend, "b1")
    store.require_backup()
    assert store.ids() == [] and store.list() == []
    old, new = snap(1_700_000_000_001), snap(1_700_000_000_002)
    assert store.save(new) == "b1/offset-snapshots/snap-1700000000002-0000000a.json"
    store.save(old)
    assert store.ids() == [old.snapshot_id, new.snapshot_id]
    assert [s.snapshot_id for s in store.list()] == [new.snapshot_id, old.snapshot_id]  # newest first
    assert store.load(old.snapshot_id) == old
    assert store.delete(old.snapshot_id) == snapshot_key("b1", old.snapshot_id)
    assert store.ids() == [new.snapshot_id]


def test_a_snapshot_is_never_overwritten(backend: StorageBackend) -> None:
    store = SnapshotStore(backend, "b1")
    first = snap(1_700_000_000_001)
    store.save(first)
    with pytest.raises(LibkbError, match="already stored; nothing was written"):
        store.save(OffsetSnapshot(first.snapshot_id, "b1", 1, {}))
    assert store.load(first.snapshot_id) == first


def test_not_found_names_the_closest_or_what_is_there(backend: StorageBackend) -> None:
    store = SnapshotStore(backend, "b1")
    with pytest.raises(
        SnapshotNotFoundError,
        match=r"no offset snapshot 'snap-1700000000001-0000000a' of backup 'b1' \(it has none\)",
    ):
        store.load("snap-1700000000001-0000000a")
    store.save(snap(1_700_000_000_001))
    with pytest.raises(FileNotFoundError, match="did you mean 'snap-1700000000001-0000000a'"):
        store.load("snap-1700000000001-0000000b")
    with pytest.raises(SnapshotNotFoundError, match="did you mean"):
        store.delete("snap-1700000000001-0000000c")


def test_unreadable_snapshots_are_left_out_of_the_list(
    backend: StorageBackend, caplog: pytest.LogCaptureFixture
) -> None:
    store = SnapshotStore(backend, "b1")
    good = snap(1_700_000_000_001)
    store.save(good)
    backend.put(snapshot_key("b1", "snap-1700000000002-0000000a"), b"{not json")
    backend.put("b1/offset-snapshots/nested/snap-1700000000003-0000000a.json", b"{}")
    backend.put("b1/offset-snapshots/notes.txt", b"")
    assert [s.snapshot_id for s in store.list()] == [good.snapshot_id]
    assert "skipping offset snapshot snap-1700000000002-0000000a" in caplog.text


def test_snapshots_are_invisible_to_the_backup_readers(backend: StorageBackend) -> None:
    """Old readers ignore the new objects: no segment, lease, manifest or index key looks like one."""
    write_backup(backend, "b1")
    before = open_backup(backend, "b1").check_structure()
    SnapshotStore(backend, "b1").save(snap(1_700_000_000_001))
    key = snapshot_key("b1", "snap-1700000000001-0000000a")
    assert parse_segment_key(key) is None and parse_lease_key(key) is None
    after = open_backup(backend, "b1").check_structure()
    assert (after.problems, after.warnings) == (before.problems, before.warnings)


def test_an_unknown_backup_is_named(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    with pytest.raises(BackupNotFoundError, match=r"no backup 'b2' .*backups there: b1"):
        SnapshotStore(backend, "b2").require_backup()

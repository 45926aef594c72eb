"""What the filesystem backend adds over Libcloud's local driver: containment and atomicity."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from libkb.storage import (
    FilesystemConfig,
    InvalidPathError,
    StorageBackend,
    create_backend_from_config,
)
from libkb.storage.drivers.filesystem import TEMP_PREFIX


@pytest.fixture
def store(tmp_path: Path) -> StorageBackend:
    return create_backend_from_config(FilesystemConfig(path=str(tmp_path / "base")))


def test_no_key_escapes_the_base(tmp_path: Path, store: StorageBackend) -> None:
    for key in ["../outside", "/etc/passwd", "a/../../outside", "..", "a/./b"]:
        with pytest.raises(InvalidPathError):
            store.put(key, b"x")
    assert sorted(os.listdir(tmp_path)) == ["base"]


def test_symlink_out_of_the_base_is_refused(tmp_path: Path, store: StorageBackend) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    os.symlink(outside, tmp_path / "base" / "link")
    with pytest.raises(InvalidPathError):
        store.put("link/file", b"x")
    with pytest.raises(InvalidPathError):
        store.get("link/secret")
    os.symlink(outside / "secret", tmp_path / "base" / "file-link")
    with pytest.raises(InvalidPathError):
        store.get("file-link")
    assert not (outside / "file").exists()


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path, store: StorageBackend) -> None:
    store.put("obj", b"old")

    def chunks() -> Iterator[bytes]:
        yield b"new" * 1000
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        store.put_stream("obj", chunks())
    assert store.get("obj") == b"old"
    assert os.listdir(tmp_path / "base") == ["obj"]


def test_leftover_temp_files_are_never_listed(tmp_path: Path, store: StorageBackend) -> None:
    store.put("d/real", b"1")
    # What a process killed mid-write leaves behind.
    (tmp_path / "base" / "d" / f"{TEMP_PREFIX}deadbeef").write_bytes(b"partial")
    assert store.list() == ["d/real"]


def test_no_lock_files_in_temp_dir(store: StorageBackend) -> None:
    before = set(os.listdir(tempfile.gettempdir()))
    for i in range(20):
        store.put(f"k{i}", b"x")
        store.get(f"k{i}")
    after = set(os.listdir(tempfile.gettempdir()))
    assert not {n for n in after - before if "lock" in n.lower()}


def test_delete_prunes_empty_directories(tmp_path: Path, store: StorageBackend) -> None:
    store.put("a/b/c/d", b"x")
    store.delete("a/b/c/d")
    assert os.listdir(tmp_path / "base") == []


def test_each_memory_backend_from_config_owns_its_store() -> None:
    from libkb.storage import MemoryConfig

    one = create_backend_from_config(MemoryConfig())
    two = create_backend_from_config(MemoryConfig())
    one.put("k", b"1")
    assert not two.exists("k")


def test_path_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    from libkb.errors import ConfigError

    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ConfigError, match="not a directory"):
        create_backend_from_config(FilesystemConfig(path=str(tmp_path / "file")))


def test_libcloud_stream_api_is_atomic_too(tmp_path: Path) -> None:
    """Libcloud's own upload_object_via_stream, called on the driver directly, is the safe path."""
    from libkb.storage.drivers.filesystem import SafeLocalStorageDriver

    driver = SafeLocalStorageDriver(str(tmp_path))
    container = driver.get_container("base")
    driver.upload_object_via_stream(iter([b"old"]), container, "obj")

    def failing() -> Iterator[bytes]:
        yield b"new"
        raise OSError("source failed")

    with pytest.raises(OSError, match="source failed"):
        driver.upload_object_via_stream(failing(), container, "obj")
    assert (tmp_path / "obj").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["obj"]

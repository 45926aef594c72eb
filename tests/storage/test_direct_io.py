"""Streamed filesystem writes past the page cache: same bytes on every path, clean fallbacks."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libkb.storage import FilesystemConfig, create_backend_from_config
from libkb.storage.drivers.direct_io import ALIGN, STAGING_BYTES, write_stream

O_DIRECT = getattr(os, "O_DIRECT", 0)


def _data(n: int) -> bytes:
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def _chunks(data: bytes, sizes: tuple[int, ...] = (1, 4095, 70_000, 1 << 20, 3)) -> Iterator[Any]:
    """Uneven chunks of every accepted type, as a segment upload yields them."""
    pos, i = 0, 0
    kinds = (bytes, bytearray, memoryview)
    while pos < len(data):
        n = sizes[i % len(sizes)]
        piece = data[pos : pos + n]
        yield kinds[i % 3](piece)
        pos += n
        i += 1


def _filesystem_takes_o_direct(directory: Path) -> bool:
    """Ask the kernel directly, independent of the code under test."""
    if not O_DIRECT:
        return False
    import mmap

    probe = directory / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | O_DIRECT)
    except OSError:
        return False
    try:
        os.write(fd, mmap.mmap(-1, ALIGN))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()


def _write(path: Path, chunks: Any, *, direct: bool = True) -> bool:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        return write_stream(fd, chunks, direct=direct)
    finally:
        os.close(fd)


SIZES = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, STAGING_BYTES - 1, STAGING_BYTES, STAGING_BYTES + 1]


@pytest.mark.parametrize("size", [*SIZES, 3 * STAGING_BYTES + 12_345])
@pytest.mark.parametrize("direct", [True, False])
def test_every_size_is_written_exactly(tmp_path: Path, size: int, direct: bool) -> None:
    data = _data(size)
    _write(tmp_path / "f", _chunks(data), direct=direct)
    assert (tmp_path / "f").read_bytes() == data


def test_direct_writes_are_aligned_and_the_tail_goes_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, bool]] = []
    real_write = os.write

    def spy(fd: int, data: Any) -> int:
        seen.append((len(data), bool(fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT)))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    data = _data(2 * STAGING_BYTES + 3 * ALIGN + 17)
    used = _write(tmp_path / "f", _chunks(data))
    monkeypatch.undo()
    assert (tmp_path / "f").read_bytes() == data
    if not _filesystem_takes_o_direct(tmp_path):
        assert used is False
        return
    assert used is True
    direct = [n for n, is_direct in seen if is_direct]
    assert direct == [STAGING_BYTES, STAGING_BYTES, 3 * ALIGN]  # whole staging buffers, aligned rest
    assert seen[-1] == (17, False)  # the unaligned tail, O_DIRECT switched off
    assert sum(n for n, _ in seen) == len(data)


def test_filesystem_that_refuses_o_direct_gets_buffered_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fcntl = fcntl.fcntl

    def refuse(fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == fcntl.F_SETFL and arg & O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_fcntl(fd, cmd, arg)

    monkeypatch.setattr(fcntl, "fcntl", refuse)
    data = _data(STAGING_BYTES + 999)
    assert _write(tmp_path / "f", _chunks(data)) is False
    assert (tmp_path / "f").read_bytes() == data


def test_direct_write_the_kernel_rejects_is_written_again_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write

    def reject_direct(fd: int, data: Any) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", reject_direct)
    data = _data(2 * STAGING_BYTES + 5)
    assert _write(tmp_path / "f", _chunks(data)) is False
    assert (tmp_path / "f").read_bytes() == data


def test_short_direct_write_continues_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A direct write that stops at an unaligned byte leaves an offset O_DIRECT cannot use."""
    real_write = os.write
    calls = {"n": 0}

    def short(fd: int, data: Any) -> int:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        if flags & O_DIRECT and calls["n"] == 0:
            calls["n"] += 1
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~O_DIRECT)
            try:
                return real_write(fd, memoryview(data)[:1000])
            finally:
                fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", short)
    data = _data(2 * STAGING_BYTES + 77)
    _write(tmp_path / "f", _chunks(data))
    assert (tmp_path / "f").read_bytes() == data


def test_other_write_errors_propagate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    monkeypatch.setattr(os, "writev", full)
    with pytest.raises(OSError) as info:
        _write(tmp_path / "f", _chunks(_data(STAGING_BYTES + 1)))
    assert info.value.errno == errno.ENOSPC


@pytest.mark.parametrize("direct_io_on", [True, False])
def test_backend_streams_the_same_bytes_either_way(tmp_path: Path, direct_io_on: bool) -> None:
    store = create_backend_from_config(FilesystemConfig(path=str(tmp_path / "base"), direct_io=direct_io_on))
    data = _data(STAGING_BYTES + 3 * ALIGN + 5)
    store.put_stream("topics/t/0/seg", _chunks(data))
    assert store.get("topics/t/0/seg") == data
    assert [p.name for p in (tmp_path / "base" / "topics" / "t" / "0").iterdir()] == ["seg"]

"""Libcloud's local driver, made safe for backups.

Libcloud's ``LocalStorageDriver`` lets keys escape the base directory, writes
in place (a failed stream leaves a truncated file), leaves a lock file per
object in the temp dir and reports the md5 of the mtime as a hash. This
subclass keeps its identity but replaces the object operations:

- the driver is bound to one base directory, which is its only container;
- every path is checked to stay inside the base directory (symlinks included);
- writes go to a temp file in the target's directory, are fsynced and renamed
  over the target, so readers see the old or the new object, never a part;
- create-only writes use ``link(2)``, which fails atomically if the name exists;
- streamed writes (segments) bypass the page cache with ``O_DIRECT`` where the
  filesystem allows it (``direct_io``);
- no lock files: rename and link are the synchronisation.

Temp files are named ``.~libkb-<random>`` and never listed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from libcloud.storage.base import Container, Object
from libcloud.storage.drivers.local import LocalStorageDriver
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError

from libkb.storage.drivers.base import LibkbDriverMixin
from libkb.storage.drivers.direct_io import STAGING_BYTES, write_stream
from libkb.storage.errors import InvalidPathError

TEMP_PREFIX = ".~libkb-"
_READ_SIZE = 1024 * 1024
#: Bytes a streamed upload holds before writing them (see ``direct_io``).
WRITE_BATCH_BYTES = STAGING_BYTES


class SafeLocalStorageDriver(LibkbDriverMixin, LocalStorageDriver):  # type: ignore[misc]
    """A local-directory driver with atomic writes and no path escapes."""

    name = "libkb filesystem"
    libkb_name = "filesystem"
    libkb_stream_hold = WRITE_BATCH_BYTES  # streamed writes are batched before they reach the disk

    def __init__(self, base_path: str, *, create: bool = True, direct_io: bool = True) -> None:
        # LocalStorageDriver.__init__ only records the path and builds an
        # unused connection; keep ours explicit.
        base = os.path.abspath(os.path.expanduser(base_path))
        if create:
            os.makedirs(base, exist_ok=True)
        self.base_path = base
        self.direct_io = direct_io
        self._real_base = os.path.realpath(base)

    def __repr__(self) -> str:
        return f"SafeLocalStorageDriver(base_path={self.base_path!r})"

    # -- paths ------------------------------------------------------------

    def _check_container(self, container_name: str) -> None:
        if not os.path.isdir(self.base_path):
            raise ContainerDoesNotExistError(value=None, driver=self, container_name=container_name)

    def _path(self, object_name: str) -> str:
        if object_name.startswith("/") or any(part in ("", ".", "..") for part in object_name.split("/")):
            raise InvalidPathError(
                "the key would leave the base directory", backend="filesystem", key=object_name
            )
        path = os.path.join(self.base_path, *object_name.split("/"))
        parent = os.path.realpath(os.path.dirname(path))
        if parent != self._real_base and not parent.startswith(self._real_base + os.sep):
            raise InvalidPathError(
                "the key resolves outside the base directory (a symlink?)",
                backend="filesystem",
                key=object_name,
            )
        return path

    def _existing_file(self, object_name: str) -> str:
        path = self._path(object_name)
        real = os.path.realpath(path)
        if not real.startswith(self._real_base + os.sep):
            raise InvalidPathError(
                "the object is a link that resolves outside the base directory",
                backend="filesystem",
                key=object_name,
            )
        if not os.path.isfile(path):
            raise ObjectDoesNotExistError(value=None, driver=self, object_name=object_name)
        return path

    def _object(self, container: Container, object_name: str, path: str) -> Object:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ObjectDoesNotExistError(value=None, driver=self, object_name=object_name) from None
        return Object(
            name=object_name,
            size=st.st_size,
            hash=None,
            extra={"mtime_ms": st.st_mtime_ns // 1_000_000},
            meta_data={},
            container=container,
            driver=self,
        )

    # -- containers -------------------------------------------------------

    def get_container(self, container_name: str) -> Container:
        self._check_container(container_name)
        return Container(name=container_name, extra={}, driver=self)

    def create_container(self, container_name: str) -> Container:
        os.makedirs(self.base_path, exist_ok=True)
        return Container(name=container_name, extra={}, driver=self)

    def iterate_containers(self) -> Iterator[Container]:
        return iter([Container(name=os.path.basename(self.base_path), extra={}, driver=self)])

    # -- reads ------------------------------------------------------------

    def get_object(self, container_name: str, object_name: str) -> Object:
        self._check_container(container_name)
        path = self._existing_file(object_name)
        container = Container(name=container_name, extra={}, driver=self)
        return self._object(container, object_name, path)

    def download_object_as_stream(self, obj: Object, chunk_size: int | None = None) -> Iterator[bytes]:
        return self.download_object_range_as_stream(obj, 0, None, chunk_size)

    def ex_read_object(self, obj: Object, start: int = 0, end: int | None = None) -> bytes:
        """One read into one buffer (the default joins 1 MiB chunks: every byte copied twice)."""
        with self._opened(obj) as handle:
            handle.seek(start)
            return handle.read() if end is None else handle.read(max(0, end - start))

    def download_object_range_as_stream(
        self,
        obj: Object,
        start_bytes: int,
        end_bytes: int | None = None,
        chunk_size: int | None = None,
    ) -> Iterator[bytes]:
        return _read(self._opened(obj), start_bytes, end_bytes, chunk_size or _READ_SIZE)

    def _opened(self, obj: Object) -> BinaryIO:
        """The object's file, open for reading (the caller closes it); a missing one as Libcloud's."""
        self._check_container(obj.container.name)
        path = self._existing_file(obj.name)
        try:
            return open(path, "rb")  # the caller closes it
        except FileNotFoundError:
            raise ObjectDoesNotExistError(value=None, driver=self, object_name=obj.name) from None

    def iterate_container_objects(
        self, container: Container, prefix: str | None = None, ex_prefix: str | None = None
    ) -> Iterator[Object]:
        self._check_container(container.name)
        prefix = prefix or ex_prefix or ""
        head, _, _ = prefix.rpartition("/")
        start_dir = os.path.join(self.base_path, *head.split("/")) if head else self.base_path
        rel_start = f"{head}/" if head else ""
        for name, path in _walk_sorted(start_dir, rel_start, prefix):
            try:
                yield self._object(container, name, path)
            except ObjectDoesNotExistError:
                continue  # deleted while listing

    # -- writes -----------------------------------------------------------

    def _write_atomic(self, object_name: str, write: Any, *, create_only: bool = False) -> bool:
        """Write through a temp file; rename (or link, when create-only) into place."""
        path = self._path(object_name)
        directory = os.path.dirname(path)
        for _ in range(5):  # a concurrent delete may remove the empty directory
            os.makedirs(directory, exist_ok=True)
            tmp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
            try:
                handle = open(tmp, "xb")  # noqa: SIM115
            except FileNotFoundError:
                continue
            break
        else:
            raise OSError(errno.ENOENT, f"cannot create a temp file in {directory}")
        try:
            with handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            if create_only:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp)
            else:
                os.replace(tmp, path)
            _fsync_dir(directory)
            return True
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def ex_put_object(self, container: Container, object_name: str, data: bytes) -> None:
        self._check_container(container.name)
        self._write_atomic(object_name, lambda f: f.write(data))

    def ex_put_object_if_absent(self, container: Container, object_name: str, data: bytes) -> bool:
        self._check_container(container.name)
        return self._write_atomic(object_name, lambda f: f.write(data), create_only=True)

    def ex_upload_stream(self, container: Container, object_name: str, chunks: Iterable[bytes]) -> None:
        self._check_container(container.name)

        def write(handle: BinaryIO) -> None:
            write_stream(handle.fileno(), chunks, direct=self.direct_io)

        self._write_atomic(object_name, write)

    def ex_copy_object(self, container: Container, src_name: str, dest_name: str) -> None:
        self._check_container(container.name)
        src = self._existing_file(src_name)
        try:
            source = open(src, "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise ObjectDoesNotExistError(value=None, driver=self, object_name=src_name) from None
        with source:
            self._write_atomic(dest_name, lambda f: shutil.copyfileobj(source, f, _READ_SIZE))

    def delete_object(self, obj: Object) -> bool:
        self._check_container(obj.container.name)
        path = self._path(obj.name)
        try:
            os.unlink(path)
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectDoesNotExistError(value=None, driver=self, object_name=obj.name) from None
        # Remove directories left empty, up to (not including) the base.
        directory = os.path.dirname(path)
        while directory != self.base_path and directory.startswith(self.base_path):
            try:
                os.rmdir(directory)
            except OSError:
                break
            directory = os.path.dirname(directory)
        return True


def _read(handle: BinaryIO, start: int, end: int | None, chunk_size: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if end is None else max(0, end - start)
        while remaining is None or remaining > 0:
            size = chunk_size if remaining is None else min(chunk_size, remaining)
            chunk = handle.read(size)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _walk_sorted(directory: str, rel: str, prefix: str) -> Iterator[tuple[str, str]]:
    """Yield (key, path) below ``directory`` in UTF-8 key order, for keys starting with prefix.

    A directory ``d`` sorts as ``d/`` so the depth-first walk produces the same
    order as a flat listing sorted by bytes (``a-c`` < ``a/b``).
    """
    try:
        with os.scandir(directory) as it:
            entries = [(e.name, e.path, e.is_dir(follow_symlinks=False)) for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return
    entries.sort(key=lambda e: (e[0] + "/" if e[2] else e[0]).encode("utf-8"))
    for name, path, is_dir in entries:
        if name.startswith(TEMP_PREFIX):
            continue
        key = rel + name
        if is_dir:
            sub = key + "/"
            if sub.startswith(prefix) or prefix.startswith(sub):
                yield from _walk_sorted(path, sub, prefix)
        elif key.startswith(prefix):
            yield key, path


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The shipped conformance suite against a backend libkb does not know, exactly as
docs/storage.rst ("Testing your own backend") shows a third party: this module
is that example, so the documented usage is what runs here.

``DictBackend`` uses libkb's public API only (``StorageBackend``, its errors
and :mod:`libkb.storage.keys`), none of libkb's adapter or drivers.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import pytest

from libkb.storage import BytesLike, NotFoundError, ObjectMetadata, StorageBackend
from libkb.storage.keys import full_name, normalize_base_prefix, validate_key, validate_list_prefix
from libkb.storage.testing import MakeBackend, StorageConformance


class DictBackend(StorageBackend):
    """Your backend; here objects in a dict, shared by the backends made on it
    (one dict operation is atomic, so no lock is needed)."""

    name = "dict"

    def __init__(self, objects: dict[str, tuple[bytes, int]], prefix: str | None = None) -> None:
        self.objects = objects
        self.prefix = normalize_base_prefix(prefix, backend=self.name)

    def _name(self, key: str) -> str:
        """The stored name of ``key``, once it obeys the key rules (before any I/O)."""
        return full_name(self.prefix, validate_key(key, backend=self.name, prefix=self.prefix))

    def _find(self, key: str) -> tuple[bytes, int]:
        try:
            return self.objects[self._name(key)]
        except KeyError:
            raise NotFoundError("no such object", backend=self.name, key=key) from None

    def put(self, key: str, data: BytesLike) -> None:
        self.objects[self._name(key)] = (_owned(data), int(time.time() * 1000))

    def put_if_absent(self, key: str, data: BytesLike) -> bool:
        new = (_owned(data), int(time.time() * 1000))
        return self.objects.setdefault(self._name(key), new) is new

    def put_stream(self, key: str, chunks: Iterable[BytesLike]) -> None:
        self._name(key)  # a bad key fails before the stream is read
        self.put(key, b"".join(_owned(chunk) for chunk in chunks))

    def get(self, key: str) -> bytes:
        return self._find(key)[0]

    def get_stream(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        data = self.get(key)  # a missing key raises here, not at the first next()
        return (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"invalid byte range {start}..{end}")
        return self.get(key)[start:end]

    def head(self, key: str) -> ObjectMetadata:
        data, mtime = self._find(key)
        return ObjectMetadata(size=len(data), last_modified=mtime)

    def delete(self, key: str) -> None:
        if self.objects.pop(self._name(key), None) is None:
            raise NotFoundError("no such object", backend=self.name, key=key)

    def copy(self, src: str, dest: str) -> None:
        self._name(dest)  # a bad destination fails before the source is read
        self.put(dest, self.get(src))

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        start = full_name(self.prefix, validate_list_prefix(prefix, backend=self.name))
        cut = len(self.prefix) + 1 if self.prefix else 0
        names = [name[cut:] for name in list(self.objects) if name.startswith(start)]
        return iter(sorted(names, key=str.encode))


def _owned(data: BytesLike) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
    return bytes(data)


class TestDictBackend(StorageConformance):
    @pytest.fixture
    def make_backend(self) -> MakeBackend:
        objects: dict[str, tuple[bytes, int]] = {}  # a fresh store for each test,
        return lambda prefix=None: DictBackend(objects, prefix)  # shared by its backends


def test_this_module_is_the_documented_example() -> None:
    """docs/storage.rst shows this module's code, line for line."""
    import textwrap  # here, so that the module's imports are the example's
    from pathlib import Path

    code = Path(__file__).read_text(encoding="utf-8")
    example = code[code.index("import time") : code.index("\n\ndef test_this_module")] + "\n"
    doc = (Path(__file__).resolve().parents[2] / "docs" / "storage.rst").read_text(encoding="utf-8")
    assert textwrap.indent(example, "   ") in doc

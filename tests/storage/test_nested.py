"""The nested view (an adopted backup's libkb part) is a full backend, and stays in its subtree."""

from __future__ import annotations

import pytest

from libkb.storage import LibcloudBackend, StorageBackend
from libkb.storage.drivers.memory import MemoryStorageDriver
from libkb.storage.factory import _LOCAL_RESILIENCE
from libkb.storage.nested import NestedBackend
from libkb.storage.testing import MakeBackend, StorageConformance


class TestEverythingNested(StorageConformance):
    """Every key of the suite is stored under ``sub/``."""

    @pytest.fixture
    def make_backend(self) -> MakeBackend:
        driver = MemoryStorageDriver()

        def make(prefix: str | None = None) -> StorageBackend:
            inner = LibcloudBackend(driver, "memory", prefix=prefix, resilience=_LOCAL_RESILIENCE)
            return NestedBackend(inner, "", "sub/")

        return make

    # A view nests inside its backend's prefix, so a parent prefix's view does
    # not see a child prefix's objects as the suite expects of plain backends;
    # what a view must isolate is tested below.
    test_prefix_isolation = None  # type: ignore[assignment]


def _store() -> LibcloudBackend:
    return LibcloudBackend(MemoryStorageDriver(), "memory", resilience=_LOCAL_RESILIENCE)


def test_one_subtree_is_relocated_and_the_rest_passes_through() -> None:
    store = _store()
    for key in ["a/manifest.json", "a/topics/t/partition=0/segment.bin", "b/manifest.json", "a0"]:
        store.put(key, key.encode())
    view = NestedBackend(store, "a/", "a/libkb/")
    view.put("a/manifest.json", b"libkb's")
    view.put("a/topics/t/partition=0/index.json", b"index")
    assert store.get("a/manifest.json") == b"a/manifest.json"  # the other tool's object is untouched
    assert store.get("a/libkb/manifest.json") == b"libkb's"
    assert view.get("a/manifest.json") == b"libkb's"
    assert view.get("b/manifest.json") == b"b/manifest.json"
    assert view.list("") == [
        "a/manifest.json",
        "a/topics/t/partition=0/index.json",
        "a0",
        "b/manifest.json",
    ]
    assert view.list("a/topics/") == ["a/topics/t/partition=0/index.json"]
    assert not view.exists("a/topics/t/partition=0/segment.bin")  # hidden: not libkb's
    view.delete("a/manifest.json")
    assert store.exists("a/manifest.json") and not store.exists("a/libkb/manifest.json")


def test_inner_must_be_inside_outer() -> None:
    with pytest.raises(ValueError, match="must extend"):
        NestedBackend(_store(), "a/", "b/")

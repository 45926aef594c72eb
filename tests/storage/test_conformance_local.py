"""The conformance suite on the two backends that need no service."""

from __future__ import annotations

from pathlib import Path

import pytest

from libkb.storage import (
    FilesystemConfig,
    LibcloudBackend,
    StorageBackend,
    create_backend_from_config,
)
from libkb.storage.drivers.memory import MemoryStorageDriver
from libkb.storage.factory import _LOCAL_RESILIENCE
from libkb.storage.testing import MakeBackend, MissingContainerConformance, StorageConformance


class TestMemoryBackend(StorageConformance, MissingContainerConformance):
    @pytest.fixture
    def make_backend(self) -> MakeBackend:
        driver = MemoryStorageDriver()  # one store per test, shared by its backends

        def make(prefix: str | None = None) -> StorageBackend:
            return LibcloudBackend(driver, "memory", prefix=prefix, resilience=_LOCAL_RESILIENCE)

        return make

    @pytest.fixture
    def make_backend_on_missing_container(self) -> MakeBackend:
        return lambda: LibcloudBackend(MemoryStorageDriver(), "no-such-container")


class TestFilesystemBackend(StorageConformance):
    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> MakeBackend:
        def make(prefix: str | None = None) -> StorageBackend:
            return create_backend_from_config(FilesystemConfig(path=str(tmp_path / "store"), prefix=prefix))

        return make

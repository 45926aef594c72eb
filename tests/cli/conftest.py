from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from libkb.storage import FilesystemConfig, MemoryConfig, StorageBackend, create_backend_from_config


@pytest.fixture(params=["filesystem", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    """The catalog must read any backend; the two local ones stand in for all."""
    config = FilesystemConfig(str(tmp_path / "store")) if request.param == "filesystem" else MemoryConfig()
    with create_backend_from_config(config) as b:
        yield b


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, StorageBackend]]:
    """A filesystem location the CLI can open by path, and a backend on it to write through."""
    path = tmp_path / "backups"
    with create_backend_from_config(FilesystemConfig(str(path))) as b:
        yield str(path), b


@pytest.fixture(autouse=True)
def _cli_logging() -> Iterator[None]:
    """main() logs to the stderr pytest captured for one test; detach it before the stream closes."""
    from libkb.cli.logs import unconfigure

    yield
    unconfigure()

"""A backend the restore engine makes itself is closed again, also when the backup cannot be opened."""

from __future__ import annotations

from typing import Any

import pytest

from libkb.restore import engine as engine_module
from libkb.source import BackupNotFoundError
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import DelegatingBackend, FakeKafka
from tests.fakes.jobs import restore_config, restore_engine


class Closing(DelegatingBackend):
    closed = False

    def close(self) -> None:
        self.closed = True
        self.inner.close()


@pytest.mark.parametrize("call", ["plan", "run"])
def test_the_engines_own_backend_is_closed_when_the_backup_cannot_be_opened(
    monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    made: list[Closing] = []

    def create(config: Any, **kwargs: Any) -> StorageBackend:
        made.append(Closing(create_backend_from_config(MemoryConfig())))
        return made[-1]

    monkeypatch.setattr(engine_module, "create_backend_from_config", create)
    engine = restore_engine(FakeKafka(), None, restore_config())
    with pytest.raises(BackupNotFoundError):
        getattr(engine, call)()
    (backend,) = made
    assert backend.closed

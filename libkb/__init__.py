"""libkb: Kafka backup and restore for Python.

``libkb.load_config(path)``, ``libkb.BackupEngine(config).run()`` and
``libkb.RestoreEngine(config).run()`` are the library API; they are loaded on
first use, so ``import libkb.storage`` does not pull in the Kafka clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from libkb.version import __version__

if TYPE_CHECKING:
    from libkb.backup.engine import BackupEngine, BackupProgress, BackupResult
    from libkb.config import JobConfig, load_config
    from libkb.restore.engine import RestoreEngine, RestoreProgress, RestoreResult

_LAZY = {
    "BackupEngine": "libkb.backup.engine",
    "BackupProgress": "libkb.backup.engine",
    "BackupResult": "libkb.backup.engine",
    "RestoreEngine": "libkb.restore.engine",
    "RestoreProgress": "libkb.restore.engine",
    "RestoreResult": "libkb.restore.engine",
    "JobConfig": "libkb.config",
    "load_config": "libkb.config",
}

__all__ = [
    "BackupEngine",
    "BackupProgress",
    "BackupResult",
    "JobConfig",
    "RestoreEngine",
    "RestoreProgress",
    "RestoreResult",
    "__version__",
    "load_config",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'libkb' has no attribute {name!r}")

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
#: Every error class, by the module that defines it (the tree: :mod:`libkb.errors`).
_ERRORS = {
    "libkb.errors": [
        "LibkbError",
        "ConfigError",
        "FormatError",
        "EncryptionKeyError",
        "MissingKeyError",
        "WrongKeyError",
    ],
    "libkb.source.adopted": ["AdoptionRequiredError"],
    "libkb.format.segment": ["SegmentError"],
    "libkb.format.transforms": ["TransformError"],
    "libkb.storage.errors": [
        "StorageError",
        "NotFoundError",
        "ContainerNotFoundError",
        "PermissionDeniedError",
        "InvalidPathError",
        "BackendError",
        "CircuitOpenError",
        "StorageOutageError",
    ],
    "libkb.kafka.errors": ["KafkaClientError", "KafkaConnectionError"],
    "libkb.kafka.groups": ["GroupOffsetError"],
    "libkb.backup.plan": ["PlanError"],
    "libkb.backup.incarnations": ["TopicRecreatedError"],
    "libkb.backup.errors": ["BackupError"],
    "libkb.backup.lease": ["LeaseHeldError", "LeaseLostError"],
    "libkb.source.base": ["BackupNotFoundError"],
    "libkb.restore.result": ["RestoreError"],
    "libkb.restore.topics": ["TargetTopicError"],
    "libkb.cli.restore": ["RestoreNotFoundError"],
    "libkb.offsets.store": ["SnapshotNotFoundError"],
    "libkb.prune.partitions": ["PruneRefusedError"],
    "libkb.restore.validation.evidence": ["EvidenceError"],
    "libkb.cli.validation": ["EvidenceNotFoundError"],
    "libkb.restore.validation.signing": ["SignatureError"],
    "libkb.ops.status": ["JobUnreachableError"],
    "libkb.cli.readonly": ["LocationNotFoundError"],
}
_LAZY.update({name: module for module, names in _ERRORS.items() for name in names})

__all__ = [
    "AdoptionRequiredError",
    "BackendError",
    "BackupEngine",
    "BackupError",
    "BackupNotFoundError",
    "BackupProgress",
    "BackupResult",
    "CircuitOpenError",
    "ConfigError",
    "ContainerNotFoundError",
    "EncryptionKeyError",
    "EvidenceError",
    "EvidenceNotFoundError",
    "FormatError",
    "GroupOffsetError",
    "InvalidPathError",
    "JobConfig",
    "JobUnreachableError",
    "KafkaClientError",
    "KafkaConnectionError",
    "LeaseHeldError",
    "LeaseLostError",
    "LibkbError",
    "LocationNotFoundError",
    "MissingKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "PlanError",
    "PruneRefusedError",
    "RestoreEngine",
    "RestoreError",
    "RestoreNotFoundError",
    "RestoreProgress",
    "RestoreResult",
    "SegmentError",
    "SignatureError",
    "SnapshotNotFoundError",
    "StorageError",
    "StorageOutageError",
    "TargetTopicError",
    "TopicRecreatedError",
    "TransformError",
    "WrongKeyError",
    "__version__",
    "load_config",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'libkb' has no attribute {name!r}")

"""The root of libkb's exception tree, shared by every layer.

::

    LibkbError
    ├── ConfigError (ValueError)             bad config: names the file and key
    │   └── AdoptionRequiredError            libkb.source.adopted: another tool's backup id needs adopting
    ├── FormatError (ValueError)             a stored object is not valid libkb format: names it
    │   ├── SegmentError                     libkb.format.segment: corrupt/truncated segment (key, offsets)
    │   └── TransformError                   libkb.format.transforms: a block does not decompress
    ├── EncryptionKeyError (PermissionError) a key-encryption key is missing, wrong or unusable
    │   ├── MissingKeyError                  the backup needs a key the config does not give: names its id
    │   └── WrongKeyError                    the key given cannot unwrap a data key: names key id and object
    ├── StorageError                         libkb.storage.errors
    │   ├── NotFoundError (FileNotFoundError)
    │   │   └── ContainerNotFoundError       the bucket/container is missing
    │   ├── PermissionDeniedError (PermissionError)
    │   ├── InvalidPathError (ValueError)
    │   └── BackendError                     connection, API, IO
    │       ├── CircuitOpenError             the breaker refuses calls for a while
    │       └── StorageOutageError (TimeoutError)  still down at the run's outage deadline
    ├── KafkaClientError                     libkb.kafka.errors: Kafka refused or failed (code kept)
    │   ├── KafkaConnectionError (ConnectionError)  no broker could be used
    │   └── GroupOffsetError                 libkb.kafka.groups: group offsets not read or changed
    ├── PlanError                            libkb.backup.plan: the backup cannot be planned
    │   └── TopicRecreatedError              libkb.backup.incarnations: a topic has another id now
    ├── BackupError                          libkb.backup.errors: a backup run failed
    ├── LeaseHeldError                       libkb.backup.lease: another run writes the backup
    ├── LeaseLostError                       libkb.backup.lease: this run's lease was taken over
    ├── BackupNotFoundError (FileNotFoundError)    libkb.source.base: no such backup id
    ├── RestoreError                         libkb.restore.result: a restore run failed
    ├── TargetTopicError                     libkb.restore.topics: a target topic is unfit
    ├── RestoreNotFoundError (FileNotFoundError)   libkb.cli.restore: no such restore id
    ├── SnapshotNotFoundError (FileNotFoundError)  libkb.offsets.store: no such offset snapshot
    ├── PruneRefusedError (PermissionError)  libkb.prune.partitions: the prune would lose data
    ├── EvidenceError (FileExistsError)      libkb.restore.validation.evidence: a report exists
    ├── EvidenceNotFoundError (FileNotFoundError)  libkb.cli.validation: no such report
    ├── SignatureError (ValueError)          libkb.restore.validation.signing: a bad signature
    ├── JobUnreachableError (ConnectionError)      libkb.ops.status: a job's endpoint is unreachable
    └── LocationNotFoundError (FileNotFoundError)  libkb.cli.readonly: the storage location is missing

Every error libkb raises is a ``LibkbError``; each also inherits the builtin it
resembles, so ``except FileNotFoundError`` works as a user expects. Every
class of the tree is exported by the package (``from libkb import
SegmentError``); tests/test_errors.py checks that the tree and the classes agree.
"""

from __future__ import annotations


class LibkbError(Exception):
    """Base of every error libkb raises."""


class ConfigError(LibkbError, ValueError):
    """A configuration value is missing or invalid.

    ``key`` is the dotted path of the offending key (``storage.bucket``) and
    ``source`` the file or URL it came from, when known.
    """

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None) -> None:
        self.key = key
        self.source = source
        where = ""
        if source:
            where += f"{source}: "
        if key:
            where += f"{key}: "
        super().__init__(f"{where}{message}")


class FormatError(LibkbError, ValueError):
    """A stored backup object (segment, index, manifest) is corrupt or not libkb's.

    The message names the object, so the user knows which key to inspect.
    """


class EncryptionKeyError(LibkbError, PermissionError):
    """A key-encryption key is missing, wrong or cannot be used (its KMS refused, its file is bad).

    The message names the key id and, where one is involved, the stored object;
    never the key's bytes.
    """

    def __str__(self) -> str:  # PermissionError would format "[Errno ...]"
        return str(self.args[0])


class MissingKeyError(EncryptionKeyError):
    """An encrypted backup needs a key that the config does not give (or no encryption is configured)."""


class WrongKeyError(EncryptionKeyError):
    """The key of the stored id cannot unwrap a data key: another key of that name, or an altered object."""

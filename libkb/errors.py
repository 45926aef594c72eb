"""The root of libkb's exception tree, shared by every layer.

::

    LibkbError
    ├── ConfigError (ValueError)             bad config: names the file and key
    ├── FormatError (ValueError)             a stored object is not valid libkb format
    │   └── SegmentError                     corrupt/truncated segment: names the object
    ├── EncryptionKeyError (PermissionError) a key-encryption key is missing, wrong or unusable
    │   ├── MissingKeyError                  the backup needs a key the config does not give: names its id
    │   └── WrongKeyError                    the key given cannot unwrap a data key: names key id and object
    └── StorageError                         libkb.storage.errors
        ├── NotFoundError (FileNotFoundError)
        │   └── ContainerNotFoundError       the bucket/container is missing
        ├── PermissionDeniedError (PermissionError)
        ├── InvalidPathError (ValueError)
        └── BackendError                     connection, API, IO
            ├── CircuitOpenError             the breaker refuses calls for a while
            └── StorageOutageError (TimeoutError)  still down at the run's outage deadline

Every error libkb raises is a ``LibkbError``; each also inherits the builtin it
resembles, so ``except FileNotFoundError`` works as a user expects.
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

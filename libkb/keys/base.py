"""What every key-encryption key does: wrap a data key for one segment, and unwrap it again."""

from __future__ import annotations

from typing import Protocol


class KeyEncryptionKey(Protocol):
    """A KEK. ``context`` is the segment's key: wrapping binds it, so a wrapped key moved to
    another segment does not unwrap. Implementations are thread-safe and never show key bytes."""

    @property
    def key_id(self) -> str:
        """The id stored beside every data key it wraps (not secret)."""
        ...

    @property
    def kind(self) -> str:
        """``local``, ``aws-kms``, ``azure-keyvault`` or ``gcp-kms``: stored beside the key id."""
        ...

    def wrap(self, data_key: bytes, context: str) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        """The data key; :class:`~libkb.errors.WrongKeyError` when this key did not wrap ``wrapped``."""
        ...

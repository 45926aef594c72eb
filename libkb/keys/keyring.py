"""The keys a job may use: the current KEK (wraps new data keys) and old ones (unwrap older segments).

KEKs are built lazily, the first time a key id is needed: a restore of a
backup that never used an old key does not need that key's file or KMS.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from libkb.config.encryption import EncryptionOptions, KeySource
from libkb.errors import MissingKeyError
from libkb.keys.aws import AwsKmsKek
from libkb.keys.base import KeyEncryptionKey
from libkb.keys.cloud import AzureKeyVaultKek, GcpKmsKek
from libkb.keys.local import LocalKek

__all__ = ["KeyEncryptionKey", "Keyring", "build_kek", "keyring_from_config"]


def build_kek(source: KeySource) -> KeyEncryptionKey:
    """The KEK that ``source`` names (reads its env variable or file, or makes the KMS client)."""
    if source.kind == "aws":
        return AwsKmsKek(source.key_id, region=source.region, endpoint_url=source.endpoint_url)
    if source.kind == "azure":
        return AzureKeyVaultKek(source.key_id)
    if source.kind == "gcp":
        return GcpKmsKek(source.key_id)
    if source.env is not None:
        return LocalKek.from_env(source.key_id, source.env)
    assert source.file is not None
    return LocalKek.from_file(source.key_id, source.file)


class Keyring:
    """KEKs by id; ``current`` wraps new data keys. Thread-safe; repr shows ids only."""

    def __init__(self, sources: Sequence[KeySource] = (), *, keks: Sequence[KeyEncryptionKey] = ()) -> None:
        self._sources = {s.key_id: s for s in sources}
        self._built: dict[str, KeyEncryptionKey] = {k.key_id: k for k in keks}
        order = [s.key_id for s in sources] + [k.key_id for k in keks]
        self.current_id: str | None = order[0] if order else None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Keyring(current={self.current_id!r}, ids={sorted(set(self._sources) | set(self._built))!r})"

    @property
    def ids(self) -> list[str]:
        return sorted(set(self._sources) | set(self._built))

    def current(self) -> KeyEncryptionKey:
        if self.current_id is None:
            raise MissingKeyError("no encryption key is configured (the job file's encryption section)")
        return self.get(self.current_id)

    def get(self, key_id: str, *, needed_by: str = "") -> KeyEncryptionKey:
        """The KEK with ``key_id``; MissingKeyError naming it (and ``needed_by``) when not given."""
        with self._lock:
            kek = self._built.get(key_id)
            if kek is not None:
                return kek
            source = self._sources.get(key_id)
            if source is None:
                what = f"{needed_by}: " if needed_by else ""
                given = ", ".join(repr(i) for i in self.ids) or "none"
                raise MissingKeyError(
                    f"{what}encrypted with key {key_id!r}, which the config does not give (keys given: "
                    f"{given}); add it to encryption.old_keys"
                )
            kek = self._built[key_id] = build_kek(source)
            return kek


def keyring_from_config(options: EncryptionOptions | None) -> Keyring:
    """The job's keyring; an empty one (reads unencrypted backups only) without an encryption section."""
    return Keyring(options.keys if options is not None else ())

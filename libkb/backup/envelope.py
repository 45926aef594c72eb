"""Segments' key objects in storage: written by a backup run with its current key, read back with the keyring.

Why this module exists: the format (:mod:`libkb.format.encryption`) is pure
and the keys (:mod:`libkb.keys`) know nothing of storage; the writer, the
readers and ``rewrap`` all store or fetch a segment's wrapped data key the
same way, here.

Order (crash consistency): a segment's key object is written after its
footer is known (the seal covers it) and before the segment's upload is
committed, so a stored segment always has its key object. A key object
without its segment (a run killed between the two) is overwritten when the
segment is written again, or deleted with the segment's range by a prune.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from libkb.errors import FormatError
from libkb.format.encryption import (
    BlockEncryption,
    DataKey,
    KeyObject,
    check_seal,
    key_object_key,
    make_seal,
)
from libkb.format.segment import FOOTER_SIZE, FORMAT_VERSION, SegmentHeader, decode_header, encrypted_chain
from libkb.format.transforms import TransformChain
from libkb.storage import NotFoundError, StorageBackend

if TYPE_CHECKING:
    from libkb.keys import Keyring  # the caller's (cryptography loads with its keys)


class Envelope:
    """Key objects of one backup's segments, wrapped and unwrapped with ``keyring``."""

    def __init__(self, backend: StorageBackend, backup_id: str, keyring: Keyring) -> None:
        self.backend = backend
        self.backup_id = backup_id
        self.keyring = keyring

    def __repr__(self) -> str:
        return f"Envelope({self.backup_id!r}, {self.keyring!r})"

    # -- writing --------------------------------------------------------------------------------

    def wrap(self, segment: str, data_key: DataKey) -> tuple[str, str, bytes]:
        """(key id, KEK kind, wrapped data key) under the current key."""
        kek = self.keyring.current()
        return kek.key_id, kek.kind, kek.wrap(data_key.secret, segment)

    def store(
        self,
        segment: str,
        place: tuple[str, int, int],
        data_key: DataKey,
        wrapped: tuple[str, str, bytes],
        footer: bytes,
    ) -> None:
        """Store the segment's key object, its footer sealed (before the segment is committed)."""
        topic, partition, base = place
        seal = make_seal(data_key, self.backup_id, topic, partition, base, footer)
        key_id, kind, blob = wrapped
        self.backend.put(key_object_key(segment), KeyObject(segment, key_id, kind, blob, seal).to_json())

    # -- reading --------------------------------------------------------------------------------

    def key_object(self, segment: str) -> KeyObject:
        name = key_object_key(segment)
        try:
            data = self.backend.get(name)
        except NotFoundError:
            raise FormatError(
                f"{name}: missing: the encrypted segment {segment} has no key object, so its data key "
                "is lost (was it deleted by something other than libkb?)"
            ) from None
        obj = KeyObject.from_json(data, name=name, read_version=FORMAT_VERSION)
        if obj.segment != segment:
            raise FormatError(f"{name}: belongs to {obj.segment}, not {segment} (a key object moved)")
        return obj

    def data_key(self, segment: str, obj: KeyObject | None = None) -> DataKey:
        """The segment's data key, unwrapped with the key its key object names."""
        obj = obj if obj is not None else self.key_object(segment)
        kek = self.keyring.get(obj.key_id, needed_by=segment)
        secret = kek.unwrap(obj.wrapped_key, segment)
        try:
            return DataKey(secret)
        except ValueError:
            raise FormatError(
                f"{key_object_key(segment)}: its data key unwrapped to {len(secret)} bytes"
            ) from None

    def check_stored_seal(self, segment: str, size: int, key: DataKey, obj: KeyObject) -> None:
        """Check the seal against the stored segment's footer (one ranged read of its last bytes)."""
        footer = self.backend.get_range(segment, max(0, size - FOOTER_SIZE), size)
        header = self.backend.get_range(segment, 0, min(size, 1024))
        parsed = decode_header(bytes(header), name=segment)
        place = (parsed.topic, parsed.partition, parsed.base_offset)
        check_seal(key, obj.seal, self.backup_id, *place, bytes(footer), segment)

    def reading_chain(
        self,
        segment: str,
        header: SegmentHeader,
        data: bytes,
        key: DataKey | None = None,
        obj: KeyObject | None = None,
    ) -> TransformChain:
        """The chain that decrypts and decompresses the segment's blocks, once its seal checks its footer.

        For zstd-stream it only decrypts: a :class:`~libkb.format.segment.BlockDecoder` decompresses after it.

        ``key`` and ``obj``: its data key and key object, if already unwrapped and read (a restore
        reads every key object before it starts: not again per segment, a round trip each).
        """
        obj = obj if obj is not None else self.key_object(segment)
        key = key if key is not None else self.data_key(segment, obj)
        footer = data[len(data) - FOOTER_SIZE :]
        check_seal(
            key, obj.seal, self.backup_id, header.topic, header.partition, header.base_offset, footer, segment
        )
        return encrypted_chain(header.codec, BlockEncryption(self.backup_id, key))

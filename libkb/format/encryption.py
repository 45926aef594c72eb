"""Envelope encryption of segments (format version 6): the block cipher, the seal and the key object. Pure.

Why this module exists: a backup is a copy of a company's event data, kept
for months in a bucket; regulated users must encrypt it with keys they hold.
Each segment gets a fresh 256-bit *data key*. Every block's payload is its
compressed bytes encrypted with AES-256-GCM under that key (the last
transform of the chain, :mod:`libkb.format.transforms`), with a fresh random
96-bit nonce, and authenticated with its place as associated data (backup id,
topic, partition, segment base offset, block index, raw size): a block
flipped, moved to another place, reordered or replayed fails to decrypt. The
segment's footer, which states the block and record counts, is authenticated
the same way by the *seal* (a GCM tag over the footer), so dropping blocks
from the end is found too.

The data key never touches storage in the clear: it is *wrapped* by a
key-encryption key (KEK, :mod:`libkb.keys`) and stored with the KEK's id and
the seal in the segment's **key object** (``segment-{base}.key.json`` beside
it), written before the segment is committed. Re-wrapping under a new KEK
rewrites only key objects; record bytes never change.

Secrets (data keys) live in :class:`DataKey` objects whose repr shows nothing.
All cryptography is the ``cryptography`` package's AES-GCM; nothing here is a
primitive of its own.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import threading
from dataclasses import dataclass
from typing import Any

from libkb.errors import FormatError
from libkb.format.transforms import BlockContext, Buffer, TransformError

#: The format version that added encryption (provisional: the merger may renumber it here alone).
ENCRYPTION_VERSION = 6
#: The only algorithm so far, as key objects and index entries name it.
ALGORITHM = "AES-256-GCM"
#: Bit 0 of a segment header's ``flags``: the blocks are encrypted (the segment has a key object).
FLAG_ENCRYPTED = 0x0001
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
#: What encryption adds to a block's payload: its nonce before, the GCM tag after.
OVERHEAD = NONCE_BYTES + TAG_BYTES
KEY_OBJECT_SUFFIX = ".key.json"
KEY_OBJECT_FORMAT = "libkb-segment-key"

_BLOCK_LABEL = b"libkb-block\x00"
_SEAL_LABEL = b"libkb-seal\x00"


class NotAuthentic(Exception):
    """The bytes, their place or the key is not the one they were encrypted with (GCM's tag fails)."""


def _aesgcm() -> Any:
    # Here, not at the top: cryptography's import (8 ms) is for the runs that encrypt or decrypt.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM


class DataKey:
    """A segment's 256-bit data key; its repr and str never show the bytes."""

    __slots__ = ("_aead", "secret")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"a data key is {KEY_BYTES} bytes, not {len(secret)}")
        self.secret = secret
        self._aead = _aesgcm()(secret)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(_aesgcm().generate_key(bit_length=256))

    def __repr__(self) -> str:
        return "DataKey(***)"

    __str__ = __repr__

    def encrypt(self, data: Buffer, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed: bytes = self._aead.encrypt(nonce, bytes(data), aad)
        return nonce + sealed

    def decrypt(self, data: Buffer, aad: bytes) -> bytes:
        """Raises :class:`NotAuthentic` when the bytes, the place or the key is not the one encrypted."""
        from cryptography.exceptions import InvalidTag  # loaded with the key's AESGCM

        if len(data) < OVERHEAD:
            raise NotAuthentic()
        view = memoryview(data)
        try:
            opened: bytes = self._aead.decrypt(bytes(view[:NONCE_BYTES]), bytes(view[NONCE_BYTES:]), aad)
        except InvalidTag:
            raise NotAuthentic() from None
        return opened


def _place(backup_id: str, topic: str, partition: int, base_offset: int) -> bytes:
    bid, name = backup_id.encode(), topic.encode()
    return (
        struct.pack("<H", len(bid))
        + bid
        + struct.pack("<H", len(name))
        + name
        + struct.pack("<iq", partition, base_offset)
    )


def block_aad(backup_id: str, context: BlockContext) -> bytes:
    """A block's associated data: the backup, the segment, the block's index and raw size."""
    where = _place(backup_id, context.topic, context.partition, context.base_offset)
    return _BLOCK_LABEL + where + struct.pack("<II", context.block_index, context.raw_len)


def seal_aad(backup_id: str, topic: str, partition: int, base_offset: int, footer: bytes) -> bytes:
    """The seal's associated data: the segment's place and its footer up to ``footer_crc`` (68 bytes)."""
    return _SEAL_LABEL + _place(backup_id, topic, partition, base_offset) + bytes(footer[:68])


class BlockEncryption:
    """The chain's last transform: AES-256-GCM with the segment's data key, bound to the block's place.

    ``keys`` gives the data key of a block's segment; the writer's
    :class:`SegmentKeys` makes a fresh one per segment, a reader passes the
    one key it unwrapped.
    """

    name = "aes-256-gcm"

    def __init__(self, backup_id: str, keys: SegmentKeys | DataKey) -> None:
        self.backup_id = backup_id
        self._keys = keys

    def _key(self, context: BlockContext) -> DataKey:
        if isinstance(self._keys, DataKey):
            return self._keys
        return self._keys.key_for(context.topic, context.partition, context.base_offset)

    def encode(self, data: Buffer, context: BlockContext) -> bytes:
        return self._key(context).encrypt(data, block_aad(self.backup_id, context))

    def decode(self, data: Buffer, context: BlockContext) -> bytes:
        try:
            return self._key(context).decrypt(data, block_aad(self.backup_id, context))
        except NotAuthentic:
            raise TransformError(
                f"block {context.block_index} fails authentication (AES-256-GCM): its bytes were "
                "altered, or it was moved from another place (block, segment, partition or backup)"
            ) from None


class SegmentKeys:
    """The writer's data keys, one per open segment, made on the segment's first block (thread-safe)."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, int, int], DataKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SegmentKeys({len(self._keys)} open)"

    def key_for(self, topic: str, partition: int, base_offset: int) -> DataKey:
        with self._lock:
            key = self._keys.get((topic, partition, base_offset))
            if key is None:
                key = self._keys[(topic, partition, base_offset)] = DataKey.generate()
            return key

    def take(self, topic: str, partition: int, base_offset: int) -> DataKey:
        """The segment's key, forgotten here (its blocks are all encoded); a new one if it had no block."""
        with self._lock:
            key = self._keys.pop((topic, partition, base_offset), None)
        return key if key is not None else DataKey.generate()


def make_seal(
    key: DataKey, backup_id: str, topic: str, partition: int, base_offset: int, footer: bytes
) -> bytes:
    """The GCM tag (with its nonce) over the segment's footer: the block and record counts it states."""
    return key.encrypt(b"", seal_aad(backup_id, topic, partition, base_offset, footer))


def check_seal(
    key: DataKey,
    seal: bytes,
    backup_id: str,
    topic: str,
    partition: int,
    base_offset: int,
    footer: bytes,
    name: str,
) -> None:
    """Raise :class:`FormatError` naming ``name`` unless ``seal`` authenticates ``footer`` at this place."""
    try:
        key.decrypt(seal, seal_aad(backup_id, topic, partition, base_offset, footer))
    except NotAuthentic:
        raise FormatError(
            f"{name}: its footer fails authentication (AES-256-GCM seal): blocks were added, dropped "
            "or truncated, or the segment was moved from another place"
        ) from None


def key_object_key(segment_key: str) -> str:
    """The key object of the segment stored at ``segment_key`` (``.kbs`` -> ``.key.json``)."""
    return segment_key.rsplit(".", 1)[0] + KEY_OBJECT_SUFFIX


def segment_of_key_object(key: str) -> str | None:
    """The segment key a key object belongs to, or None if ``key`` is no key object's."""
    if not key.endswith(KEY_OBJECT_SUFFIX):
        return None
    return key[: -len(KEY_OBJECT_SUFFIX)] + ".kbs"


@dataclass(frozen=True, slots=True)
class KeyObject:
    """A segment's wrapped data key, the KEK that wrapped it, and the seal of its footer. Not secret."""

    segment: str  # the segment's key
    key_id: str  # the KEK's id (a name, or the KMS key's id/ARN)
    kek: str  # "local", "aws-kms", "azure-keyvault", "gcp-kms"
    wrapped_key: bytes
    seal: bytes
    algorithm: str = ALGORITHM

    def rewrapped(self, key_id: str, kek: str, wrapped_key: bytes) -> KeyObject:
        return KeyObject(self.segment, key_id, kek, wrapped_key, self.seal, self.algorithm)

    def to_json(self) -> bytes:
        body = {
            "format": KEY_OBJECT_FORMAT,
            "format_version": ENCRYPTION_VERSION,
            "segment": self.segment,
            "algorithm": self.algorithm,
            "key_id": self.key_id,
            "kek": self.kek,
            "wrapped_key": base64.b64encode(self.wrapped_key).decode(),
            "seal": base64.b64encode(self.seal).decode(),
        }
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, name: str, read_version: int) -> KeyObject:
        try:
            body: Any = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FormatError(f"{name}: not valid JSON ({exc})") from None
        if not isinstance(body, dict) or body.get("format") != KEY_OBJECT_FORMAT:
            raise FormatError(f"{name}: not a libkb segment key object")
        version = body.get("format_version")
        if not isinstance(version, int) or version > read_version:
            raise FormatError(
                f"{name}: format version {version!r} is newer than this libkb reads; upgrade libkb"
            )
        try:
            obj = cls(
                segment=str(body["segment"]),
                key_id=str(body["key_id"]),
                kek=str(body["kek"]),
                wrapped_key=base64.b64decode(body["wrapped_key"], validate=True),
                seal=base64.b64decode(body["seal"], validate=True),
                algorithm=str(body["algorithm"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{name}: malformed key object ({exc})") from None
        if obj.algorithm != ALGORITHM:
            raise FormatError(f"{name}: unknown algorithm {obj.algorithm!r} (libkb knows {ALGORITHM})")
        return obj

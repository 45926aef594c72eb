"""Tampering with an encrypted backup, as an attacker with write access to the bucket would: every
checksum recomputed, so only the encryption can tell. Each case is found, and the error names the object."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import replace

import pytest

from libkb.catalog import validate_backup
from libkb.errors import LibkbError
from libkb.format.encryption import key_object_key
from libkb.format.models import PartitionIndex, SegmentEntry, index_key
from libkb.format.segment import FOOTER_SIZE, SegmentFooter, SegmentReader, encode_footer
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.encryption.support import encrypted, env_key, keyring, new_key
from tests.fakes import FakeKafka
from tests.fakes.jobs import (
    BACKUP_ID,
    TOPIC,
    backup_config,
    backup_engine,
    restore_config,
    restore_engine,
    source_kafka,
)

_HEAD = struct.Struct("<IIIqqI")
Blocks = list[tuple[list[int], bytes]]  # (head fields, payload)


@pytest.fixture(params=["stream", "block"])
def backup(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> tuple[StorageBackend, object]:
    """``zstd_mode``: stream (blocks compressed in one context, then each encrypted) or block."""
    backend = create_backend_from_config(MemoryConfig())
    key = env_key(monkeypatch, "kek-1", new_key())
    # Blocks of about 1 KiB and 40 records a segment: each segment has several blocks.
    config = backup_config(zstd_mode=request.param)
    backup_engine(source_kafka(), backend, encrypted(config, key)).run()
    return backend, key


def split(data: bytes) -> tuple[bytes, Blocks, SegmentFooter]:
    reader = SegmentReader(data)
    blocks = []
    for info in reader.blocks():
        fields = list(_HEAD.unpack_from(data, info.position))
        blocks.append((fields, data[info.position + _HEAD.size : info.position + info.length]))
    return data[: reader.header.size], blocks, reader.footer


def join(header: bytes, blocks: Blocks, footer: SegmentFooter) -> bytes:
    """The segment again, every checksum made right (what an attacker can always do)."""
    body = bytearray(header)
    for fields, payload in blocks:
        fields[0], fields[5] = len(payload) + _HEAD.size - 4, zlib.crc32(payload)
        body += _HEAD.pack(*fields) + payload
    count = sum(f[2] for f, _ in blocks)
    first = blocks[0][0][3] if blocks else -1
    last = blocks[-1][0][4] if blocks else -1
    raw = sum(f[1] for f, _ in blocks)
    stats = replace(
        footer,
        record_count=count,
        block_count=len(blocks),
        first_offset=first,
        last_offset=last,
        raw_bytes=raw,
        body_crc=zlib.crc32(body),
    )
    return bytes(body) + encode_footer(stats)


def segments(backend: StorageBackend, partition: int) -> list[SegmentEntry]:
    return PartitionIndex.from_json(backend.get(index_key(BACKUP_ID, TOPIC, partition))).segments


def reindex(backend: StorageBackend, key: str, data: bytes) -> None:
    """Store ``data`` at ``key`` and make its index entry agree with it, as an attacker would."""
    backend.put(key, data)
    footer = SegmentReader(data).footer
    for p in range(3):
        ikey = index_key(BACKUP_ID, TOPIC, p)
        index = PartitionIndex.from_json(backend.get(ikey))
        for i, s in enumerate(index.segments):
            if s.key == key:
                index.segments[i] = replace(
                    SegmentEntry.from_footer(key, s.base_offset, footer, len(data), s.codec, s.encryption)
                )
        backend.put(ikey, index.to_json())


def flip_a_byte(backend: StorageBackend) -> str:
    key = segments(backend, 0)[0].key
    header, blocks, footer = split(backend.get(key))
    fields, payload = blocks[1]
    blocks[1] = (fields, payload[:40] + bytes([payload[40] ^ 1]) + payload[41:])
    reindex(backend, key, join(header, blocks, footer))
    return key


def flip_a_byte_footer_kept(backend: StorageBackend) -> str:
    """A payload byte flipped, its block checksum fixed, the footer (and its seal) left as it was:
    a restore reads blocks by their own checksums, and only the block's own tag can tell."""
    key = segments(backend, 0)[0].key
    data = backend.get(key)
    header, blocks, _ = split(data)
    fields, payload = blocks[-1]
    blocks[-1] = (fields, payload[:40] + bytes([payload[40] ^ 1]) + payload[41:])
    backend.put(key, join(header, blocks, SegmentReader(data).footer)[:-FOOTER_SIZE] + data[-FOOTER_SIZE:])
    return key


def swap_payloads_footer_kept(backend: StorageBackend) -> str:
    """Two blocks' payloads swapped (heads and checksums fixed), the footer left as it was."""
    key = segments(backend, 0)[0].key
    data = backend.get(key)
    header, blocks, _ = split(data)
    (f0, p0), (f1, p1) = blocks[-2], blocks[-1]
    blocks[-2], blocks[-1] = (f0, p1), (f1, p0)
    backend.put(key, join(header, blocks, SegmentReader(data).footer)[:-FOOTER_SIZE] + data[-FOOTER_SIZE:])
    return key


def swap_blocks(backend: StorageBackend) -> str:
    key = segments(backend, 0)[0].key
    header, blocks, footer = split(backend.get(key))
    (f0, p0), (f1, p1) = blocks[0], blocks[1]
    blocks[0], blocks[1] = (f0, p1), (f1, p0)  # the heads stay in offset order; the payloads move
    reindex(backend, key, join(header, blocks, footer))
    return key


def truncate(backend: StorageBackend) -> str:
    key = segments(backend, 0)[0].key
    header, blocks, footer = split(backend.get(key))
    last = blocks[-2][0][4]
    reindex(backend, key, join(header, blocks[:-1], replace(footer, end_offset=last + 1)))
    _shift_next(backend, key, last + 1)
    return key


def _shift_next(backend: StorageBackend, key: str, end: int) -> None:
    """Keep the partition's coverage tiled after a truncated segment: mark the rest missing."""
    ikey = index_key(BACKUP_ID, TOPIC, 0)
    index = PartitionIndex.from_json(backend.get(ikey))
    entry = next(s for s in index.segments if s.key == key)
    index.segments = [replace(entry, end_offset=end) if s.key == key else s for s in index.segments]
    nxt = index.segments[1].base_offset if len(index.segments) > 1 else None
    if nxt is not None and nxt > end:
        from libkb.format.models import MissingRange

        index.missing.append(MissingRange(end, nxt, "retention"))
        index.missing.sort(key=lambda m: m.start)
    backend.put(ikey, index.to_json())


def swap_partitions(backend: StorageBackend) -> str:
    """Partition 1's first segment and its key object stored as partition 0's (same base offset)."""
    mine, theirs = segments(backend, 0)[0], segments(backend, 1)[0]
    assert mine.base_offset == theirs.base_offset
    reindex(backend, mine.key, backend.get(theirs.key))
    obj = json.loads(backend.get(key_object_key(theirs.key)))
    obj["segment"] = mine.key  # made to look like its own
    backend.put(key_object_key(mine.key), json.dumps(obj).encode())
    return mine.key


def swap_segment_only(backend: StorageBackend) -> str:
    """The second segment's bytes stored as the first's, the key object left alone."""
    first, second = segments(backend, 0)[0], segments(backend, 0)[1]
    reindex(backend, first.key, backend.get(second.key))
    return first.key


def replace_wrapped_key(backend: StorageBackend) -> str:
    first, second = segments(backend, 0)[0], segments(backend, 0)[1]
    obj = json.loads(backend.get(key_object_key(first.key)))
    obj["wrapped_key"] = json.loads(backend.get(key_object_key(second.key)))["wrapped_key"]
    backend.put(key_object_key(first.key), json.dumps(obj).encode())
    return first.key


def tampered_seal(backend: StorageBackend) -> str:
    first = segments(backend, 0)[0]
    obj = json.loads(backend.get(key_object_key(first.key)))
    seal = bytearray(base64.b64decode(obj["seal"]))
    seal[-1] ^= 1
    obj["seal"] = base64.b64encode(bytes(seal)).decode()
    backend.put(key_object_key(first.key), json.dumps(obj).encode())
    return first.key


#: Cases a restore finds mid-way, at the block: the records of the blocks before it may be written.
FOUND_AT_THE_BLOCK = {"flipped byte, footer kept", "payloads swapped, footer kept"}
CASES: dict[str, Callable[[StorageBackend], str]] = {
    "flipped byte": flip_a_byte,
    "flipped byte, footer kept": flip_a_byte_footer_kept,
    "payloads swapped, footer kept": swap_payloads_footer_kept,
    "swapped blocks": swap_blocks,
    "truncated": truncate,
    "segment swapped between partitions": swap_partitions,
    "segment replaced by another of its partition": swap_segment_only,
    "wrapped key replaced": replace_wrapped_key,
    "seal altered": tampered_seal,
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_found_by_restore_and_deep_validate_naming_the_segment(
    backup: tuple[StorageBackend, object], case: str
) -> None:
    backend, key = backup
    name = CASES[case](backend)
    report = validate_backup(backend, BACKUP_ID, deep=True, keyring=keyring(key))  # type: ignore[arg-type]
    assert not report.ok and any(name in p for p in report.problems), report.problems
    target = FakeKafka()
    with pytest.raises(LibkbError, match=name.split("/")[-1]) as raised:
        restore_engine(target, backend, encrypted(restore_config(), key)).run()  # type: ignore[arg-type]
    if case in FOUND_AT_THE_BLOCK:
        assert "fails authentication (AES-256-GCM)" in str(raised.value)
    else:
        assert f"{TOPIC}-restored" not in target.cluster.topics  # found before anything was written

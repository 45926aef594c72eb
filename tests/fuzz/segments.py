"""Checksum-fixing mutators for libkb segments: valid checksums over invalid contents.

A flipped byte is caught by a checksum; a writer bug or a malicious file is
not, because its checksums are right. These helpers change a segment's bytes,
its block heads or its records, then recompute every checksum they can find
(header, each block's payload, body, footer), so the reader's structural and
content checks are what is exercised.
"""

from __future__ import annotations

import struct
import zlib

import msgpack

from libkb.format.segment import (
    _BLOCK_HEAD,
    _FOOTER,
    _HEADER_FIXED,
    CODEC_ZSTD_STREAM,
    FOOTER_SIZE,
    SegmentReader,
    codec_chain,
    decode_header,
)
from libkb.format.transforms import BlockContext
from libkb.format.zstream import StreamEncoder


def fix_checksums(data: bytes | bytearray) -> bytes:
    """``data`` with every checksum recomputed that its (maybe broken) structure lets us find."""
    out = bytearray(data)
    if len(out) < _HEADER_FIXED.size:
        return bytes(out)
    size = struct.unpack_from("<I", out, 8)[0]
    if 4 <= size <= len(out):
        struct.pack_into("<I", out, size - 4, zlib.crc32(out[: size - 4]))
    else:
        return bytes(out)
    end = len(out) - FOOTER_SIZE
    pos = size
    while pos >= 0 and pos + _BLOCK_HEAD.size <= end:
        length = struct.unpack_from("<I", out, pos)[0]
        if length < _BLOCK_HEAD.size - 4 or pos + 4 + length > end:
            break
        payload = out[pos + _BLOCK_HEAD.size : pos + 4 + length]
        struct.pack_into("<I", out, pos + _BLOCK_HEAD.size - 4, zlib.crc32(payload))
        pos += 4 + length
    if end >= 0 and out[end : end + 4] == b"LKBF":
        body_crc_at = end + _FOOTER.size - 12
        struct.pack_into("<I", out, body_crc_at, zlib.crc32(out[:end]))
        struct.pack_into("<I", out, body_crc_at + 4, zlib.crc32(out[end : end + FOOTER_SIZE - 8]))
    return bytes(out)


def block_spans(data: bytes) -> list[tuple[int, int]]:
    """(position, total length) of each block of a well-formed segment."""
    pos = decode_header(data).size
    end = len(data) - FOOTER_SIZE
    spans = []
    while pos < end:
        length = struct.unpack_from("<I", data, pos)[0]
        spans.append((pos, 4 + length))
        pos += 4 + length
    return spans


def replace_block(
    data: bytes,
    index: int,
    raw: bytes,
    *,
    raw_len: int | None = None,
    count: int | None = None,
    first: int | None = None,
    last: int | None = None,
) -> bytes:
    """``data`` with block ``index``'s records replaced by ``raw`` (encoded with the segment's codec).

    Head fields default to the old head's (``raw_len`` to ``len(raw)``); the
    footer's stats are left as they were; every checksum is fixed.
    """
    pos, total = block_spans(data)[index]
    _len, _raw, old_count, old_first, old_last, _crc = _BLOCK_HEAD.unpack_from(data, pos)
    payload = _encode(data, index, raw)
    head = _BLOCK_HEAD.pack(
        len(payload) + _BLOCK_HEAD.size - 4,
        len(raw) if raw_len is None else raw_len,
        old_count if count is None else count,
        old_first if first is None else first,
        old_last if last is None else last,
        0,
    )
    return fix_checksums(data[:pos] + head + payload + data[pos + total :])


def _encode(data: bytes, index: int, raw: bytes) -> bytes:
    """``raw`` as block ``index``'s payload; zstd-stream: continuing the real blocks before it."""
    header = decode_header(data)
    place = BlockContext(header.topic, header.partition, header.base_offset, index, len(raw))
    if header.codec != CODEC_ZSTD_STREAM:
        return bytes(codec_chain(header.codec).encode(raw, place))
    encoder = StreamEncoder()
    for before in range(index):
        encoder.encode(raw_block(data, before), before)
    return encoder.encode(raw, index)


def raw_block(data: bytes, index: int) -> bytes:
    """The records' bytes of block ``index`` of a well-formed segment (zstd-stream: decoded from block 0)."""
    reader = SegmentReader(data)
    blocks, decoder = list(reader.blocks()), reader.decoder()
    out = b""
    for info in blocks[reader.decode_from(blocks, index, decoder) : index + 1]:
        payload = memoryview(data)[info.position + _BLOCK_HEAD.size : info.position + info.length]
        out = bytes(decoder.decode(payload, info))
    return out


def pack_items(items: list[object]) -> bytes:
    """Arbitrary msgpack items back to back, as a block's records would be."""
    return b"".join(msgpack.packb(item, use_bin_type=True) for item in items)

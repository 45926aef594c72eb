"""Hostile bytes in libkb segments: every codec, every reader path; SegmentError naming the key or nothing.

Each property starts from a valid segment, changes it (its bytes, a block
head, its records, a frame header) and fixes every checksum, then reads it
the ways libkb does: the deep check (``SegmentReader.verify`` and the source's
``verify``), a restore's block reads (``batches``, ``block_records``), and the
reference decoder. Any outcome but records of the right types or a
:class:`~libkb.errors.FormatError` naming the object fails.
"""

from __future__ import annotations

import struct
import tracemalloc
from typing import Any

import pytest
import zstandard
from hypothesis import strategies as st

from libkb.errors import FormatError
from libkb.format.models import SegmentEntry
from libkb.format.segment import (
    _BLOCK_HEAD,
    CODEC_LZ4,
    CODEC_NAMES,
    CODEC_NONE,
    CODEC_ZSTD,
    CODEC_ZSTD_STREAM,
    MAX_BLOCK_RAW_BYTES,
    SegmentError,
    SegmentReader,
    block_records,
    codec_chain,
    decode_footer,
    decode_header,
    encode_segment,
)
from libkb.format.transforms import TransformError
from libkb.source.libkb_v1.segment import V1Segment
from tests.fuzz.budget import fuzz
from tests.fuzz.segments import block_spans, fix_checksums, pack_items, raw_block, replace_block

KEY = "b1/topics/t/partition=0/segment-00000000000000000100.kbs"
CODECS = [CODEC_NONE, CODEC_ZSTD, CODEC_LZ4, CODEC_ZSTD_STREAM]


def _records(
    n: int, base: int = 100
) -> list[tuple[int, int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]] | None]]:
    return [
        (base + i, 1_700_000_000_000 + i, 1, b"k%d" % i, b"v" * (i % 7), [("h", b"x")] if i % 3 else None)
        for i in range(n)
    ]


def _segment(codec: int, count: int = 12, block_bytes: int = 64) -> bytes:
    return encode_segment("t", 0, 100, 100 + count + 1, _records(count), codec=codec, block_bytes=block_bytes)


SEGMENTS = {codec: _segment(codec) for codec in CODECS}


def _typed(record: object) -> bool:
    if not (isinstance(record, tuple) and len(record) == 6):
        return False
    offset, ts, ts_type, key, value, headers = record
    return (
        all(type(n) is int for n in (offset, ts, ts_type))
        and all(type(v) in (bytes, type(None)) for v in (key, value))
        and (headers is None or all(type(h) is tuple and type(h[0]) is str for h in headers))
    )


def read_every_way(data: bytes, key: str = KEY) -> None:
    """Read ``data`` as validate --deep and restore do; only FormatError naming ``key`` may come out."""
    try:
        reader = SegmentReader(data, name=key)
        reader.verify()
        decoder = reader.decoder()  # zstd-stream: one decoder, every block in order
        for info in reader.blocks():
            records = block_records(data, info, reader.header.codec, name=key, decoder=decoder)
            assert all(map(_typed, records))
        assert all(map(_typed, reader.records()))
    except FormatError as exc:
        assert key in str(exc), exc
    try:
        footer = decode_footer(data, name=key)
        header = decode_header(data, name=key)
    except FormatError as exc:
        assert key in str(exc), exc
        return
    entry = SegmentEntry.from_footer(key, header.base_offset, footer, len(data), CODEC_NAMES[header.codec])
    segment = V1Segment(entry, data)
    for attempt in (lambda: segment.verify(), lambda: [*segment.batches(0, 1 << 62)]):
        try:
            attempt()
        except FormatError as exc:
            assert key in str(exc), exc


# -- byte mutations, checksums fixed ----------------------------------------------------


@st.composite
def byte_mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(SEGMENTS[draw(st.sampled_from(CODECS))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "int"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif at + 8 <= len(data):
            struct.pack_into(
                "<q", data, at, draw(st.sampled_from([-1, 0, 1 << 31, (1 << 63) - 1, -(1 << 63)]))
            )
        if not data:
            data = bytearray(b"L")
    return fix_checksums(data)


def _bytes_mutated(data: bytes) -> None:
    read_every_way(data)


test_byte_mutations, test_byte_mutations_soak = fuzz(_bytes_mutated, byte_mutations(), examples=300)


# -- block heads that lie, checksums fixed --------------------------------------------


u32 = st.integers(0, (1 << 32) - 1)
i64 = st.integers(-(1 << 63), (1 << 63) - 1)


@st.composite
def lying_heads(draw: st.DrawFn) -> bytes:
    codec = draw(st.sampled_from(CODECS))
    data = SEGMENTS[codec]
    index = draw(st.integers(0, len(block_spans(data)) - 1))
    pos, _ = block_spans(data)[index]
    fields = list(_BLOCK_HEAD.unpack_from(data, pos))
    which = draw(st.sampled_from([1, 2, 3, 4]))
    fields[which] = draw(u32 if which < 3 else i64)
    out = bytearray(data)
    _BLOCK_HEAD.pack_into(out, pos, *fields)
    return fix_checksums(out)


def _head_lies(data: bytes) -> None:
    read_every_way(data)


test_lying_block_heads, test_lying_block_heads_soak = fuzz(_head_lies, lying_heads(), examples=200)


# -- records of the wrong shape or types, validly compressed and checksummed ------------


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 63), (1 << 64) - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.binary(min_size=2, max_size=4).map(lambda b: b.decode("latin-1")),
)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=7), st.dictionaries(st.text(max_size=3), inner, max_size=3))


items = st.recursive(scalars, _nested, max_leaves=20)
near_records = st.lists(
    st.one_of(scalars, st.lists(st.tuples(items, items).map(list), max_size=3)), min_size=5, max_size=7
)


@st.composite
def hostile_records(draw: st.DrawFn) -> bytes:
    codec = draw(st.sampled_from(CODECS))
    data = SEGMENTS[codec]
    index = draw(st.integers(0, len(block_spans(data)) - 1))
    good = raw_block(data, index)
    kind = draw(st.sampled_from(["items", "near", "bytes", "truncate"]))
    if kind == "items":
        raw = pack_items(draw(st.lists(items, min_size=1, max_size=4)))
    elif kind == "near":
        raw = pack_items(draw(st.lists(near_records, min_size=1, max_size=4)))
    elif kind == "bytes":
        changed = bytearray(good)
        for _ in range(draw(st.integers(1, 4))):
            changed[draw(st.integers(0, len(changed) - 1))] = draw(st.integers(0, 255))
        raw = bytes(changed)
    else:
        raw = good[: draw(st.integers(0, len(good) - 1))]
    count = draw(st.one_of(st.none(), st.integers(0, 8)))
    return replace_block(data, index, raw, count=count)


def _records_hostile(data: bytes) -> None:
    read_every_way(data)


test_hostile_records, test_hostile_records_soak = fuzz(_records_hostile, hostile_records(), examples=300)


# -- frames that declare sizes to allocate ----------------------------------------------


@st.composite
def oversized(draw: st.DrawFn) -> bytes:
    codec = draw(st.sampled_from(CODECS))
    data = SEGMENTS[codec]
    raw = raw_block(data, 0)
    declared = draw(st.sampled_from([MAX_BLOCK_RAW_BYTES + 1, 0xF000_0000, (1 << 32) - 1, len(raw) + 1]))
    return replace_block(data, 0, raw, raw_len=declared)


def _declared_sizes(data: bytes) -> None:
    read_every_way(data)


test_declared_sizes, test_declared_sizes_soak = fuzz(_declared_sizes, oversized(), examples=30)


# -- the findings, as plain regression tests -----------------------------------------------


def test_a_topic_name_that_is_not_utf8_is_a_segment_error() -> None:
    data = bytearray(SEGMENTS[CODEC_ZSTD])
    data[decode_header(bytes(data)).size - 5] = 0xFF  # the topic's last byte ("t")
    with pytest.raises(SegmentError, match=f"^{KEY}: the topic name in the header is not UTF-8"):
        decode_header(fix_checksums(data), name=KEY)


def test_a_zstd_frame_declaring_gigabytes_is_refused_before_allocating() -> None:
    data = SEGMENTS[CODEC_ZSTD]
    pos, total = block_spans(data)[0]
    payload = bytes(data[pos + _BLOCK_HEAD.size : pos + total])
    # The frame header (RFC 8878): single segment, no dictionary; its content size field, widened
    # to 4 bytes (flag 2), states 3.75 GiB.
    descriptor = payload[4]
    assert descriptor & 0x23 == 0x20
    width = {0: 1, 1: 2, 2: 4, 3: 8}[descriptor >> 6]
    head = (
        payload[:4]
        + bytes([(descriptor & 0x3F) | 0x80])
        + struct.pack("<I", 0xF000_0000)
        + payload[5 + width :]
    )
    assert zstandard.get_frame_parameters(head).content_size == 0xF000_0000
    info = next(SegmentReader(data, name=KEY).blocks())
    tracemalloc.start()
    with pytest.raises(TransformError, match="its frame declares 4026531840 bytes"):
        codec_chain(CODEC_ZSTD).decode(bytes(head), info.context)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20

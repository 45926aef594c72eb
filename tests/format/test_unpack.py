"""The C reader of decoded blocks (``_unpack.h``, through ``RecordProducer.read_packed``).

A restore produces a whole block straight from its decoded bytes only when
the C reader accepts it, and the reader must accept exactly what the Python
decoder accepts (any msgpack width, every check of :mod:`libkb.format.records`),
and read the same records from it; anything else is declined, and Python
decodes the block and names what is wrong. These tests hold the two to each
other on generated blocks, hand-made encodings and random corruption.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings

from libkb.format._packer import RecordProducer
from libkb.format.segment import (
    CODEC_NONE,
    CODEC_ZSTD,
    RECORDS_AT,
    Record,
    SegmentReader,
    _unpacked,
    decoded_block,
    encode_segment,
)
from libkb.restore.partition import as_produced
from tests.format.test_segment import record_lists

FIRST = 1000
Produced = list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]] | None, int]]


def python_reads(raw: bytes | bytearray, first: int, last: int, count: int) -> Produced | None:
    """What the Python decoder makes of a block, as produced; None where C must decline it."""
    try:
        records = _unpacked(bytearray(raw))
    except Exception:
        return None
    if len(records) != count or [r[0] for r in records] != list(range(first, last + 1)):
        return None
    return [_named_as_sent(*as_produced(r, False, 0)) for r in records]


def _named_as_sent(key: Any, value: Any, headers: Any, ts: int) -> Any:
    """librdkafka takes a header name as a C string, from every path (``Producer.produce()`` too):
    a name with a NUL in it is sent up to the NUL."""
    if headers is not None:
        headers = [(name.split("\0", 1)[0], v) for name, v in headers]
    return key, value, headers, ts


def c_reads(raw: bytes | bytearray, first: int, last: int, count: int) -> Produced | None:
    result: Produced | None = RecordProducer.read_packed(raw, RECORDS_AT, first, last, count)
    return result


def block(*items: bytes) -> bytes:
    """A decoded block: the array head for its record count, then the records' bytes as given."""
    return struct.pack(">BI", 0xDD, len(items)) + b"".join(items)


def packed(offset: int, key: Any = b"k", value: Any = b"v", headers: Any = None, ts: int = 5) -> bytes:
    return bytes(msgpack.packb([offset, ts, 1, key, value, headers], use_bin_type=True))


def agree(raw: bytes, first: int = FIRST, count: int = 1) -> Produced | None:
    last = first + count - 1
    want = python_reads(raw, first, last, count)
    assert c_reads(raw, first, last, count) == want
    return want


@settings(max_examples=150, deadline=None)
@given(data=record_lists())
def test_the_c_reader_reads_every_generated_block_as_python_does(data: tuple[int, int, list[Record]]) -> None:
    base, end, records = data
    blob = encode_segment("t", 0, base, end, records, codec=CODEC_ZSTD, block_bytes=300)
    for info in SegmentReader(blob).blocks():
        raw = decoded_block(blob, info, CODEC_ZSTD).raw
        assert raw is not None
        first, last, count = info.first_offset, info.last_offset, info.record_count
        got = c_reads(raw, first, last, count)
        assert got == python_reads(raw, first, last, count)
        consecutive = last - first + 1 == count
        assert (got is not None) == consecutive  # generated blocks are plain: only gaps decline


def test_every_width_msgpack_allows_is_read() -> None:
    u8, u16, u32, u64 = b"\xcc", b"\xcd", b"\xce", b"\xcf"
    wide_offset = u64 + struct.pack(">Q", FIRST)
    wide_ts = b"\xd3" + struct.pack(">q", 1_600_000_000_000)
    record = (
        b"\xdc\x00\x06"  # array 16 of 6
        + wide_offset
        + wide_ts
        + u8
        + b"\x01"
        + b"\xc5\x00\x02ab"  # bin 16
        + b"\xc6\x00\x00\x00\x03xyz"  # bin 32
        + b"\xdd\x00\x00\x00\x02"  # array 32 of 2 headers
        + b"\x92\xd9\x03h\xc3\xa9\xc4\x00"  # str 8 "hé", empty bin 8
        + b"\x92\xda\x00\x01n\xc0"  # str 16 "n", nil
    )
    assert agree(block(record)) == [(b"ab", b"xyz", [("hé", b""), ("n", None)], 1_600_000_000_000)]
    for offset in (u16 + struct.pack(">H", FIRST), u32 + struct.pack(">I", FIRST), b"\xd1\x03\xe8"):
        assert agree(block(b"\x96" + offset + b"\x05\x01\xc0\xc0\xc0")) == [(None, None, None, 5)]
    negative = b"\x96" + b"\xcd\x03\xe8" + b"\xff\x01\xc0\xc0\x90"  # ts -1 (fixint), headers []
    assert agree(block(negative)) == [(None, None, [], 0)]  # no usable timestamp: the broker's


@pytest.mark.parametrize(
    "record",
    [
        packed(FIRST, key="text"),  # a str key
        packed(FIRST, value=1.5),
        packed(FIRST, value=True),
        packed(FIRST, headers=[["h", "text"]]),
        packed(FIRST, headers=[["h", b"v", b"extra"]]),
        packed(FIRST, headers=[[b"h", b"v"]]),  # a bin header name
        packed(FIRST, headers={"h": b"v"}),
        packed(FIRST, ts=2**64 - 1),  # beyond int64
        packed(FIRST + 1),  # not the stated offset
        packed(FIRST)[:-1],  # cut short
        packed(FIRST) + b"\xc0",  # a byte after the last record
        bytes(msgpack.packb([FIRST, 5, 1, None, None], use_bin_type=True)),  # five fields
    ],
)
def test_what_python_refuses_c_declines(record: bytes) -> None:
    assert agree(block(record)) is None


@pytest.mark.parametrize(
    "name",
    [
        b"\xed\xa0\x80",
        b"\xc0\x80",
        b"\xe0\x80\x80",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"h\xc3",
        b"\x80",
    ],
)
def test_a_header_name_that_is_not_utf8_is_declined(name: bytes) -> None:
    record = b"\x96\xcd\x03\xe8\x05\x01\xc0\xc0\x91\x92" + bytes([0xA0 | len(name)]) + name + b"\xc0"
    assert agree(block(record)) is None


def test_valid_utf8_of_every_length_is_read() -> None:
    for text in ("a", "é", "€", "\U0001f600", "\ud7ff", "\ue000", "\U0010ffff"):
        name = text.encode()
        record = b"\x96\xcd\x03\xe8\x05\x01\xc0\xc0\x91\x92" + bytes([0xA0 | len(name)]) + name + b"\xc0"
        assert agree(block(record)) == [(None, None, [(text, None)], 5)]


def test_a_block_unlike_its_head_is_declined() -> None:
    raw = block(packed(FIRST), packed(FIRST + 1), packed(FIRST + 2))
    assert c_reads(raw, FIRST, FIRST + 2, 3) is not None
    for first, last, count in [(FIRST, FIRST + 2, 2), (FIRST, FIRST + 3, 3), (FIRST + 1, FIRST + 3, 3)]:
        assert c_reads(raw, first, last, count) is None
    gap = block(packed(FIRST), packed(FIRST + 2))
    assert c_reads(gap, FIRST, FIRST + 2, 2) is None  # a compacted block: records one by one
    with pytest.raises(IndexError):
        RecordProducer.read_packed(raw, len(raw) + 1, FIRST, FIRST + 2, 3)


def test_random_corruption_is_declined_exactly_where_python_refuses() -> None:
    records: list[Record] = [
        (
            FIRST + i,
            1_600_000_000_000 + i,
            i % 2,
            None if i % 5 == 0 else b"k%d" % i,
            b"v" * (i % 40),
            None if i % 3 else [("h\u00e9", b"x"), ("n", None)],
        )
        for i in range(40)
    ]
    blob = encode_segment("t", 0, FIRST, FIRST + 40, records, codec=CODEC_NONE, block_bytes=1 << 20)
    (info,) = SegmentReader(blob).blocks()
    raw = decoded_block(blob, info, CODEC_NONE).raw
    assert raw is not None
    rng = random.Random(7)
    accepted = 0
    for _ in range(3000):
        mutated = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(RECORDS_AT, len(mutated))] = rng.randrange(256)
        want = python_reads(mutated, FIRST, FIRST + 39, 40)
        assert c_reads(mutated, FIRST, FIRST + 39, 40) == want
        accepted += want is not None
    assert 0 < accepted < 3000  # both kinds were met

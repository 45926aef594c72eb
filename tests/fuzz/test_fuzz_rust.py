"""Hostile bytes in the Rust tool's segments: SegmentError naming the object, or the right records.

Each case starts from a valid segment of each codec, changes its record
area, its header or its bytes, recompresses and recomputes the CRC (valid
checksum over invalid contents), then reads it with the C decoder and with
the Python reference. The two decoders are also compared on the raw record
area: the same records, or a ValueError from both.
"""

from __future__ import annotations

import struct
import zlib

from hypothesis import strategies as st

from libkb.format import rust_segment
from libkb.format.rust_segment import (
    HEADER_SIZE,
    MAX_RECORD_BYTES,
    SegmentRecords,
    open_segment,
    py_decode_records,
)
from libkb.format.segment import SegmentError
from tests.fuzz.budget import fuzz
from tests.rust_format import RustRecord, as_stored, compress, encode_record

NAME = "b1/topic/t/partition=0/segment-0001.bin"
CODECS = ["none", "zstd", "lz4"]
RECORDS = [
    as_stored(RustRecord(10 + i, 1_700_000_000_000 + i, b"k%d" % i, b"v" * i, [("h", b"x")] if i % 2 else []))
    for i in range(8)
]
AREA = b"".join(map(encode_record, RECORDS))


def build(area: bytes, codec: str, count: int = len(RECORDS), start: int = 10, end: int = 17) -> bytes:
    head = b"KBAK" + struct.pack("<BBHQqq", 1, CODECS.index(codec), 0, count, start, end)
    body = head + compress(area, codec)
    return body + struct.pack("<I", zlib.crc32(body)) + b"BKAE"


def fix_crc(data: bytes | bytearray) -> bytes:
    if len(data) < 8:
        return bytes(data)
    body = bytes(data[:-8])
    return body + struct.pack("<I", zlib.crc32(body)) + bytes(data[-4:])


def read(data: bytes, accelerated: bool) -> None:
    saved = rust_segment.decode_records
    if not accelerated:
        rust_segment.decode_records = py_decode_records
    try:
        header = open_segment(data, NAME)
        for strip in (True, False):
            for batch in SegmentRecords(data, header, NAME, strip=strip, batch_bytes=64):
                assert batch and all(type(r[0]) is int and type(r[5]) in (list, type(None)) for r in batch)
    except SegmentError as exc:
        assert str(exc).startswith(NAME + ": "), exc
    finally:
        rust_segment.decode_records = saved


@st.composite
def mutated_areas(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(the changed record area, the whole segment holding it with a valid CRC)."""
    area = bytearray(AREA)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(area) - 1))
        kind = draw(st.sampled_from(["byte", "i32", "u16", "cut", "insert"]))
        if kind == "byte":
            area[at] = draw(st.integers(0, 255))
        elif kind == "i32" and at + 4 <= len(area):
            value = draw(st.sampled_from([-2, -1, 0, 1 << 30, (1 << 31) - 1, MAX_RECORD_BYTES + 1]))
            struct.pack_into("<i" if value < (1 << 31) else "<I", area, at, value)
        elif kind == "u16" and at + 2 <= len(area):
            struct.pack_into("<H", area, at, draw(st.sampled_from([0, 1, 0xFFFF])))
        elif kind == "cut":
            del area[at:]
        else:
            area[at:at] = draw(st.binary(min_size=1, max_size=6))
        if not area:
            area = bytearray(b"\0")
    codec = draw(st.sampled_from(CODECS))
    return bytes(area), build(bytes(area), codec, count=draw(st.sampled_from([len(RECORDS), 1, 0, 1 << 40])))


def _area(case: tuple[bytes, bytes]) -> None:
    area, data = case
    for accelerated in (True, False):
        read(data, accelerated)
    if rust_segment.ACCELERATED:  # the C decoder against the reference on the raw area
        outcomes: list[object] = []
        for decode in (rust_segment.decode_records, py_decode_records):
            try:
                outcomes.append(decode(area, 0, len(area), 1 << 30, 1 << 20, -1, True, 0))
            except ValueError as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1]


test_rust_record_areas, test_rust_record_areas_soak = fuzz(_area, mutated_areas(), examples=300)


@st.composite
def mutated_segments(draw: st.DrawFn) -> bytes:
    data = bytearray(build(AREA, draw(st.sampled_from(CODECS))))
    kind = draw(st.sampled_from(["header", "bytes", "lz4-size"]))
    if kind == "header":
        field = draw(st.sampled_from([("<Q", 8), ("<q", 16), ("<q", 24), ("<B", 5)]))
        value = draw(st.integers(0, 255) if field[0] == "<B" else st.integers(-(1 << 40), 1 << 40).map(abs))
        struct.pack_into(field[0], data, field[1], value)
    elif kind == "bytes":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    else:  # an lz4 block (or any codec's first bytes) stating a huge size
        struct.pack_into(
            "<I", data, HEADER_SIZE, draw(st.sampled_from([0xF000_0000, (1 << 32) - 1, len(AREA) * 300]))
        )
    return fix_crc(data)


def _segment(data: bytes) -> None:
    for accelerated in (True, False):
        read(data, accelerated)


test_rust_segments, test_rust_segments_soak = fuzz(_segment, mutated_segments(), examples=300)

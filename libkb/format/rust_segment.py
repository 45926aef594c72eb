"""The segments of the Rust kafka-backup (osodevops, v0.1 to v0.17.4), read. Pure: bytes in, records out.

libkb reads these segments; it never writes them. The layout (all integers
little-endian; docs/format.rst, "Reading the Rust tool's backups")::

    header   magic "KBAK" | version u8 (1) | codec u8 (0 none, 1 zstd, 2 lz4) | reserved u16
             | record_count u64 | start_offset i64 | end_offset i64 (inclusive)
    body     the record area, compressed as one unit: one zstd frame, or an lz4
             block after its u32 uncompressed size, or as it is
    footer   crc32 u32 (of header and body as stored) | magic "BKAE"

The record area is ``record_count`` records back to back (see
``_rustrec.c``). Records come out as libkb's :data:`~libkb.format.segment.Record`
tuples with timestamp type 1 (CreateTime): the format stores no type, and a
restore must produce the stored timestamp.

By default the tool appended its own headers to every record:
``x-original-offset`` and ``x-original-timestamp`` (8 bytes, the record's
offset and timestamp), then ``x-source-cluster`` when configured. They are
recognised only as the record's last headers holding its own offset and
timestamp, counted, and left out unless ``strip`` is false.

A segment is decoded in batches of about :data:`BATCH_BYTES` of record bytes:
a zstd frame is decompressed as a stream, so memory stays at a batch or two
whatever the segment's size; an lz4 block can only be decompressed whole.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import lz4.block
import zstandard

from libkb.format.checksum import block_crc
from libkb.format.segment import Record, SegmentError

MAGIC = b"KBAK"
END_MAGIC = b"BKAE"
SEGMENT_VERSION = 1
CODEC_NAMES = {0: "none", 1: "zstd", 2: "lz4"}
#: The key suffix of each codec's segments.
SUFFIXES = {"none": ".bin", "zstd": ".bin.zst", "lz4": ".bin.lz4"}
TOOL_HEADERS = ("x-original-offset", "x-original-timestamp", "x-source-cluster")
_HEADER = struct.Struct("<4sBBHQqq")
_FOOTER = struct.Struct("<I4s")
HEADER_SIZE = _HEADER.size
FOOTER_SIZE = _FOOTER.size
#: Record bytes decoded per batch: about one libkb block.
BATCH_BYTES = 1 << 20
#: The longest record a reader accepts (the C decoder's ``MAX_RECORD``): Kafka bounds a
#: record's size (``message.max.bytes``), as for libkb's blocks
#: (:data:`~libkb.format.segment.MAX_BLOCK_RAW_BYTES`). A longer stated length is corrupt or
#: hostile, and is refused before a reader gathers its bytes.
MAX_RECORD_BYTES = 1 << 30
#: LZ4 cannot expand data more than 255 times (each byte of a match's length
#: extension adds at most 255 bytes): a block stating a larger size is refused before allocating it.
LZ4_MAX_RATIO = 255


@dataclass(frozen=True, slots=True)
class RustSegmentHeader:
    version: int
    codec: str
    record_count: int
    start_offset: int  # the first record's offset
    end_offset: int  # the last record's offset (inclusive)


def read_header(data: bytes | memoryview, name: str) -> RustSegmentHeader:
    """The 32-byte header, checked for magic, version and codec (the checksum: :func:`open_segment`)."""
    if len(data) < HEADER_SIZE:
        raise SegmentError(f"{name}: truncated: {len(data)} bytes, not even a header")
    magic, version, codec, _reserved, count, start, end = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SegmentError(f"{name}: not a kafka-backup (Rust) segment (magic {bytes(magic)!r})")
    if version != SEGMENT_VERSION:
        raise SegmentError(
            f"{name}: segment format version {version}; libkb reads the Rust tool's version {SEGMENT_VERSION}"
        )
    if codec not in CODEC_NAMES:
        raise SegmentError(f"{name}: unknown codec {codec}")
    if count and not (0 <= start <= end and count <= end - start + 1):
        raise SegmentError(
            f"{name}: the header states {count} records at offsets {start}-{end}, which cannot hold them"
        )
    return RustSegmentHeader(version, CODEC_NAMES[codec], count, start, end)


def open_segment(data: bytes, name: str) -> RustSegmentHeader:
    """The header of a whole segment whose footer and checksum hold; :class:`SegmentError` otherwise."""
    header = read_header(data, name)
    if len(data) < HEADER_SIZE + FOOTER_SIZE:
        raise SegmentError(f"{name}: truncated: {len(data)} bytes, no room for a footer")
    crc, magic = _FOOTER.unpack_from(data, len(data) - FOOTER_SIZE)
    if magic != END_MAGIC:
        raise SegmentError(f"{name}: truncated or corrupt: the footer magic is missing")
    if block_crc(memoryview(data)[: len(data) - FOOTER_SIZE]) != crc:
        raise SegmentError(f"{name}: checksum mismatch (corrupt bytes)")
    return header


def body(data: bytes) -> memoryview:
    """The stored (compressed) record area of a whole segment."""
    return memoryview(data)[HEADER_SIZE : len(data) - FOOTER_SIZE]


# -- records ------------------------------------------------------------------

_REC = struct.Struct("<Iqqi")
_I32 = struct.Struct("<i")
_U16 = struct.Struct("<H")
_MIN_RECORD = 26
#: (records, position after the last one, records that carried the tool's headers)
Decoded = tuple[list[Record], int, int]


def py_decode_records(
    buf: bytes | bytearray | memoryview,
    pos: int,
    end: int,
    max_bytes: int,
    max_count: int,
    prev: int,
    strip: bool,
    base: int = 0,
) -> Decoded:
    """Decode whole records from ``buf[pos:end]``, after offset ``prev``; the reference for ``_rustrec``.

    Stops after ``max_count`` records, once ``max_bytes`` are consumed, or
    before a record that is not wholly in ``buf[:end]`` (the caller feeds more
    or reports a truncation). ValueError on a malformed record, naming its
    byte in the record area (``buf`` starts at byte ``base`` of it).
    """
    view = memoryview(buf)
    end = min(end, len(view))
    records: list[Record] = []
    start, tools = pos, 0
    while len(records) < max_count and pos - start < max_bytes and end - pos >= 4:
        (length,) = struct.unpack_from("<I", view, pos)
        if length < _MIN_RECORD:
            raise ValueError(
                f"the record at byte {base + pos} of the record area states a length of {length} bytes, "
                "too short"
            )
        if length > MAX_RECORD_BYTES:
            raise ValueError(
                f"the record at byte {base + pos} of the record area states a length of {length} bytes, "
                f"more than {MAX_RECORD_BYTES}"
            )
        if length > end - pos - 4:
            break
        record, tool = _py_record(view[pos + 4 : pos + 4 + length], base + pos, prev, strip)
        records.append(record)
        tools += tool
        prev = record[0]
        pos += 4 + length
    return records, pos, tools


def _py_record(rec: memoryview, at: int, prev: int, strip: bool) -> tuple[Record, int]:
    ts, offset, klen = struct.unpack_from("<qqi", rec, 0)
    if offset <= prev:
        raise ValueError(
            f"the record at byte {at} of the record area has offset {offset}, which does not follow {prev}"
        )
    q, end = 20, len(rec)
    if klen < -1 or end - q < max(klen, 0) + 6:
        raise ValueError(f"the record at byte {at} of the record area: its key or value runs past its length")
    key = None if klen < 0 else bytes(rec[q : q + klen])
    q += max(klen, 0)
    (vlen,) = _I32.unpack_from(rec, q)
    q += 4
    if vlen < -1 or end - q < max(vlen, 0) + 2:
        raise ValueError(f"the record at byte {at} of the record area: its key or value runs past its length")
    value = None if vlen < 0 else bytes(rec[q : q + vlen])
    q += max(vlen, 0)
    (count,) = _U16.unpack_from(rec, q)
    q += 2
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        if end - q < 2 or end - q < 6 + _U16.unpack_from(rec, q)[0]:
            raise ValueError(f"the record at byte {at} of the record area: its headers run past its length")
        (nlen,) = _U16.unpack_from(rec, q)
        name = bytes(rec[q + 2 : q + 2 + nlen]).decode("utf-8", "replace")
        q += 2 + nlen
        (hlen,) = _I32.unpack_from(rec, q)
        q += 4
        if hlen < -1 or end - q < max(hlen, 0):
            raise ValueError(f"the record at byte {at} of the record area: its headers run past its length")
        headers.append((name, None if hlen < 0 else bytes(rec[q : q + hlen])))
        q += max(hlen, 0)
    if q != end:
        raise ValueError(f"the record at byte {at} of the record area has {end - q} bytes past its headers")
    tail = tool_tail(headers, offset, ts)
    if strip and tail:
        del headers[-tail:]
    return (offset, ts, 1, key, value, headers or None), 1 if tail else 0


def tool_tail(headers: list[tuple[str, bytes | None]], offset: int, timestamp: int) -> int:
    """How many of ``headers``' last entries the tool appended: 0, 2 or 3 (with ``x-source-cluster``)."""
    n = len(headers)
    cluster = n >= 3 and headers[-1][0] == TOOL_HEADERS[2] and headers[-1][1] is not None
    if cluster and _offset_pair(headers[-3:-1], offset, timestamp):
        return 3
    return 2 if n >= 2 and _offset_pair(headers[-2:], offset, timestamp) else 0


def _offset_pair(pair: list[tuple[str, bytes | None]], offset: int, timestamp: int) -> bool:
    (name1, value1), (name2, value2) = pair
    return (
        name1 == TOOL_HEADERS[0]
        and value1 == offset.to_bytes(8, "little", signed=True)
        and name2 == TOOL_HEADERS[1]
        and value2 == timestamp.to_bytes(8, "little", signed=True)
    )


_c_decode: Callable[..., Decoded] | None
try:
    from libkb.format._rustrec import decode_records as _c_decode
except ImportError:  # no compiler at install time: the Python decoder, same records, slower
    _c_decode = None

#: The fastest available decoder.
decode_records: Callable[..., Decoded] = _c_decode or py_decode_records
ACCELERATED = _c_decode is not None


# -- a segment's records, batch by batch ------------------------------------------


class SegmentRecords:
    """The records of one whole segment (checked by :func:`open_segment`), batch by batch, in offset order.

    Iterating decodes; afterwards ``tool_records`` counts the records that
    carried the tool's headers and ``raw_bytes`` the record area's size.
    Any mismatch with the header (count, first or last offset, bytes left
    over) raises :class:`SegmentError` naming ``name``; a batch is yielded
    only once all of it decoded.
    """

    def __init__(
        self,
        data: bytes,
        header: RustSegmentHeader,
        name: str,
        *,
        strip: bool,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self.data = data
        self.header = header
        self.name = name
        self.strip = strip
        self.batch_bytes = batch_bytes
        self.tool_records = 0
        self.raw_bytes = 0
        self.count = 0
        self.last = header.start_offset - 1  # offsets rise from the first one on

    def __iter__(self) -> Iterator[list[Record]]:
        header = self.header
        if header.codec == "zstd":
            yield from self._stream()
        else:
            area = self._whole_area()
            self.raw_bytes = len(area)
            yield from self._drain(area, 0)
        if self.count != header.record_count or (self.count and self.last != header.end_offset):
            raise SegmentError(
                f"{self.name}: holds {self.count} records up to offset {self.last}, its header says "
                f"{header.record_count} at offsets {header.start_offset}-{header.end_offset}"
            )

    def _whole_area(self) -> bytes | memoryview:
        stored = body(self.data)
        if self.header.codec == "none":
            return stored
        declared = int.from_bytes(stored[:4], "little") if len(stored) >= 4 else 0
        if declared > LZ4_MAX_RATIO * len(stored) + 64:
            raise SegmentError(
                f"{self.name}: the lz4 block states {declared} bytes of records, more than "
                f"{len(stored)} stored bytes can hold"
            )
        try:
            area: bytes = lz4.block.decompress(stored)  # its u32 uncompressed size comes first
            return area
        except (lz4.block.LZ4BlockError, ValueError, MemoryError) as exc:
            raise SegmentError(f"{self.name}: the lz4 block does not decompress ({exc})") from None

    def _drain(self, area: bytes | bytearray | memoryview, base: int) -> Iterator[list[Record]]:
        """Every record of ``area``, which must end with a whole record, a batch at a time."""
        pos, end = 0, len(area)
        while pos < end:
            records, pos = self._decode(area, pos, end, base, self.batch_bytes)
            if not records:
                raise SegmentError(
                    f"{self.name}: truncated: the record at byte {base + pos} of the record area is cut off"
                )
            yield records

    def _stream(self) -> Iterator[list[Record]]:
        """A zstd frame decompressed as a stream, a batch per piece, each decoded where it lies.

        Only a record a piece cuts off is copied: into ``carry``, completed
        from the start of the next piece.
        """
        carry = bytearray()
        base = 0  # where the next byte to decode (carry's first, else the piece's) lies in the record area
        reader = zstandard.ZstdDecompressor().read_to_iter(
            body(self.data),
            read_size=max(self.batch_bytes // 4, 4096),
            write_size=max(self.batch_bytes, 4096),
        )
        try:
            for piece in reader:
                self.raw_bytes += len(piece)
                start, records = 0, list[Record]()
                if carry:
                    start = _complete(carry, piece)
                    if not _whole(carry):
                        continue  # the piece went into the carried record whole
                    records, _ = self._decode(carry, 0, len(carry), base)
                    base += len(carry)
                    carry.clear()
                more, pos = self._decode(piece, start, len(piece), base - start)
                base += pos - start
                carry += memoryview(piece)[pos:]
                records = records + more if records else more
                if records:
                    yield records
        except zstandard.ZstdError as exc:
            raise SegmentError(f"{self.name}: the zstd frame does not decompress ({exc})") from None
        yield from self._drain(carry, base)

    def _decode(
        self, buf: bytes | bytearray | memoryview, pos: int, end: int, base: int, limit: int | None = None
    ) -> tuple[list[Record], int]:
        """Whole records of ``buf[pos:end]`` (``buf`` starts at byte ``base`` of the record area).

        ``limit``: stop once that many bytes are decoded (default: go to ``end``;
        a zstd piece is a batch already).
        """
        header, remaining = self.header, self.header.record_count - self.count
        if remaining == 0 and pos < end:
            raise SegmentError(
                f"{self.name}: {end - pos} bytes follow the {header.record_count} records its header states"
            )
        limit = end - pos if limit is None else limit
        try:
            records, after, tools = decode_records(
                buf, pos, end, limit, min(remaining, sys.maxsize), self.last, self.strip, base
            )
        except ValueError as exc:
            raise SegmentError(f"{self.name}: {exc}") from None
        if records:
            if not self.count and records[0][0] != header.start_offset:
                raise SegmentError(
                    f"{self.name}: the first record has offset {records[0][0]}, its header says "
                    f"{header.start_offset}"
                )
            self.count += len(records)
            self.last = records[-1][0]
            self.tool_records += tools
        return records, after


def _complete(carry: bytearray, piece: bytes) -> int:
    """Move bytes from the start of ``piece`` into ``carry`` until its record is whole; how many moved.

    A record stating more than :data:`MAX_RECORD_BYTES` gathers no more: decoding it says why.
    """
    start = 0
    while start < len(piece):
        want = 4 + int.from_bytes(carry[:4], "little") if len(carry) >= 4 else 4
        if want > 4 + MAX_RECORD_BYTES:
            break
        take = min(want - len(carry), len(piece) - start)
        if take <= 0:
            break
        carry += memoryview(piece)[start : start + take]
        start += take
    return start


def _whole(carry: bytearray) -> bool:
    """Whether ``carry`` holds its whole record, or states a length no record has (decoding refuses it)."""
    if len(carry) < 4:
        return False
    length = int.from_bytes(carry[:4], "little")
    return length > MAX_RECORD_BYTES or len(carry) >= 4 + length

"""The segment codec: libkb's backup format, versions 1 and 2. Pure: bytes in, bytes out.

A segment holds the records of one partition over a half-open offset range
``[base_offset, end_offset)``. Layout (all integers little-endian)::

    header   magic "LKBS" | version u8 | codec u8 | flags u16 | header_len u32
             | partition i32 | base_offset i64 | created_ms i64
             | topic_len u16 | topic (UTF-8) | header_crc u32
    blocks   repeated: block_len u32 (bytes after this field) | raw_len u32
             | record_count u32 | first_offset i64 | last_offset i64
             | payload_crc u32 | payload (block_len - 28 bytes)
    footer   magic "LKBF" | record_count u64 | block_count u32
             | first_offset i64 | last_offset i64 | end_offset i64
             | min_timestamp i64 | max_timestamp i64
             | raw_bytes u64 | body_crc u32 | footer_crc u32 | magic "LKBE"

``payload`` is the block's records, transformed by the chain the segment's
codec names (0 = none: stored as they are, 1 = zstd, 2 = lz4 frame; see
:mod:`libkb.format.transforms`) and checked by ``payload_crc`` (CRC-32 of the
stored bytes). A record is one msgpack array
``[offset, timestamp, timestamp_type, key, value, headers]`` where key and
value are bin or nil (null is not empty) and headers is nil or an array of
``[name str, value bin|nil]`` in their original order, duplicates kept.
``body_crc`` covers every byte from the start of the segment to the footer.
``first_offset``/``last_offset`` are -1 and timestamps are -1 when a segment has no
records: it then only states that ``[base_offset, end_offset)`` holds none.

The footer has a fixed size (:data:`FOOTER_SIZE`), so a reader gets a
segment's stats with one range request of its last bytes.

Readers trust no stored size: a block's ``raw_len`` above
:data:`MAX_BLOCK_RAW_BYTES`, or a record count its raw bytes cannot hold, is
refused before anything is allocated, and every decoded record is checked
for its shape and types. Any stored bytes give a :class:`SegmentError`
naming the object (and the block's offsets, when known), never another
exception.

Version 2 added codec 2 (lz4) and nothing else. Version 7
(:data:`ZSTD_STREAM_VERSION`) added codec 3, ``zstd-stream``: one zstd
context across a segment's blocks, with restart points
(:mod:`libkb.format.zstream`); its blocks are decoded in order from a
restart point, by a :class:`BlockDecoder`. Version 6 (encryption) encrypts
each block's payload after its compression (with zstd-stream, after the
stream encoder; a reader decrypts before the stream decoder). Every object
is written with the lowest version that can hold it (:data:`CODEC_VERSIONS`),
so a backup without lz4, encryption or zstd-stream stays readable by a libkb
that knows only version 1. Version 8 (:data:`RESTART_POINTS_VERSION`) changed
no segment byte: the partition index lists each segment's restart intervals
(:mod:`libkb.format.restarts`, recorded by :class:`SegmentWriter`), so a
reader can start at one with a ranged read: a :class:`SegmentReader` then
holds the segment's *tail*, from that interval's first block to the footer.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import compress, repeat
from operator import is_not, itemgetter
from typing import Any

import msgpack

from libkb.errors import FormatError
from libkb.format.checksum import block_crc, extend_crc
from libkb.format.encryption import ENCRYPTION_VERSION, FLAG_ENCRYPTED, BlockEncryption
from libkb.format.packer import new_buffer, pack_messages, regrow
from libkb.format.records import Record as Record
from libkb.format.records import as_header, as_record, plain_records
from libkb.format.restarts import RestartLog, RestartPoint
from libkb.format.transforms import (
    BlockContext,
    Buffer,
    Lz4Compression,
    TransformChain,
    TransformError,
    ZstdCompression,
)
from libkb.format.zstream import (
    DEFAULT_RESTART_BLOCKS,
    KIND_ALONE,
    KIND_RAW,
    KIND_RESTART,
    AloneEncoder,
    StreamDecoder,
    StreamEncoder,
    payload_kind,
)

#: The format version that added codec 3, zstd-stream (one name, so a merge can renumber it).
ZSTD_STREAM_VERSION = 7
#: The format version that added restart points to index entries (:mod:`libkb.format.restarts`);
#: segments are unchanged, only an index listing a segment of several intervals states it.
RESTART_POINTS_VERSION = 8
#: The newest format version this libkb reads; it reads every version from 1 up to it
#: (5: topic ids, :data:`libkb.format.encryption.ENCRYPTION_VERSION`: encryption, 7: zstd-stream,
#: 8: restart points).
FORMAT_VERSION = max(5, ENCRYPTION_VERSION, ZSTD_STREAM_VERSION, RESTART_POINTS_VERSION)
CODEC_NONE = 0
CODEC_ZSTD = 1
CODEC_LZ4 = 2
CODEC_ZSTD_STREAM = 3
CODECS = {"none": CODEC_NONE, "zstd": CODEC_ZSTD, "lz4": CODEC_LZ4, "zstd-stream": CODEC_ZSTD_STREAM}
CODEC_NAMES = {v: k for k, v in CODECS.items()}
#: The format version that introduced each codec: the lowest a segment using it can be written as.
CODEC_VERSIONS = {CODEC_NONE: 1, CODEC_ZSTD: 1, CODEC_LZ4: 2, CODEC_ZSTD_STREAM: ZSTD_STREAM_VERSION}
SEGMENT_SUFFIX = ".kbs"

_HEADER_FIXED = struct.Struct("<4sBBHIiqqH")  # up to topic_len
_BLOCK_HEAD = struct.Struct("<IIIqqI")
_FOOTER = struct.Struct("<4sQIqqqqqQII4s")
FOOTER_SIZE = _FOOTER.size
HEADER_MAGIC = b"LKBS"
FOOTER_MAGIC = b"LKBF"
END_MAGIC = b"LKBE"
_BLOCK_HEAD_AFTER_LEN = _BLOCK_HEAD.size - 4
#: The largest raw (decoded) block a reader accepts: ``backup.block_bytes`` is at
#: most 64 MiB and a block ends after the record that reaches it, whose size Kafka
#: bounds (``message.max.bytes``; the broker's requests are at most 100 MiB by default).
#: A block head stating more is corrupt or hostile and is refused before any allocation.
MAX_BLOCK_RAW_BYTES = 1 << 30
#: The fewest raw bytes one record takes (a msgpack array of six one-byte items).
MIN_RECORD_BYTES = 7


class SegmentError(FormatError):
    """A segment is corrupt, truncated or of an unknown version."""


def newer_version(name: str, version: object) -> str:
    """The message refusing an object of a format version this libkb does not know."""
    return (
        f"{name}: format version {version!r} is newer than this libkb reads (1 to {FORMAT_VERSION}): "
        "it was written by a newer libkb; upgrade libkb"
    )


def codec_version(name: str) -> int:
    """The lowest format version that has the codec called ``name`` (``"lz4"`` -> 2); 1 if unknown."""
    return CODEC_VERSIONS.get(CODECS.get(name, CODEC_NONE), 1)


def codec_chain(codec: int, level: int = 3) -> TransformChain:
    """The block transforms a codec byte stands for: 0 none, 1 zstd at ``level``, 2 lz4 (no level)."""
    if codec == CODEC_ZSTD:
        return TransformChain([ZstdCompression(level)])
    if codec == CODEC_LZ4:
        return TransformChain([Lz4Compression()])
    if codec == CODEC_NONE:
        return TransformChain()
    if codec == CODEC_ZSTD_STREAM:
        raise ValueError("zstd-stream compresses a segment's blocks in order: use zstream.StreamEncoder")
    raise ValueError(f"unknown codec {codec}")


def chain_codec(chain: TransformChain) -> int:
    """The codec byte that names ``chain`` in a segment header; ValueError if none does."""
    codec = _CODEC_OF_NAMES.get(chain.names)
    if codec is None:
        raise ValueError(f"no codec of format versions 1 to {FORMAT_VERSION} stands for {chain!r}")
    return codec


def encrypted_chain(codec: int, encryption: BlockEncryption, level: int = 3) -> TransformChain:
    """The codec's compression, then encryption (format version 6): an encrypted segment's chain.

    For zstd-stream the chain is the encryption alone: the stream encoder
    (:meth:`RawBlock.stream`) compresses before it, a :class:`BlockDecoder`
    decompresses after it.
    """
    if codec == CODEC_ZSTD_STREAM:
        return TransformChain([encryption])
    return TransformChain([*codec_chain(codec, level).transforms, encryption])


_CODEC_OF_NAMES = {(): CODEC_NONE, ("zstd",): CODEC_ZSTD, ("lz4",): CODEC_LZ4}
# Reading needs no compression level: one chain per codec serves every block.
_READ_CHAINS = {codec: codec_chain(codec) for codec in CODEC_NAMES if codec != CODEC_ZSTD_STREAM}


def _read_chain(codec: int, name: str) -> TransformChain:
    chain = _READ_CHAINS.get(codec)
    if chain is None:
        raise SegmentError(f"{name}: unknown codec {codec}")
    return chain


class BlockDecoder:
    """Turns one segment's stored payloads back into their raw bytes.

    Codecs 0-2 decode each block alone. Codec 3 (zstd-stream) decodes a
    block only after the blocks since its restart point, in order, through
    this same decoder (:meth:`SegmentReader.decode_from` says where to start);
    so a segment's blocks are read by one decoder, one thread at a time.
    ``chain``: the segment's transforms when not its codec's alone (an
    encrypted segment's, :func:`encrypted_chain`); with zstd-stream it is
    undone before the stream decoder.
    """

    __slots__ = ("_chain", "_codec", "_name", "_stream", "chain")

    def __init__(self, codec: int, *, name: str = "segment", chain: TransformChain | None = None) -> None:
        self._name = name
        self._codec = codec
        self.chain = chain
        self._stream = StreamDecoder() if codec == CODEC_ZSTD_STREAM else None
        self._chain = chain if self._stream is not None or chain else _read_chain(codec, name)

    def fresh(self) -> BlockDecoder:
        """A decoder of the same segment that has decoded nothing yet."""
        return BlockDecoder(self._codec, name=self._name, chain=self.chain)

    def kind(self, payload: Buffer, info: BlockInfo) -> int:
        """A zstd-stream payload's kind byte (decrypted first when encrypted); TransformError if none."""
        return payload_kind(self._unwrap(payload, info))

    def _unwrap(self, payload: Buffer, info: BlockInfo) -> Buffer:
        return self._chain.decode(payload, info.context) if self._chain else payload

    def check_size(self, payload: Buffer, info: BlockInfo) -> None:
        """TransformError if the payload's frame declares a size other than the head's, before decoding.

        zstd-stream frames declare none: the stream decoder checks each block's size as it goes.
        """
        if self._stream is None:
            assert self._chain is not None
            self._chain.check_size(payload, info.context)

    def decode(self, payload: Buffer, info: BlockInfo) -> Buffer:
        if self._stream is not None:
            return self._stream.decode(self._unwrap(payload, info), info.context.block_index, info.raw_len)
        assert self._chain is not None
        return self._chain.decode(payload, info.context)

    def decode_into(self, payload: Buffer, info: BlockInfo, out: memoryview) -> None:
        """:meth:`decode` into ``out`` (exactly ``raw_len`` bytes); any error if it cannot."""
        if self._stream is None:
            assert self._chain is not None
            self._chain.decode_into(payload, info.context, out)
        else:
            out[:] = self.decode(payload, info)


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    version: int
    codec: int
    topic: str
    partition: int
    base_offset: int
    created_ms: int
    size: int
    flags: int = 0

    @property
    def encrypted(self) -> bool:
        """The blocks are encrypted (format version 6): reading them needs the segment's key object."""
        return bool(self.flags & FLAG_ENCRYPTED)


@dataclass(frozen=True, slots=True)
class SegmentFooter:
    record_count: int
    block_count: int
    first_offset: int
    last_offset: int
    end_offset: int
    min_timestamp: int
    max_timestamp: int
    raw_bytes: int
    body_crc: int


@dataclass(frozen=True, slots=True)
class Block:
    """One block ready to append: stored payload plus its stats."""

    payload: bytes | bytearray
    raw_len: int
    record_count: int
    first_offset: int
    last_offset: int
    min_timestamp: int
    max_timestamp: int
    #: CRC-32 of ``payload`` (taken once, when the block is made).
    crc: int

    def encode_head(self) -> bytes:
        return _BLOCK_HEAD.pack(
            len(self.payload) + _BLOCK_HEAD_AFTER_LEN,
            self.raw_len,
            self.record_count,
            self.first_offset,
            self.last_offset,
            self.crc,
        )


def header_size(topic: str) -> int:
    """The size of the header of a segment of ``topic``: where its first block starts."""
    return _HEADER_FIXED.size + len(topic.encode("utf-8")) + 4


def header_version(codec: int, flags: int) -> int:
    """The lowest format version a segment header with this codec and these flags can state."""
    return max(CODEC_VERSIONS[codec], ENCRYPTION_VERSION if flags & FLAG_ENCRYPTED else 1)


def stated_header(topic: str, partition: int, base_offset: int, codec: int, flags: int) -> SegmentHeader:
    """The header a segment's key and index entry state, for a reader of its tail (not read).

    The creation time, which nothing but ``validate --deep`` looks at, is unknown (-1).
    """
    version = header_version(codec, flags)
    return SegmentHeader(version, codec, topic, partition, base_offset, -1, header_size(topic), flags)


def encode_header(
    topic: str, partition: int, base_offset: int, codec: int, created_ms: int, flags: int = 0
) -> bytes:
    name = topic.encode("utf-8")
    size = _HEADER_FIXED.size + len(name) + 4
    version = header_version(codec, flags)
    fixed = _HEADER_FIXED.pack(
        HEADER_MAGIC, version, codec, flags, size, partition, base_offset, created_ms, len(name)
    )
    body = fixed + name
    return body + struct.pack("<I", zlib.crc32(body))


def decode_header(data: bytes, *, name: str = "segment") -> SegmentHeader:
    if len(data) < _HEADER_FIXED.size:
        raise SegmentError(f"{name}: truncated header ({len(data)} bytes)")
    magic, version, codec, flags, size, partition, base, created, topic_len = _HEADER_FIXED.unpack_from(data)
    if magic != HEADER_MAGIC:
        raise SegmentError(f"{name}: not a libkb segment (magic {magic!r})")
    if version > FORMAT_VERSION:
        raise SegmentError(newer_version(name, version))
    if codec not in CODEC_NAMES:
        raise SegmentError(f"{name}: unknown codec {codec}")
    if version < CODEC_VERSIONS[codec]:
        raise SegmentError(
            f"{name}: codec {CODEC_NAMES[codec]} needs format version {CODEC_VERSIONS[codec]}, "
            f"the header says {version}"
        )
    if version < ENCRYPTION_VERSION:
        flags = 0  # reserved before encryption: ignored
    if len(data) < size or size != _HEADER_FIXED.size + topic_len + 4:
        raise SegmentError(f"{name}: truncated or inconsistent header")
    (crc,) = struct.unpack_from("<I", data, size - 4)
    if zlib.crc32(data[: size - 4]) != crc:
        raise SegmentError(f"{name}: header checksum mismatch")
    try:
        topic = data[_HEADER_FIXED.size : _HEADER_FIXED.size + topic_len].decode("utf-8")
    except UnicodeDecodeError:
        raise SegmentError(f"{name}: the topic name in the header is not UTF-8") from None
    return SegmentHeader(version, codec, topic, partition, base, created, size, flags)


def encode_footer(footer: SegmentFooter) -> bytes:
    head = _FOOTER.pack(
        FOOTER_MAGIC,
        footer.record_count,
        footer.block_count,
        footer.first_offset,
        footer.last_offset,
        footer.end_offset,
        footer.min_timestamp,
        footer.max_timestamp,
        footer.raw_bytes,
        footer.body_crc,
        0,
        END_MAGIC,
    )
    crc = zlib.crc32(head[: FOOTER_SIZE - 8])
    return head[: FOOTER_SIZE - 8] + struct.pack("<I", crc) + END_MAGIC


def decode_footer(data: bytes, *, name: str = "segment") -> SegmentFooter:
    """Decode the last :data:`FOOTER_SIZE` bytes of a segment."""
    if len(data) < FOOTER_SIZE:
        raise SegmentError(f"{name}: truncated: no complete footer")
    tail = data[-FOOTER_SIZE:]
    fields = _FOOTER.unpack(tail)
    if fields[0] != FOOTER_MAGIC or fields[-1] != END_MAGIC:
        raise SegmentError(f"{name}: truncated or corrupt: footer magic missing")
    if zlib.crc32(tail[: FOOTER_SIZE - 8]) != fields[10]:
        raise SegmentError(f"{name}: footer checksum mismatch")
    return SegmentFooter(*fields[1:10])


class BlockEncoder:
    """Packs records into one block's raw bytes.

    The bytes accumulate in a ``bytearray`` (``_buf[:_pos]``; the rest is
    room to grow), and :meth:`take` hands that buffer over without copying
    it; the next block gets a fresh one. The engine packs consumed messages
    with :meth:`add_messages` (one C call per run of a partition's records,
    see :mod:`libkb.format.packer`); :meth:`add` appends one record tuple.
    Not thread-safe.
    """

    __slots__ = (
        "_buf",
        "_pos",
        "_spare",
        "count",
        "first_offset",
        "last_offset",
        "max_timestamp",
        "min_timestamp",
        "size_hint",
    )

    def __init__(self, size_hint: int = 1 << 20, spare: deque[bytearray] | None = None) -> None:
        #: Expected block size: the buffer starts this big (1/8 more).
        self.size_hint = size_hint
        #: Buffers of blocks already compressed, to reuse (the backup engine hands
        #: them back): a fresh buffer costs a page fault per 4 KiB when first written.
        self._spare = spare
        self._reset()

    def _reset(self) -> None:
        buf = None
        room = max(self.size_hint + (self.size_hint >> 3), 1024)
        if self._spare:
            with contextlib.suppress(IndexError):  # another encoder took the last one
                buf = self._spare.pop()
        if buf is None:
            buf = new_buffer(room)
        elif len(buf) < room:
            # A spare was cut to its last block's length. The packer grows a buffer by doubling
            # its length, which made the allocator copy the whole block on the consuming thread
            # (bench/README.rst, session 18); back to full room within its allocation instead,
            # without writing the new bytes (zeros made and copied in cost 3 % of the thread).
            regrow(buf, room)
        self._buf = buf
        self._pos = 0
        self.count = 0
        self.first_offset = -1
        self.last_offset = -1
        self.min_timestamp = -1
        self.max_timestamp = -1

    @property
    def size(self) -> int:
        """Raw bytes packed into the open block so far."""
        return self._pos

    def _note(self, count: int, first: int, last: int, low: int, high: int) -> None:
        if not count:
            return
        if self.count:
            self.min_timestamp = min(low, self.min_timestamp)
            self.max_timestamp = max(high, self.max_timestamp)
        else:
            self.first_offset = first
            self.min_timestamp, self.max_timestamp = low, high
        self.count += count
        self.last_offset = last

    def add(
        self,
        offset: int,
        timestamp: int,
        timestamp_type: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None,
    ) -> int:
        """Append one record; returns the block's raw size so far."""
        del self._buf[self._pos :]
        record = (offset, timestamp, timestamp_type, key, value, headers)
        self._buf += msgpack.packb(record, use_bin_type=True)
        self._pos = len(self._buf)
        self._note(1, offset, offset, timestamp, timestamp)
        return self._pos

    def add_messages(
        self,
        msgs: Any,
        start: int,
        limit: int,
        topic: str | None,
        partition: int,
        end_offset: int,
        stop: int | None = None,
    ) -> tuple[int, int]:
        """Pack consumed messages from ``msgs[start]`` on (to ``msgs[stop - 1]`` at most); returns
        (next index, stop reason).

        ``msgs``: a list of Messages, or an ``Intake`` (``_intake.c``) holding a
        batch. See :func:`libkb.format.packer.pack_messages` for where it stops.
        """
        nxt, self._pos, count, first, last, low, high, reason = pack_messages(
            msgs, start, self._buf, self._pos, limit, topic, partition, end_offset, stop
        )
        self._note(count, first, last, low, high)
        return nxt, reason

    def __len__(self) -> int:
        return self._pos

    def take(self) -> RawBlock:
        """Hand over the raw block (the buffer, trimmed) and start a new one."""
        buf = self._buf
        del buf[self._pos :]
        raw = RawBlock(
            buf,
            self.count,
            self.first_offset,
            self.last_offset,
            self.min_timestamp,
            self.max_timestamp,
        )
        self._reset()
        return raw


@dataclass(frozen=True, slots=True)
class RawBlock:
    """A block's uncompressed records; the block owns ``data`` (nothing else writes to it)."""

    data: bytes | bytearray | memoryview
    record_count: int
    first_offset: int
    last_offset: int
    min_timestamp: int
    max_timestamp: int

    def transform(self, chain: TransformChain, context: BlockContext) -> Block:
        """The block as stored at ``context``'s place (thread-safe: any thread may do it)."""
        stored = chain.encode(self.data, context)
        # An empty chain stores the block's own buffer as it is, no copy.
        return self._stored(stored if isinstance(stored, bytes | bytearray) else bytes(stored))

    def stream(
        self,
        encoder: StreamEncoder | AloneEncoder,
        context: BlockContext,
        chain: TransformChain | None = None,
    ) -> Block:
        """The block stored at ``context``'s place in a zstd-stream segment (in order, one thread at a
        time, unless ``encoder`` is an :class:`AloneEncoder`).

        ``chain``: what follows the stream encoder (encryption, format version 6), per block.
        A failure is a :class:`TransformError` naming the place (see :meth:`TransformChain.encode`).
        """
        try:
            payload = encoder.encode(self.data, context.block_index)
        except Exception as exc:
            raise TransformError(
                f"zstd-stream failed on block {context.block_index} of {context.topic}"
                f"[{context.partition}] segment {context.base_offset}: {exc}"
            ) from exc
        if not chain:
            return self._stored(payload)
        stored = chain.encode(payload, context)
        return self._stored(stored if isinstance(stored, bytes | bytearray) else bytes(stored))

    def _stored(self, payload: bytes | bytearray) -> Block:
        return Block(
            payload,
            len(self.data),
            self.record_count,
            self.first_offset,
            self.last_offset,
            self.min_timestamp,
            self.max_timestamp,
            block_crc(payload),
        )

    def compress(self, codec: int, level: int = 3) -> Block:
        """The block compressed with a codec alone (tests and tools).

        Compression ignores the block's place, so none is given; the engine and
        :func:`encode_segment` use :meth:`transform` with the block's place.
        """
        return self.transform(codec_chain(codec, level), BlockContext("", -1, -1, -1, len(self.data)))


class SegmentWriter:
    """Assembles a segment from stored blocks (transformed), handing out bytes as they are ready.

    ``header`` first, then what each ``add_block`` returns, then ``finish``'s
    footer: the caller streams them to storage without holding the segment.
    The body checksum and the stats are kept as blocks pass, so finishing
    costs nothing. So are the restart intervals (every ``restart_blocks``
    blocks, the zstd-stream encoder's, :data:`DEFAULT_RESTART_BLOCKS` for
    codecs whose blocks decode alone), which the index entry lists
    (:attr:`restarts`).
    """

    def __init__(
        self,
        topic: str,
        partition: int,
        base_offset: int,
        codec: int,
        created_ms: int,
        flags: int = 0,
        *,
        restart_blocks: int = DEFAULT_RESTART_BLOCKS,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.base_offset = base_offset
        self.codec = codec
        self.header = encode_header(topic, partition, base_offset, codec, created_ms, flags)
        self.size = len(self.header)
        self._crc = zlib.crc32(self.header)
        self.record_count = 0
        self.block_count = 0
        self.raw_bytes = 0
        self.first_offset = -1
        self.last_offset = -1
        self.min_timestamp = -1
        self.max_timestamp = -1
        self._restarts = RestartLog(restart_blocks)

    @property
    def restarts(self) -> tuple[RestartPoint, ...] | None:
        """The segment's restart intervals so far; None while it has one (its index entry lists none)."""
        return self._restarts.points()

    def add_block(self, block: Block) -> tuple[bytes, bytes | bytearray]:
        """Account for a block; returns (block head, payload) to write next."""
        if block.record_count == 0:
            return b"", b""
        if block.raw_len > MAX_BLOCK_RAW_BYTES:
            raise ValueError(
                f"a block of {block.raw_len} raw bytes is over the format's {MAX_BLOCK_RAW_BYTES}"
            )
        if block.first_offset < max(self.base_offset, self.last_offset + 1):
            raise ValueError("blocks must be added in offset order, inside the segment's range")
        head = block.encode_head()
        self._restarts.add(
            self.size,
            self.block_count,
            block.first_offset,
            self.record_count,
            block.min_timestamp,
            block.max_timestamp,
        )
        self._crc = extend_crc(zlib.crc32(head, self._crc), block.payload, block.crc)
        self.size += len(head) + len(block.payload)
        if self.record_count == 0:
            self.first_offset = block.first_offset
            self.min_timestamp, self.max_timestamp = block.min_timestamp, block.max_timestamp
        else:
            self.min_timestamp = min(self.min_timestamp, block.min_timestamp)
            self.max_timestamp = max(self.max_timestamp, block.max_timestamp)
        self.last_offset = block.last_offset
        self.record_count += block.record_count
        self.block_count += 1
        self.raw_bytes += block.raw_len
        return head, block.payload

    def finish(self, end_offset: int) -> tuple[SegmentFooter, bytes]:
        """The footer and its bytes. ``end_offset`` is the exclusive end of the covered range."""
        if end_offset <= self.base_offset or end_offset <= self.last_offset:
            raise ValueError(
                f"end offset {end_offset} does not cover the records "
                f"(base {self.base_offset}, last {self.last_offset})"
            )
        footer = SegmentFooter(
            self.record_count,
            self.block_count,
            self.first_offset,
            self.last_offset,
            end_offset,
            self.min_timestamp,
            self.max_timestamp,
            self.raw_bytes,
            self._crc,
        )
        encoded = encode_footer(footer)
        self.size += len(encoded)
        return footer, encoded


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """Where a block sits in a segment, for reading only the blocks a restore needs."""

    position: int  # in the bytes read (from ``origin`` in the segment)
    length: int  # bytes from ``position``, head included
    raw_len: int
    record_count: int
    first_offset: int
    last_offset: int
    #: The block's place, for undoing its transforms.
    context: BlockContext
    #: Where the bytes read start in the segment: 0, or a restart point's position (a tail).
    origin: int = 0

    @property
    def at(self) -> int:
        """The block's byte position in the segment, as messages give it."""
        return self.origin + self.position


class SegmentReader:
    """Reads a segment's bytes, checking every checksum it passes.

    ``data`` is the whole segment, or with ``start`` its *tail*: its bytes
    from the restart point ``start`` to its end (footer included), as a
    ranged read gives them. A tail has no header: ``header`` is what the
    segment's key and index entry state (:func:`stated_header`), and its
    blocks keep their place in the segment (block index, byte position).
    """

    def __init__(
        self,
        data: bytes,
        *,
        name: str = "segment",
        chain: TransformChain | None = None,
        header: SegmentHeader | None = None,
        start: RestartPoint | None = None,
    ) -> None:
        self.name = name
        self.data = data
        #: The transforms to undo (None: the codec's alone; an encrypted segment needs its own).
        self.chain = chain
        #: Where a tail starts (None: ``data`` is the whole segment).
        self.start = start
        if start is None:
            self.header = decode_header(data, name=name)
        elif header is None:
            raise ValueError("a segment's tail is read with the header its index entry states")
        else:
            self.header = header
        self.footer = decode_footer(data, name=name)
        if self._first_block > len(data) - FOOTER_SIZE:
            raise SegmentError(f"{name}: truncated")

    @property
    def _first_block(self) -> int:
        """Where the first block read starts in ``data``."""
        return self.header.size if self.start is None else 0

    def verify(self) -> None:
        """Check the body checksum (which covers every block) and the block structure and counts.

        Each block's own checksum is checked when its records are decoded. Whole segments only.
        """
        if self.start is not None:
            raise ValueError(f"{self.name}: only a whole segment can be verified, not its tail")
        end = len(self.data) - FOOTER_SIZE
        if zlib.crc32(memoryview(self.data)[:end]) != self.footer.body_crc:
            raise SegmentError(f"{self.name}: body checksum mismatch (corrupt bytes){self._corrupt_block()}")
        count = 0
        for block in self.blocks():
            count += block.record_count
        if count != self.footer.record_count:
            raise SegmentError(f"{self.name}: record count mismatch")

    def _corrupt_block(self) -> str:
        """Where the body's corruption is, when a block's own checksum tells (else nothing)."""
        try:
            for info in self.blocks():
                if not _payload_intact(self.data, info):
                    return f": {_where(info, self.header.codec)}"
        except SegmentError:
            pass  # the heads are damaged: the body checksum is all there is to say
        return ""

    def blocks(self) -> Iterator[BlockInfo]:
        """The heads of the blocks read (a tail's from its restart point), each checked for sizes."""
        header = self.header
        pos = self._first_block
        end = len(self.data) - FOOTER_SIZE
        origin, seen = (0, 0) if self.start is None else (self.start.position, self.start.block_index)
        while pos < end:
            at = origin + pos
            if pos + _BLOCK_HEAD.size > end:
                raise SegmentError(f"{self.name}: truncated block header at byte {at}")
            length, raw_len, count, first, last, _crc = _BLOCK_HEAD.unpack_from(self.data, pos)
            total = 4 + length
            if length < _BLOCK_HEAD_AFTER_LEN or pos + total > end:
                raise SegmentError(f"{self.name}: block at byte {at} runs past the footer")
            if raw_len > MAX_BLOCK_RAW_BYTES or count * MIN_RECORD_BYTES > raw_len:
                raise SegmentError(
                    f"{self.name}: the block at byte {at} (offsets {first}-{last}) states {count} records "
                    f"in {raw_len} raw bytes (at most {MAX_BLOCK_RAW_BYTES}): a corrupt block head"
                )
            context = BlockContext(header.topic, header.partition, header.base_offset, seen, raw_len)
            yield BlockInfo(pos, total, raw_len, count, first, last, context, origin)
            pos += total
            seen += 1
        if seen != self.footer.block_count:
            raise SegmentError(f"{self.name}: block count mismatch")

    def records(self, min_offset: int | None = None) -> Iterator[Record]:
        """Decode records (checking each block's checksum); skip blocks wholly below min_offset."""
        blocks, codec = list(self.blocks()), self.header.codec
        first = next(
            (i for i, b in enumerate(blocks) if min_offset is None or b.last_offset >= min_offset), 0
        )
        decoder = self.decoder()
        for i in range(self.decode_from(blocks, first, decoder), len(blocks)):
            if min_offset is not None and blocks[i].last_offset < min_offset:
                pass_block(self.data, blocks[i], codec, name=self.name, decoder=decoder)
                continue
            yield from decode_block(self.data, blocks[i], codec, name=self.name, decoder=decoder)

    def decoder(self) -> BlockDecoder:
        """A decoder of this segment's blocks; SegmentError when they are encrypted and no key was given."""
        if self.header.encrypted and self.chain is None:
            raise SegmentError(f"{self.name}: its blocks are encrypted; reading them needs its key")
        return BlockDecoder(self.header.codec, name=self.name, chain=self.chain)

    def decode_from(self, blocks: list[BlockInfo], index: int, decoder: BlockDecoder | None = None) -> int:
        """The first of ``blocks`` to decode, in order with one decoder, to get block ``index``."""
        if self.header.codec != CODEC_ZSTD_STREAM or index >= len(blocks):
            return index
        return decode_from(self.data, blocks, index, decoder or self.decoder())


def decode_block(
    data: bytes, info: BlockInfo, codec: int, *, name: str = "segment", decoder: BlockDecoder | None = None
) -> Iterator[Record]:
    """One block's records; ``decoder``: the segment's (zstd-stream: the blocks before went through it)."""
    where = f"{name}: the block of offsets {info.first_offset}-{info.last_offset}"
    payload = _checked_payload(data, info, codec, name)
    try:
        raw = (decoder or BlockDecoder(codec, name=name)).decode(payload, info)
    except TransformError as exc:
        raise SegmentError(f"{where}: {exc}{_lost_to(codec)}") from None
    if len(raw) != info.raw_len:
        raise SegmentError(f"{where}: decompressed to the wrong size")
    unpacker = msgpack.Unpacker(use_list=True, raw=False, max_buffer_size=max(len(raw), 1))
    unpacker.feed(raw)
    count = 0
    try:
        for item in unpacker:
            count += 1
            yield as_record(item)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise SegmentError(f"{where}: undecodable record: {exc}") from None
    if count != info.record_count:
        raise SegmentError(f"{where}: holds {count} records, its head says {info.record_count}")


def pass_block(
    data: bytes, info: BlockInfo, codec: int, *, name: str = "segment", decoder: BlockDecoder
) -> None:
    """Decode a block only for ``decoder``'s sake (a zstd-stream block before the wanted ones)."""
    payload = _checked_payload(data, info, codec, name)
    try:
        decoder.decode(payload, info)
    except TransformError as exc:
        raise SegmentError(f"{name}: {exc}{_lost_to(codec)}") from None


def block_kind(data: bytes, info: BlockInfo, decoder: BlockDecoder) -> int:
    """A zstd-stream block's kind byte (decrypted first when encrypted); TransformError if none."""
    return decoder.kind(_payload(data, info), info)


def _payload(data: bytes, info: BlockInfo) -> memoryview:
    return memoryview(data)[info.position + _BLOCK_HEAD.size : info.position + info.length]


def _payload_intact(data: bytes, info: BlockInfo) -> bool:
    stated: int = _BLOCK_HEAD.unpack_from(data, info.position)[5]
    return block_crc(_payload(data, info)) == stated


def _where(info: BlockInfo, codec: int) -> str:
    """A block, as messages name it."""
    return (
        f"in the block of offsets {info.first_offset}-{info.last_offset} "
        f"(block {info.context.block_index}, at byte {info.at}){_lost_to(codec)}"
    )


def _checked_payload(data: bytes, info: BlockInfo, codec: int, name: str) -> memoryview:
    if not _payload_intact(data, info):
        raise SegmentError(f"{name}: checksum mismatch {_where(info, codec)}")
    return _payload(data, info)


def _lost_to(codec: int) -> str:
    if codec != CODEC_ZSTD_STREAM:
        return ""
    return " (zstd-stream: the blocks after it up to the next restart point cannot be decoded either)"


def encode_segment(
    topic: str,
    partition: int,
    base_offset: int,
    end_offset: int,
    records: Iterable[Record],
    *,
    codec: int = CODEC_ZSTD,
    level: int = 3,
    block_bytes: int = 1 << 20,
    created_ms: int = 0,
    restart_blocks: int = DEFAULT_RESTART_BLOCKS,
    encryption: BlockEncryption | None = None,
) -> bytes:
    """Whole-segment convenience encoder (tests, tools); the engine streams instead.

    ``encryption``: encrypt the blocks too (format version 6; the caller stores the key object);
    with zstd-stream, each block's stream payload is encrypted.
    """
    flags = FLAG_ENCRYPTED if encryption is not None else 0
    writer = SegmentWriter(
        topic, partition, base_offset, codec, created_ms, flags, restart_blocks=restart_blocks
    )
    streamer = StreamEncoder(level, restart_blocks) if codec == CODEC_ZSTD_STREAM else None
    if encryption is not None:
        chain = encrypted_chain(codec, encryption, level)
    else:
        chain = codec_chain(codec, level) if streamer is None else TransformChain()
    out: list[bytes | bytearray] = [writer.header]
    encoder = BlockEncoder(block_bytes)

    def stored(raw: RawBlock) -> tuple[bytes, bytes | bytearray]:
        place = BlockContext(topic, partition, base_offset, writer.block_count, len(raw.data))
        if streamer is not None:
            return writer.add_block(raw.stream(streamer, place, chain))
        return writer.add_block(raw.transform(chain, place))

    for record in records:
        if encoder.add(*record) >= block_bytes:
            out += stored(encoder.take())
    if encoder.count:
        out += stored(encoder.take())
    out.append(writer.finish(end_offset)[1])
    return b"".join(out)


_HEADERS = itemgetter(5)
_ARRAY32 = struct.Struct(">BI")  # msgpack array 32: 0xdd, element count
#: Where a :class:`DecodedBlock`'s records start in its ``raw`` bytes (after the array head).
RECORDS_AT = _ARRAY32.size


class DecodedBlock:
    """A block decompressed, its records not made yet: a restore's C path produces from its bytes.

    ``raw``: a msgpack array 32 head (:data:`RECORDS_AT` bytes) for the block's
    record count, then its records as stored; ``None`` when the block did not
    decompress, and :meth:`records` raises why. ``check``: what
    :meth:`records` passes them through (a source's check of them against the
    block's head).
    """

    __slots__ = ("_fail", "_records", "check", "info", "raw")

    def __init__(
        self,
        info: BlockInfo,
        raw: bytearray | None,
        fail: Callable[[], list[Record]],
        records: list[Record] | None = None,
    ) -> None:
        self.info = info
        self.raw = raw
        self._fail = fail
        self._records = records
        self.check: Callable[[list[Record]], list[Record]] | None = None

    def records(self) -> list[Record]:
        """The block's records, checked; the reference decoder's SegmentError if anything is off."""
        if self._records is None:
            try:
                self._records = _unpacked(self.raw)
            except Exception:  # the reference decoder says what is wrong
                self._records = self._fail()
        return self.check(self._records) if self.check is not None else self._records


def block_records(
    data: bytes,
    info: BlockInfo,
    codec: int,
    *,
    name: str = "segment",
    decoder: BlockDecoder | None = None,
    blocks: list[BlockInfo] | None = None,
) -> list[Record]:
    """One block's records, exactly as :func:`decode_block` yields them, as a list (faster).

    About half the CPU of the generator (see :func:`decoded_block`). If
    anything is off (checksum, size, count, shape), ``decode_block`` decodes
    the block again and raises its usual error: a corrupt block fails before
    any of its records is produced. ``blocks``: the blocks ``data`` holds, as
    its reader lists them (needed for a tail's zstd-stream error; None:
    ``data`` is a whole segment).
    """
    return decoded_block(data, info, codec, name=name, decoder=decoder, blocks=blocks).records()


def decoded_block(
    data: bytes,
    info: BlockInfo,
    codec: int,
    *,
    name: str = "segment",
    decoder: BlockDecoder | None = None,
    blocks: list[BlockInfo] | None = None,
) -> DecodedBlock:
    """One block decompressed (its checksum and size checked), its records made only when asked.

    The payload is decoded straight into a buffer that starts with a msgpack
    array head for the block's record count, so msgpack decodes the whole
    block in one call, records as tuples; only records with headers are
    touched in Python, to make their headers a list of 2-tuples. A block that
    fails here has its error raised now, as :func:`block_records` raises it.
    """
    dec = decoder if decoder is not None else BlockDecoder(codec, name=name)

    def fail() -> list[Record]:
        if codec == CODEC_ZSTD_STREAM:
            # The stream moved on (or broke) in the attempt: the message comes from a decoder
            # that starts again at the block's restart point.
            raise _stream_error(data, info, name, dec.fresh(), blocks)
        return list(decode_block(data, info, codec, name=name, decoder=dec))

    head = _BLOCK_HEAD.unpack_from(data, info.position)
    payload = memoryview(data)[info.position + _BLOCK_HEAD.size : info.position + info.length]
    try:
        if block_crc(payload) != head[5] or info.raw_len > MAX_BLOCK_RAW_BYTES:
            raise ValueError("checksum or size")
        dec.check_size(payload, info)  # before allocating what the head states
        buf = bytearray(RECORDS_AT + info.raw_len)
        _ARRAY32.pack_into(buf, 0, 0xDD, info.record_count)
        view = memoryview(buf)[RECORDS_AT:]
        dec.decode_into(payload, info, view)  # any error: see below
        del view
    except Exception:
        return DecodedBlock(info, None, fail, fail())
    return DecodedBlock(info, buf, fail)


def _unpacked(raw: bytearray | None) -> list[Record]:
    if raw is None:
        raise ValueError("not decompressed")
    records: list[Any] = list(msgpack.unpackb(raw, use_list=False, raw=False))
    if records and not plain_records(records):
        raise ValueError("shape")
    for i in compress(range(len(records)), map(is_not, map(_HEADERS, records), repeat(None))):
        offset, timestamp, ts_type, key, value, headers = records[i]
        records[i] = (offset, timestamp, ts_type, key, value, [as_header(h) for h in headers])
    return records


def _stream_error(
    data: bytes, info: BlockInfo, name: str, decoder: BlockDecoder, blocks: list[BlockInfo] | None
) -> SegmentError:
    """What is wrong with a zstd-stream block that failed to decode (it did fail once).

    ``decoder``: a fresh one for the segment (with its key when encrypted); ``blocks``: those
    ``data`` holds (None: read from ``data``, a whole segment).
    """
    if blocks is None:
        blocks = list(SegmentReader(data, name=name).blocks())
    index = info.context.block_index
    at = index - blocks[0].context.block_index  # its place in ``blocks`` (a tail starts later)
    try:
        for earlier in blocks[decode_from(data, blocks, at, decoder) : at]:
            decoder.decode(_checked_payload(data, earlier, CODEC_ZSTD_STREAM, name), earlier)
        list(decode_block(data, info, CODEC_ZSTD_STREAM, name=name, decoder=decoder))
    except (SegmentError, TransformError) as exc:
        return exc if isinstance(exc, SegmentError) else SegmentError(f"{name}: {exc}")
    return SegmentError(
        f"{name}: block {index} of offsets {info.first_offset}-{info.last_offset} is undecodable"
    )


def decode_from(data: bytes, blocks: list[BlockInfo], index: int, decoder: BlockDecoder | None = None) -> int:
    """The first block a reader must decode to get block ``index``: itself, or its restart point.

    Only zstd-stream segments have restart points; any other segment's blocks
    decode alone. Reads one kind byte per block walked back (``decoder``: the
    segment's, which decrypts an encrypted block to read it).
    """
    peek = decoder or BlockDecoder(CODEC_ZSTD_STREAM)
    j = index
    while j >= 0:
        info = blocks[j]
        try:
            kind = peek.kind(_payload(data, info), info)
        except TransformError:
            return j  # decoding it reports it
        if kind == KIND_RESTART or (kind in (KIND_RAW, KIND_ALONE) and j == index):
            return j
        j -= 1
    return 0

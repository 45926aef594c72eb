"""Codec 3, ``zstd-stream`` (format version 7): one zstd context across the blocks of a segment.

Why: compressed one by one, 1 MiB blocks never see what repeats across
them (a cycled pool, CDC row images of the same keys), so such topics stored
4x where a whole-segment frame stores 100x. Here a segment's blocks are
compressed in order by one zstd context, flushed at each block boundary
(``FLUSH_BLOCK``), so every block's stored bytes still end on a block of its
own and carry their own checksum, while matches reach back a window
(:data:`WINDOW_LOG`) into earlier blocks. Every ``restart_blocks`` blocks a
new frame starts: a reader that wants a block in the middle of a segment
decompresses at most the blocks since the last restart point, and a corrupt
block breaks no more than the rest of its restart interval.

A block whose sample does not compress (random or already compressed bytes)
is compressed alone at a fast level, which finds the record framing and the
keys and little else, or stored as it is if even that does not shrink it;
the context does not see it. Where history finds nothing (distinct records), it only costs CPU:
each interval starts with a short probe, and an interval whose probe shows
no gain compresses its other blocks alone (:data:`PROBE_BLOCKS`). Each
payload starts with one kind byte (:data:`KIND_RAW`, :data:`KIND_CONTINUE`,
:data:`KIND_RESTART`, :data:`KIND_ALONE`); docs/format.rst has the exact rules. Memory: one
context (the window and its tables) per open segment, never a segment's
bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import zstandard

from libkb.format.transforms import Buffer, TransformError
from libkb.format.zstdctx import FrameCompressor, compressor

#: Payload kinds (the payload's first byte).
KIND_RAW = 0
KIND_CONTINUE = 1
KIND_RESTART = 2
#: A frame of its own at :data:`FAST_LEVEL`, which the context does not see (a block that looks
#: incompressible: what shrinks in it is the record framing and the keys).
KIND_ALONE = 3
KINDS = (KIND_RAW, KIND_CONTINUE, KIND_RESTART, KIND_ALONE)
#: The window: matches reach back 8 MiB (a decoder holds as much per segment it decodes).
WINDOW_LOG = 23
#: Blocks per restart interval by default: with 1 MiB blocks and 128 MiB segments, one per segment.
DEFAULT_RESTART_BLOCKS = 128
#: A block is stored raw when its first :data:`SAMPLE_BYTES` do not compress below :data:`RAW_RATIO`.
SAMPLE_BYTES = 64 * 1024
RAW_RATIO = 0.9
#: Such a block is compressed alone at this level (about 0.8 s/GiB, a quarter of level 3's on random
#: bytes): it stores 2 % less than raw bytes would (framing, keys); raw if it does not shrink at all.
FAST_LEVEL = -1
#: Each restart interval starts with a probe: its first block alone, then this many blocks more
#: with the history. Unless they compress :data:`PROBE_GAIN` times better than the first block did,
#: the interval's other blocks are compressed alone (each a restart point): history that finds
#: nothing costs about a quarter more CPU (measured on distinct JSON, bench/README.rst).
PROBE_BLOCKS = 3
PROBE_GAIN = 1.1
#: Once a probe has found history of no use, the partition's next intervals skip theirs until it
#: has had this many more blocks: a probe per full default interval, however short its segments.
PROBE_SPACING = 128
#: After a block that compressed below half its size, the next blocks skip the sample, but one
#: in this many is sampled anyway (a topic whose records turn incompressible is noticed).
SAMPLE_EVERY = 16
_SAMPLE_LEVEL = 1
_RAW = bytes([KIND_RAW])
_CONTINUE = bytes([KIND_CONTINUE])
_RESTART = bytes([KIND_RESTART])


def looks_incompressible(data: Buffer, sampler: Any) -> bool:
    """Whether the block's first bytes stay above :data:`RAW_RATIO` of their size at zstd level 1."""
    sample = memoryview(data)[:SAMPLE_BYTES]
    if len(sample) < 256:
        return False
    return len(sampler.compress(sample)) > RAW_RATIO * len(sample)


class StreamEncoder:
    """Compresses one segment's blocks, in order (one thread at a time: the store chains the calls)."""

    __slots__ = (
        "_alone",
        "_base",
        "_compressor",
        "_fast",
        "_interval",
        "_obj",
        "_probe",
        "_sampler",
        "_shrank",
        "_verdict",
        "alone_interval",
        "restart_blocks",
    )

    def __init__(
        self,
        level: int = 3,
        restart_blocks: int = DEFAULT_RESTART_BLOCKS,
        verdict: HistoryVerdict | None = None,
    ) -> None:
        """``verdict``: the partition's, told what this encoder's probes find."""
        if restart_blocks < 1:
            raise ValueError("restart_blocks must be at least 1")
        self._compressor = compressor(level, WINDOW_LOG)
        self._sampler = compressor(_SAMPLE_LEVEL)
        self._fast = FrameCompressor(FAST_LEVEL)
        self._obj: Any = None  # the interval's compression object (either backend's, see zstdctx)
        self._interval = -1
        self.restart_blocks = restart_blocks
        #: The interval's first compressed block (raw, stored bytes), and the probe's blocks after it.
        self._base = (0, 0)
        self._probe = [0, 0, 0]  # blocks, raw, stored
        #: The probe found history of no use: the interval's blocks are compressed alone.
        self._alone = False
        #: The last block compressed below half its size: the next needs no sample.
        self._shrank = False
        #: The interval whose probe found history of no use (-1: none yet). Its later blocks need
        #: no context: any compression thread may compress them (:class:`AloneEncoder`).
        self.alone_interval = -1
        self._verdict = verdict

    def assume_alone(self, index: int) -> None:
        """Compress the interval of block ``index`` alone without probing it (its partition's
        last probe found history of no use, :class:`HistoryVerdict`)."""
        self.alone_interval = index // self.restart_blocks

    def alone_at(self, index: int) -> bool:
        """Whether block ``index`` needs nothing of this encoder: its interval is compressed alone."""
        return self.alone_interval == index // self.restart_blocks

    def encode(self, data: Buffer, index: int) -> bytes:
        """Block ``index`` (from 0, every block of the segment in turn) as its payload."""
        sample = not self._shrank or index % SAMPLE_EVERY == 0
        if sample and looks_incompressible(data, self._sampler):
            self._shrank = False
            return self._alone_or_raw(data)
        interval = index // self.restart_blocks
        fresh = interval != self._interval
        if fresh:
            self._interval, self._alone, self._probe = interval, False, [0, 0, 0]
        kind = _CONTINUE
        if self._obj is None or fresh or self._alone:
            self._obj, kind = self._compressor.compressobj(), _RESTART
        obj = self._obj
        out: bytes = obj.compress(data) + obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        self._shrank = 2 * len(out) < len(data)
        self._learn(kind is _RESTART, len(data), len(out))
        return kind + out

    def _alone_or_raw(self, data: Buffer) -> bytes:
        return _fast_or_raw(data, self._fast)

    def _learn(self, restart: bool, raw: int, stored: int) -> None:
        """The probe: does this interval's history pay for itself?"""
        probe = self._probe
        if self._alone or probe[0] > PROBE_BLOCKS:
            return
        if restart:
            self._base = (raw, max(stored, 1))
            return
        probe[0], probe[1], probe[2] = probe[0] + 1, probe[1] + raw, probe[2] + max(stored, 1)
        if probe[0] == PROBE_BLOCKS:
            gain = (probe[1] / probe[2]) / (self._base[0] / self._base[1])
            self._alone = gain < PROBE_GAIN
            if self._alone:
                self.alone_interval = self._interval
            if self._verdict is not None:
                self._verdict.found(useless=self._alone)
            probe[0] += 1  # decided


class HistoryVerdict:
    """What a partition's last probe found, carried to its next intervals.

    Why: a probe compresses three blocks with a history that, on distinct
    records, finds nothing and costs a quarter more CPU. With many partitions
    the byte budget closes segments after a few MiB (about 20 blocks each at 8
    partitions), and each segment starts an interval, so one block in five was
    a probe's. Once a probe found history of no use, the partition's intervals
    are compressed alone without one until :data:`PROBE_SPACING` more blocks
    have passed: a change in the data is still noticed within that many blocks,
    and a topic whose history pays (a cycled pool, CDC) is probed at every
    interval as before. The bytes are what an interval compressed alone after
    its probe would be: nothing in the format changes.

    Set by the compression threads (:meth:`found`), read by the consuming
    thread (:meth:`passed`, :meth:`skip_probe`); a stale read only probes once
    more or once less.
    """

    __slots__ = ("_left",)

    def __init__(self) -> None:
        self._left = 0

    def found(self, *, useless: bool) -> None:
        """A probe's result: history of no use (skip the next probes) or of use (probe each interval)."""
        self._left = PROBE_SPACING if useless else 0

    def passed(self) -> None:
        """One more block of the partition went to compression (counts down the spacing)."""
        if self._left:
            self._left -= 1

    def skip_probe(self) -> bool:
        """Whether an interval starting now may go without a probe."""
        return self._left > 0


class AloneEncoder:
    """Compresses blocks of intervals whose probe found history of no use, in any order.

    Why: such a block is a frame of its own (what :class:`StreamEncoder`
    makes of it, the same bytes), so it needs no context and no order. A
    partition's blocks otherwise go through its context on one thread at a
    time, which left the other core idle on a 1-partition backup of distinct
    records (bench/README.rst, session 12). One per compression thread.
    """

    __slots__ = ("_compressor", "_fast", "_sampler", "_shrank")

    def __init__(self, level: int = 3) -> None:
        self._compressor = FrameCompressor(level, WINDOW_LOG)
        self._sampler = compressor(_SAMPLE_LEVEL)
        self._fast = FrameCompressor(FAST_LEVEL)
        self._shrank = False  # as StreamEncoder's, for the blocks this thread compressed

    def encode(self, data: Buffer, index: int) -> bytes:
        """Block ``index`` as its payload: a restart point of its own (raw or alone if incompressible)."""
        if (not self._shrank or index % SAMPLE_EVERY == 0) and looks_incompressible(data, self._sampler):
            self._shrank = False
            return _fast_or_raw(data, self._fast)
        out = self._compressor.frame(KIND_RESTART, data)
        self._shrank = 2 * (len(out) - 1) < len(data)
        return out


def _fast_or_raw(data: Buffer, fast: FrameCompressor) -> bytes:
    out = fast.frame(KIND_ALONE, data)  # flushed, never ended, like every frame of the codec
    return out if len(out) <= len(data) else _RAW + data


def payload_kind(payload: Buffer) -> int:
    """The kind byte of a stored payload; TransformError if there is none or it is unknown."""
    if not len(payload) or payload[0] not in KINDS:
        raise TransformError("not a zstd-stream payload (no or unknown kind byte)")
    return int(payload[0])


#: The most one zstd block decodes to (RFC 8878 Block_Maximum_Size): how far a hostile block can
#: overshoot the size its head states before the decoder stops it.
ZSTD_BLOCK_MAX = 128 * 1024
_BLOCK_RAW, _BLOCK_RLE, _BLOCK_RESERVED = 0, 1, 3


def zstd_blocks(body: memoryview, restart: bool) -> Iterator[tuple[int, int, bool]]:
    """(end, most output, exact) of each zstd block of a payload (the frame header goes with the first).

    Why walk the blocks: a zstd context has no output limit, so a payload of
    a few kilobytes could decode to gigabytes; fed a few blocks at a time,
    the decoder never makes more than the block's stated size and one zstd
    block besides. A frame that ends (our encoder never ends one) or a block
    that runs past the payload is refused.
    """
    try:
        pos = zstandard.frame_header_size(body) if restart else 0
    except zstandard.ZstdError as exc:
        raise TransformError(f"not a zstd frame header: {exc}") from None
    size = len(body)
    while pos < size:
        if pos + 3 > size:
            raise TransformError("a zstd block header is cut off")
        head = body[pos] | body[pos + 1] << 8 | body[pos + 2] << 16
        kind, length = (head >> 1) & 3, head >> 3
        if kind == _BLOCK_RESERVED or head & 1:
            raise TransformError("a zstd block of a reserved type, or one that ends the frame")
        pos += 3 + (1 if kind == _BLOCK_RLE else length)
        if pos > size:
            raise TransformError("a zstd block runs past the payload")
        exact = kind in (_BLOCK_RAW, _BLOCK_RLE)
        yield pos, length if exact else ZSTD_BLOCK_MAX, exact


def bounded_decompress(
    obj: zstandard.ZstdDecompressionObj, body: memoryview, restart: bool, raw_len: int
) -> bytes:
    """``body`` decoded by ``obj``, never more than ``raw_len`` bytes plus one zstd block.

    Blocks are fed in groups whose most output fits what is left, so a valid
    payload (its blocks' sizes add up to ``raw_len``) is one call.
    """
    chunks: list[bytes] = []
    made = start = end = most = 0
    for block_end, block_most, exact in zstd_blocks(body, restart):
        if made + most + block_most > raw_len and end > start:
            made += _feed(obj, body[start:end], chunks, raw_len - made)
            start, most = end, 0
        if exact and made + most + block_most > raw_len:
            raise TransformError("block decompresses past its stated size")
        end, most = block_end, most + block_most
    if len(body) > start:
        made += _feed(obj, body[start:], chunks, raw_len - made)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _feed(obj: zstandard.ZstdDecompressionObj, piece: memoryview, chunks: list[bytes], room: int) -> int:
    out = obj.decompress(piece)
    if len(out) > room:
        raise TransformError("block decompresses past its stated size")
    chunks.append(out)
    return len(out)


class StreamDecoder:
    """Decodes one segment's payloads: a restart, then the blocks after it in order.

    A continuing block whose predecessors since the restart were not decoded
    by this decoder is refused (the reader starts at the restart point).
    """

    __slots__ = ("_alone", "_next", "_obj", "_stream")

    def __init__(self) -> None:
        self._obj: zstandard.ZstdDecompressionObj | None = None
        self._next = -1
        #: The decompressors (contexts) of the restart intervals and of blocks compressed alone,
        #: taken from :data:`_POOL` on first use and given back with the decoder.
        self._stream: zstandard.ZstdDecompressor | None = None
        self._alone: zstandard.ZstdDecompressor | None = None

    def __del__(self) -> None:
        # getattr: a decoder whose __init__ did not run has no slots set.
        _give_back(getattr(self, "_stream", None), getattr(self, "_alone", None))

    def decode(self, payload: Buffer, index: int, raw_len: int) -> bytes:
        """Block ``index``'s raw bytes (exactly ``raw_len``); TransformError if they cannot be had."""
        kind = payload_kind(payload)
        body = memoryview(payload)[1:]
        if kind == KIND_RAW:
            out = bytes(body)
        elif kind == KIND_ALONE:
            self._alone = self._alone or _take()
            out = self._inflate(self._alone.decompressobj(), body, raw_len)
        else:
            if kind == KIND_RESTART:
                self._stream = self._stream or _take()
                self._obj = self._stream.decompressobj()
            elif self._obj is None or index != self._next:
                raise TransformError(
                    f"block {index} continues a zstd context whose earlier blocks were not decoded"
                )
            out = self._inflate(self._obj, body, raw_len, restart=kind == KIND_RESTART)
        if self._obj is not None:
            self._next = index + 1
        if len(out) != raw_len:
            self._obj = None
            raise TransformError("block decompressed to the wrong size")
        return out

    def _inflate(
        self, obj: zstandard.ZstdDecompressionObj, body: memoryview, raw_len: int, restart: bool = True
    ) -> bytes:
        try:
            return bounded_decompress(obj, body, restart, raw_len)
        except TransformError:
            self._obj = None  # the context is broken until the next restart
            raise
        except zstandard.ZstdError as exc:
            self._obj = None
            raise TransformError(f"cannot decompress block: {exc}") from None


#: Decompressors not in use. A decompressor holds a context whose window buffer (up to 8 MiB)
#: is allocated on its first frame; taking a new one per segment and per block compressed alone
#: (every block of distinct data) put the distinct 8-partition restore's peak RSS 30-50 MiB higher
#: (bench/README.rst). A decompressobj works in its decompressor's context, so each decoder takes
#: its own and gives it back when it goes.
_POOL: list[zstandard.ZstdDecompressor] = []
_POOL_MAX = 16
_pool_lock = threading.Lock()


def _take() -> zstandard.ZstdDecompressor:
    """A decompressor for one decoder, refusing a window larger than the encoder's (memory per segment)."""
    with _pool_lock:
        if _POOL:
            return _POOL.pop()
    return zstandard.ZstdDecompressor(max_window_size=1 << WINDOW_LOG)


def _give_back(*decompressors: zstandard.ZstdDecompressor | None) -> None:
    with _pool_lock:
        for d in decompressors:
            if d is not None and len(_POOL) < _POOL_MAX:
                _POOL.append(d)

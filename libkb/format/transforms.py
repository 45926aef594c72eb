"""Transforms of a block's bytes on their way to storage, undone in reverse on the way back.

Why this module exists: what happens to a block's bytes between the segment
builder and storage grows. Today it is compression (zstd, lz4, or nothing);
encryption comes next. Each is a :class:`BlockTransform`;
a :class:`TransformChain` applies them in order when a block is written and
undoes them in reverse order when it is read. Pure: bytes in, bytes out, no
I/O, so every transform is tested with bytes alone.

Every call gets the block's :class:`BlockContext`: where the block sits
(topic, partition, its segment's base offset, its index in the segment) and
its size before any transform. Compression only needs the size (to bound
decompression); an encryption transform binds the place as associated data,
so a block copied to another place fails to decrypt instead of restoring
the wrong records.

Checksums are not a transform: the segment writer checksums each block's
stored bytes after the whole chain, so a corrupt block is still found, and
named, alone. Which chain a segment used is the segment format's business
(the header's codec byte, see :mod:`libkb.format.segment`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import lz4.frame
import zstandard

from libkb.errors import FormatError

Buffer = bytes | bytearray | memoryview


class TransformError(FormatError):
    """A block's stored bytes cannot be turned back into its records' bytes."""


@dataclass(frozen=True, slots=True)
class BlockContext:
    """Where a block sits, and how big it was before any transform."""

    topic: str
    partition: int
    #: The base offset of the block's segment (its header's).
    base_offset: int
    #: The block's position in its segment, from 0, in the order blocks are stored.
    block_index: int
    #: The block's size before the first transform: what decoding gives back.
    raw_len: int


class BlockTransform(Protocol):
    """One reversible change to a block's bytes (thread-safe: blocks are encoded in parallel)."""

    @property
    def name(self) -> str:
        """A short stable name (``"zstd"``), for messages and for matching a chain to a format id."""
        ...

    def encode(self, data: Buffer, context: BlockContext) -> Buffer:
        """The block's bytes as the next transform (or storage) gets them."""
        ...

    def decode(self, data: Buffer, context: BlockContext) -> Buffer:
        """Undo :meth:`encode`; raise :class:`TransformError` when ``data`` cannot be undone."""
        ...


@runtime_checkable
class DecodesInto(Protocol):
    """A transform that can decode straight into the reader's buffer (one copy fewer)."""

    def decode_into(self, data: Buffer, context: BlockContext, out: memoryview) -> None:
        """Decode into ``out``, which is exactly ``context.raw_len`` bytes; TransformError if sizes differ."""
        ...


@runtime_checkable
class ChecksSize(Protocol):
    """A transform whose stored bytes declare the size they decode to."""

    def check_size(self, data: Buffer, context: BlockContext) -> None:
        """TransformError if ``data`` declares a size other than ``context.raw_len``, before decoding."""
        ...


class TransformChain:
    """Transforms applied in order by :meth:`encode` and undone in reverse by :meth:`decode`.

    An empty chain stores the raw bytes as they are.
    """

    __slots__ = ("_first_into", "transforms")

    def __init__(self, transforms: Iterable[BlockTransform] = ()) -> None:
        self.transforms: tuple[BlockTransform, ...] = tuple(transforms)
        first = self.transforms[0] if self.transforms else None
        self._first_into = first if isinstance(first, DecodesInto) else None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.transforms)

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        return f"TransformChain({list(self.names)})"

    def encode(self, data: Buffer, context: BlockContext) -> Buffer:
        """The block's bytes through every transform; a transform's failure is a :class:`TransformError`.

        Encoding runs on a compression thread and surfaces inside a storage
        upload's chunk iterator, which the storage layer re-raises as the
        caller's own error: it must already be a libkb error here.
        """
        for transform in self.transforms:
            try:
                data = transform.encode(data, context)
            except TransformError:
                raise
            except Exception as exc:
                raise TransformError(
                    f"{transform.name} failed on block {context.block_index} of {context.topic}"
                    f"[{context.partition}] segment {context.base_offset}: {exc}"
                ) from exc
        return data

    def decode(self, data: Buffer, context: BlockContext) -> Buffer:
        for transform in reversed(self.transforms):
            data = transform.decode(data, context)
        return data

    def check_size(self, data: Buffer, context: BlockContext) -> None:
        """TransformError unless ``data`` can decode to ``context.raw_len`` bytes, as far as its frame says.

        A reader calls it before allocating ``raw_len`` bytes for :meth:`decode_into`.
        """
        if not self.transforms:
            if len(data) != context.raw_len:
                raise TransformError(f"a stored block of {len(data)} bytes, its head says {context.raw_len}")
        elif len(self.transforms) == 1 and isinstance(self.transforms[0], ChecksSize):
            self.transforms[0].check_size(data, context)

    def decode_into(self, data: Buffer, context: BlockContext, out: memoryview) -> None:
        """:meth:`decode` into ``out`` (exactly ``context.raw_len`` bytes); ValueError if sizes differ."""
        if not self.transforms:
            out[:] = data  # ValueError unless the sizes match
            return
        for transform in reversed(self.transforms[1:]):
            data = transform.decode(data, context)
        if self._first_into is not None:
            self._first_into.decode_into(data, context, out)
        else:
            out[:] = self.transforms[0].decode(data, context)


class ZstdCompression:
    """Zstandard, one frame per block with its content size, no dictionary, no frame checksum."""

    name = "zstd"

    def __init__(self, level: int = 3) -> None:
        self.level = level

    def encode(self, data: Buffer, context: BlockContext) -> bytes:
        # A compressor per call: any thread may encode (zstd releases the GIL).
        return zstandard.ZstdCompressor(level=self.level).compress(data)

    def check_size(self, data: Buffer, context: BlockContext) -> None:
        try:
            _declared_size(zstandard.get_frame_parameters(data).content_size, context)
        except zstandard.ZstdError as exc:
            raise TransformError(f"cannot decompress block: {exc}") from None

    def decode(self, data: Buffer, context: BlockContext) -> bytes:
        self.check_size(data, context)
        try:
            return zstandard.ZstdDecompressor().decompress(data, max_output_size=context.raw_len)
        except zstandard.ZstdError as exc:
            raise TransformError(f"cannot decompress block: {exc}") from None

    def decode_into(self, data: Buffer, context: BlockContext, out: memoryview) -> None:
        self.check_size(data, context)
        reader = zstandard.ZstdDecompressor().stream_reader(data)
        got = 0
        try:
            while got < len(out) and (n := reader.readinto(out[got:])):
                got += n
            if got != len(out) or reader.read(1):
                raise TransformError("block decompressed to the wrong size")
        except zstandard.ZstdError as exc:
            raise TransformError(f"cannot decompress block: {exc}") from None


_UNKNOWN = zstandard.CONTENTSIZE_UNKNOWN


def _declared_size(size: int, context: BlockContext) -> None:
    """Refuse a frame whose header declares a content size other than the block head's ``raw_len``.

    The decompressors allocate what a frame declares: a hostile frame declaring
    gigabytes would be allocated before its data is found short.
    """
    if size != _UNKNOWN and size != context.raw_len:
        raise TransformError(
            f"cannot decompress block: its frame declares {size} bytes, the block head {context.raw_len}"
        )


class Lz4Compression:
    """LZ4, one frame per block (the frame format, ``lz4.frame``) with its content size, no checksums.

    Always LZ4's default fast mode: the original tool's lz4 has no level
    either, and its high-compression levels are slower than zstd for less.
    """

    name = "lz4"

    def encode(self, data: Buffer, context: BlockContext) -> bytes:
        out: bytes = lz4.frame.compress(data, store_size=True)  # releases the GIL
        return out

    def check_size(self, data: Buffer, context: BlockContext) -> None:
        try:
            info = lz4.frame.get_frame_info(data)
        except RuntimeError as exc:
            raise TransformError(f"cannot decompress block: {exc}") from None
        _declared_size(info.get("content_size") or _UNKNOWN, context)

    def decode(self, data: Buffer, context: BlockContext) -> bytes:
        self.check_size(data, context)
        decompressor = lz4.frame.LZ4FrameDecompressor()
        try:
            # Bounded: a frame claiming more than the block head's size stops there.
            out: bytes = decompressor.decompress(data, max_length=context.raw_len)
        except RuntimeError as exc:
            raise TransformError(f"cannot decompress block: {exc}") from None
        if not decompressor.eof:
            problem = (
                "truncated lz4 frame" if decompressor.needs_input else "its lz4 frame holds more than raw_len"
            )
            raise TransformError(f"cannot decompress block: {problem}")
        if decompressor.unused_data:
            raise TransformError("cannot decompress block: bytes follow its lz4 frame")
        return out

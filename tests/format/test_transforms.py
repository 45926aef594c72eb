"""The block transform chain: round trips, reverse order on decode, composition with compression."""

from __future__ import annotations

import hashlib
import zlib

import lz4.frame
import pytest

from libkb.format.segment import (
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_ZSTD,
    FORMAT_VERSION,
    BlockEncoder,
    SegmentError,
    SegmentReader,
    SegmentWriter,
    block_records,
    chain_codec,
    codec_chain,
    decode_block,
    encode_segment,
)
from libkb.format.transforms import (
    BlockContext,
    BlockTransform,
    Buffer,
    DecodesInto,
    Lz4Compression,
    TransformChain,
    TransformError,
    ZstdCompression,
)

PLACE = BlockContext("orders", 3, 1000, 2, 0)
DATA = b"".join(b"record %d of a block; " % i for i in range(2000))


def at(data: bytes) -> BlockContext:
    return BlockContext(PLACE.topic, PLACE.partition, PLACE.base_offset, PLACE.block_index, len(data))


class Tagged:
    """Test-only: appends its tag on encode, checks and strips it on decode, and logs its calls."""

    def __init__(self, tag: bytes, log: list[str]) -> None:
        self.name = f"tag-{tag.decode()}"
        self.tag = tag
        self.log = log

    def encode(self, data: Buffer, context: BlockContext) -> bytes:
        self.log.append(f"encode {self.name}")
        return bytes(data) + self.tag

    def decode(self, data: Buffer, context: BlockContext) -> bytes:
        self.log.append(f"decode {self.name}")
        data = bytes(data)
        if not data.endswith(self.tag):
            raise TransformError(f"{self.name}: tag missing")
        return data[: -len(self.tag)]


class PlaceBound:
    """Test-only stand-in for encryption: a keystream and a tag both derived from the block's place.

    A block decoded at another place than where it was encoded fails, as an
    AEAD cipher with the place as associated data would.
    """

    name = "place-bound"

    @staticmethod
    def _key(context: BlockContext) -> bytes:
        place = f"{context.topic}/{context.partition}/{context.base_offset}/{context.block_index}"
        return hashlib.sha256(place.encode()).digest()

    def _xor(self, data: Buffer, context: BlockContext) -> bytes:
        key = self._key(context)
        return bytes(b ^ key[i % len(key)] for i, b in enumerate(bytes(data)))

    def encode(self, data: Buffer, context: BlockContext) -> bytes:
        return self._xor(data, context) + self._key(context)[:4]

    def decode(self, data: Buffer, context: BlockContext) -> bytes:
        data = bytes(data)
        if data[-4:] != self._key(context)[:4]:
            raise TransformError("cannot decrypt block: it was written at another place")
        return self._xor(data[:-4], context)


def test_an_empty_chain_stores_the_bytes_as_they_are() -> None:
    chain = TransformChain()
    assert len(chain) == 0 and chain.names == ()
    assert chain.encode(DATA, at(DATA)) is DATA
    assert chain.decode(DATA, at(DATA)) is DATA


def test_zstd_round_trip_is_one_plain_frame() -> None:
    chain = TransformChain([ZstdCompression(3)])
    stored = chain.encode(DATA, at(DATA))
    assert bytes(stored[:4]) == b"\x28\xb5\x2f\xfd" and len(stored) < len(DATA) // 10
    assert chain.decode(stored, at(DATA)) == DATA


def test_zstd_refuses_what_is_not_its_frame() -> None:
    with pytest.raises(TransformError, match="cannot decompress block"):
        ZstdCompression().decode(b"not a zstd frame", at(DATA))


def test_lz4_round_trip_is_one_frame_with_its_content_size() -> None:
    chain = TransformChain([Lz4Compression()])
    stored = chain.encode(DATA, at(DATA))
    assert bytes(stored[:4]) == b"\x04\x22\x4d\x18" and len(stored) < len(DATA) // 3  # the frame magic
    info = lz4.frame.get_frame_info(bytes(stored))
    assert info["content_size"] == len(DATA) and not info["content_checksum"]
    assert chain.decode(stored, at(DATA)) == DATA
    # Any lz4 frame decodes, also one written by another program with other frame options.
    other = lz4.frame.compress(
        DATA, store_size=False, content_checksum=True, block_size=lz4.frame.BLOCKSIZE_MAX4MB
    )
    assert Lz4Compression().decode(other, at(DATA)) == DATA


@pytest.mark.parametrize(
    ("stored", "words"),
    [
        (b"not an lz4 frame", "cannot decompress block: LZ4F_getFrameInfo failed"),
        (lz4.frame.compress(DATA)[:-9], "cannot decompress block: truncated lz4 frame"),
        (lz4.frame.compress(DATA) + b"\x00", "cannot decompress block: bytes follow its lz4 frame"),
        (lz4.frame.compress(DATA + b"!"), "cannot decompress block: its frame declares"),
        (
            lz4.frame.compress(DATA + b"!", store_size=False),
            "cannot decompress block: its lz4 frame holds more than raw_len",
        ),
    ],
    ids=["garbage", "truncated", "trailing", "bigger", "bigger-unsized"],
)
def test_lz4_refuses_what_is_not_exactly_its_frame(stored: bytes, words: str) -> None:
    with pytest.raises(TransformError, match=words):
        Lz4Compression().decode(stored, at(DATA))


def test_decode_undoes_the_transforms_in_reverse_order() -> None:
    log: list[str] = []
    chain = TransformChain([Tagged(b"A", log), Tagged(b"B", log)])
    stored = chain.encode(b"raw", at(b"raw"))
    assert stored == b"rawAB"
    assert chain.decode(stored, at(b"raw")) == b"raw"
    assert log == ["encode tag-A", "encode tag-B", "decode tag-B", "decode tag-A"]
    assert chain.names == ("tag-A", "tag-B")


def test_a_second_transform_composes_with_compression() -> None:
    chain = TransformChain([ZstdCompression(3), PlaceBound()])
    stored = chain.encode(DATA, at(DATA))
    assert len(stored) < len(DATA) // 10  # compressed first, then transformed
    assert chain.decode(stored, at(DATA)) == DATA
    out = bytearray(len(DATA))
    chain.decode_into(stored, at(DATA), memoryview(out))
    assert out == DATA
    elsewhere = BlockContext(PLACE.topic, PLACE.partition, PLACE.base_offset, 3, len(DATA))
    with pytest.raises(TransformError, match="another place"):
        chain.decode(stored, elsewhere)


@pytest.mark.parametrize(
    "transforms",
    [[], [ZstdCompression()], [Lz4Compression()], [Tagged(b"T", [])], [ZstdCompression(), Tagged(b"T", [])]],
    ids=["none", "zstd", "lz4", "no-decode-into", "zstd+tag"],
)
def test_decode_into_fills_the_buffer_and_refuses_another_size(transforms: list[BlockTransform]) -> None:
    chain = TransformChain(transforms)
    stored = chain.encode(DATA, at(DATA))
    out = bytearray(len(DATA))
    chain.decode_into(stored, at(DATA), memoryview(out))
    assert out == DATA
    with pytest.raises(ValueError):  # TransformError is a ValueError too
        chain.decode_into(stored, at(DATA), memoryview(bytearray(len(DATA) - 1)))


def test_zstd_decodes_into_the_readers_buffer() -> None:
    assert isinstance(ZstdCompression(), DecodesInto)
    assert not isinstance(Tagged(b"T", []), DecodesInto)


def test_codecs_are_chains() -> None:
    assert codec_chain(CODEC_NONE).names == ()
    assert codec_chain(CODEC_ZSTD, 7).names == ("zstd",)
    assert codec_chain(CODEC_LZ4, 7).names == ("lz4",)  # lz4 has no level (as in the original tool)
    assert chain_codec(codec_chain(CODEC_ZSTD)) == CODEC_ZSTD
    assert chain_codec(codec_chain(CODEC_LZ4)) == CODEC_LZ4
    assert chain_codec(TransformChain([Lz4Compression()])) == CODEC_LZ4 == 2
    assert chain_codec(TransformChain()) == CODEC_NONE
    with pytest.raises(ValueError, match=f"no codec of format versions 1 to {FORMAT_VERSION} stands for"):
        chain_codec(TransformChain([ZstdCompression(), PlaceBound()]))
    with pytest.raises(ValueError, match=f"no codec of format versions 1 to {FORMAT_VERSION} stands for"):
        chain_codec(TransformChain([ZstdCompression(), Lz4Compression()]))
    with pytest.raises(ValueError, match="zstd-stream compresses a segment's blocks in order"):
        codec_chain(3)  # zstd-stream is no chain (libkb.format.zstream)
    with pytest.raises(ValueError, match="unknown codec 4"):
        codec_chain(4)


def _records(n: int, start: int) -> list[tuple[int, int, int, bytes | None, bytes | None, None]]:
    return [(start + i, 1_700_000_000_000 + i, 1, b"k%d" % i, b"v" * 50, None) for i in range(n)]


def test_segment_blocks_get_their_place_on_write_and_on_read() -> None:
    """A chain with a place-bound transform: what the writer encodes, the reader's contexts decode.

    Version 1 has no header byte for such a chain, so the test writes the
    segment with the zstd codec byte and undoes its chain by hand; each block
    keeps its own checksum of its stored bytes.
    """
    chain = TransformChain([ZstdCompression(3), PlaceBound()])
    writer = SegmentWriter("orders", 3, 1000, CODEC_ZSTD, 0)
    parts: list[bytes | bytearray] = [writer.header]
    raws = []
    for i in range(3):
        encoder = BlockEncoder(1 << 16)
        for record in _records(40, 1000 + 40 * i):
            encoder.add(*record)
        raw = encoder.take()
        raws.append(bytes(raw.data))
        place = BlockContext("orders", 3, 1000, writer.block_count, len(raw.data))
        parts += writer.add_block(raw.transform(chain, place))
    parts.append(writer.finish(1120)[1])
    blob = b"".join(parts)
    reader = SegmentReader(blob)
    reader.verify()
    infos = list(reader.blocks())
    assert [i.context for i in infos] == [BlockContext("orders", 3, 1000, n, len(raws[n])) for n in range(3)]
    for info, raw_bytes in zip(infos, raws, strict=True):
        payload = blob[info.position + 32 : info.position + info.length]
        assert zlib.crc32(payload) == int.from_bytes(blob[info.position + 28 : info.position + 32], "little")
        assert chain.decode(payload, info.context) == raw_bytes


@pytest.mark.parametrize("codec", [CODEC_ZSTD, CODEC_LZ4])
def test_the_codec_chain_is_what_the_reader_undoes(codec: int) -> None:
    records = _records(300, 5)
    blob = encode_segment("t", 1, 5, 305, records, codec=codec, block_bytes=4000)
    reader = SegmentReader(blob)
    infos = list(reader.blocks())
    assert len(infos) > 2 and [i.context.block_index for i in infos] == list(range(len(infos)))
    decoded = [r for info in infos for r in block_records(blob, info, codec)]
    assert [r[0] for r in decoded] == list(range(5, 305))
    with pytest.raises(SegmentError, match="unknown codec 9"):
        list(decode_block(blob, infos[0], 9, name="x.kbs"))

"""Codec 3, zstd-stream (format version 7): one zstd context across a segment's blocks.

What a user relies on: every data set shape comes back exactly; what repeats
across blocks is stored once; incompressible blocks are stored raw; a
corrupt block is named and spoils no more than its restart interval; a read
from the middle of a segment decodes no more than one restart interval
before what it wants.
"""

from __future__ import annotations

import importlib
import struct
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from libkb.format.checksum import block_crc
from libkb.format.encryption import OVERHEAD, BlockEncryption, DataKey
from libkb.format.segment import (
    CODEC_ZSTD,
    CODEC_ZSTD_STREAM,
    BlockEncoder,
    Record,
    SegmentError,
    SegmentReader,
    block_records,
    encode_segment,
    encrypted_chain,
)
from libkb.format.transforms import TransformError
from libkb.format.zstream import (
    KIND_ALONE,
    KIND_CONTINUE,
    KIND_RAW,
    KIND_RESTART,
    ZSTD_BLOCK_MAX,
    AloneEncoder,
    StreamDecoder,
    StreamEncoder,
)

BENCH = Path(__file__).resolve().parents[2] / "bench"


def datasets() -> Any:
    """bench/datasets.py: the benchmarks' data set generators (deterministic by seed)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("datasets")


def shape_records(shape: str, size: int, partitions: int = 1) -> list[Record]:
    """Partition 0's records of ``size`` bytes of a data set, offsets from 0, as a consumer reads them."""
    out: list[Record] = []
    for n, (key, value, headers) in enumerate(datasets().records(shape, size * partitions)):
        if n % partitions == 0:
            out.append((len(out), 1_700_000_000_000 + n, 1, key, value, headers))
    return out


def kinds(data: bytes) -> list[int]:
    return [data[b.position + 32] for b in SegmentReader(data).blocks()]


def as_read(records: list[Record]) -> list[Record]:
    return [(*r[:5], None if r[5] is None else list(r[5])) for r in records]


@pytest.mark.parametrize("shape", ["distinct", "cyclic", "cdc", "random", "lz4-producer", "zstd-producer"])
def test_every_data_set_shape_round_trips(shape: str) -> None:
    records = shape_records(shape, 300_000)
    data = encode_segment(
        "t", 0, 0, len(records), records, codec=CODEC_ZSTD_STREAM, block_bytes=16 * 1024, restart_blocks=4
    )
    reader = SegmentReader(data, name="s.kbs")
    reader.verify()
    assert reader.header.version == 7 and reader.header.codec == CODEC_ZSTD_STREAM
    assert list(reader.records()) == as_read(records)
    if shape == "random":
        # Compressed alone at the fast level (framing and keys shrink) or raw, none with the context.
        assert KIND_ALONE in kinds(data) and set(kinds(data)) <= {KIND_ALONE, KIND_RAW}
        assert len(data) < reader.footer.raw_bytes * 1.01  # never expanded but for the kind bytes
    else:
        assert not {KIND_RAW, KIND_ALONE} & set(kinds(data))


def test_what_repeats_across_blocks_is_stored_once() -> None:
    """The cycled pool at 8 partitions repeats every ~1 MiB: zstd per block cannot see it."""
    records = shape_records("cyclic", 6 << 20, partitions=8)
    stream = encode_segment("t", 0, 0, len(records), records, codec=CODEC_ZSTD_STREAM)
    blocks = encode_segment("t", 0, 0, len(records), records, codec=CODEC_ZSTD)
    assert len(stream) * 3 < len(blocks)
    assert list(SegmentReader(stream).records()) == as_read(records)


def test_restart_points_every_n_blocks_and_raw_blocks_leave_the_context_alone() -> None:
    encoder, decoder = StreamEncoder(3, restart_blocks=3), StreamDecoder()
    text = b'{"k": "value", "n": 1234567}' * 40
    noise = b"".join(value for _, value, _ in datasets().records("random", 4096))
    mixed = text + noise[: 2 * len(text)]  # does not halve: the block after it is sampled
    raws = [text, mixed, noise, text, text, text, text]
    payloads = [encoder.encode(raw, i) for i, raw in enumerate(raws)]
    assert [p[0] for p in payloads] == [
        KIND_RESTART, KIND_CONTINUE, KIND_RAW, KIND_RESTART, KIND_CONTINUE, KIND_CONTINUE, KIND_RESTART
    ]  # fmt: skip
    assert len(payloads[1]) < 2 * len(text) + 40  # block 1's text is block 0 again
    assert [decoder.decode(p, i, len(r)) for i, (p, r) in enumerate(zip(payloads, raws, strict=True))] == raws
    # A continuing block without its predecessors is refused, never decoded wrongly.
    with pytest.raises(TransformError, match="block 4 continues a zstd context"):
        StreamDecoder().decode(payloads[4], 4, len(text))
    fresh = StreamDecoder()
    assert fresh.decode(payloads[3], 3, len(text)) == text  # a restart decodes alone
    assert fresh.decode(payloads[4], 4, len(text)) == text


def test_decoders_reuse_pooled_contexts_without_mixing_them() -> None:
    """Decompressors go back to a pool with their decoder; interleaved and abandoned decoders stay exact."""
    from libkb.format import zstream

    def segment(seed: int) -> tuple[list[bytes], list[bytes]]:
        encoder = StreamEncoder(3, restart_blocks=2)
        raws = [b"".join(v for _, v, _ in datasets().records("cdc", 20_000, seed=seed + i)) for i in range(5)]
        return raws, [encoder.encode(raw, i) for i, raw in enumerate(raws)]

    (raws_a, a), (raws_b, b) = segment(1), segment(50)
    abandoned = StreamDecoder()
    abandoned.decode(a[0], 0, len(raws_a[0]))  # mid-frame, then dropped: its context goes back
    del abandoned
    assert zstream._POOL
    one, two = StreamDecoder(), StreamDecoder()
    for i in range(5):  # two segments decoded in turn on one thread: each in its own context
        assert one.decode(a[i], i, len(raws_a[i])) == raws_a[i]
        assert two.decode(b[i], i, len(raws_b[i])) == raws_b[i]
    # A decoder that takes the abandoned context still refuses a block without its predecessors.
    with pytest.raises(TransformError, match="block 1 continues"):
        StreamDecoder().decode(a[1], 1, len(raws_a[1]))


def test_an_interval_whose_probe_finds_no_gain_compresses_its_blocks_alone() -> None:
    """Distinct records gain nothing from history, which only costs CPU; a cycled pool gains."""
    for shape, partitions, alone in (("distinct", 1, True), ("cyclic", 8, False)):
        records = shape_records(shape, 7 << 20, partitions)
        data = encode_segment("t", 0, 0, len(records), records, codec=CODEC_ZSTD_STREAM)
        want = [KIND_RESTART, KIND_CONTINUE, KIND_CONTINUE, KIND_CONTINUE]  # the probe
        rest = KIND_RESTART if alone else KIND_CONTINUE
        assert kinds(data) == want + [rest] * (len(kinds(data)) - 4), shape
        assert list(SegmentReader(data).records()) == as_read(records)


@pytest.fixture
def segment() -> Iterator[tuple[bytes, list[Record]]]:
    records = shape_records("cdc", 400_000)
    data = encode_segment(
        "t", 0, 0, len(records), records, codec=CODEC_ZSTD_STREAM, block_bytes=16 * 1024, restart_blocks=4
    )
    yield data, records


def test_a_read_from_the_middle_decodes_at_most_one_restart_interval_before_it(
    segment: tuple[bytes, list[Record]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, records = segment
    reader = SegmentReader(data, name="s.kbs")
    blocks = list(reader.blocks())
    assert len(blocks) >= 12
    decoded: list[int] = []
    real = StreamDecoder.decode

    def counting(self: StreamDecoder, payload: Any, index: int, raw_len: int) -> bytes:
        decoded.append(index)
        return real(self, payload, index, raw_len)

    monkeypatch.setattr(StreamDecoder, "decode", counting)
    for wanted in (5, 8, 11):  # the second block of an interval, its first, its last
        decoded.clear()
        start = blocks[wanted].first_offset
        got = list(reader.records(start))
        assert got == as_read(records[start:])
        restart = wanted // 4 * 4
        assert decoded == list(range(restart, len(blocks)))


def test_a_flipped_byte_names_its_block_and_spoils_no_more_than_its_interval(
    segment: tuple[bytes, list[Record]],
) -> None:
    data, records = segment
    blocks = list(SegmentReader(data).blocks())
    bad = bytearray(data)
    bad[blocks[5].position + 40] ^= 0x01
    reader = SegmentReader(bytes(bad), name="s.kbs")
    with pytest.raises(SegmentError, match="body checksum mismatch"):
        reader.verify()
    with pytest.raises(
        SegmentError,
        match=rf"^s\.kbs: checksum mismatch in the block of offsets {blocks[5].first_offset}-"
        rf"{blocks[5].last_offset} \(block 5, at byte {blocks[5].position}\) \(zstd-stream: the blocks "
        "after it up to the next restart point cannot be decoded either\\)$",
    ):
        list(reader.records())
    # The intervals before and after it read as ever.
    assert list(reader.records(blocks[8].first_offset)) == as_read(records[blocks[8].first_offset :])
    before: list[Record] = []
    with pytest.raises(SegmentError):
        for record in reader.records():
            before.append(record)
    assert before == as_read(records[: blocks[5].first_offset])


def test_an_encrypted_segment_compresses_in_the_stream_then_encrypts_each_block(
    segment: tuple[bytes, list[Record]],
) -> None:
    """Compression first (the ratio is kept), encryption per block; reads decrypt, then decompress."""
    plain, records = segment
    key = DataKey.generate()
    data = encode_segment(
        "t", 0, 0, len(records), records, codec=CODEC_ZSTD_STREAM, block_bytes=16 * 1024,
        restart_blocks=4, encryption=BlockEncryption("bk", key),
    )  # fmt: skip
    header = SegmentReader(data).header
    assert header.encrypted and header.version == 7 and header.codec == CODEC_ZSTD_STREAM
    # The stream encoder is deterministic: each block is its plain payload plus nonce and tag.
    sizes = [b.length for b in SegmentReader(plain).blocks()]
    blocks = list(SegmentReader(data).blocks())
    assert [b.length for b in blocks] == [n + OVERHEAD for n in sizes]
    with pytest.raises(SegmentError, match=r"s\.kbs: its blocks are encrypted; reading them needs its key"):
        list(SegmentReader(data, name="s.kbs").records())
    reader = SegmentReader(
        data, name="s.kbs", chain=encrypted_chain(CODEC_ZSTD_STREAM, BlockEncryption("bk", key))
    )
    reader.verify()
    assert list(reader.records()) == as_read(records)
    decoder = reader.decoder()
    payloads = [memoryview(data)[b.position + 32 : b.position + b.length] for b in blocks]
    assert [decoder.kind(p, b) for p, b in zip(payloads, blocks, strict=True)] == kinds(plain)
    assert KIND_CONTINUE in kinds(plain)  # the context does span encrypted blocks
    start = blocks[6].first_offset  # mid-interval: the restart point is found through decryption
    assert list(reader.records(start)) == as_read(records[start:])
    assert (
        block_records(data, blocks[4], CODEC_ZSTD_STREAM, decoder=reader.decoder())
        == list(reader.records(blocks[4].first_offset))[: blocks[4].record_count]
    )


def test_a_tampered_encrypted_stream_block_fails_authentication_naming_it(
    segment: tuple[bytes, list[Record]],
) -> None:
    _, records = segment
    key = DataKey.generate()
    data = encode_segment(
        "t", 0, 0, len(records), records, codec=CODEC_ZSTD_STREAM, block_bytes=16 * 1024,
        restart_blocks=4, encryption=BlockEncryption("bk", key),
    )  # fmt: skip
    blocks = list(SegmentReader(data).blocks())
    bad = bytearray(data)
    bad[blocks[5].position + 40] ^= 0x01  # and its checksum made right, as an attacker can
    payload = bad[blocks[5].position + 32 : blocks[5].position + blocks[5].length]
    struct.pack_into("<I", bad, blocks[5].position + 28, block_crc(payload))
    chain = encrypted_chain(CODEC_ZSTD_STREAM, BlockEncryption("bk", key))
    reader = SegmentReader(bytes(bad), name="s.kbs", chain=chain)
    with pytest.raises(
        SegmentError,
        match=rf"^s\.kbs: the block of offsets {blocks[5].first_offset}-{blocks[5].last_offset}: "
        r"block 5 fails authentication \(AES-256-GCM\)",
    ):
        list(reader.records())
    with pytest.raises(
        SegmentError,
        match=rf"^s\.kbs: the block of offsets {blocks[5].first_offset}-{blocks[5].last_offset}: "
        r"block 5 fails authentication \(AES-256-GCM\)",
    ):
        block_records(bytes(bad), blocks[5], CODEC_ZSTD_STREAM, name="s.kbs", decoder=reader.decoder())
    assert list(reader.records(blocks[8].first_offset)) == as_read(records[blocks[8].first_offset :])
    wrong = encrypted_chain(CODEC_ZSTD_STREAM, BlockEncryption("bk", DataKey.generate()))
    with pytest.raises(SegmentError, match="block 0 fails authentication"):
        list(SegmentReader(data, name="s.kbs", chain=wrong).records())


# -- hostile payloads: the decoder's output stays bounded ------------------------------------


def _stream_payload(kind: int, *chunks: bytes, finish: bool = False, window_log: int = 23) -> bytes:
    """A payload of ``kind`` whose zstd blocks hold ``chunks`` (valid zstd, lying about nothing)."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log)
    obj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    body = b"".join(obj.compress(chunk) for chunk in chunks)
    body += obj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH if finish else zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    return bytes([kind]) + body


def test_a_few_kilobytes_that_decompress_to_hundreds_of_megabytes_are_refused_within_a_block() -> None:
    zeros = bytes(1 << 20)
    bomb = _stream_payload(KIND_RESTART, *[zeros] * 200)  # 200 MiB of zeros in about 6 KB
    assert len(bomb) < 16 * 1024
    tracemalloc.start()
    with pytest.raises(TransformError, match="decompresses past its stated size"):
        StreamDecoder().decode(bomb, 0, 1 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < (1 << 20) + 2 * ZSTD_BLOCK_MAX + (256 << 10)


def test_a_continuing_block_that_decompresses_past_its_size_is_refused_and_breaks_the_context() -> None:
    zeros = bytes(1 << 20)
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=23)
    obj = zstandard.ZstdCompressor(compression_params=params).compressobj()
    first = bytes([KIND_RESTART]) + obj.compress(zeros) + obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    second = bytes([KIND_CONTINUE]) + b"".join(obj.compress(zeros) for _ in range(64))
    second += obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    decoder = StreamDecoder()
    assert decoder.decode(first, 0, 1 << 20) == zeros
    with pytest.raises(TransformError, match="decompresses past its stated size"):
        decoder.decode(second, 1, 1 << 20)
    with pytest.raises(TransformError, match="continues a zstd context"):
        decoder.decode(second, 2, 1 << 20)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_stream_payload(KIND_RESTART, b"abc" * 1000, finish=True), "ends the frame"),
        (_stream_payload(KIND_RESTART, b"abc" * 1000)[:-2], "runs past the payload|cut off"),
        (bytes([KIND_RESTART]) + b"\x00\x01", "not a zstd frame header"),
        (bytes([KIND_CONTINUE]) + b"\x07\x00\x00", "reserved type"),
        (_stream_payload(KIND_RESTART, b"abc" * 1000, window_log=27), "cannot decompress block"),
    ],
    ids=["frame-end", "truncated", "no-frame-header", "reserved-block", "window-too-large"],
)
def test_a_malformed_stream_payload_is_a_transform_error(payload: bytes, message: str) -> None:
    decoder = StreamDecoder()
    if payload[0] == KIND_CONTINUE:
        decoder.decode(_stream_payload(KIND_RESTART, b"x" * 100), 0, 100)
    with pytest.raises(TransformError, match=message):
        decoder.decode(payload, 1 if payload[0] == KIND_CONTINUE else 0, 3000)


def test_a_block_compressed_alone_on_any_thread_is_what_the_stream_would_store() -> None:
    """After a probe that found no gain, a block needs no context: any thread may compress it."""
    records = shape_records("distinct", 3 << 20)
    blocks = [records[i : i + 300] for i in range(0, len(records), 300)]
    stream, alone = StreamEncoder(3, restart_blocks=64), AloneEncoder(3)
    for index, block in enumerate(blocks):
        enc = BlockEncoder(1 << 20)
        for record in block:
            enc.add(*record)
        data = enc.take().data
        decided = stream.alone_at(index)
        payload = stream.encode(data, index)
        if decided:
            assert alone.encode(data, index) == payload and payload[0] == KIND_RESTART
    assert stream.alone_at(len(blocks)) and not stream.alone_at(64)  # this interval, not the next

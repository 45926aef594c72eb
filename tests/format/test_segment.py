"""Segment codec: exact round trips (property-based) and corruption that is always caught."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libkb.format.segment import (
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_ZSTD,
    FOOTER_SIZE,
    FORMAT_VERSION,
    Record,
    SegmentError,
    SegmentReader,
    block_records,
    decode_block,
    decode_footer,
    decode_header,
    encode_segment,
)

CODECS = [CODEC_NONE, CODEC_ZSTD, CODEC_LZ4]

i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
maybe_bytes = st.one_of(st.none(), st.binary(max_size=64))
headers = st.one_of(
    st.none(),
    st.lists(st.tuples(st.text(max_size=10), maybe_bytes), max_size=5),
)


@st.composite
def record_lists(draw: st.DrawFn) -> tuple[int, int, list[Record]]:
    base = draw(st.integers(min_value=0, max_value=2**40))
    gaps = draw(st.lists(st.integers(min_value=1, max_value=5), max_size=60))
    records: list[Record] = []
    offset = base + draw(st.integers(min_value=0, max_value=3))
    for gap in gaps:
        records.append(
            (
                offset,
                draw(i64),
                draw(st.sampled_from([0, 1, 2])),
                draw(maybe_bytes),
                draw(maybe_bytes),
                draw(headers),
            )
        )
        offset += gap
    # A segment covers at least one offset: [base, end) with end > base.
    end = (records[-1][0] + 1 if records else base + 1) + draw(st.integers(min_value=0, max_value=3))
    return base, end, records


@settings(max_examples=200, deadline=None)
@given(
    data=record_lists(),
    codec=st.sampled_from(CODECS),
    block_bytes=st.sampled_from([1, 100, 1 << 20]),
    topic=st.text(min_size=1, max_size=20),
    partition=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_round_trip_is_exact(
    data: tuple[int, int, list[Record]], codec: int, block_bytes: int, topic: str, partition: int
) -> None:
    base, end, records = data
    blob = encode_segment(topic, partition, base, end, records, codec=codec, block_bytes=block_bytes)
    reader = SegmentReader(blob)
    reader.verify()
    assert list(reader.records()) == records
    assert (reader.header.topic, reader.header.partition, reader.header.base_offset) == (
        topic,
        partition,
        base,
    )
    footer = reader.footer
    assert footer.record_count == len(records)
    assert footer.end_offset == end
    if records:
        assert (footer.first_offset, footer.last_offset) == (records[0][0], records[-1][0])
        assert footer.min_timestamp == min(r[1] for r in records)
        assert footer.max_timestamp == max(r[1] for r in records)
    else:
        assert (footer.first_offset, footer.last_offset, footer.min_timestamp) == (-1, -1, -1)
    # The footer alone (one range read) gives the same stats.
    assert decode_footer(blob[-FOOTER_SIZE:]) == footer


def test_null_is_not_empty_and_headers_keep_order_duplicates_and_nulls() -> None:
    records: list[Record] = [
        (0, 1, 1, None, b"", [("a", b"1"), ("a", None), ("b", b""), ("a", b"2")]),
        (1, 2, 2, b"", None, None),
        (2, 3, 0, b"\x00\xff", b"v", []),
    ]
    got = list(SegmentReader(encode_segment("t", 0, 0, 3, records)).records())
    assert got == records
    assert got[0][3] is None and got[0][4] == b""
    assert got[1][5] is None and got[2][5] == []


SAMPLE: list[Record] = [(i, 1000 + i, 1, f"k{i}".encode(), b"v" * 300, [("h", b"x")]) for i in range(500)]


@pytest.mark.parametrize("codec", CODECS)
def test_every_single_byte_flip_is_caught(codec: int) -> None:
    blob = encode_segment("topic", 3, 0, 500, SAMPLE, codec=codec, block_bytes=20_000)
    step = max(1, len(blob) // 400)
    for pos in range(0, len(blob), step):
        corrupt = bytearray(blob)
        corrupt[pos] ^= 0x01
        with pytest.raises(SegmentError):
            reader = SegmentReader(bytes(corrupt), name="b/topics/topic/partition=3/x.kbs")
            reader.verify()
            list(reader.records())


def test_truncation_is_caught_and_names_the_object() -> None:
    blob = encode_segment("topic", 0, 0, 500, SAMPLE)
    for cut in (0, 10, len(blob) // 2, len(blob) - 1):
        with pytest.raises(SegmentError, match=r"bk/seg\.kbs"):
            reader = SegmentReader(blob[:cut], name="bk/seg.kbs")
            reader.verify()


def test_newer_version_is_refused_clearly() -> None:
    blob = bytearray(encode_segment("t", 0, 0, 1, [(0, 0, 0, None, None, None)]))
    blob[4] = 9
    with pytest.raises(
        SegmentError,
        match=rf"^x\.kbs: format version 9 is newer than this libkb reads \(1 to {FORMAT_VERSION}\): it was "
        "written by a newer libkb; upgrade libkb$",
    ):
        decode_header(bytes(blob), name="x.kbs")


def _with_header(blob: bytes, version: int, codec: int) -> bytes:
    """``blob`` with another version and codec byte, its header checksum made right again."""
    data = bytearray(blob)
    data[4], data[5] = version, codec
    header_len = int.from_bytes(data[8:12], "little")
    data[header_len - 4 : header_len] = zlib.crc32(data[: header_len - 4]).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize(("codec", "version"), [(CODEC_NONE, 1), (CODEC_ZSTD, 1), (CODEC_LZ4, 2)])
def test_a_segment_is_written_with_the_lowest_version_that_has_its_codec(codec: int, version: int) -> None:
    blob = encode_segment("t", 0, 0, 500, SAMPLE, codec=codec)
    assert (blob[4], blob[5]) == (version, codec)
    assert SegmentReader(blob).header.version == version


def test_a_version_1_header_with_the_lz4_codec_is_refused() -> None:
    blob = _with_header(encode_segment("t", 0, 0, 500, SAMPLE, codec=CODEC_LZ4), 1, CODEC_LZ4)
    with pytest.raises(SegmentError, match=r"^x\.kbs: codec lz4 needs format version 2, the header says 1$"):
        decode_header(blob, name="x.kbs")
    # version 2 readers read version 1 codecs under a version 2 header too
    zstd = _with_header(encode_segment("t", 0, 0, 500, SAMPLE, codec=CODEC_ZSTD), 2, CODEC_ZSTD)
    assert list(SegmentReader(zstd).records()) == SAMPLE


@pytest.mark.parametrize("codec", [CODEC_ZSTD, CODEC_LZ4], ids=["zstd", "lz4"])
@pytest.mark.parametrize(
    "garble",
    [lambda p: b"\x00" * len(p), lambda p: p[: len(p) // 2], lambda p: p[:8] + b"\xff" * (len(p) - 8)],
    ids=["zeroed", "cut", "garbled"],
)
def test_a_payload_that_does_not_decompress_fails_alike_for_every_codec(
    codec: int, garble: Callable[[bytes], bytes]
) -> None:
    """A payload the writer got wrong, its checksum right: the same message whatever the codec."""
    blob = encode_segment("t", 0, 0, 500, SAMPLE, codec=codec, block_bytes=20_000)
    info = list(SegmentReader(blob).blocks())[1]
    start, end = info.position + 32, info.position + info.length
    payload = garble(blob[start:end])
    head = bytearray(blob[info.position : start])
    head[0:4] = (len(payload) + 28).to_bytes(4, "little")
    head[28:32] = zlib.crc32(payload).to_bytes(4, "little")
    corrupt = blob[: info.position] + bytes(head) + payload + blob[end:]
    reader = SegmentReader(corrupt, name="x.kbs")
    info = list(reader.blocks())[1]
    words = (
        r"^x\.kbs: the block of offsets \d+-\d+: (cannot decompress block: |decompressed to the wrong size)"
    )
    with pytest.raises(SegmentError, match=words):
        list(decode_block(corrupt, info, codec, name="x.kbs"))
    with pytest.raises(SegmentError, match=words):
        block_records(corrupt, info, codec, name="x.kbs")


def test_block_checksum_catches_corruption_verify_skipped() -> None:
    blob = bytearray(encode_segment("t", 0, 0, 500, SAMPLE, block_bytes=10_000))
    reader = SegmentReader(bytes(blob))
    block = list(reader.blocks())[2]
    blob[block.position + block.length - 5] ^= 0xFF
    with pytest.raises(SegmentError, match="checksum mismatch in the block"):
        list(SegmentReader(bytes(blob)).records())


def test_body_crc_is_zlib_crc32() -> None:
    blob = encode_segment("t", 0, 0, 1, [(0, 0, 0, None, None, None)])
    assert SegmentReader(blob).footer.body_crc == zlib.crc32(blob[:-FOOTER_SIZE])


@settings(max_examples=100, deadline=None)
@given(data=record_lists(), codec=st.sampled_from(CODECS))
def test_fast_block_decoder_matches_the_reference(data: tuple[int, int, list[Record]], codec: int) -> None:
    base, end, records = data
    blob = encode_segment("t", 0, base, end, records, codec=codec, block_bytes=200)
    reader = SegmentReader(blob)
    for info in reader.blocks():
        assert block_records(blob, info, codec) == list(decode_block(blob, info, codec))


@pytest.mark.parametrize("codec", CODECS)
def test_fast_block_decoder_reports_corruption_like_the_reference(codec: int) -> None:
    blob = bytearray(encode_segment("t", 0, 0, 500, SAMPLE, codec=codec, block_bytes=10_000))
    info = list(SegmentReader(bytes(blob)).blocks())[1]
    blob[info.position + info.length - 3] ^= 0xFF
    with pytest.raises(SegmentError, match=r"^x\.kbs: checksum mismatch in the block of offsets"):
        block_records(bytes(blob), info, codec, name="x.kbs")
